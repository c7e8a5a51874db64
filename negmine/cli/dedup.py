"""`negmine dedup`: near-duplicate groups of a folder, or leaks between two."""

from __future__ import annotations

import json
from pathlib import Path

import click

from negmine.errors import NegmineError
from negmine.cli.common import OUT, engine_options, handle_errors


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--against", type=click.Path(path_type=Path),
              help="Report images of FOLDER that duplicate an image of this folder instead (leakage).")
@click.option("--report", type=click.Path(path_type=Path), help="Write the report here (.json or .csv).")
@click.option("--out", type=OUT,
              help="Write a copy of FOLDER with one image per duplicate group (and no --against matches); "
                   "a folder or an fsspec URL (s3://bucket/prefix).")
@click.option("--hash", type=click.Choice(["phash", "dhash", "ahash", "whash"]), default="phash", show_default=True)
@click.option("--hash-distance", type=int, default=10, show_default=True, help="Radius in bits.")
@click.option("--dihedral", is_flag=True, help="Also match rotated and flipped copies.")
@click.option("--workers", type=int, help="Processes for hashing (default: one per core).")
@engine_options
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also list the images of FOLDER that look like a positive to zero-shot CLIP (an audit of an "
                   "'other' set), threshold calibrated on --positives. Needs negmine[clip].")
@click.option("--positives", "-p", type=click.Path(path_type=Path),
              help="With --content-check: the positives (class folders name the concepts).")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint (default openai/clip-vit-base-patch32).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@handle_errors
def dedup(folder, against, report, out, hash, hash_distance, dihedral, workers, engine, ray_address, content_check,
          positives, content_model, quiet, as_json) -> None:
    """Find duplicate images in FOLDER (or of FOLDER in --against). Never changes FOLDER.

    Groups are found by perceptual hash within --hash-distance bits; in each group the largest
    image is kept. Unreadable files are listed, not fatal.
    """
    from negmine.filters.dedup import find_duplicates
    from negmine.outputs.dedup import copy_kept, write_report
    from negmine.outputs.writers import refuse_out_inside

    if out:                                    # before hashing: refuse in a second, not after the work
        refuse_out_inside(out, [("FOLDER", folder), ("--against", against)])
    if content_check and not positives:
        raise NegmineError("--content-check calibrates on the positives: pass --positives DIR")
    result = find_duplicates(folder, against, kind=hash, radius=hash_distance, dihedral=dihedral,
                             workers=workers, engine=engine, ray_address=ray_address, progress=not quiet)
    if content_check:
        from negmine.filters.content import audit_images
        from negmine.positives import scan_positives

        pos = scan_positives(positives)
        result.content_audit = audit_images([result.root / f for f in result.files], result.files,
                                            [f.path for files in pos.classes.values() for f in files],
                                            list(pos.labels.values()), content_model)
    if report:
        write_report(result, report)
    copied = copy_kept(result, out) if out else None
    s = result.summary()
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "copied": copied}, indent=2))
        return
    lines = [f"{s['images']} images: {s['groups']} duplicate groups ({s['duplicates']} duplicates), "
             f"{s['skipped']} unreadable" + (f", {s['leaks']} also in {against}" if against else "")]
    for g in result.groups[:10]:
        lines.append(f"  keep {g['keep']}: " + ", ".join(f"{d['path']} ({d['distance']})" for d in g["duplicates"]))
    for x in result.leaks[:10]:
        lines.append(f"  {x['path']} duplicates {x['duplicates']} ({x['distance']})")
    if result.content_audit is not None:
        a = result.content_audit
        lines.append(f"content check ({a['model']}, threshold {a['threshold']:.3f} from the positives): "
                     f"{len(a['flagged'])} of {a['scored']} images look like a positive")
        lines += [f"  {x['path']} {x['content_score']:.3f} ({x['content_label']})" for x in a["flagged"][:10]]
    if copied is not None:
        lines.append(f"copied {copied} images to {out}")
    click.echo("\n".join(lines))
