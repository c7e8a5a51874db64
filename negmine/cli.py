"""The command line: parse, call the library, turn library errors into one line and an exit code."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from negmine import __version__
from negmine.errors import NegmineError


def _handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.pop("debug", False)
        try:
            return fn(*args, **kwargs)
        except NegmineError as exc:
            if debug:
                raise
            err = click.ClickException(str(exc))
            err.exit_code = exc.exit_code
            raise err from None
        except KeyboardInterrupt:
            click.echo("negmine: interrupted; the output folder was left as it was", err=True)
            sys.exit(130)

    return click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")(wrapper)


def _emit(data: dict, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else human)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="negmine")
def cli() -> None:
    """Build the negative ("other") part of image-classification datasets.

    \b
    negmine sample --positives ./bears --ratio 1 --out ./bears-with-other
    """


@cli.command()
@click.option("--positives", "-p", required=True, type=click.Path(path_type=Path),
              help="Folder of class folders (teddy/, grizzly/, ...) or one folder of images.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Output dataset folder.")
@click.option("--source", "-s", "sources", multiple=True, metavar="SPEC",
              help="Pool of negatives, repeatable: a preset (see `negmine sources`), a Hub repo "
                   "(OWNER/NAME[@REV] or hf://datasets/OWNER/NAME[@REV]), a folder of images, parquet "
                   "shards or a save_to_disk folder. Options as a query: SPEC?split=val&weight=2&label=COL"
                   "&image=COL. Default: the imagenet-1k-256 preset.")
@click.option("--image-column", help="Image column of table sources (default: detected).")
@click.option("--label-column", help="Label column of table sources (default: detected; 'none': unlabelled).")
@click.option("--ratio", type=float, help="Negatives = RATIO x all positives (default 1).")
@click.option("--balanced", is_flag=True, help="Negatives = the median positive class size.")
@click.option("--count", type=int, help="Exactly COUNT negatives.")
@click.option("--allow-short", is_flag=True, help="Write what the pool has instead of failing (exit 3).")
@click.option("--stratify/--no-stratify", default=True, show_default=True,
              help="Spread the draw evenly across source classes, or draw uniformly.")
@click.option("--split", default="0.8,0.1,0.1", show_default=True,
              help="train,val[,test] fractions, applied per class.")
@click.option("--negative-class", default="other", show_default=True, help="Name of the negative class.")
@click.option("--link", type=click.Choice(["copy", "hardlink", "symlink"]), default="copy", show_default=True,
              help="How positives get into the output.")
@click.option("--quality", type=int, default=95, show_default=True, help="JPEG quality of written negatives.")
@click.option("--max-size", type=int, help="Shrink negatives so the longer side is at most this many pixels.")
@click.option("--seed", type=int, help="Seed of every random choice (drawn and printed when absent).")
@click.option("--workers", type=int, help="Processes for decoding/encoding (default: one per core; 1: none).")
@click.option("--overwrite", is_flag=True, help="Replace an existing negmine output in --out.")
@click.option("--dry-run", is_flag=True, help="Print the plan (counts per split, class and source class); write nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or messages on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@_handle_errors
def sample(sources, quiet, as_json, **kw) -> None:
    """Draw random negatives from a pool and write a trainer-ready dataset.

    Writes OUT/{train,val,test}/CLASS/*, the negatives in the class 'other', with
    OUT/manifest.jsonl (one row per file: where it came from), OUT/rejects.jsonl (skipped
    images and why) and OUT/negmine.json (version, options, seed, counts).

    Exit codes: 1 bad input, 2 usage, 3 pool too small, 4 source not found,
    5 Hub unreachable, 6 Hub login needed, 130 interrupted.
    """
    from negmine.pipeline import SampleOptions, run_sample
    from negmine.sources import SourceSpec

    opts = SampleOptions(sources=[SourceSpec.parse(s) for s in sources], progress=not quiet, **kw)
    summary = run_sample(opts)
    if kw["seed"] is None and not quiet:
        click.echo(f"seed: {summary['seed']} (pass --seed {summary['seed']} to repeat this run)", err=True)
    if summary.get("dry_run"):
        _emit(summary, as_json, _plan_text(summary))
    else:
        _emit(summary, as_json, _summary_text(summary))


def _table(counts: dict[str, dict[str, int]]) -> str:
    classes = sorted({c for per in counts.values() for c in per})
    splits = list(counts)
    width = max([len(c) for c in classes] + [5])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in splits)]
    for c in classes:
        lines.append(f"{c:<{width}}  " + "  ".join(f"{counts[s].get(c, 0):>7}" for s in splits))
    return "\n".join(lines)


def _summary_text(s: dict) -> str:
    short = f" (SHORT: {s['negatives_needed']} asked)" if s["short"] else ""
    return (f"wrote {s['positives']} positives and {s['negatives']} negatives{short} to {s['out']}\n"
            f"{_table(s['counts'])}\n"
            f"rejected {s['rejected']} images (see rejects.jsonl); seed {s['seed']}")


def _plan_text(p: dict) -> str:
    lines = [f"plan (dry run, seed {p['seed']}): {p['negatives_needed']} negatives from a pool of "
             f"{p['pool_available']}", _table(p["splits"])]
    for sid, per_class in p["draw"].items():
        top = sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append(f"{sid}: {sum(per_class.values())} drawn from {len(per_class)} classes; "
                     + ", ".join(f"{k} {v}" for k, v in top[:8]) + (" ..." if len(top) > 8 else ""))
    return "\n".join(lines)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources(as_json: bool) -> None:
    """List the named pools (presets) usable with --source NAME."""
    from dataclasses import asdict

    from negmine.presets import DEFAULT_PRESET, PRESETS

    if as_json:
        click.echo(json.dumps([{**asdict(p), "default": p.name == DEFAULT_PRESET} for p in PRESETS.values()], indent=2))
        return
    for p in PRESETS.values():
        star = " (default)" if p.name == DEFAULT_PRESET else ""
        click.echo(f"{p.name}{star}\n  repo: {p.repo}  split: {p.split}\n  {p.rows:,} rows, {p.classes} classes, "
                   f"labels: {p.label_kind}, images: {p.image_size}\n  licence: {p.licence}\n  {p.note}")


def main() -> None:
    cli(prog_name="negmine")


if __name__ == "__main__":
    main()
