"""5. End to end: `negmine sample` of N negatives (overlap removal and dedup on) vs a straightforward
script doing the same job with datasets + imagehash + PIL."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench.common import CACHE, crop_jpeg, loaded_photos, write_pool
from bench.memory import positives


def pool(rows: int) -> Path:
    path = CACHE / f"pool-e2e-{rows}"
    if (path / "data").exists():
        return path
    photos = loaded_photos()
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(500), -(-rows // 500))[:rows]
    cache = {}

    def blob(i):
        if i not in cache:
            cache.clear()
            for k in range(i, min(rows, i + 1000)):
                cache[k] = crop_jpeg(photos[int(labels[k])], rng, 160)
        return cache[i]

    return write_pool(path, labels, blob, [f"c{k:03d}" for k in range(500)], rows_per_group=2000)


def straightforward(pool_dir: Path, pos_dir: Path, out: Path, count: int, radius: int = 10, seed: int = 0) -> int:
    """What one would write by hand: shuffle with datasets, decode each image with PIL, hash it with
    imagehash, compare against the positives and the kept ones, save it as JPEG."""
    import datasets
    import imagehash

    pos = [int(str(imagehash.phash(ImageOps.exif_transpose(Image.open(p)))), 16) for p in sorted(pos_dir.rglob("*.jpg"))]
    ds = datasets.load_dataset("parquet", data_files=str(pool_dir / "data" / "*.parquet"), split="train")
    ds = ds.cast_column("image", datasets.Image(decode=False)).shuffle(seed=seed)
    kept = np.array(pos, dtype=np.uint64)
    written = 0
    (out / "other").mkdir(parents=True, exist_ok=True)
    for k, row in enumerate(ds):
        if written == count:
            break
        try:
            im = ImageOps.exif_transpose(Image.open(io.BytesIO(row["image"]["bytes"]))).convert("RGB")
        except Exception:
            continue
        h = np.uint64(int(str(imagehash.phash(im)), 16))
        if len(kept) and np.bitwise_count(kept ^ h).min() <= radius:
            continue
        kept = np.append(kept, h)
        im.save(out / "other" / f"{k}.jpg", quality=95)
        written += 1
    return written


def run(scale: str = "default") -> dict:
    rows, count = {"tiny": (600, 200), "default": (20_000, 10_000), "full": (20_000, 10_000)}[scale]
    p, pos = pool(rows), positives()
    outs = CACHE / "e2e-out"
    shutil.rmtree(outs, ignore_errors=True)
    from negmine.pipeline import SampleOptions, run_sample
    from negmine.sources import SourceSpec

    t = time.perf_counter()
    s = run_sample(SampleOptions(positives=pos, out=outs / "negmine", sources=[SourceSpec(str(p))], count=count,
                                 seed=1, progress=False, hash_distance=10))
    t_neg = time.perf_counter() - t
    t = time.perf_counter()
    written = straightforward(p, pos, outs / "script", count)
    t_script = time.perf_counter() - t
    shutil.rmtree(outs, ignore_errors=True)
    return {"name": "end_to_end", "pool_rows": rows, "negatives": count,
            "negmine_s": round(t_neg, 1), "script_s": round(t_script, 1), "speedup": round(t_script / t_neg, 2),
            "negmine_kept": s["negatives"], "script_kept": written,
            "targets": {">= 3x a straightforward script": t_script / t_neg >= 3}}
