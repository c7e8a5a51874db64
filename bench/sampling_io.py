"""3. Sampling I/O: bytes read per byte of kept image, drawing 1% (stratified) from a class-sorted
single-shard parquet pool: negmine vs `datasets` streaming shuffle + take; and class coverage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.common import CACHE, crop_jpeg, loaded_photos, write_pool


def pool(rows: int, classes: int) -> Path:
    path = CACHE / f"pool-sorted-{rows}"
    if (path / "data").exists():
        return path
    photos = loaded_photos()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), rows // classes)
    blobs = {}

    def blob(i):
        if i not in blobs:
            blobs.clear()
            for k in range(i, min(len(labels), i + 2000)):
                blobs[k] = crop_jpeg(photos[int(labels[k]) % len(photos)], rng, 96)
        return blobs[i]

    return write_pool(path, labels, blob, [f"c{k:04d}" for k in range(classes)])


def _rchar() -> int:
    for line in open(f"/proc/{os.getpid()}/io"):
        if line.startswith("rchar"):
            return int(line.split()[1])
    return 0


def _negmine(path: Path, count: int, seed: int) -> tuple[int, int, list]:
    from negmine.sampling import rng_for, stratified_order
    from negmine.sources import SourceSpec, open_source

    src = open_source(SourceSpec(str(path)), progress=False)
    before = _rchar()
    order = stratified_order(src.codes, rng_for(seed, "draw", 0, 0))[:count]
    kept = sum(len(item.data) for item in src.read(order))
    return _rchar() - before, kept, [src.label_of(int(r)) for r in order]


def _streaming(path: Path, count: int, seed: int) -> tuple[int, int, list]:
    import datasets

    before = _rchar()
    ds = datasets.load_dataset("parquet", data_files=str(path / "data" / "*.parquet"), split="train", streaming=True)
    ds = ds.cast_column("image", datasets.Image(decode=False))
    kept, labels = 0, []
    for row in ds.shuffle(seed=seed, buffer_size=1000).take(count):
        kept += len(row["image"]["bytes"])
        labels.append(row["label"])
    return _rchar() - before, kept, labels


def run(scale: str = "default") -> dict:
    rows, classes = {"tiny": (4_000, 40), "default": (100_000, 1000), "full": (100_000, 1000)}[scale]
    path = pool(rows, classes)
    count = rows // 100
    file_bytes = sum(p.stat().st_size for p in (path / "data").glob("*.parquet"))
    out = {"name": "sampling_io", "pool_rows": rows, "classes": classes, "drawn": count, "pool_bytes": file_bytes}
    for name, fn in (("negmine", _negmine), ("datasets_streaming", _streaming)):
        read, kept, labels = fn(path, count, seed=1)
        out[name] = {"bytes_read": read, "bytes_kept": kept, "read_per_kept": round(read / kept, 2),
                     "classes_covered": len(set(labels)),
                     "largest_class_share": round(max(np.unique(labels, return_counts=True)[1]) / len(labels), 3)}
    out["targets"] = {"<= 5 bytes read per byte kept": out["negmine"]["read_per_kept"] <= 5}
    return out
