"""What the commands share: error handling, option types, summary text."""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from negmine.errors import NegmineError


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.pop("debug", False)
        try:
            return fn(*args, **kwargs)
        except NegmineError as exc:
            if debug:
                raise
            if kwargs.get("as_json"):          # a script reading stdout learns why, not just the exit code
                click.echo(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
            err = click.ClickException(str(exc))
            err.exit_code = exc.exit_code
            raise err from None
        except KeyboardInterrupt:
            if fn.__name__ in ("sample", "cutout", "mine", "run"):
                click.echo("negmine: interrupted; what was done is kept (run the same command with --resume "
                           "to continue)", err=True)
            else:                              # nothing resumable: dedup removes a partial --out copy
                click.echo("negmine: interrupted", err=True)
            sys.exit(130)

    return click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")(wrapper)


def parse_size(text: str | None) -> int | None:
    """'500MB', '2GB', '1.5G', '100000' (bytes) -> bytes (decimal units, as the dry run prints)."""
    import re

    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise click.BadParameter(f"expected a size such as 500MB or 2GB, got {text!r}")
    return int(float(m.group(1)) * 1000 ** " kmgt".index(m.group(2) or " "))


def quiet_hub() -> None:
    """--quiet: huggingface_hub's retry warnings and bars go too (errors still come through)."""
    os.environ["HF_HUB_VERBOSITY"] = "error"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars, logging

        logging.set_verbosity_error()
        disable_progress_bars()


def emit(data: dict, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else human)


class OutLocation(click.ParamType):
    """--out: a local path, or an fsspec URL kept as text (click.Path would fold 's3://b/x' into
    's3:/b/x'). A bad URL is the command's one-line error (exit 1, and JSON with --json), as a bad
    output folder is, not a usage error."""

    name = "PATH|URL"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        from negmine.outputs.writers import out_location

        return out_location(value)


OUT = OutLocation()


def parse_concepts(ctx, param, values) -> dict[str, str]:
    """--concept NAME=WNID_OR_LEMMA (repeatable) -> {name: wnid or lemma}."""
    out = {}
    for v in values or ():
        name, sep, target = v.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise click.BadParameter(f"{v!r}: expected NAME=WNID_OR_LEMMA (e.g. \"cell phone=n02992529\")")
        out[name.strip()] = target.strip()
    return out


CONCEPT_HELP = ("Say what a positive or --exclude name means (repeatable): NAME=WNID or NAME=LEMMA "
                 "(e.g. \"cell phone=n02992529\"); for names negmine cannot place or places wrongly.")


def engine_options(fn):
    """--engine and --ray-address, the same on every command that distributes work."""
    fn = click.option("--ray-address", metavar="ADDR",
                      help="With --engine ray: the cluster to join (default $RAY_ADDRESS; neither: a local Ray "
                           "with --workers CPUs).")(fn)
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="Where the per-image work runs: this machine's processes, or Ray tasks "
                              "(needs negmine[ray]; see docs/guide/scale-out.md). Same output either way.")(fn)


def report_hint(out: str) -> str:
    if "://" in out:                   # `report` reads a local folder
        return f"\nfor contact sheets and a gallery: copy {out} down, then negmine report <that folder>"
    return f"\nfor contact sheets and a gallery: negmine report {out}"


def classes_text(report: dict) -> str:
    lines = []
    for c in report["concepts"]:
        senses = "; ".join(c["synsets"]) or "not in WordNet: matches source labels literally"
        lines.append(f"positive {c['term']!r} ({c['how']}): {senses}"
                     + (" (ambiguous: every one of these senses is excluded)" if len(c["synsets"]) > 1 else ""))
        lines += [f"  dropped: {d['synset']}: {d['reason']}" for d in c.get("dropped", [])]
        if c.get("note"):
            lines.append(f"  note: {c['note']}")
    for src in report["sources"]:
        lines.append(f"{src['source']}: {len(src['excluded'])} of {src['classes']} classes excluded "
                     f"({sum(e['rows'] for e in src['excluded'])} rows)")
        lines += [f"  - {e['label']} ({e['rows']} rows): {e['reason']}" for e in src["excluded"]]
        if "images_excluded" in src:          # multi-label: an image carrying any excluded label goes
            lines.append(f"  label lists: {src['images_excluded']} of {src['images']} images carry an excluded "
                         "label and are left out (rows above: images carrying each label)")
        drawn = src.get("unmapped_drawn", [])
        left = [u for u in src["unmapped"] if u not in set(drawn)]
        if drawn:
            lines.append(f"  not in WordNet, drawn unchecked (--allow-unmapped): {', '.join(drawn[:20])}"
                         + (" ..." if len(drawn) > 20 else ""))
        if left:
            how = ("left out; --allow-unmapped draws them" if any(e["label"] in set(left) for e in src["excluded"])
                   else "each image judged by its other labels")
            what = "class ids with no names" if src["label_kind"] == "id" else "not in WordNet"
            lines.append(f"  {what} ({len(left)}, {how}): {', '.join(left[:20])}"
                         + (" ..." if len(left) > 20 else ""))
        if src["ambiguous"]:
            lines.append(f"  ambiguous names (kept): {', '.join(a['label'] for a in src['ambiguous'][:20])}")
        if src["label_kind"] == "none":
            lines.append("  unlabelled: class overlap cannot be checked here; only image checks apply")
        cont = src.get("contamination")
        if cont:
            exp = cont["expected_per_1000"]
            lines.append(f"  positives under other labels ({report['contamination']['prior']}): "
                         f"{cont['excluded']} of {cont['classes_estimated']} classes above "
                         f"--max-contamination {report['contamination']['max_contamination']:g} excluded; "
                         f"per 1000 negatives drawn evenly, ~{exp['taxonomy_only']:g} show a positive with the "
                         f"taxonomy alone, ~{exp['with_prior']:g} with these exclusions")
            if cont["highest_kept"]:
                lines.append("  highest kept: " + ", ".join(
                    f"{h['label']} {h['images']}/{h['of']}" for h in cont["highest_kept"][:5]))
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)
