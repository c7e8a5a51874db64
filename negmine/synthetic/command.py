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
from typing import NamedTuple

import numpy as np
from PIL import Image
from negmine.progress import bar, warn

from negmine import __version__
from negmine.synthetic.annotations import Box, load_boxes, match_images
from negmine.synthetic.classes import ObjectClasses, judge_object_classes
from negmine.synthetic.cutout import Cutout, CutoutOptions, background_crops, cutout
from negmine.engine.distribute import ENGINE_OPTIONS, make_distributor
from negmine.errors import NegmineError
from negmine.images import ImageRejected
from negmine.outputs.manifest import write_outputs
from negmine.synthetic.objects import image_frame, resolve, upright_size
from negmine.synthetic.shortcuts import shortcut_warning
from negmine.positives import images_under
from negmine.outputs.writers import Run, check_workers, is_url, plain_record, refuse_local_only, refuse_out_inside, run_options, stored_seed


def image_seed(seed: int, key: str) -> int:
    """Each image's own seed, recorded in the manifest: cutout(image, boxes, options, seed) again
    gives the same bytes, whatever else was in the run."""
    return int(np.random.SeedSequence([seed, zlib.crc32(key.encode())]).generate_state(1)[0])


class Annotated(NamedTuple):
    root: Path                       # the images folder, resolved
    keys: list[str]                  # every image, relative to root
    boxes: dict[str, list[Box]]      # annotated images: upright, valid, clipped objects ([]: none there)
    masks: dict[str, Path]           # mask PNG per image
    invalid: dict[str, str]          # annotated images left out, with the reason (a bad box, a wrong frame)
    classes: ObjectClasses | None = None   # with `classes`: which annotation names were removed, and why
    sizes: dict | None = None        # annotated images with boxes: (width, height) upright, from the header


def annotated_images(images: Path, boxes: Path | None, masks: Path | None, classes: list[str] | None,
                     fmt: str = "auto", concepts: dict[str, str] | None = None) -> Annotated:
    """Find the images and pair them with their annotations (see `annotations.match_images`), each
    image's objects brought into its upright frame and validated (`objects.resolve`, one header
    read per annotated image). An image absent from `boxes` has no annotation; one with [] was
    annotated with no object (of the chosen classes). `classes`: keep only the objects that are
    those concepts, judged by the taxonomy (`negmine.synthetic.classes`; `concepts` is --concept).
    Raises NegmineError on unreadable or ambiguous annotations, when annotations were given but fit
    none of the images, and (UnplacedName) for a class name nothing places."""
    root = Path(images).expanduser()
    if not root.is_dir():
        raise NegmineError(f"--images {root} is not a folder")
    root = root.resolve()
    keys = [p.relative_to(root).as_posix() for p in images_under(root, root, follow_symlinks=False)]
    if not keys:
        raise NegmineError(f"--images {root} holds no images")
    if boxes is None and masks is None:
        raise NegmineError("give the objects to remove: --boxes (COCO/VOC/YOLO/CSV) and/or --masks DIR")
    found: dict[str, list[Box]] = {}
    invalid: dict[str, str] = {}
    chosen = None
    sizes: dict[str, tuple[int, int]] = {}
    if boxes is not None:
        raw = load_boxes(Path(boxes), fmt, image_keys=keys)
        matched = match_images(raw, keys)
        if raw and not matched:
            example = next(iter(raw))
            example = example[0] if isinstance(example, tuple) else example
            raise NegmineError(f"--boxes {boxes}: none of its {len(raw)} annotated images is in --images {root} "
                               f"(first: {example!r}); the names must be the images' paths or file names")
        if classes:             # before validation: a bad box of another class costs nothing here
            chosen = judge_object_classes(classes, [b.label for v in matched.values() for b in v], concepts)
            matched = {k: [b for b in v if chosen.removes(b.label)] for k, v in matched.items()}
        for k, bxs in matched.items():
            try:
                if bxs:
                    (w, h), orientation = _frame(root / k)
                    found[k] = resolve(bxs, (w, h), orientation)
                    sizes[k] = upright_size(w, h, orientation)
                else:
                    found[k] = []
            except ImageRejected as exc:
                invalid[k] = str(exc)
    mask_files: dict[str, Path] = {}
    if masks is not None:
        mroot = Path(masks).expanduser()
        if not mroot.is_dir():
            raise NegmineError(f"--masks {mroot} is not a folder")
        # paired like label files: the mask tree mirrors the image tree, never a stem from another folder
        pngs = {p.relative_to(mroot).with_suffix("").as_posix(): [p] for p in sorted(mroot.rglob("*.png"))}
        mask_files = {k: ps[0] for k, ps in match_images(pngs, keys).items()}
    return Annotated(root, keys, found, mask_files, invalid, chosen, sizes)


def _frame(path: Path) -> tuple[tuple[int, int], int]:
    w, h, orientation = image_frame(path)
    return (w, h), orientation


def _load_mask(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    return np.asarray(Image.open(path).convert("L")) > 0


def image_task(root: Path, key: str, boxes: dict[str, list[Box]], masks: dict[str, Path], seed: int) -> tuple:
    """The work for one image, as `cutout_task` takes it (plain values, so it travels to a worker
    process or a Ray task): its path, its objects, its mask and its own seed (`image_seed`)."""
    return (str(root / key), boxes.get(key, []), masks.get(key), image_seed(seed, key))


def cutout_task(task: tuple, opts: CutoutOptions, mode: str, crop: dict) -> list[Cutout] | str:
    """Worker: the cutout (mode "cutout") or background crops (mode "crops", `crop` their
    keywords) of one `image_task`; a reason string instead when the image cannot be cut. Shared
    by `negmine cutout` and the synthetic stage of `negmine sample` (negmine.pipeline.synthetic)."""
    path, boxes, mask_path, seed = task
    try:
        data = Path(path).read_bytes()
        mask = _load_mask(mask_path)
        boxes = [b if isinstance(b, Box) else Box(*b) for b in boxes]
        if mask is not None and not boxes:
            ys, xs = np.nonzero(mask)
            if not len(xs):
                raise ImageRejected("mask is empty")
            boxes = [Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))]   # JSON-able
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
    out: Path | str                            # a local folder, or an fsspec URL (s3://bucket/ds, ...)
    boxes: Path | None = None
    masks: Path | None = None
    box_format: str = "auto"
    classes: list[str] | None = None
    concepts: dict = field(default_factory=dict)   # --concept: {--classes or annotation name: wnid or lemma}
    options: CutoutOptions = field(default_factory=CutoutOptions)
    mode: str = "cutout"                       # cutout | crops
    crop_size: float = 0.4
    crops_per_image: int = 2
    crop_iou: float = 0.0
    seed: int | None = None
    workers: int | None = None
    engine: str = "local"                      # "ray": the cutouts on Ray tasks (negmine.engine.distribute)
    ray_address: str | None = None             # with engine "ray": the cluster (default $RAY_ADDRESS, else a local Ray)
    overwrite: bool = False
    resume: bool = False
    report: bool = False
    progress: bool = True


def run_cutout(job: CutoutJob) -> dict:
    t0 = time.monotonic()
    opts = job.options.validate()
    if job.mode not in ("cutout", "crops"):
        raise NegmineError("--mode must be cutout or crops")
    if is_url(job.out):
        refuse_local_only(job.out, report=job.report)
    refuse_out_inside(job.out, [("--images", job.images), ("--boxes", job.boxes), ("--masks", job.masks)])
    check_workers(job.out, job.workers, job.engine)
    if job.seed is None and job.resume:
        job.seed = stored_seed(job.out)
    seed = job.seed if job.seed is not None else secrets.randbelow(2**31)
    # the output of negmine cutout may be the whole negative set: judged as the table's share 1,
    # whatever its fills (one or several)
    shortcut = shortcut_warning(opts.fills, 1.0, "negmine cutout", "--fill", noise=opts.noise) \
        if job.mode == "cutout" else None
    if shortcut:
        warn(shortcut, job.progress)
    if job.classes and job.boxes is None:
        # masks carry no class: nothing could tell which objects are the named concepts
        raise NegmineError("--classes needs --boxes (COCO/VOC/YOLO/CSV with class names); masks carry no class")
    ann = annotated_images(job.images, job.boxes, job.masks, job.classes, job.box_format, job.concepts)
    root, keys, boxes, masks, invalid = ann.root, ann.keys, ann.boxes, ann.masks, ann.invalid
    # what negmine.json records: not how the run went (engine, progress, a resume), only what it wrote;
    # the run key is made from it, so the engine is not in it either
    record = plain_record({**{k: v for k, v in asdict(job).items() if k not in ENGINE_OPTIONS + ("progress", "resume")},
                           "seed": seed,
                           "options": asdict(opts)})
    key = {"negmine_version": __version__, "seed": seed, "options": run_options(record)}
    rows, rejects, tasks = [], [], []
    for k in keys:
        if k in invalid:
            rejects.append({"file": k, "reason": invalid[k]})
        elif k in boxes and boxes[k] or k in masks:
            tasks.append((k, image_task(root, k, boxes, masks, seed)))
        elif k in boxes:
            rejects.append({"file": k, "reason": "no object of the chosen classes" if job.classes
                            else "annotated with no object: nothing to remove"})
        else:
            rejects.append({"file": k, "reason": "no annotation"})
    crop = {"size": job.crop_size, "count": job.crops_per_image, "max_iou": job.crop_iou}
    ext = "." + opts.image_format
    distributor = make_distributor(job.workers, job.engine, job.ray_address)
    try:
        with Run(job.out, key, overwrite=job.overwrite, resume=job.resume) as run:
            writer = run.writer
            done = {e["file"]: e for e in run.journal.entries}     # images finished before an interruption
            for e in done.values():
                rows += e.get("rows", [])
                rejects += [e["reject"]] if "reject" in e else []
            todo = [(k, t) for k, t in tasks if k not in done]
            fn = partial(cutout_task, opts=opts, mode=job.mode, crop=crop)
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
                                 "region_area": c.region_area if job.mode == "cutout" else None,
                                 "fell_back": "; ".join(c.fell_back) or None,
                                 "width": c.width, "height": c.height, "sha256": hashlib.sha256(c.data).hexdigest(),
                                 **({"classes": ann.classes.of_boxes(c.boxes)} if ann.classes else {})})
                rows += made
                run.journal.append({"file": key_, "rows": made})
            rows.sort(key=lambda r: r["path"])
            rejects.sort(key=lambda r: r["file"])
            summary = {"negmine_version": __version__, "seed": seed, "out": str(writer.out), "images": len(keys),
                       "written": len(rows), "skipped": len(rejects),
                       "fell_back": sum(bool(r.get("fell_back")) for r in rows),
                       "fills": {f: sum(r["fill"] == f for r in rows) for f in sorted({r["fill"] for r in rows})},
                       "warnings": (ann.classes.warnings() if ann.classes else []) + ([shortcut] if shortcut else [])}
            write_outputs(writer, rows, rejects, {**summary, "out": None, "command": "cutout", "job": record,
                                                  **({"classes": ann.classes.record()} if ann.classes else {})})
            if job.report:
                from negmine.outputs.report import write_report

                summary["report"] = write_report(writer.staging, display=writer.out)["html"]
            run.journal.close()
            writer.publish()
    finally:
        distributor.close()
    summary["seconds"] = round(time.monotonic() - t0, 2)
    return summary
