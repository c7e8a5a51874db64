"""ATTRIBUTION.csv and ATTRIBUTION.md: the credit every drawn negative's licence asks for.

CC BY's attribution terms (4.0 section 3(a); 2.0 section 4(b)) ask, for each work shared: the
creator's name when supplied, a notice of the licence with its URL, a link to the work where
reasonably practicable, and whether it was modified. The manifest knows all of it per image
(`licence`, `licence_url`, `credit`, `page_url`, `source`, `file`, `row`, `reencoded`), so these
files are made from the manifest rows: the CSV for scripts, the Markdown for a product's credits
page. Positives and the cutouts made from them (`sample --synthetic`, `negmine cutout`) are the
user's own images and are listed as such, with what was done to make each cutout.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence

ATTRIBUTION_CSV = "ATTRIBUTION.csv"
ATTRIBUTION_MD = "ATTRIBUTION.md"
COLUMNS = ("path", "licence", "licence_url", "credit", "page_url", "title", "source", "revision", "file", "row",
           "member", "modified")


def _modified(r: dict) -> str:
    if r.get("cutout"):
        return "cut out and filled"
    return "re-encoded" if r.get("reencoded") else ""


def pool_rows(rows: Sequence[dict]) -> list[dict]:
    """The manifest rows of images drawn from pools (negatives that are not cutouts)."""
    return [r for r in rows if r.get("role") == "negative" and not r.get("cutout")]


def licence_counts(rows: Sequence[dict]) -> dict[str, int]:
    """{licence id: negatives drawn from pools under it}, most first (negmine.json `licences`)."""
    return dict(Counter(r.get("licence") or "unknown" for r in pool_rows(rows)).most_common())


def made_from_yours(rows: Sequence[dict]) -> list[str]:
    """ATTRIBUTION.md's lines for the images `negmine cutout` made from the user's images (its
    manifest rows: `mode` "cutout" or "crops", `file`, `fill`, `boxes`, `source`)."""
    cut = [r for r in rows if r.get("mode") == "cutout"]
    crops = [r for r in rows if r.get("mode") == "crops"]
    sources = sorted({str(r.get("source")) for r in rows})
    out = ["## Made from your images", "",
           (f"All {len(rows)} images were made by negmine from {len({r.get('file') for r in rows})} of your own "
            f"images ({', '.join(sources)}); their licence is yours to state, and each is an adaptation of "
            "the image its manifest row names (`file`)."), ""]
    if cut:
        fills = Counter(r.get("fill") for r in cut)
        out.append(f"- {len(cut)} cutouts: the annotated objects removed and their regions filled ("
                   + ", ".join(f"{k} {v}" for k, v in sorted(fills.items(), key=lambda kv: str(kv[0]))) + ")")
    if crops:
        out.append(f"- {len(crops)} background crops: parts of the images that hold no annotated object")
    return out + [""]


def attribution_csv(rows: Sequence[dict]) -> bytes:
    """One CSV row per image drawn from a pool: `COLUMNS`, UTF-8, header first."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in pool_rows(rows):
        w.writerow([r.get(c) for c in COLUMNS[:-1]] + [_modified(r)])
    return buf.getvalue().encode("utf-8")


def attribution_md(rows: Sequence[dict], sources: Sequence[dict] = ()) -> str:
    """The credits a person reads: per licence, each image with its author, link, source and
    whether it was modified; then what the positives are. `sources`: negmine.json's `sources`
    (their licence as the pool states it)."""
    said = {s.get("id"): s.get("licence") for s in sources}
    declared = {s.get("id") for s in sources if s.get("licence_declared_by")}
    by_licence: dict[str, list[dict]] = defaultdict(list)
    for r in pool_rows(rows):
        by_licence[r.get("licence") or "unknown"].append(r)
    own = sum(1 for r in rows if r.get("role") == "positive")
    cut = sum(1 for r in rows if r.get("cutout"))
    made = [r for r in rows if r.get("mode") in ("cutout", "crops")]    # `negmine cutout`'s rows
    out = ["# Attribution", "",
           "Images in this dataset that were drawn from public pools, with the credit their licences ask for "
           "(author, licence with link, where the work is published, and whether it was modified). "
           f"`{ATTRIBUTION_CSV}` holds the same per image for scripts.", ""]
    if not by_licence:
        out += ["No image in this dataset was drawn from a pool.", ""]
    if made:
        out += made_from_yours(made)
    for lic, items in sorted(by_licence.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        url = next((r.get("licence_url") for r in items if r.get("licence_url")), None)
        out += [f"## {lic} ({len(items)} images)", ""]
        if url:
            out += [f"Licence: <{url}>", ""]
        mine = sorted({r["source"] for r in items if r.get("source") in declared})
        if mine:
            out += [(f"Licence declared by the user (`?licence=` on `--source`) for {', '.join(mine)}: "
                     "the pool states none; negmine recorded the user's word."), ""]
        stated = sorted({str(said[r['source']]) for r in items if said.get(r["source"])})
        if lic in ("other", "unknown", "imagenet-terms"):
            out += [("As the source states it: " + "; ".join(stated) + "." if stated else
                     "The source states no licence.") + " Check its terms before you ship anything built from "
                    "these images (`negmine sample --licence commercial` keeps only pools that allow it).", ""]
        for r in items:
            where = r.get("page_url") or f"{r.get('source')}" + (f" @ {r['revision'][:12]}" if r.get("revision") else "") \
                + f", {r.get('file')}" + (f" row {r['row']}" if r.get("row") is not None else "") \
                + (f" member {r['member']}" if r.get("member") else "")
            by = (f" \"{r['title']}\"" if r.get("title") else "") + (f" by {r['credit']}" if r.get("credit") else "")
            mod = f"; {_modified(r)} by negmine" if _modified(r) else ""
            out.append(f"- `{r['path']}`{by}: {where}{mod}")
        out.append("")
    if own or cut:
        out += ["## Your own images", "",
                f"{own} positives" + (f" and {cut} cutouts made from them" if cut else "")
                + " come from the positives you gave negmine; their licence is yours to state.", ""]
        if cut:
            fills = Counter(r["cutout"].get("fill") for r in rows if isinstance(r.get("cutout"), dict))
            out += ["Each cutout is an adaptation of the positive its manifest row names (`file`): its annotated "
                    "objects removed and their regions filled (" + ", ".join(f"{k} {v}" for k, v in sorted(
                        fills.items(), key=lambda kv: str(kv[0]))) + ").", ""]
    return "\n".join(out)
