"""`negmine report OUT`: what is in a negmine output, as numbers, contact sheets and a static
HTML gallery (no server, no external assets). Reads the manifest, rejects and run record only;
works for `sample`, `cutout` and `mine` outputs."""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from negmine.errors import NegmineError
from negmine.outputs.manifest import read_jsonl
from negmine.outputs.writers import RUN_RECORD

DROP_THUMBNAILS = 48
THUMB = 160
REPORT_DIR = "report"


def save_thumbnail(src, dst: Path, size: int = THUMB) -> None:
    """`src`, `dst`: a path or a binary file object."""
    if isinstance(dst, Path):
        dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        im.save(dst, "JPEG", quality=85)


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
    by_class = Counter((r.get("source") or "?", pretty(r.get("label")) or r.get("file") or "?") for r in neg)
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


def pretty(label, short: bool = False) -> str:
    """'n01440764' -> 'tench (n01440764)' ('tench' when short): wnids alone are unreadable."""
    text_ = str(label or "")
    from negmine.filters.taxonomy import WNID, Taxonomy

    if WNID.match(text_):
        tax = Taxonomy.load()
        s = tax.from_wnid(text_)
        if s is not None:
            return tax.lemmas[s][0].replace("_", " ") if short else tax.label(s)
    return text_


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(out: Path, rows: list[dict], dest: Path, *, seed: int = 0, count: int = 48, cols: int = 8,
                  tile: int = THUMB) -> tuple[int, int]:
    """A PNG grid of a seeded random sample of `rows`, each tile captioned with its source class (and
    fill for cutouts). Returns the grid's (columns, rows)."""
    rng = np.random.default_rng(seed)
    pick = [rows[i] for i in sorted(rng.choice(len(rows), size=min(count, len(rows)), replace=False))] if rows else []
    cols = max(1, min(cols, len(pick)))
    nrows = max(1, -(-len(pick) // cols))
    caption = 18
    sheet = Image.new("RGB", (cols * tile, nrows * (tile + caption)), "white")
    draw, font = ImageDraw.Draw(sheet), _font()
    for k, r in enumerate(pick):
        x, y = (k % cols) * tile, (k // cols) * (tile + caption)
        try:
            with Image.open(Path(out) / r["path"]) as im:
                im = im.convert("RGB")
                im.thumbnail((tile - 4, tile - 4))
                sheet.paste(im, (x + (tile - im.width) // 2, y + (tile - im.height) // 2))
        except OSError:
            draw.text((x + 4, y + tile // 2), "unreadable", fill="red", font=font)
        label = pretty(r.get("label") or r.get("class"), short=True)
        fill = (r.get("cutout") or {}).get("fill") or r.get("fill")
        text_ = f"{label[:20]}" + (f" [{fill}]" if fill else "")
        draw.text((x + 3, y + tile + 2), text_, fill="black", font=font)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, "PNG")
    return cols, nrows


def _thumb(out: Path, rel: str, cache: dict) -> str:
    if rel not in cache:
        name = f"{REPORT_DIR}/thumbs/{len(cache)}.jpg"
        try:
            save_thumbnail(Path(out) / rel, Path(out) / name)
        except OSError:
            return ""
        cache[rel] = name
    return cache[rel]


def gallery(out: Path, summary: dict, rows: list[dict], rejects: list[dict], *, seed: int = 0, per_group: int = 12
            ) -> Path:
    """report.html beside thumbnails in report/thumbs: negatives by source class, positives by class,
    cutouts by fill, and dropped duplicates beside the image they duplicated."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    cache: dict[str, str] = {}
    esc = html.escape

    def figure(rel: str, caption: str) -> str:
        src = _thumb(out, rel, cache)
        img = f'<img src="{esc(src[len(REPORT_DIR) + 1:])}" loading="lazy" alt="">' if src else "<div>missing</div>"
        return f'<figure>{img}<figcaption>{esc(caption)}</figcaption></figure>'

    def groups(title: str, items: dict[str, list[dict]], caption) -> str:
        parts = [f"<h2>{esc(title)}</h2>"]
        for k, (name, members) in enumerate(sorted(items.items(), key=lambda kv: (-len(kv[1]), kv[0]))):
            pick = [members[i] for i in sorted(rng.choice(len(members), size=min(per_group, len(members)), replace=False))]
            state = " open" if k < 12 else ""        # long lists start folded; thumbnails load lazily
            parts.append(f'<details{state}><summary>{esc(name)} <span class="n">{len(members)}</span></summary>'
                         f'<div class="grid">{"".join(figure(r["path"], caption(r)) for r in pick)}</div></details>')
        return "".join(parts)

    neg = [r for r in rows if r["role"] == "negative"]
    pos = [r for r in rows if r["role"] == "positive"]
    by_label: dict[str, list[dict]] = defaultdict(list)
    by_fill: dict[str, list[dict]] = defaultdict(list)
    for r in neg:
        fill = (r.get("cutout") or {}).get("fill") or r.get("fill")
        (by_fill[fill] if fill else by_label[pretty(r.get("label")) or "(unlabelled)"]).append(r)
    by_pos: dict[str, list[dict]] = defaultdict(list)
    for r in pos:
        by_pos[r["class"]].append(r)
    drops = [x for x in rejects if x.get("thumbnail") and x.get("duplicate_of")]
    drop_html = "".join(
        f'<div class="pair"><figure><img src="{esc(x["thumbnail"][len(REPORT_DIR) + 1:])}" alt=""><figcaption>dropped: '
        f'{esc(str(x.get("file") or x.get("id") or ""))}</figcaption></figure>{figure(x["duplicate_of"], "kept: " + x["duplicate_of"])}'
        f'<p>{esc(x["reason"])}</p></div>' for x in drops[:24])
    path_of = {r.get("file"): r["path"] for r in pos}
    dup_html = "".join(
        '<div class="pair">' + "".join(figure(path_of[f], f) if f in path_of else f"<p>{esc(f)} (not written)</p>"
                                       for f in g["files"])
        + f'<p>{esc(g.get("split") or "")}{" &middot; kept " + esc(g["kept"]) if g.get("kept") else ""}</p></div>'
        for g in summary.get("duplicate_positives", [])[:50])
    table = "".join(f"<tr><th>{esc(c)}</th>" + "".join(f"<td>{summary['counts'][s].get(c, 0)}</td>" for s in summary["counts"])
                    + "</tr>" for c in sorted({c for per in summary["counts"].values() for c in per}))
    excluded = "".join(f"<li><b>{esc(pretty(e['label']))}</b> ({e.get('rows', '?')} rows): {esc(e['reason'])}</li>"
                       for e in summary["excluded_classes"][:500])
    possible = _possible_html(summary.get("possible_positives") or {}, neg, figure, rng)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>negmine report</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}} th{{text-align:left}}
.grid{{display:flex;flex-wrap:wrap;gap:6px}} figure{{margin:0;width:{THUMB}px}}
figure img{{max-width:{THUMB}px;max-height:{THUMB}px;display:block}} figcaption{{font-size:11px;overflow:hidden;
white-space:nowrap;text-overflow:ellipsis}} .n{{color:#888}} .pair{{display:flex;gap:10px;align-items:flex-start;
margin:6px 0;border-bottom:1px solid #eee}} summary{{cursor:pointer;font-weight:600}}
</style></head><body>
<h1>negmine report</h1>
<p>{esc(summary['out'])} &middot; {esc(summary['command'])} &middot; seed {esc(str(summary['seed']))} &middot;
{summary['positives']} positives, {summary['negatives']} negatives &middot;
<a href="contact-sheet.png">contact sheet</a></p>
{"".join(f'<p style="color:#a00"><b>warning:</b> {esc(w)}</p>' for w in summary.get("warnings", []))}
{"".join(f'<p>unlabelled: {esc(u["source"])}: {u["rows"]} of {u["of"]} images carry no label ({esc(u["reason"])}), '
         'left out of the draw</p>' for u in summary.get("unlabelled", []) if not u.get("drawn"))}
<table><tr><th>class</th>{"".join(f"<th>{esc(s)}</th>" for s in summary["counts"])}</tr>{table}</table>
<p>negatives per positive: {esc(", ".join(f"{k} {v}" for k, v in summary["negatives_per_positive"].items()))}<br>
shares: {esc(", ".join(f"{k} {v:.1%}" for k, v in sorted(summary["shares"].items())))}<br>
dropped: {esc(", ".join(f"{k} {v}" for k, v in summary["drops"].items())) or "none"}<br>
licences: {esc(", ".join(summary["licences"]) or "unknown")}</p>
<details{" open" if len(summary["excluded_classes"]) <= 20 else ""}><summary><h2 style="display:inline">Excluded
source classes ({len(summary["excluded_classes"])})</h2></summary><ul>{excluded}</ul></details>
{possible}
<h2>Dropped duplicates, beside the image they duplicate</h2>{drop_html or "<p>none</p>"}
<h2>Duplicate positives ({len(summary.get("duplicate_positives", []))} groups, each in one split)</h2>{dup_html or "<p>none</p>"}
{groups("Negatives by source class", by_label, lambda r: str(r.get("file") or r["path"]))}
{groups("Synthetic negatives by fill", by_fill, lambda r: str(r.get("file") or r["path"])) if by_fill else ""}
{groups("Positives by class", by_pos, lambda r: str(r.get("file") or r["path"]))}
</body></html>
"""
    dest = out / REPORT_DIR / "report.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(page, encoding="utf-8")
    return dest


def _possible_html(pp: dict, neg: list[dict], figure, rng, per_class: int = 6, classes: int = 8) -> str:
    """The "Possible positives" section: excluded contaminated classes with their rates, then kept
    negatives of the classes with the highest rates (a seeded few per class), captioned with the rate."""
    if not (pp.get("excluded") or pp.get("highest_kept") or pp.get("content_check") or pp.get("audit")):
        return ""
    esc = html.escape

    def rate(e: dict) -> str:
        lo, hi = e["ci95"]
        return f"{e['images']} of {e['of']} images ({e['rate']:.0%}, 95% interval {lo:.0%}-{hi:.0%})"

    exp = pp.get("expected")
    parts = ['<h2 id="possible-positives">Possible positives</h2><p>Images that may show a positive although '
             "their label does not, from the ImageNet-ReaL co-occurrence prior (rates: share of a class's 50 "
             "ImageNet validation images that show a positive)."]
    if exp:
        parts.append(f" Expected among the {exp['negatives']} negatives: ~{exp['with_prior']:g} "
                     f"(~{exp['taxonomy_only']:g} with the taxonomy's exclusions alone).")
    parts.append("</p>")
    if pp.get("excluded"):
        parts.append(f"<h3>Excluded for their rate (above {pp.get('max_contamination')})</h3><ul>" + "".join(
            f"<li><b>{esc(pretty(e['label']))}</b>: {esc(rate(e))}; shows "
            f"{esc(', '.join(f'{t} {k}' for t, k in e['shows'].items() if k))}</li>" for e in pp["excluded"]) + "</ul>")
    cc = pp.get("content_check")
    if cc:
        parts.append(f"<h3>Flagged by the content check ({len(pp['flagged'])}, dropped and replaced)</h3><p>"
                     f"{esc(cc['model'])}: a candidate is dropped when its score (the softmax mass of the positive "
                     f"prompts among {cc['prompts']} prompts) reaches {cc['threshold']:.3f}, the "
                     f"{cc['quantile']:.0%} quantile of the positives' scores. Quality not measured.</p>")
        thumbs = "".join(
            f'<figure><img src="{esc(x["thumbnail"][len(REPORT_DIR) + 1:])}" alt=""><figcaption>'
            f'{x["content_score"]:.3f} {esc(str(x.get("content_label")))}: {esc(str(x.get("file") or x.get("row")))}'
            f"</figcaption></figure>" if x.get("thumbnail") else
            f'<figure><div>{x["content_score"]:.3f} {esc(str(x.get("content_label")))}</div><figcaption>'
            f'{esc(str(x.get("file") or x.get("row")))}</figcaption></figure>' for x in pp["flagged"][:48])
        parts.append(f'<div class="grid">{thumbs}</div>' if thumbs else "<p>none</p>")
        parts.append("<h3>Highest-scoring kept negatives</h3><div class=\"grid\">" + "".join(
            figure(r["path"], f"{r['content_score']:.3f} {r.get('content_label')}") for r in pp["highest_scoring_kept"])
            + "</div>")
    audit = pp.get("audit")
    if audit:
        parts.append(f"<h3>Content audit of the negatives ({len(audit['flagged'])} of {audit['scored']} at or above "
                     f"{audit['threshold']:.3f})</h3><p>{esc(audit['model'])}, threshold the "
                     f"{audit['quantile']:.0%} quantile of this output's positives' scores; nothing was removed. "
                     "Quality not measured.</p><div class=\"grid\">" + "".join(
                         figure(x["path"], f"{x['content_score']:.3f} {x['content_label']}")
                         for x in (audit["flagged"] or audit["highest_scoring"])[:48]) + "</div>")
    shown = [h for h in pp.get("highest_kept", []) if h["negatives"] and h["images"]][:classes]
    if shown:
        parts.append("<h3>Kept negatives from the classes with the highest rates: worth a look</h3>")
        for h in shown:
            members = [r for r in neg if r.get("source") == h["source"] and r.get("label") == h["label"]]
            pick = [members[i] for i in sorted(rng.choice(len(members), size=min(per_class, len(members)),
                                                          replace=False))]
            parts.append(f"<details open><summary>{esc(pretty(h['label']))} <span class=\"n\">{esc(rate(h))}, "
                         f"{len(members)} kept</span></summary><div class=\"grid\">"
                         + "".join(figure(r["path"], f"{h['rate']:.0%}: {r.get('file') or r['path']}") for r in pick)
                         + "</div></details>")
    return "".join(parts)


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
