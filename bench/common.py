"""Shared helpers: real photos, generated pools (cached in bench/.cache), timing, machine info."""

from __future__ import annotations

import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / ".cache"


def photos() -> list[Path]:
    return sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))


def random_crop(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A realistic-looking, distinct image: a random square 30-70% crop, maybe mirrored."""
    w, h = photo.size
    side = int(min(w, h) * rng.uniform(0.3, 0.7))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    im = photo.crop((x, y, x + side, y + side))
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im


def crop_jpeg(photo: Image.Image, rng: np.random.Generator, size: int, quality: int = 90) -> bytes:
    im = random_crop(photo, rng).resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def loaded_photos(limit: int | None = None) -> list[Image.Image]:
    out = []
    for p in photos()[:limit]:
        with Image.open(p) as im:
            out.append(im.convert("RGB"))
    return out


def write_pool(path: Path, labels: np.ndarray, blobs, class_names: list[str], rows_per_group: int = 2000) -> Path:
    """A class-sorted parquet pool in Hub layout (data/train-00000-of-00001.parquet), image column as
    datasets writes it (struct<bytes, path>), string labels. `blobs(i)` gives row i's image bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    (path / "data").mkdir(exist_ok=True)
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.string())])
    target = path / "data" / "train-00000-of-00001.parquet"
    with pq.ParquetWriter(target, schema, compression="none", write_page_index=True) as w:
        for s in range(0, len(labels), rows_per_group):
            idx = range(s, min(len(labels), s + rows_per_group))
            imgs = pa.array([{"bytes": blobs(i), "path": None} for i in idx], schema.field("image").type)
            labs = pa.array([class_names[labels[i]] for i in idx], pa.string())
            w.write_table(pa.table([imgs, labs], schema=schema))
    (path / "README.md").write_text("---\nlicense: other\n---\n# bench pool\n")
    return path


def timed(fn, *args, repeat: int = 1, **kw):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn(*args, **kw)
        best = min(best, time.perf_counter() - t)
    return best, result


def interleaved(fns: dict, repeat: int = 3) -> dict:
    """Best time of each function over `repeat` rounds, the functions taking turns within a round,
    so a slow spell of this noisy machine hits all of them alike."""
    best = {k: float("inf") for k in fns}
    results = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            results[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return {k: (best[k], results[k]) for k in fns}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import imagehash
    import PIL

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "pillow": PIL.__version__, "imagehash": imagehash.__version__}


def save(name: str, result: dict) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"result-{name}.json").write_text(json.dumps(result, indent=2))
