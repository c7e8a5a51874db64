"""`negmine cutout`: synthetic negatives cut out of annotated positives."""

from __future__ import annotations

from pathlib import Path

import click

from negmine.progress import warnings_said
from negmine.cli.common import OUT, emit, engine_options, handle_errors, parse_concepts, report_hint
from negmine.synthetic.shortcuts import DEFAULT_FILLS


@click.command()
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder of images (recursive).")
@click.option("--boxes", type=click.Path(path_type=Path),
              help="Annotations: COCO .json, VOC .xml folder, YOLO .txt folder, or .csv "
                   "(filename,xmin,ymin,xmax,ymax[,class]).")
@click.option("--box-format", type=click.Choice(["auto", "coco", "voc", "yolo", "csv"]), default="auto",
              show_default=True, help="Format of --boxes ('auto': told by the file or folder).")
@click.option("--masks", type=click.Path(path_type=Path), help="Folder of mask PNGs (same name as the image; non-zero = object).")
@click.option("--out", "-o", required=True, type=OUT, help="Output folder, or an fsspec URL (s3://bucket/prefix, ...).")
@click.option("--classes",
              help="Comma-separated concepts whose objects are removed (default: every object): an annotation "
                   "class is removed when it is one, a kind of one or contains one (WordNet, as `sample` judges "
                   "pool classes: --classes dog removes 'Dog', 'puppy', 'animal' boxes); a class nothing places "
                   "is removed too, and said.")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=parse_concepts,
              help="Say what a --classes name or an annotation class name means (repeatable), e.g. "
                   "\"diningtable=n03201208\".")
@click.option("--region", type=click.Choice(["box", "mask"]), default="box", show_default=True,
              help="Remove the box, or the object's silhouette (--masks, or GrabCut seeded by the box).")
@click.option("--margin", default="0", show_default=True, help="Grow the region: pixels (8) or percent of the box (10%).")
@click.option("--mask-fallback", type=click.Choice(["box", "skip"]), default="box", show_default=True,
              help="With --region mask: a silhouette its box contradicts is replaced by the box, or its image skipped.")
@click.option("--min-mask-cover", type=float, default=0.4, show_default=True,
              help="A silhouette covering less of its box fails the box check.")
@click.option("--max-mask-gap", type=float, default=0.05, show_default=True,
              help="A silhouette stopping short of a box side by more than this share of the box fails the box check.")
@click.option("--fill", "fills", multiple=True, type=click.Choice(["noise", "blur", "mean", "black", "tile", "inpaint"]),
              help=f"How to fill the hole (repeatable: one is chosen per image by seed). Default: "
                   f"{' + '.join(DEFAULT_FILLS)} (chosen by bench/shortcut.py).")
@click.option("--noise", type=click.Choice(["matched", "uniform", "gaussian"]), default="matched", show_default=True,
              help="Noise kind; 'matched' follows the surrounding photo's colour, spectrum and grain.")
@click.option("--inpaint-method", type=click.Choice(["telea", "ns"]), default="telea", show_default=True,
              help="OpenCV inpainting method for --fill inpaint.")
@click.option("--max-cover", type=float, default=0.9, show_default=True,
              help="Skip images whose region covers more than this fraction.")
@click.option("--mode", type=click.Choice(["cutout", "crops"]), default="cutout", show_default=True,
              help="'crops': background crops overlapping no object (detector negatives).")
@click.option("--crop-size", type=float, default=0.4, show_default=True, help="Crop side, as a fraction of the shorter image side.")
@click.option("--crops-per-image", type=int, default=2, show_default=True, help="Crops taken from each image.")
@click.option("--crop-iou", type=float, default=0.0, show_default=True, help="Largest IoU a crop may have with an object.")
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True,
              help="The written format.")
@click.option("--quality", type=int, default=95, show_default=True, help="JPEG quality.")
@click.option("--seed", type=click.IntRange(min=0),
              help="Seed of every random choice (fill, noise, crops; drawn, printed and recorded when absent).")
@click.option("--workers", type=int, help="Processes for the cutouts (default: one per core; 1: none).")
@engine_options
@click.option("--overwrite", is_flag=True, help="Replace a previous negmine output (never a folder negmine did not write).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options).")
@click.option("--report", is_flag=True, help="Also write OUT/report/ (contact sheet, HTML gallery).")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help="A JSON summary on stdout.")
@handle_errors
def cutout(images, boxes, box_format, masks, out, classes, concepts, region, margin, mask_fallback, min_mask_cover,
           max_mask_gap, fills, noise, inpaint_method,
           max_cover, mode, crop_size, crops_per_image, crop_iou, image_format, quality, seed, workers, engine, ray_address,
           overwrite, resume, report, quiet, as_json) -> None:
    """Synthetic negatives: cut the objects out of images and fill the hole (or crop around them).

    \b
    negmine cutout --images ./raccoons/images --boxes ./raccoons/annotations --out ./raccoon-cutouts
    negmine cutout --images ./imgs --boxes ann.json --fill tile --fill inpaint --margin 10% --out ./bg

    Each output gets a manifest row (source image, boxes removed, region, fill, seed) from which it
    can be reproduced exactly; skipped images are listed with the reason in rejects.jsonl.
    """
    from negmine.synthetic.cutout import CutoutOptions
    from negmine.synthetic.command import CutoutJob, run_cutout

    opts = CutoutOptions(region=region, margin=margin, fills=tuple(fills) or DEFAULT_FILLS, noise=noise,
                         inpaint=inpaint_method, max_cover=max_cover, image_format=image_format, quality=quality,
                         mask_fallback=mask_fallback, min_mask_cover=min_mask_cover, max_mask_gap=max_mask_gap)
    job = CutoutJob(images=images, out=out, boxes=boxes, masks=masks, box_format=box_format,
                    classes=classes.split(",") if classes else None, concepts=concepts, options=opts, mode=mode,
                    crop_size=crop_size, crops_per_image=crops_per_image, crop_iou=crop_iou, seed=seed, workers=workers,
                    engine=engine, ray_address=ray_address, overwrite=overwrite, resume=resume, report=report,
                    progress=not quiet)
    with warnings_said() as said:
        summary = run_cutout(job)
    if seed is None and not quiet:
        click.echo(f"seed: {summary['seed']}", err=True)
    fills_text = ", ".join(f"{k} {v}" for k, v in summary["fills"].items())
    report_line = (f"\nreport: {summary['report']}" if summary.get("report")
                   else report_hint(summary["out"]))
    warnings = "".join(f"\nwarning: {w}" for w in summary["warnings"] if w not in said)
    emit(summary, as_json, f"wrote {summary['written']} images from {summary['images']} ({fills_text}) to "
                            f"{summary['out']}; skipped {summary['skipped']} (see rejects.jsonl)"
                            + (f"; {summary['fell_back']} with a silhouette replaced by its box (manifest `fell_back`)"
                               if summary.get("fell_back") else "") +
                            f"{warnings}{report_line}")
