"""The command line: parse, call the library, turn library errors into one line and an exit code."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

# negmine's own matrix products are tiny (8x32 DCT factors): BLAS threads would only spin beside the
# worker processes, where the parallelism is. Set before numpy loads; a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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


def _parse_size(text: str | None) -> int | None:
    """'500MB', '2GB', '1.5G', '100000' (bytes) -> bytes (decimal units, as the dry run prints)."""
    import re

    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise click.BadParameter(f"expected a size such as 500MB or 2GB, got {text!r}")
    return int(float(m.group(1)) * 1000 ** " kmgt".index(m.group(2) or " "))


def _quiet_hub() -> None:
    """--quiet: huggingface_hub's retry warnings and bars go too (errors still come through)."""
    os.environ["HF_HUB_VERBOSITY"] = "error"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars, logging

        logging.set_verbosity_error()
        disable_progress_bars()


def _emit(data: dict, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else human)


class _OutLocation(click.ParamType):
    """--out: a local path, or an fsspec URL kept as text (click.Path would fold 's3://b/x' into
    's3:/b/x'). A bad URL is the command's one-line error (exit 1, and JSON with --json), as a bad
    output folder is, not a usage error."""

    name = "PATH|URL"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        from negmine.writers import out_location

        return out_location(value)


OUT = _OutLocation()


def _parse_concepts(ctx, param, values) -> dict[str, str]:
    """--concept NAME=WNID_OR_LEMMA (repeatable) -> {name: wnid or lemma}."""
    out = {}
    for v in values or ():
        name, sep, target = v.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise click.BadParameter(f"{v!r}: expected NAME=WNID_OR_LEMMA (e.g. \"cell phone=n02992529\")")
        out[name.strip()] = target.strip()
    return out


_CONCEPT_HELP = ("Say what a positive or --exclude name means (repeatable): NAME=WNID or NAME=LEMMA "
                 "(e.g. \"cell phone=n02992529\"); for names negmine cannot place or places wrongly.")


def _engine_options(fn):
    """--engine and --ray-address, the same on every command that distributes work."""
    fn = click.option("--ray-address", metavar="ADDR",
                      help="With --engine ray: the cluster to join (default $RAY_ADDRESS; neither: a local Ray "
                           "with --workers CPUs).")(fn)
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="Where the per-image work runs: this machine's processes, or Ray tasks "
                              "(needs negmine[ray]; see README: Past one machine). Same output either way.")(fn)


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
@click.option("--out", "-o", required=True, type=OUT,
              help="Output dataset folder, or an fsspec URL (s3://bucket/prefix, gs://..., az://...).")
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
@click.option("--max-read-ratio", type=click.FloatRange(min=0), metavar="R",
              help="Parquet pools: read about R bytes per byte kept by taking several rows of each page "
                   "read (fewer distinct spots of the pool). 0: off. Default: 5 for Hub repos, off for local files.")
@click.option("--max-download", callback=lambda ctx, p, v: _parse_size(v), metavar="SIZE",
              help="Hub pools: download at most SIZE (e.g. 500MB, 2GB) in the draw; it takes more rows of each "
                   "page or row group it reads to fit, or exits 1 saying what it needs.")
@click.option("--hub-rate", metavar="N[/SECONDS]",
              help="Resolver requests allowed per window (default: the Hub's limit, 5000/300 logged in, "
                   "3000/300 anonymous; also $NEGMINE_HUB_RATE).")
@click.option("--split", default="0.8,0.1,0.1", show_default=True,
              help="train,val[,test] fractions, applied per class.")
@click.option("--negative-class", default="other", show_default=True, help="Name of the negative class.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID",
              help="Also keep this concept out of the negatives (repeatable): a word (the senses a photo of "
                   "it shows), a wnid (exact), or a source label.")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=_parse_concepts,
              help=_CONCEPT_HELP)
@click.option("--auto-exclude/--no-auto-exclude", default=True, show_default=True,
              help="Exclude the concepts named by the positive class folders.")
@click.option("--exclude-unmapped", is_flag=True, help="Exclude source classes WordNet cannot place.")
@click.option("--max-contamination", type=float, default=None, metavar="RATE",
              help="ImageNet-1k pools: also exclude classes whose images show a positive at more than this "
                   "rate (ImageNet-ReaL prior; see README: Keeping the positives out). 1: off. Default 0.05.")
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also score each candidate with zero-shot CLIP against the positives and WordNet neighbour "
                   "labels; drop those that look like a positive (threshold calibrated on the positives). "
                   "Needs negmine[clip]; quality not measured (see README).")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint for --content-check (Hub id or folder; "
                                                       "default openai/clip-vit-base-patch32).")
@click.option("--allow-unlabelled", is_flag=True,
              help="Draw images that carry no label (a flat folder, ClassLabel -1, no metadata record), which "
                   "no class check can vouch for; the run warns with the expected contamination. Per source: "
                   "SPEC?unlabelled=allow.")
@click.option("--verified-absent", is_flag=True,
              help="Multi-label pools with confidences (Open Images): keep only images in which a rater "
                   "confirmed every positive concept absent (confidence 0).")
@click.option("--near", type=float, metavar="F",
              help="Take fraction F of the negatives from the classes nearest the positives in WordNet.")
@click.option("--synthetic", type=float, metavar="F",
              help="Make fraction F of the negatives cutouts of the positives (needs --boxes or --masks).")
@click.option("--boxes", type=click.Path(path_type=Path), help="Object boxes of the positives (COCO/VOC/YOLO/CSV).")
@click.option("--masks", type=click.Path(path_type=Path), help="Object masks of the positives (PNG folder).")
@click.option("--box-format", type=click.Choice(["auto", "coco", "voc", "yolo", "csv"]), default="auto")
@click.option("--cutout-fill", "cutout_fills", multiple=True,
              type=click.Choice(["noise", "blur", "mean", "black", "tile", "inpaint"]),
              help="Fill(s) for --synthetic cutouts (default noise).")
@click.option("--cutout-region", type=click.Choice(["box", "mask"]), default="box")
@click.option("--cutout-margin", default="0", help="Grow the cut region: pixels or percent of the box.")
@click.option("--unannotated", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="yolo-det: positives with no annotation stop the run, or are left out (never backgrounds).")
@click.option("--hash", type=click.Choice(["phash", "dhash", "ahash", "whash", "none"]), default="phash",
              show_default=True, help="Perceptual hash for near-duplicate checks ('none': exact only).")
@click.option("--hash-distance", type=int, default=10, show_default=True,
              help="Drop a negative within this many bits of a positive or of a kept negative.")
@click.option("--dihedral", is_flag=True, help="Also match the 8 rotations/flips of each positive.")
@click.option("--dedup-positives", is_flag=True,
              help="Keep one positive per group of duplicates (by default a group is kept whole, in one split).")
@click.option("--allow-missing-classes", is_flag=True,
              help="Write a class too small to have an image in every split instead of failing.")
@click.option("--format", "format", type=click.Choice(["imagefolder", "hf", "multilabel-csv", "yolo-cls", "yolo-det"]),
              default="imagefolder", show_default=True, help="Output layout (see README: Formats).")
@click.option("--push-to-hub", metavar="REPO", help="Upload the result to this Hub dataset repo (private).")
@click.option("--public", is_flag=True, help="With --push-to-hub: make the repo public.")
@click.option("--link", type=click.Choice(["copy", "hardlink", "symlink"]), default="copy", show_default=True,
              help="How positives get into the output.")
@click.option("--follow-symlinks", is_flag=True,
              help="Follow links that point out of the positives or pool folders (skipped by default).")
@click.option("--quality", type=int, default=95, show_default=True, help="JPEG quality of written negatives.")
@click.option("--max-size", type=int, help="Shrink negatives so the longer side is at most this many pixels.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of every random choice (drawn and printed when absent).")
@click.option("--workers", type=int, help="Processes for decoding/encoding (default: one per core; 1: none).")
@_engine_options
@click.option("--overwrite", is_flag=True, help="Replace an existing negmine output in --out.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options); the result equals "
                                             "an uninterrupted run.")
@click.option("--report", is_flag=True, help="Also write OUT/report/ (contact sheet, HTML gallery).")
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

    kw["exclude"] = list(kw["exclude"])
    if kw["max_contamination"] is None:
        kw.pop("max_contamination")              # the library's default
    kw["cutout_fills"] = tuple(kw["cutout_fills"]) or ("noise",)
    if quiet:
        _quiet_hub()
    if kw["seed"] is None and not kw["resume"]:      # drawn here, so it is on screen before any work
        import secrets

        kw["seed"] = secrets.randbelow(2**31)
        if not quiet:
            click.echo(f"seed: {kw['seed']} (pass --seed {kw['seed']} to repeat this run)", err=True)
    opts = SampleOptions(sources=[SourceSpec.parse(s) for s in sources], progress=not quiet, **kw)
    summary = run_sample(opts)
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


def _report_hint(out: str) -> str:
    if "://" in out:                   # `report` reads a local folder
        return f"\nfor contact sheets and a gallery: copy {out} down, then negmine report <that folder>"
    return f"\nfor contact sheets and a gallery: negmine report {out}"


def _summary_text(s: dict) -> str:
    short = f" (SHORT: {s['negatives_needed']} asked)" if s["short"] else ""
    syn = f", {s['synthetic']} of them cutouts" if s.get("synthetic") else ""
    warn = "".join(f"\nwarning: {w}" for w in s.get("warnings", []))
    warn += "".join(f"\nnote: {u['source']}: {u['rows']} of its {u['of']} images carry no label and were left out "
                    "(--allow-unlabelled draws them)" for u in s.get("unlabelled", []) if not u["drawn"])
    pushed = f"\npushed to {s['pushed']}" if s.get("pushed") else ""
    pushed += (f"\nreport: {s['report']}" if s.get("report")
               else _report_hint(s["out"]))
    return (f"wrote {s['positives']} positives and {s['negatives']} negatives{short}{syn} to {s['out']}\n"
            f"{_table(s['counts'])}\n"
            f"rejected {s['rejected']} images (see rejects.jsonl); seed {s['seed']}{_input_notes(s)}"
            f"{_excluded_text(s.get('excluded_classes'))}"
            f"{_hub_text(s.get('hub'))}{warn}{pushed}")


def _excluded_text(excluded: dict | None) -> str:
    """One line per source: how many of its classes the positives kept out (negmine.json says which)."""
    return "".join(f"\nexcluded {n} of {k} source classes of {sid} (which and why: negmine.json, or negmine report)"
                   for sid, (n, k) in (excluded or {}).items() if k)


def _hub_text(h: dict | None) -> str:
    if not h:
        return ""
    return (f"\nHub: downloaded {_size(h['bytes'])} in {h['requests']} requests ({h['resolver_requests']} resolver, "
            f"{h['cdn_requests']} storage, {h['api_requests']} API); {h['retries']} retries, {h['rate_limited']} "
            f"rate-limited (429)" + (f", {h['paced_seconds']:g} s waiting for the rate limit" if h['paced_seconds'] else ""))


def _input_notes(s: dict) -> str:
    """Lines on what the positives held besides what was written: files left out, duplicates."""
    notes = ""
    if s.get("skipped"):
        notes += f"\nskipped {s['skipped']} files of the positives (hidden or not images; see rejects.jsonl)"
    groups = s.get("duplicate_positives") or []
    if groups:
        shown = "; ".join(" = ".join(g["files"]) for g in groups[:5]) + (" ..." if len(groups) > 5 else "")
        kept = ("one of each kept (--dedup-positives)" if any("kept" in g for g in groups)
                else "each kept in one split; --dedup-positives keeps one of each")
        notes += (f"\n{len(groups)} {'group' if len(groups) == 1 else 'groups'} of duplicate positives ({sum(len(g['files']) for g in groups)} images), "
                  f"{kept}: {shown}")
    return notes


def _classes_text(report: dict) -> str:
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
        if src["unmapped"]:
            lines.append(f"  not in WordNet (kept; --exclude-unmapped drops them): {', '.join(src['unmapped'][:20])}"
                         + (" ..." if len(src["unmapped"]) > 20 else ""))
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


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _plan_text(p: dict) -> str:
    lines = [f"plan (dry run, seed {p['seed']}): {p['negatives_needed']} negatives from a pool of "
             f"{p['pool_available']}", _classes_text(p["classes"]), _table(p["splits"])]
    notes = _input_notes({"skipped": sum(1 for x in p.get("skipped_positives", []) if x.get("skipped")),
                          "duplicate_positives": p.get("duplicate_positives")}).strip("\n")
    if notes:
        lines.append(notes)
    if p.get("contamination"):
        c = p["contamination"]
        lines.append(f"expected negatives showing a positive (ImageNet-ReaL prior): ~{c['taxonomy_only']:g} of "
                     f"{c['negatives']} with the taxonomy's exclusions alone, ~{c['with_prior']:g} after excluding "
                     f"classes above --max-contamination {c['max_contamination']:g}")
    if p.get("near"):
        lines.append(f"near: {p['near']['planned']} planned from the nearest classes "
                     f"(levels {p['near']['levels']})")
    for sid, io in p.get("io", {}).items():
        where = "download" if io["remote"] else "read"
        read = io.get("download_bytes", io["image_bytes_to_read"])
        ratio = read / max(1, io["image_bytes_drawn_estimate"])
        how = (f"several rows per page read, --max-read-ratio {io['max_read_ratio']:g}" if io["max_read_ratio"]
               else "one row per page or row group read; --max-read-ratio R reads less")
        if "download_bytes" in io:              # a Hub repo: the exact bytes and requests of this run's draw
            wait = f"; at least {io['min_seconds']:.0f} s under the rate limit" if io["min_seconds"] else ""
            lines.append(f"{sid}: the draw will download {_size(io['download_bytes'])} of the pool's "
                         f"{_size(io['pool_image_bytes'])} of image data (~{ratio:.1f}x the images kept; {how}) in "
                         f"{io['download_requests']} range requests and {io['resolver_requests']} resolver requests{wait}")
        else:
            lines.append(f"{sid}: will {where} about {_size(io['image_bytes_to_read'])} of "
                         f"{_size(io['pool_image_bytes'])} of image data, ~{ratio:.1f}x the images kept ({how})")
        if io.get("note"):
            lines.append(f"note: {io['note']}")
    lines += [f"note: {n}" for n in p.get("notes", [])]
    lines += [f"warning: {w}" for w in p.get("warnings", [])]
    if p.get("hub_planning"):
        h = p["hub_planning"]
        lines.append(f"planning downloaded {_size(h['bytes'])} in {h['requests']} requests "
                     f"({h['resolver_requests']} resolver; the label index is kept per commit)")
    for src in p["sources"]:
        if src.get("coverage"):              # tar shards: the draw only sees the shards read
            lines.append(f"{src['id']}: {src['coverage']}")
        elif src.get("unusable"):            # zips: members zipfile cannot read, bad labels
            first = src["unusable"]["first"][0]
            lines.append(f"{src['id']}: {src['unusable']['samples']} images unusable, skipped with a reason if "
                         f"drawn (first: {first['member'] or first['file']}: {first['reason']})")
    for sid, v in p.get("verified_absent", {}).items():
        lines.append(f"{sid}: --verified-absent: a rater confirmed absent "
                     f"{', '.join(v['verified']) or 'nothing asked'}"
                     + (f"; cannot verify {', '.join(v['cannot_verify'])} (still kept out by label)"
                        if v["cannot_verify"] else ""))
    for sid, c in p.get("label_coverage", {}).items():
        lines.append(f"{sid}: label lists, stratum = each image's rarest label; the draw reaches "
                     f"{c['strata_drawn']} of {c['strata_eligible']} strata, {c['labels_drawn']} of "
                     f"{c['labels_in_pool']} labels")
    for sid, per_class in p["draw"].items():
        top = sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append(f"{sid}: {sum(per_class.values())} drawn from {len(per_class)} classes; "
                     + ", ".join(f"{k} {v}" for k, v in top[:8]) + (" ..." if len(top) > 8 else ""))
    return "\n".join(lines)


@cli.command()
@click.option("--source", "-s", "sources", multiple=True, metavar="SPEC", help="As for `sample` (default preset).")
@click.option("--positives", "-p", type=click.Path(path_type=Path), help="Take positive concepts from its class folders.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID", help="Positive concept (repeatable).")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=_parse_concepts,
              help=_CONCEPT_HELP)
@click.option("--exclude-unmapped", is_flag=True, help="Count source classes WordNet cannot place as excluded.")
@click.option("--max-contamination", type=float, default=None, metavar="RATE",
              help="As for `sample`: exclude ImageNet-1k classes whose images show a positive at more than "
                   "this rate. 1: off. Default 0.05.")
@click.option("--image-column")
@click.option("--label-column")
@click.option("--allow-unlabelled", is_flag=True,
              help="As for `sample`: report on a pool whose images carry no label instead of refusing it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_handle_errors
def classes(sources, positives, exclude, concepts, exclude_unmapped, max_contamination, image_column, label_column,
            allow_unlabelled, as_json) -> None:
    """Show which source classes overlap the positives, and why (the path through WordNet).

    \b
    negmine classes --source timm/mini-imagenet --exclude dog
    """
    from negmine.overlap import plan_classes
    from negmine.positives import scan_positives
    from dataclasses import replace

    from negmine.sources import SourceSpec, open_sources
    from negmine.unlabelled import check_sources, expected_share, left_out_line, warning

    terms = list(scan_positives(positives).labels.values()) if positives else []
    terms += list(exclude)
    if not terms:
        raise NegmineError("name the positives: --positives DIR and/or --exclude TERM")
    specs = [SourceSpec.parse(s) for s in sources]
    specs = [replace(s, image_column=s.image_column or image_column, label_column=s.label_column or label_column)
             for s in specs]
    extra = {} if max_contamination is None else {"max_contamination": max_contamination}
    opened = open_sources(specs)
    found, _ = check_sources(opened, [allow_unlabelled or s.unlabelled == "allow" for s in specs] or [False],
                             content_check=False)
    plan = plan_classes(opened, terms, exclude_unmapped=exclude_unmapped, named=concepts, **extra)
    report = plan.report()
    if any(found):
        estimate = expected_share(plan.concepts, plan.unmapped_terms)
        report["unlabelled"] = [u.as_dict() for u in found if u is not None]
        report["unlabelled_contamination"] = estimate
        report["warnings"] = [warning(u, estimate) if u.drawn else left_out_line(u) for u in found if u is not None]
    _emit(report, as_json, _classes_text(report))


@cli.command()
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
@_engine_options
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also list the images of FOLDER that look like a positive to zero-shot CLIP (an audit of an "
                   "'other' set), threshold calibrated on --positives. Needs negmine[clip].")
@click.option("--positives", "-p", type=click.Path(path_type=Path),
              help="With --content-check: the positives (class folders name the concepts).")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint (default openai/clip-vit-base-patch32).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@_handle_errors
def dedup(folder, against, report, out, hash, hash_distance, dihedral, workers, engine, ray_address, content_check,
          positives, content_model, quiet, as_json) -> None:
    """Find duplicate images in FOLDER (or of FOLDER in --against). Never changes FOLDER.

    Groups are found by perceptual hash within --hash-distance bits; in each group the largest
    image is kept. Unreadable files are listed, not fatal.
    """
    from negmine.dedup import copy_kept, find_duplicates, write_report
    from negmine.writers import refuse_out_inside

    if out:                                    # before hashing: refuse in a second, not after the work
        refuse_out_inside(out, [("FOLDER", folder), ("--against", against)])
    if content_check and not positives:
        raise NegmineError("--content-check calibrates on the positives: pass --positives DIR")
    result = find_duplicates(folder, against, kind=hash, radius=hash_distance, dihedral=dihedral,
                             workers=workers, engine=engine, ray_address=ray_address, progress=not quiet)
    if content_check:
        from negmine.content import audit_images
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


@cli.command()
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder of images (recursive).")
@click.option("--boxes", type=click.Path(path_type=Path),
              help="Annotations: COCO .json, VOC .xml folder, YOLO .txt folder, or .csv "
                   "(filename,xmin,ymin,xmax,ymax[,class]).")
@click.option("--box-format", type=click.Choice(["auto", "coco", "voc", "yolo", "csv"]), default="auto",
              show_default=True)
@click.option("--masks", type=click.Path(path_type=Path), help="Folder of mask PNGs (same name as the image; non-zero = object).")
@click.option("--out", "-o", required=True, type=OUT, help="Output folder, or an fsspec URL (s3://bucket/prefix, ...).")
@click.option("--classes", help="Comma-separated object classes to remove (default: all).")
@click.option("--region", type=click.Choice(["box", "mask"]), default="box", show_default=True,
              help="Remove the box, or the object's silhouette (--masks, or GrabCut seeded by the box).")
@click.option("--margin", default="0", show_default=True, help="Grow the region: pixels (8) or percent of the box (10%).")
@click.option("--fill", "fills", multiple=True, type=click.Choice(["noise", "blur", "mean", "black", "tile", "inpaint"]),
              help="How to fill the hole (repeatable: one is chosen per image by seed). Default: noise.")
@click.option("--noise", type=click.Choice(["uniform", "gaussian", "matched"]), default="uniform", show_default=True,
              help="Noise kind; 'matched' follows the background's colour mean and spread.")
@click.option("--inpaint-method", type=click.Choice(["telea", "ns"]), default="telea", show_default=True)
@click.option("--max-cover", type=float, default=0.9, show_default=True,
              help="Skip images whose region covers more than this fraction.")
@click.option("--mode", type=click.Choice(["cutout", "crops"]), default="cutout", show_default=True,
              help="'crops': background crops overlapping no object (detector negatives).")
@click.option("--crop-size", type=float, default=0.4, show_default=True, help="Crop side, as a fraction of the shorter image side.")
@click.option("--crops-per-image", type=int, default=2, show_default=True)
@click.option("--crop-iou", type=float, default=0.0, show_default=True, help="Largest IoU a crop may have with an object.")
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True)
@click.option("--quality", type=int, default=95, show_default=True)
@click.option("--seed", type=click.IntRange(min=0))
@click.option("--workers", type=int, help="Processes for the cutouts (default: one per core; 1: none).")
@_engine_options
@click.option("--overwrite", is_flag=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options).")
@click.option("--report", is_flag=True, help="Also write OUT/report/ (contact sheet, HTML gallery).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@_handle_errors
def cutout(images, boxes, box_format, masks, out, classes, region, margin, fills, noise, inpaint_method, max_cover,
           mode, crop_size, crops_per_image, crop_iou, image_format, quality, seed, workers, engine, ray_address,
           overwrite, resume, report, quiet, as_json) -> None:
    """Synthetic negatives: cut the objects out of images and fill the hole (or crop around them).

    \b
    negmine cutout --images ./raccoons/images --boxes ./raccoons/annotations --out ./raccoon-cutouts
    negmine cutout --images ./imgs --boxes ann.json --fill tile --fill inpaint --margin 10% --out ./bg

    Each output gets a manifest row (source image, boxes removed, region, fill, seed) from which it
    can be reproduced exactly; skipped images are listed with the reason in rejects.jsonl.
    """
    from negmine.cutout import CutoutOptions
    from negmine.synthetic import CutoutJob, run_cutout

    opts = CutoutOptions(region=region, margin=margin, fills=tuple(fills) or ("noise",), noise=noise,
                         inpaint=inpaint_method, max_cover=max_cover, image_format=image_format, quality=quality)
    job = CutoutJob(images=images, out=out, boxes=boxes, masks=masks, box_format=box_format,
                    classes=classes.split(",") if classes else None, options=opts, mode=mode, crop_size=crop_size,
                    crops_per_image=crops_per_image, crop_iou=crop_iou, seed=seed, workers=workers,
                    engine=engine, ray_address=ray_address, overwrite=overwrite, resume=resume, report=report,
                    progress=not quiet)
    summary = run_cutout(job)
    if seed is None and not quiet:
        click.echo(f"seed: {summary['seed']}", err=True)
    fills_text = ", ".join(f"{k} {v}" for k, v in summary["fills"].items())
    report_line = (f"\nreport: {summary['report']}" if summary.get("report")
                   else _report_hint(summary["out"]))
    _emit(summary, as_json, f"wrote {summary['written']} images from {summary['images']} ({fills_text}) to "
                            f"{summary['out']}; skipped {summary['skipped']} (see rejects.jsonl){report_line}")


@cli.command()
@click.option("--scores", required=True, type=click.Path(path_type=Path),
              help="A trainer's scores (CSV, JSONL or parquet): an id column and a score column "
                   "(highest positive-class probability or logit), or one column per class.")
@click.option("--pool", required=True, metavar="OUTPUT|SPEC",
              help="What was scored: a negmine output folder, a folder of images, or a source as in `sample`.")
@click.option("--count", required=True, type=int, help="How many hard negatives to keep.")
@click.option("--out", "-o", required=True, type=OUT, help="Output folder, or an fsspec URL (s3://bucket/prefix, ...).")
@click.option("--skip-top", type=float, default=0.125, show_default=True,
              help="Skip this top fraction of the scores (likely mislabelled positives).")
@click.option("--positives", "-p", type=click.Path(path_type=Path),
              help="Keep these out (classes and near-duplicates); default: the positives of an output pool.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=_parse_concepts,
              help=_CONCEPT_HELP)
@click.option("--id-column", help="The id column of --scores (default: the one named id/path/file/...).")
@click.option("--score-column", help="The score column of --scores; A,B: the highest of several (default: the one "
              "named score/prob/logit/..., else the columns named like the positive classes).")
@click.option("--negative-class", default="other", show_default=True)
@click.option("--hash", type=click.Choice(["phash", "dhash", "ahash", "whash", "none"]), default="phash", show_default=True)
@click.option("--hash-distance", type=int, default=10, show_default=True)
@click.option("--quality", type=int, default=95, show_default=True)
@click.option("--max-size", type=int)
@click.option("--workers", type=int, help="Processes for decoding/encoding (default: one per core; 1: none).")
@_engine_options
@click.option("--overwrite", is_flag=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options and scores).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@_handle_errors
def mine(quiet, as_json, exclude, **kw) -> None:
    """Keep the hardest negatives a trainer scored (hard-negative mining, second round).

    \b
    negmine mine --scores preds.csv --pool ./ds --count 2000 --out ./hard

    Candidates are ranked by score, the top --skip-top fraction is skipped, and the rest pass the
    same overlap and duplicate filters as `sample` until --count are kept. Ids: a negmine output's
    manifest `path`, a folder's relative file path, or FILE#ROW for table sources.
    """
    from negmine.mining import MineJob, run_mine

    if quiet:
        _quiet_hub()
    s = run_mine(MineJob(exclude=list(exclude), progress=not quiet, **kw))
    _emit(s, as_json, f"kept {s['kept']} of {s['scored']} scored candidates (scores {s['score_range'][0]:.4g} to "
                      f"{s['score_range'][1]:.4g}), skipped the top {s['skipped_top']}, rejected {s['rejected']}; "
                      f"{s['scores']['how']}; wrote {s['out']}")


@cli.command()
@click.argument("out", type=OUT)
@click.option("--per-class", is_flag=True, help="Also one contact sheet per class.")
@click.option("--count", type=int, default=48, show_default=True, help="Tiles per contact sheet.")
@click.option("--seed", type=click.IntRange(min=0), help="Which images the sheets show (default: the run's seed).")
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also score the negatives with zero-shot CLIP, calibrated on the output's positives, and list "
                   "those that look like a positive (an audit: nothing is removed). Needs negmine[clip].")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint (default openai/clip-vit-base-patch32).")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@_handle_errors
def report(out, per_class, count, seed, content_check, content_model, as_json) -> None:
    """Review a negmine output: counts, ratios, sources, exclusions, drops; a contact sheet of the
    negatives and a static HTML gallery (OUT/report/report.html) to browse them."""
    from negmine.report import text, write_report

    if isinstance(out, str):               # an fsspec URL: the report reads and writes a local folder
        raise NegmineError(f"negmine report reads a local folder, not {out}: copy it down first")
    result = write_report(out, seed=seed, per_class=per_class, count=count, content_check=content_check,
                          content_model=content_model)
    _emit(result, as_json, text(result) + f"\ncontact sheet: {result['contact_sheets']['negatives']}"
                                          f"\ngallery: {result['html']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources(as_json: bool) -> None:
    """List the named pools (presets) usable with --source NAME."""
    from dataclasses import asdict

    from negmine.sources.presets import DEFAULT_PRESET, PRESETS

    if as_json:
        click.echo(json.dumps([{**asdict(p), "default": p.name == DEFAULT_PRESET} for p in PRESETS.values()], indent=2))
        return
    for p in PRESETS.values():
        star = " (default)" if p.name == DEFAULT_PRESET else ""
        click.echo(f"{p.name}{star}\n  repo: {p.repo}  split: {p.split}\n  {p.rows:,} rows, {p.classes} classes, "
                   f"labels: {p.label_kind}, images: {p.image_size}\n  licence: {p.licence}\n  {p.note}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                              "help_option_names": ["-h", "--help"]})
@click.argument("recipe", type=click.Path(path_type=Path))
@click.pass_context
@_handle_errors
def run(ctx, recipe) -> None:
    """Run a recipe: a TOML file of `sample` options. Options given after it override the recipe.

    \b
    negmine run recipes/bears-other.toml --positives ./my-bears --seed 3
    """
    from negmine.recipes import load_recipe

    values = load_recipe(recipe, {p.name: p for p in sample.params})
    with sample.make_context("negmine run", list(ctx.args), parent=ctx, default_map=values) as sub:
        # --ratio / --balanced / --count are one choice: one given here replaces the recipe's
        amount = ("ratio", "balanced", "count")
        given = [n for n in amount if sub.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            for n in amount:
                if n not in given and sub.get_parameter_source(n) == click.core.ParameterSource.DEFAULT_MAP:
                    sub.params[n] = False if n == "balanced" else None
        sample.invoke(sub)


def main() -> None:
    import signal

    def terminate(signum, frame):           # batch schedulers stop jobs with SIGTERM: as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    cli(prog_name="negmine")


if __name__ == "__main__":
    main()
