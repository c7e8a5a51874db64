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


def write_pool(path: Path, labels: np.ndarray, blobs, class_names: list[str], rows_per_group: int = 2000,
               layout: str = "pyarrow") -> Path:
    """A class-sorted parquet pool in Hub layout (data/train-00000-of-00001.parquet), image column as
    datasets writes it (struct<bytes, path>), string labels. `blobs(i)` gives row i's image bytes.

    layout "datasets" writes what `datasets` 5.x pushes to the Hub: content-defined pages of
    256 KB-1 MB, a page index, image bytes uncompressed and not dictionary-encoded, row groups of
    ~100 MB (rows_per_group is then ignored); "pyarrow" is pyarrow's defaults plus a page index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    (path / "data").mkdir(exist_ok=True)
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.string())])
    target = path / "data" / "train-00000-of-00001.parquet"
    options = dict(compression="none", write_page_index=True)
    if layout == "datasets":
        import datasets
        from datasets.arrow_writer import get_parquet_column_options

        features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
        schema = schema.with_metadata(features.arrow_schema.metadata)
        options = dict(write_page_index=True, use_content_defined_chunking=datasets.config.DEFAULT_CDC_OPTIONS,
                       **get_parquet_column_options(features, schema))
        rows_per_group = None
    with pq.ParquetWriter(target, schema, **options) as w:
        group, size = [], 0
        for i in range(len(labels)):
            group.append(i)
            size += len(blobs(i))
            if i + 1 == len(labels) or (len(group) == rows_per_group if rows_per_group else size >= 100 << 20):
                imgs = pa.array([{"bytes": blobs(k), "path": None} for k in group], schema.field("image").type)
                labs = pa.array([class_names[labels[k]] for k in group], pa.string())
                w.write_table(pa.table([imgs, labs], schema=schema))
                group, size = [], 0
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
