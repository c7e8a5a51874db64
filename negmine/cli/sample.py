"""`negmine sample`: positives in, a dataset with a negative class out."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path

import click

from negmine.cli.common import (CONCEPT_HELP, OUT, classes_text, emit, engine_options, handle_errors,
                                parse_concepts, parse_size, quiet_hub, report_hint)
from negmine.progress import warnings_said
from negmine.synthetic.shortcuts import DEFAULT_FILLS, DEFAULT_SHARE


@click.command()
@click.option("--positives", "-p", required=True, type=click.Path(path_type=Path),
              help="Folder of class folders (teddy/, grizzly/, ...) or one folder of images.")
@click.option("--out", "-o", required=True, type=OUT,
              help="Output dataset folder, or an fsspec URL (s3://bucket/prefix, gs://..., az://...).")
@click.option("--source", "-s", "sources", multiple=True, metavar="SPEC",
              help="Pool of negatives, repeatable: a preset (see `negmine sources`), a Hub repo "
                   "(OWNER/NAME[@REV] or hf://datasets/OWNER/NAME[@REV]), a folder of images, parquet "
                   "shards or a save_to_disk folder. Options as a query: SPEC?split=val&weight=2&label=COL"
                   "&image=COL (licence=ID declares the licence of a pool that states none). Default: the "
                   "imagenet-1k-256 preset.")
@click.option("--image-column", help="Image column of table sources (default: detected).")
@click.option("--label-column", help="Label column of table sources (default: detected; 'none': unlabelled).")
@click.option("--text-column", metavar="COL[,COL...]",
              help="Parquet pools without labels: keep out images whose text (caption, title, tags) names a "
                   "positive, and stratify over its nouns (default: detected by name). Per source: SPEC?text=COL.")
@click.option("--ratio", callback=lambda ctx, p, v: sweep_values(v, "ratio"), metavar="R[,R...]",
              help="Negatives = R x all positives (default 1). A list (0.5,1,2,4) writes a sweep: one dataset per "
                   "value in OUT/ratio-R/, one val/test for all (see docs/guide/sweeps.md).")
@click.option("--balanced", is_flag=True, help="Negatives = the median positive class size.")
@click.option("--count", callback=lambda ctx, p, v: sweep_values(v, "count"), metavar="N[,N...]",
              help="Exactly N negatives. A list (100,200) writes a sweep, as --ratio does.")
@click.option("--allow-short", is_flag=True, help="Write what the pool has instead of failing (exit 3).")
@click.option("--stratify/--no-stratify", default=True, show_default=True,
              help="Spread the draw evenly across source classes, or draw uniformly.")
@click.option("--max-read-ratio", type=click.FloatRange(min=0), metavar="R",
              help="Parquet pools: read about R bytes per byte kept by taking several rows of each page "
                   "read (fewer distinct spots of the pool). 0: off. Default: 5 for Hub repos, off for local files.")
@click.option("--max-download", callback=lambda ctx, p, v: parse_size(v), metavar="SIZE",
              help="Hub pools: download at most SIZE (e.g. 500MB, 2GB) in the draw; it takes more rows of each "
                   "page or row group it reads to fit, or exits 1 saying what it needs.")
@click.option("--hub-rate", metavar="N[/SECONDS]",
              help="Resolver requests allowed per window (default: the Hub's limit, 5000/300 logged in, "
                   "3000/300 anonymous; also $NEGMINE_HUB_RATE).")
@click.option("--split", default="0.8,0.1,0.1", show_default=True,
              help="train,val[,test] fractions, applied per class.")
@click.option("--eval-from", type=click.Path(path_type=Path), metavar="OUT",
              help="Take val and test (positives and negatives, the same files) from the earlier output OUT and "
                   "write only train: positives not in them, negatives drawn anew (see docs/guide/sweeps.md).")
@click.option("--negative-class", default="other", show_default=True, help="Name of the negative class.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID",
              help="Also keep this concept out of the negatives (repeatable): a word (the senses a photo of "
                   "it shows), a wnid (exact), or a source label.")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=parse_concepts,
              help=CONCEPT_HELP)
@click.option("--auto-exclude/--no-auto-exclude", default=True, show_default=True,
              help="Exclude the concepts named by the positive class folders.")
@click.option("--allow-unmapped/--exclude-unmapped", default=False,
              help="Draw source classes WordNet cannot place (no check keeps the positives out of them; "
                   "said as a warning), or leave them out (default).")
@click.option("--max-contamination", type=float, default=None, metavar="RATE",
              help="ImageNet-1k pools: also exclude classes whose images show a positive at more than this "
                   "rate (ImageNet-ReaL prior; see docs/guide/keeping-positives-out.md). 1: off. Default 0.05.")
@click.option("--content-check", type=click.Choice(["clip"]),
              help="Also score each candidate with zero-shot CLIP against the positives and WordNet neighbour "
                   "labels; drop those that look like a positive (threshold calibrated on the positives). "
                   "Needs negmine[clip]; quality not measured (see docs/guide/keeping-positives-out.md).")
@click.option("--content-model", metavar="ID|DIR", help="CLIP checkpoint for --content-check (Hub id or folder; "
                                                       "default openai/clip-vit-base-patch32).")
@click.option("--allow-unlabelled", is_flag=True,
              help="Draw images that carry no label (a flat folder, ClassLabel -1, no metadata record), which "
                   "no class check can vouch for; the run warns with the expected contamination. Per source: "
                   "SPEC?unlabelled=allow.")
@click.option("--verified-absent", is_flag=True,
              help="Multi-label pools with confidences (Open Images): keep only images in which a rater "
                   "confirmed every positive concept absent (confidence 0).")
@click.option("--licence", metavar="commercial|IDS",
              help="Keep only images whose licence allows commercial use and adaptation (`commercial`) or "
                   "is one of the listed ids (CC0-1.0,CC-BY-4.0,CC-BY for any version): per row where the pool "
                   "has licence columns (the rest left out before the draw), else per pool (one not allowed stops "
                   "the run).")
@click.option("--near", type=float, metavar="F",
              help="Take fraction F of the negatives from the classes nearest the positives in WordNet.")
@click.option("--synthetic", type=float, metavar="F", is_flag=False, flag_value=DEFAULT_SHARE,
              help=f"Make fraction F of the negatives cutouts of the positives (needs --boxes or --masks); "
                   f"without F: {DEFAULT_SHARE:g}, the share bench/shortcut.py found safe.")
@click.option("--boxes", type=click.Path(path_type=Path), help="Object boxes of the positives (COCO/VOC/YOLO/CSV).")
@click.option("--masks", type=click.Path(path_type=Path), help="Object masks of the positives (PNG folder).")
@click.option("--box-format", type=click.Choice(["auto", "coco", "voc", "yolo", "csv"]), default="auto")
@click.option("--cutout-fill", "cutout_fills", multiple=True,
              type=click.Choice(["noise", "blur", "mean", "black", "tile", "inpaint"]),
              help=f"Fill(s) for --synthetic cutouts (default {' + '.join(DEFAULT_FILLS)}: chosen by bench/shortcut.py).")
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
              default="imagefolder", show_default=True, help="Output layout (see docs/guide/formats.md).")
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
@engine_options
@click.option("--overwrite", is_flag=True, help="Replace an existing negmine output in --out.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options); the result equals "
                                             "an uninterrupted run.")
@click.option("--report", is_flag=True, help="Also write OUT/report/ (contact sheet, HTML gallery).")
@click.option("--dry-run", is_flag=True, help="Print the plan (counts per split, class and source class); write nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or messages on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@handle_errors
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
    kw["cutout_fills"] = tuple(kw["cutout_fills"]) or DEFAULT_FILLS
    if quiet:
        quiet_hub()
    if kw["seed"] is None and not kw["resume"]:      # drawn here, so it is on screen before any work
        import secrets

        kw["seed"] = secrets.randbelow(2**31)
        if not quiet:
            click.echo(f"seed: {kw['seed']} (pass --seed {kw['seed']} to repeat this run)", err=True)
    opts = SampleOptions(sources=[SourceSpec.parse(s) for s in sources], progress=not quiet, **kw)
    with warnings_said() as said:
        summary = run_sample(opts)
    if summary.get("dry_run"):
        emit(summary, as_json, plan_text(summary, said) + sweep_plan_text(summary.get("sweep")))
    elif "members" in summary:
        emit(summary, as_json, sweep_text(summary, said))
    else:
        emit(summary, as_json, summary_text(summary, said))


def sweep_values(text: str | None, option: str):
    """--ratio/--count: one value, or a comma-separated list (a sweep); a bad one is a one-line error."""
    from negmine.errors import NegmineError
    from negmine.pipeline.sweep import parse_values

    if text is None:
        return None
    try:
        values = parse_values(text, option)
    except NegmineError as exc:
        raise click.BadParameter(str(exc)) from None
    return values if "," in text else values[0]


def sweep_plan_text(sweep: dict | None) -> str:
    """The dry run's lines per sweep member."""
    if not sweep:
        return ""
    shared = ", ".join(f"{sweep['members'][0][s]} {s}" for s in sweep["shared_splits"])
    return "\nsweep (the draw above, for the largest member; val/test shared: " + (shared or "none") + "):\n" + \
        "\n".join(f"  {m['name']}: {m['negatives_needed']} negatives asked, {m['train']} of them in train"
                  for m in sweep["members"])


def sweep_text(s: dict, said: Container[str] = ()) -> str:
    """A sweep's summary: the largest member's in full, then one line per member."""
    rec = s["sweep"]
    how = "hardlinked" if rec["shared"]["link"] == "hardlink" else "copied"
    lines = [summary_text(s["members"][-1], said), f"sweep in {s['out']} ({rec['option']}, seed {rec['seed']}): "
             f"val/test shared by every member ({rec['shared']['negatives']} negatives, {how})"]
    lines += [f"  {m}: {rec['train_negatives'][m]} train negatives" for m in rec["members"]]
    return "\n".join(lines)


def count_table(counts: dict[str, dict[str, int]]) -> str:
    classes = sorted({c for per in counts.values() for c in per})
    splits = list(counts)
    width = max([len(c) for c in classes] + [5])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in splits)]
    for c in classes:
        lines.append(f"{c:<{width}}  " + "  ".join(f"{counts[s].get(c, 0):>7}" for s in splits))
    return "\n".join(lines)


def summary_text(s: dict, said: Container[str] = ()) -> str:
    """The run's summary for a person; `said`: warnings already printed on stderr, not repeated."""
    short = f" (SHORT: {s['negatives_needed']} asked)" if s["short"] else ""
    syn = f", {s['synthetic']} of them cutouts" if s.get("synthetic") else ""
    warn = "".join(f"\nwarning: {w}" for w in s.get("warnings", []) if w not in said)
    warn += "".join(f"\nnote: {u['source']}: {u['rows']} of its {u['of']} images carry no label and were left out "
                    "(--allow-unlabelled draws them)" for u in s.get("unlabelled", []) if not u["drawn"])
    if s.get("pool"):
        warn += f"\nnote: {s['pool']['reason']} (not opened: {', '.join(s['pool']['not_opened'])})"
    if s.get("eval_from"):
        e = s["eval_from"]
        warn += (f"\n{'/'.join(e['splits'])}: {e['positives']} positives and {e['negatives']} negatives taken "
                 f"from --eval-from {e['out']} ({'hardlinked' if e['link'] == 'hardlink' else 'copied'}; "
                 f"{s['positives'] + e['positives']} positives and {s['negatives'] + e['negatives']} negatives "
                 "in all); what is in them stays out of train (rejects.jsonl: 'in the val/test of --eval-from')")
    pushed = f"\npushed to {s['pushed']}" if s.get("pushed") else ""
    pushed += (f"\nreport: {s['report']}" if s.get("report")
               else report_hint(s["out"]))
    new, train = ("new ", " (train)") if s.get("eval_from") else ("", "")   # val/test: OUT's, said below
    return (f"wrote {s['positives']} {new}positives and {s['negatives']} {new}negatives{train}{short}{syn} "
            f"to {s['out']}\n"
            f"{count_table(s['counts'])}\n"
            f"rejected {s['rejected']} images (see rejects.jsonl); seed {s['seed']}{input_notes(s)}"
            f"{licences_text(s.get('licences'))}"
            f"{''.join(chr(10) + row_licence_line(k, v) for k, v in s.get('row_licences', {}).items())}"
            f"{_excluded_text(s.get('excluded_classes'))}"
            f"{hub_text(s.get('hub'))}{warn}{pushed}")


def licence_line(src: dict) -> str:
    """One line per source: its licence as read, and whether it allows commercial use."""
    use = {True: "allows commercial use", False: "does not allow commercial use",
           None: "does not say whether commercial use is allowed"}[src.get("commercial")]
    stated = f" ({src['licence']})" if src.get("licence") and src["licence"] != src.get("licence_id") else ""
    if src.get("licence_declared_by"):
        stated += f", declared by {src['licence_declared_by']}"
    return f"licence of {src['id']}: {src.get('licence_id', 'unknown')}{stated}: {use}"


def row_licence_line(sid: str, r: dict) -> str:
    """A pool with per-row licences: rows per licence, and what --licence leaves out and why."""
    rows = ", ".join(f"{k} {v}" for k, v in r["rows"].items())
    out = (f"{sid}: per-row licences ({', '.join(r['columns'])}; {r['rows_without_licence']} rows say none and "
           f"take the card's, {r['card']}): {rows}")
    if r.get("left_out"):
        out += "; --licence leaves out " + "; ".join(f"{v['rows']} {k} ({v['reason']})" for k, v in r["left_out"].items())
    return out


def licences_text(counts: dict | None) -> str:
    """The negatives drawn from pools per licence (ATTRIBUTION.md credits them)."""
    if not counts:
        return ""
    return "\nlicences of the drawn negatives: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + \
        " (credits in ATTRIBUTION.md)"


def hub_text(h: dict | None) -> str:
    if not h:
        return ""
    return (f"\nHub: downloaded {size_text(h['bytes'])} in {h['requests']} requests ({h['resolver_requests']} resolver, "
            f"{h['cdn_requests']} storage, {h['api_requests']} API); {h['retries']} retries, {h['rate_limited']} "
            f"rate-limited (429)" + (f", {h['paced_seconds']:g} s waiting for the rate limit" if h['paced_seconds'] else ""))


def input_notes(s: dict) -> str:
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


def size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def plan_text(p: dict, said: Container[str] = ()) -> str:
    """The dry run's plan for a person; `said`: warnings already printed on stderr, not repeated
    (a concept's note stays under the concept: it is the plan's account of that name)."""
    whence = "all cutouts, no pool" if p.get("pool") else f"from a pool of {p['pool_available']}"
    lines = [x for x in (f"plan (dry run, seed {p['seed']}): {p['negatives_needed']} negatives {whence}",
                         classes_text(p["classes"]), count_table(p["splits"])) if x]   # no pool: no classes
    notes = input_notes({"skipped": sum(1 for x in p.get("skipped_positives", []) if x.get("skipped")),
                          "duplicate_positives": p.get("duplicate_positives")}).strip("\n")
    if notes:
        lines.append(notes)
    if p.get("contamination"):
        c = p["contamination"]
        lines.append(f"expected negatives showing a positive (ImageNet-ReaL prior): ~{c['taxonomy_only']:g} of "
                     f"{c['negatives']} with the taxonomy's exclusions alone, ~{c['with_prior']:g} after excluding "
                     f"classes above --max-contamination {c['max_contamination']:g}")
    for src in p.get("sources", []):
        lines.append(licence_line(src))
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
            lines.append(f"{sid}: the draw will download {size_text(io['download_bytes'])} of the pool's "
                         f"{size_text(io['pool_image_bytes'])} of image data (~{ratio:.1f}x the images kept; {how}) in "
                         f"{io['download_requests']} range requests and {io['resolver_requests']} resolver requests{wait}")
        else:
            lines.append(f"{sid}: will {where} about {size_text(io['image_bytes_to_read'])} of "
                         f"{size_text(io['pool_image_bytes'])} of image data, ~{ratio:.1f}x the images kept ({how})")
        if io.get("note"):
            lines.append(f"note: {io['note']}")
    lines += [f"note: {n}" for n in p.get("notes", [])]
    lines += [f"warning: {w}" for w in p.get("warnings", []) if w not in said]
    if p.get("hub_planning"):
        h = p["hub_planning"]
        lines.append(f"planning downloaded {size_text(h['bytes'])} in {h['requests']} requests "
                     f"({h['resolver_requests']} resolver; the label index is kept per commit)")
    for src in p["sources"]:
        if src.get("coverage"):              # tar shards: the draw only sees the shards read
            lines.append(f"{src['id']}: {src['coverage']}")
        elif src.get("unusable"):            # zips: members zipfile cannot read, bad labels
            first = src["unusable"]["first"][0]
            lines.append(f"{src['id']}: {src['unusable']['samples']} images unusable, skipped with a reason if "
                         f"drawn (first: {first['member'] or first['file']}: {first['reason']})")
    for sid, t in p.get("text", {}).items():
        read = "" if t.get("text_bytes_read") is None else f" ({size_text(t['text_bytes_read'])} of text, no image bytes)"
        lines.append(f"{sid}: labelled by its text: column(s) {', '.join(t['columns'])}{read} name {t['nouns']} "
                     f"WordNet nouns; {t['excluded_by_text']} images name a positive and are left out, "
                     f"{t['no_text_left_out']} name no noun and are left out (rejects.jsonl says which, and why)")
    for sid, r in p.get("row_licences", {}).items():
        lines.append(row_licence_line(sid, r))
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


def _excluded_text(excluded: dict | None) -> str:
    """One line per source: how many of its classes the positives kept out (negmine.json says which)."""
    return "".join(f"\nexcluded {n} of {k} source classes of {sid} (which and why: negmine.json, or negmine report)"
                   for sid, (n, k) in (excluded or {}).items() if k)
