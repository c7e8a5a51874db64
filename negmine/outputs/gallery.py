"""The pictures of `negmine report`: thumbnails, contact sheets and the static HTML gallery (no
server, no external assets), and the readable names of wnid labels they and the text share."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont



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
