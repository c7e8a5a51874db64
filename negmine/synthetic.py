"""`negmine cutout`, and the synthetic share of `negmine sample --synthetic F`.

Orchestration only: find images, match annotations, run `cutout.cutout` / `cutout.background_crops`
on worker processes, write the results with a manifest row each (source image, boxes removed,
region, fill, seed: enough to reproduce the file exactly).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import zlib
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from negmine.progress import bar

from negmine import __version__
from negmine.annotations import Box, load_boxes, match_images
from negmine.cutout import Cutout, CutoutOptions, background_crops, cutout
from negmine.distribute import make_distributor
from negmine.errors import NegmineError
from negmine.images import ImageRejected
from negmine.manifest import write_outputs
from negmine.positives import _images_under
from negmine.writers import Run, plain_record, refuse_out_inside, run_options, stored_seed


def image_seed(seed: int, key: str) -> int:
    """Each image's own seed, recorded in the manifest: cutout(image, boxes, options, seed) again
    gives the same bytes, whatever else was in the run."""
    return int(np.random.SeedSequence([seed, zlib.crc32(key.encode())]).generate_state(1)[0])


def _image_sizes(root: Path, keys: list[str]) -> dict[str, tuple[int, int]]:
    sizes = {}
    for k in keys:
        try:
            with Image.open(root / k) as im:
                sizes[k] = im.size
        except Exception:
            pass
    return sizes


def annotated_images(images: Path, boxes: Path | None, masks: Path | None, classes: list[str] | None,
                     fmt: str = "auto") -> tuple[Path, list[str], dict[str, list[Box]], dict[str, Path]]:
    """(root, image keys, boxes per key, mask file per key); keys are paths relative to root."""
    root = Path(images).expanduser()
    if not root.is_dir():
        raise NegmineError(f"--images {root} is not a folder")
    root = root.resolve()
    keys = [p.relative_to(root).as_posix() for p in _images_under(root, root, follow_symlinks=False)]
    if not keys:
        raise NegmineError(f"--images {root} holds no images")
    if boxes is None and masks is None:
        raise NegmineError("give the objects to remove: --boxes (COCO/VOC/YOLO/CSV) and/or --masks DIR")
    found: dict[str, list[Box]] = {}
    if boxes is not None:
        needs_sizes = fmt == "yolo" or (fmt == "auto" and Path(boxes).is_dir() and not any(Path(boxes).rglob("*.xml")))
        raw = load_boxes(Path(boxes), fmt, _image_sizes(root, keys) if needs_sizes else None)
        found = match_images(raw, keys)
    mask_files: dict[str, Path] = {}
    if masks is not None:
        mroot = Path(masks).expanduser()
        if not mroot.is_dir():
            raise NegmineError(f"--masks {mroot} is not a folder")
        by_stem = {}
        for p in sorted(mroot.rglob("*.png")):
            by_stem.setdefault(p.relative_to(mroot).with_suffix("").as_posix(), p)
            by_stem.setdefault(p.stem, p)
        for k in keys:
            m = by_stem.get(Path(k).with_suffix("").as_posix()) or by_stem.get(Path(k).stem)
            if m is not None:
                mask_files[k] = m
    if classes:
        wanted = {c.strip() for c in classes if c.strip()}
        found = {k: [b for b in v if b.label in wanted] for k, v in found.items()}
    return root, keys, found, mask_files


def _load_mask(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    return np.asarray(Image.open(path).convert("L")) > 0


def _task(task: tuple, opts: CutoutOptions, mode: str, crop: dict) -> list[Cutout] | str:
    path, boxes, mask_path, seed = task
    try:
        data = Path(path).read_bytes()
        mask = _load_mask(mask_path)
        boxes = [Box(*b) for b in boxes]
        if mask is not None and not boxes:
            ys, xs = np.nonzero(mask)
            if not len(xs):
                raise ImageRejected("mask is empty")
            boxes = [Box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)]
        if mode == "crops":
            return background_crops(data, boxes, opts, seed, **crop)
        return [cutout(data, boxes, opts, seed, mask if opts.region == "mask" else None)]
    except ImageRejected as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file: {exc}"
    except Exception as exc:                    # one bad file never ends a run
        return f"unexpected error: {type(exc).__name__}: {exc}"


@dataclass
class CutoutJob:
    images: Path
    out: Path
    boxes: Path | None = None
    masks: Path | None = None
    box_format: str = "auto"
    classes: list[str] | None = None
    options: CutoutOptions = field(default_factory=CutoutOptions)
    mode: str = "cutout"                       # cutout | crops
    crop_size: float = 0.4
    crops_per_image: int = 2
    crop_iou: float = 0.0
    seed: int | None = None
    workers: int | None = None
    overwrite: bool = False
    resume: bool = False
    report: bool = False
    progress: bool = True


def run_cutout(job: CutoutJob) -> dict:
    t0 = time.monotonic()
    opts = job.options.validate()
    if job.mode not in ("cutout", "crops"):
        raise NegmineError("--mode must be cutout or crops")
    refuse_out_inside(job.out, [("--images", job.images), ("--boxes", job.boxes), ("--masks", job.masks)])
    if job.seed is None and job.resume:
        job.seed = stored_seed(job.out)
    seed = job.seed if job.seed is not None else secrets.randbelow(2**31)
    root, keys, boxes, masks = annotated_images(job.images, job.boxes, job.masks, job.classes, job.box_format)
    record = plain_record({**asdict(job), "seed": seed, "options": asdict(opts)})
    key = {"negmine_version": __version__, "seed": seed, "options": run_options(record)}
    rows, rejects, tasks = [], [], []
    for k in keys:
        if k in boxes and boxes[k] or k in masks:
            tasks.append((k, (str(root / k), [(b.x0, b.y0, b.x1, b.y1, b.label) for b in boxes.get(k, [])],
                              masks.get(k), image_seed(seed, k))))
        else:
            reason = "no object of the chosen classes" if job.classes and k in boxes else "no annotation"
            rejects.append({"file": k, "reason": reason})
    crop = {"size": job.crop_size, "count": job.crops_per_image, "max_iou": job.crop_iou}
    ext = "." + opts.image_format
    distributor = make_distributor(job.workers)
    try:
        with Run(job.out, key, overwrite=job.overwrite, resume=job.resume) as run:
            writer = run.writer
            done = {e["file"]: e for e in run.journal.entries}     # images finished before an interruption
            for e in done.values():
                rows += e.get("rows", [])
                rejects += [e["reject"]] if "reject" in e else []
            todo = [(k, t) for k, t in tasks if k not in done]
            fn = partial(_task, opts=opts, mode=job.mode, crop=crop)
            results = distributor.imap(fn, [t for _, t in todo])
            for (key_, task), result in bar(zip(todo, results), total=len(todo), desc=job.mode, unit="img",
                                             show=job.progress):
                if isinstance(result, str):
                    rejects.append({"file": key_, "reason": result})
                    run.journal.append({"file": key_, "reject": rejects[-1]})
                    continue
                stem = Path(key_).with_suffix("").as_posix()
                made = []
                for n, c in enumerate(result):
                    rel = f"{stem}{f'_crop{n}' if job.mode == 'crops' else ''}{ext}"
                    writer.write_bytes(rel, c.data)
                    made.append({"path": rel, "source": str(root), "file": key_, "mode": job.mode,
                                 "region": c.region, "fill": c.fill, "noise": opts.noise if c.fill == "noise" else None,
                                 "margin": opts.margin, "boxes": c.boxes, "crop": c.crop, "seed": c.seed,
                                 "width": c.width, "height": c.height, "sha256": hashlib.sha256(c.data).hexdigest()})
                rows += made
                run.journal.append({"file": key_, "rows": made})
            rows.sort(key=lambda r: r["path"])
            rejects.sort(key=lambda r: r["file"])
            summary = {"negmine_version": __version__, "seed": seed, "out": str(writer.out), "images": len(keys),
                       "written": len(rows), "skipped": len(rejects),
                       "fills": {f: sum(r["fill"] == f for r in rows) for f in sorted({r["fill"] for r in rows})}}
            write_outputs(writer, rows, rejects, {**summary, "out": None, "command": "cutout", "job": record})
            if job.report:
                from negmine.report import write_report

                summary["report"] = write_report(writer.staging, display=writer.out)["html"]
            run.journal.close()
            writer.publish()
    finally:
        distributor.close()
    summary["seconds"] = round(time.monotonic() - t0, 2)
    return summary
