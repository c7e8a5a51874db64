"""`negmine report`: contact sheets and the HTML gallery of an output."""

from __future__ import annotations


import click

from negmine.errors import NegmineError
from negmine.cli.common import OUT, emit, handle_errors


@click.command()
@click.argument("out", type=OUT)
@click.option("--per-class", is_flag=True, help="Also one contact sheet per class.")
@click.option("--count", type=int, default=48, show_default=True, help="Tiles per contact sheet.")
@click.option("--seed", type=click.IntRange(min=0), help="Which images the sheets show (default: the run's seed).")
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also score the negatives with zero-shot CLIP, calibrated on the output's positives, and list "
                   "those that look like a positive (an audit: nothing is removed). Needs negmine[clip].")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint (default openai/clip-vit-base-patch32).")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@handle_errors
def report(out, per_class, count, seed, content_check, content_model, as_json) -> None:
    """Review a negmine output: counts, ratios, sources, exclusions, drops; a contact sheet of the
    negatives and a static HTML gallery (OUT/report/report.html) to browse them."""
    from negmine.outputs.report import text, write_report

    if isinstance(out, str):               # an fsspec URL: the report reads and writes a local folder
        raise NegmineError(f"negmine report reads a local folder, not {out}: copy it down first")
    members = sorted(p.parent.name for p in out.glob("*/manifest.jsonl"))
    if members and not (out / "manifest.jsonl").is_file():    # a sweep folder: say which members to report
        raise NegmineError(f"{out} is not a negmine output (no manifest.jsonl) but holds the outputs "
                           f"{', '.join(members)} (a sweep?); report one: negmine report {out / members[0]}")
    result = write_report(out, seed=seed, per_class=per_class, count=count, content_check=content_check,
                          content_model=content_model)
    emit(result, as_json, text(result) + f"\ncontact sheet: {result['contact_sheets']['negatives']}"
                                          f"\ngallery: {result['html']}")
