"""`negmine report OUT`: what is in a negmine output, as numbers, contact sheets and a static
HTML gallery (no server, no external assets; the pictures are `negmine.outputs.gallery`). Reads the
manifest, rejects and run record only; works for `sample`, `cutout` and `mine` outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


from negmine.errors import NegmineError
from negmine.outputs.gallery import REPORT_DIR, contact_sheet, gallery, pretty
from negmine.outputs.manifest import read_jsonl
from negmine.outputs.writers import RUN_RECORD

DROP_THUMBNAILS = 48


def _read(out: Path) -> tuple[list[dict], list[dict], dict]:
    out = Path(out)
    if not (out / "manifest.jsonl").is_file():
        raise NegmineError(f"{out} is not a negmine output (no manifest.jsonl)")
    rows = read_jsonl(out / "manifest.jsonl")
    rejects = read_jsonl(out / "rejects.jsonl") if (out / "rejects.jsonl").is_file() else []
    record = json.loads((out / RUN_RECORD).read_text()) if (out / RUN_RECORD).is_file() else {}
    for r in rows:                       # cutout and mine outputs: one class of negatives, no splits
        r.setdefault("split", "-")
        r.setdefault("role", "negative")
        r.setdefault("class", "other")
    return rows, rejects, record


def _kind(r: dict) -> str:
    if r.get("cutout") or r.get("fill"):
        return "synthetic"
    if r.get("score") is not None:
        return "mined"
    if r.get("near") is True:
        return "near"
    return "far"


def summarize(out: Path, display: Path | None = None) -> dict:
    rows, rejects, record = _read(out)
    splits = list(dict.fromkeys(r["split"] for r in rows))
    counts = {s: dict(sorted(Counter(r["class"] for r in rows if r["split"] == s).items())) for s in splits}
    ratio = {}
    for s in splits:
        pos = sum(r["role"] == "positive" for r in rows if r["split"] == s)
        neg = sum(r["role"] == "negative" for r in rows if r["split"] == s)
        ratio[s] = round(neg / pos, 3) if pos else None
    neg = [r for r in rows if r["role"] == "negative"]
    by_source = Counter(r.get("source") or "?" for r in neg)
    by_class = Counter((r.get("source") or "?", _shown(r)) for r in neg)
    ordered = sorted(by_class.items(), key=lambda kv: (-kv[1], kv[0]))
    reasons = Counter(_reason_kind(x.get("reason", "")) for x in rejects)
    classes = record.get("classes") or {}
    excluded = [{"source": s["source"], **e} for s in classes.get("sources", []) for e in s.get("excluded", [])]
    return {
        "out": str(Path(display or out).resolve()), "command": record.get("command", "sample"),
        "seed": record.get("seed"),
        "counts": counts, "negatives_per_positive": ratio,
        "negatives": len(neg), "positives": sum(r["role"] == "positive" for r in rows),
        "negatives_by_source": dict(by_source.most_common()),
        "source_classes": len(by_class),
        "top_source_classes": [{"source": s, "label": lab, "count": n} for (s, lab), n in ordered[:10]],
        "bottom_source_classes": [{"source": s, "label": lab, "count": n} for (s, lab), n in ordered[-10:]][::-1],
        "shares": {k: round(v / len(neg), 4) for k, v in Counter(_kind(r) for r in neg).items()} if neg else {},
        "excluded_classes": excluded,
        "possible_positives": _possible_positives(record, neg, rejects),
        "drops": dict(reasons.most_common()),
        "sources": [{k: s.get(k) for k in ("id", "revision", "split", "licence", "rows", "classes")}
                    for s in record.get("sources", [])],
        "licences": sorted({r.get("licence") for r in neg if r.get("licence")}),
        # positives that are copies of one another: each group went to one split (or one was kept)
        "duplicate_positives": record.get("duplicate_positives") or [],
        "skipped_inputs": len([x for x in rejects if x.get("skipped")]),
        # the run's warnings (unlabelled images drawn with their expected contamination, ...) and
        # the unlabelled images of each source, drawn or left out (negmine.filters.unlabelled)
        "warnings": record.get("warnings") or [],
        "unlabelled": record.get("unlabelled") or [],
        "unlabelled_contamination": record.get("unlabelled_contamination"),
    }


def _possible_positives(record: dict, neg: list[dict], rejects: list[dict]) -> dict:
    """What may show a positive although its label does not: the source classes excluded for their
    ImageNet-ReaL contamination rate, the kept classes with the highest rates and how many of this
    output's negatives come from them, and the run's expected count (see negmine.filters.contamination);
    with --content-check, the candidates it flagged (dropped) and the highest-scoring kept ones."""
    classes = record.get("classes") or {}
    excluded, kept = [], []
    drawn = Counter((r.get("source"), r.get("label")) for r in neg)
    for s in classes.get("sources", []):
        for e in s.get("excluded", []):
            if "contamination" in e:
                excluded.append({"source": s["source"], "label": e["label"], "rows": e.get("rows"),
                                 **e["contamination"]})
        for h in (s.get("contamination") or {}).get("highest_kept", []):
            kept.append({"source": s["source"], **h, "negatives": drawn.get((s["source"], h["label"]), 0)})
    kept.sort(key=lambda h: (-h["rate"], -h["negatives"], h["label"]))
    flagged = sorted((x for x in rejects if x.get("content_score") is not None
                      and x.get("reason", "").startswith("looks like a positive")),
                     key=lambda x: -x["content_score"])
    scored = sorted((r for r in neg if r.get("content_score") is not None), key=lambda r: -r["content_score"])
    keys = ("source", "file", "row", "label", "content_score", "content_label")
    return {"excluded": sorted(excluded, key=lambda e: (-e["rate"], e["label"])), "highest_kept": kept,
            "flagged": [{k: x.get(k) for k in keys + ("thumbnail",)} for x in flagged],
            "highest_scoring_kept": [{k: r.get(k) for k in keys + ("path",)} for r in scored[:24]],
            "content_check": record.get("content_check"),
            "expected": record.get("contamination"),
            "max_contamination": (classes.get("contamination") or {}).get("max_contamination")}


def _reason_kind(reason: str) -> str:
    for key in ("near-duplicate of a positive", "near-duplicate of an earlier negative", "exact copy of a positive",
                "exact duplicate", "decompression bomb", "unreadable", "not an image", "covers", "no annotation",
                "likely mislabelled", "not in the pool", "overlaps the positives", "looks like a positive"):
        if key in reason:
            return key
    return reason.split(":")[0][:60] or "other"


def text(s: dict) -> str:
    lines = [f"{s['out']} ({s['command']}, seed {s['seed']}): {s['positives']} positives, {s['negatives']} negatives"]
    lines += [f"warning: {w}" for w in s.get("warnings", [])]
    lines += [f"unlabelled: {u['source']}: {u['rows']} of {u['of']} images carry no label, left out of the draw"
              for u in s.get("unlabelled", []) if not u.get("drawn")]
    classes = sorted({c for per in s["counts"].values() for c in per})
    w = max([len(c) for c in classes] + [5])
    lines.append(f"{'class':<{w}}  " + "  ".join(f"{sp:>7}" for sp in s["counts"]))
    for c in classes:
        lines.append(f"{c:<{w}}  " + "  ".join(f"{s['counts'][sp].get(c, 0):>7}" for sp in s["counts"]))
    lines.append("negatives per positive: " + ", ".join(f"{k} {v}" for k, v in s["negatives_per_positive"].items()))
    lines.append("negatives by source: " + ", ".join(f"{k} {v}" for k, v in s["negatives_by_source"].items()))
    lines.append(f"{s['source_classes']} source classes; most: " +
                 ", ".join(f"{x['label']} {x['count']}" for x in s["top_source_classes"][:5]) + "; fewest: " +
                 ", ".join(f"{x['label']} {x['count']}" for x in s["bottom_source_classes"][:5]))
    if s["shares"]:
        lines.append("shares: " + ", ".join(f"{k} {v:.1%}" for k, v in sorted(s["shares"].items())))
    if s["excluded_classes"]:
        lines.append(f"excluded source classes: {len(s['excluded_classes'])}, e.g. " + "; ".join(
            f"{e['label']} ({e['reason']})" for e in s["excluded_classes"][:3]))
    pp = s.get("possible_positives") or {}
    if pp.get("excluded") or pp.get("highest_kept"):
        lines.append(f"possible positives: {len(pp['excluded'])} classes excluded for showing positives ("
                     + ", ".join(f"{pretty(e['label'], short=True)} {e['rate']:.0%}" for e in pp["excluded"][:5])
                     + "); kept negatives from the highest-rate classes: "
                     + (", ".join(f"{pretty(h['label'], short=True)} {h['rate']:.0%} x{h['negatives']}"
                                  for h in pp["highest_kept"] if h["negatives"])[:300] or "none"))
    if pp.get("expected"):
        lines.append(f"expected negatives showing a positive: ~{pp['expected']['with_prior']:g} of "
                     f"{pp['expected']['negatives']} (~{pp['expected']['taxonomy_only']:g} without the "
                     "contamination exclusions)")
    if pp.get("content_check"):
        lines.append(f"content check ({pp['content_check']['model']}): {len(pp['flagged'])} candidates flagged "
                     f"and replaced (threshold {pp['content_check']['threshold']:.3f})")
    if pp.get("audit"):
        a = pp["audit"]
        lines.append(f"content audit ({a['model']}, threshold {a['threshold']:.3f}): {len(a['flagged'])} of "
                     f"{a['scored']} negatives look like a positive" + "".join(
                         f"\n  {x['path']} {x['content_score']:.3f} ({x['content_label']})" for x in a["flagged"][:10]))
    if s["drops"]:
        lines.append("dropped: " + ", ".join(f"{k} {v}" for k, v in s["drops"].items()))
    if s.get("duplicate_positives"):
        groups = s["duplicate_positives"]
        lines.append(f"duplicate positives: {len(groups)} groups, each in one split: " + "; ".join(
            " = ".join(g["files"]) + (f" ({g['split']})" if g.get("split") else "") for g in groups[:5])
            + (" ..." if len(groups) > 5 else ""))
    if s.get("skipped_inputs"):
        lines.append(f"skipped input files: {s['skipped_inputs']} (hidden or not images; see rejects.jsonl)")
    for src in s["sources"]:
        lines.append(f"source {src['id']} @ {src.get('revision') or 'local'}: licence {src.get('licence') or 'unknown'}")
    return "\n".join(lines)


def content_audit(out: Path, rows: list[dict], model: str | None = None, top: int = 24) -> dict:
    """Score an output's negatives with zero-shot CLIP (negmine.filters.content.audit_images), threshold
    calibrated on its positives: the ones at or above it are listed as possible positives (nothing
    is removed). Raises NegmineError when the output has no positives or the model cannot load."""
    from negmine.filters.content import audit_images

    pos = [r for r in rows if r["role"] == "positive"]
    if not pos:
        raise NegmineError("--content-check calibrates on the output's positives, and this output has none")
    terms = sorted({str(r.get("label") or r["class"]) for r in pos})
    neg = [r for r in rows if r["role"] == "negative"]
    audit = audit_images([Path(out) / r["path"] for r in neg], [r["path"] for r in neg],
                         [Path(out) / r["path"] for r in pos], terms, model, top)
    label = {r["path"]: r.get("label") for r in neg}
    for x in audit["flagged"] + audit["highest_scoring"]:
        x["label"] = label.get(x["path"])
    return audit


def _shown(r: dict) -> str:
    """What a negative shows, by its manifest row: its source label, or for a cutout of a positive
    (`sample --synthetic`, no `label`) the background of that positive class's photo."""
    of = (r.get("cutout") or {}).get("background_of") if isinstance(r.get("cutout"), dict) else None
    if of:
        return f"background of {pretty(of)}"
    return pretty(r.get("label")) or r.get("file") or "?"


def write_report(out: Path, *, seed: int | None = None, per_class: bool = False, count: int = 48,
                 display: Path | None = None, content_check: str | None = None,
                 content_model: str | None = None) -> dict:
    """Write report/ (contact sheets, report.html, thumbnails, report.json) into a negmine output.
    `display`: the path to show, when `out` is a staging folder about to be published there.
    `content_check="clip"`: also audit the negatives with CLIP (content_audit)."""
    out = Path(out).expanduser()
    rows, rejects, record = _read(out)
    summary = summarize(out, display)
    if content_check:
        summary["possible_positives"]["audit"] = content_audit(out, rows, content_model)
    seed = record.get("seed", 0) if seed is None else seed
    neg = [r for r in rows if r["role"] == "negative"]
    sheets = {"negatives": f"{REPORT_DIR}/contact-sheet.png"}
    contact_sheet(out, neg, out / sheets["negatives"], seed=seed or 0, count=count)
    if per_class:
        for cls in sorted({r["class"] for r in rows}):
            rel = f"{REPORT_DIR}/contact-{cls}.png"
            contact_sheet(out, [r for r in rows if r["class"] == cls], out / rel, seed=seed or 0, count=count)
            sheets[cls] = rel
    html_path = gallery(out, summary, rows, rejects, seed=seed or 0)
    (out / REPORT_DIR / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    shown = Path(display or out)
    return {**summary, "contact_sheets": {k: str(shown / v) for k, v in sheets.items()},
            "html": str(shown / html_path.relative_to(out))}
