"""3. Sampling I/O: bytes read per byte of kept image, drawing 1% (stratified) from a class-sorted
single-shard parquet pool: negmine vs `datasets` streaming shuffle + take; and class coverage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.common import CACHE, crop_jpeg, loaded_photos, write_pool


def _blobs(args) -> list[bytes]:
    start, end, labels, size = args
    photos = loaded_photos()
    rng = np.random.default_rng(start)
    return [crop_jpeg(photos[int(labels[k - start]) % len(photos)], rng, size) for k in range(start, end)]


def pool(rows: int, classes: int, size: int = 256) -> Path:
    """Written as `datasets` 5.x writes Hub shards, images the size of the default preset (256 px)."""
    path = CACHE / f"pool-hub{size}-{rows}"
    if (path / "data").exists():
        return path
    from concurrent.futures import ProcessPoolExecutor

    labels = np.repeat(np.arange(classes), rows // classes)
    chunks = [(s, min(rows, s + 2000), labels[s:s + 2000], size) for s in range(0, rows, 2000)]
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        blobs = [b for part in ex.map(_blobs, chunks) for b in part]
    return write_pool(path, labels, blobs.__getitem__, [f"c{k:04d}" for k in range(classes)], layout="datasets")


def _rchar() -> int:
    for line in open(f"/proc/{os.getpid()}/io"):
        if line.startswith("rchar"):
            return int(line.split()[1])
    return 0


def _negmine(path: Path, count: int, seed: int, max_read: float | None = None, pages: bool = True):
    """The draw `negmine sample` makes: a stratified order, clustered by page when asked. Without
    pages, the same draw read a row group at a time (as negmine did before page reads, and as
    pyarrow and `datasets` read a row)."""
    from negmine.sampling.plan import clustered_order, stratified_order
    from negmine.seeds import rng_for
    from negmine.sources import SourceSpec, open_source

    src = open_source(SourceSpec(str(path)), progress=False)
    if not pages:
        src._page_tables = [None] * len(src._page_tables)
    before = _rchar()
    order = stratified_order(src.codes, rng_for(seed, "draw", 0, 0))
    if max_read:
        order = clustered_order(order, *src.blocks(), max_read)
    order = order[:count]
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
    rows, classes, size = {"tiny": (4_000, 40, 96), "default": (100_000, 1000, 256),
                           "full": (100_000, 1000, 256)}[scale]
    path = pool(rows, classes, size)
    count = rows // 100
    file_bytes = sum(p.stat().st_size for p in (path / "data").glob("*.parquet"))
    import pyarrow.parquet as pq

    from negmine.sources import SourceSpec, open_source

    src = open_source(SourceSpec(str(path)), progress=False)
    _, page_rows = src.blocks()
    out = {"name": "sampling_io", "pool_rows": rows, "classes": classes, "image_px": size, "drawn": count,
           "pool_bytes": file_bytes, "pool_row_groups": pq.ParquetFile(next((path / "data").glob("*.parquet"))).num_row_groups,
           "pages": len(page_rows), "rows_per_page_median": float(np.median(page_rows))}
    runs = {"negmine_pages": lambda: _negmine(path, count, 1),
            "negmine_max_read_5": lambda: _negmine(path, count, 1, max_read=5),
            "row_groups": lambda: _negmine(path, count, 1, pages=False),
            "datasets_streaming": lambda: _streaming(path, count, 1)}
    for name, fn in runs.items():
        read, kept, labels = fn()
        out[name] = {"bytes_read": read, "bytes_kept": kept, "read_per_kept": round(read / kept, 2),
                     "classes_covered": len(set(labels)),
                     "largest_class_share": round(max(np.unique(labels, return_counts=True)[1]) / len(labels), 3)}
    out["targets"] = {"<= 5 bytes read per byte kept (--max-read-ratio 5)": out["negmine_max_read_5"]["read_per_kept"] <= 5,
                      "<= 5 bytes read per byte kept (default)": out["negmine_pages"]["read_per_kept"] <= 5}
    return out
