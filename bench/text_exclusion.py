"""Exclusion by text: how many photos showing a positive a caption check catches, and how many it
drops for nothing.

The pool: real photos (../shared/data: 144 of imagenet-500 and raccoon-voc) with COCO-style
captions written for them by looking at each one (`bench/data/captions.tsv`, with what each photo
shows by the same judgement), built at run time as one parquet shard (image bytes + `caption`), as
a captioned Hub pool stores them. negmine opens it as any pool (`open_sources`): the caption column
is found by name and read as the WordNet nouns it names (negmine.sources.text); the class plan
(`plan_classes`) judges the nouns against each positive, one positive at a time (dog, cat, bear,
raccoon, person).

Per positive: photos showing it, caught (text names it, a kind of it or what contains it), missed
(with the captions), dropped for nothing (with the words that did it), and photos left out for
naming no noun. Two readings of a noun with several senses are compared: negmine's (the class-name
rule: the senses datasets mean where one names the word, else every WordNet sense) and the word's
commonest WordNet sense only. Planning's bytes: what the index read (text chunks) against the
shard's image bytes.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CAPTIONS = Path(__file__).resolve().parent / "data" / "captions.tsv"
POSITIVES = ("dog", "cat", "bear", "raccoon", "person")


def read_captions(limit: int | None = None) -> list[dict]:
    """Rows of captions.tsv: {"file", "caption", "shows": set of names}."""
    lines = [x for x in CAPTIONS.read_text(encoding="utf-8").splitlines() if not x.startswith("#")]
    rows = [{"file": r["file"], "caption": r["caption"], "shows": set(filter(None, r["shows"].split("|")))}
            for r in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return rows[:limit] if limit else rows


def build_pool(rows: list[dict], folder: Path, row_group: int = 64) -> Path:
    """One parquet shard, `image` ({bytes, path}) and `caption`, as `datasets` stores an Image and
    a string; returns the folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    images = [{"bytes": (DATA / r["file"]).read_bytes(), "path": Path(r["file"]).name} for r in rows]
    table = pa.table({"image": pa.array(images), "caption": [r["caption"] for r in rows]})
    pq.write_table(table, folder / "train-00000-of-00001.parquet", row_group_size=row_group)
    return folder


def measure(rows: list[dict], folder: Path) -> dict:
    import numpy as np

    from functools import partial

    from negmine.filters.concepts import judge_classes
    from negmine.filters.words import caption_senses
    from negmine.filters.overlap import plan_classes
    from negmine.filters.taxonomy import Taxonomy
    from negmine.sources import SourceSpec, open_sources

    (src,) = open_sources([SourceSpec(str(folder))], progress=False)
    tax = Taxonomy.load()
    no_noun = np.diff(src.label_offsets) == 0
    size = sum(f.stat().st_size for f in folder.glob("*.parquet"))
    image_bytes = int(src.read_estimate(np.arange(len(src)))[1])     # the image column's bytes
    out = {"images": len(src), "text_columns": src.text_columns, "nouns": len(src.classes),
           "no_noun": [rows[r]["caption"] for r in np.flatnonzero(no_noun).tolist()],
           "planning_read": {"text_chunk_bytes": src.index_stats.get("text_chunk_bytes"),
                             "image_column_bytes": image_bytes, "file_bytes": size},
           "per_positive": {}}
    for positive in POSITIVES:
        plan = plan_classes([src], [positive])
        sc = plan.per_source[0]
        # the alternatives, by the taxonomy alone (negmine's run adds the ImageNet-ReaL prior)
        readings = {"negmine": sc.excluded_codes} | {
            f"{rule}_sense": np.array([i for i, v in enumerate(judge_classes(
                src.classes, plan.concepts, tax, senses=partial(caption_senses, tax=tax, rule=rule))) if v.excluded],
                np.int32) for rule in ("photo", "every", "commonest")}
        res = {}
        for name, codes in readings.items():
            dropped = src.rows_with_any(codes)
            verdict = set(codes.tolist())
            shows = np.array([positive in r["shows"] for r in rows])
            words = [sorted({src.classes[c] for c in src.label_codes[src.label_offsets[r]:src.label_offsets[r + 1]].tolist()
                             if c in verdict}) for r in range(len(rows))]
            res[name] = {
                "shows": int(shows.sum()), "caught": int((shows & dropped).sum()),
                "missed": [rows[r]["caption"] for r in np.flatnonzero(shows & ~dropped).tolist()],
                "missed_without_noun": int((shows & ~dropped & no_noun).sum()),
                "dropped_for_nothing": [{"caption": rows[r]["caption"], "words": words[r],
                                         "shows": sorted(rows[r]["shows"])}
                                        for r in np.flatnonzero(~shows & dropped).tolist()],
                "kept": int((~dropped & ~no_noun).sum())}
        res["excluded_nouns"] = {v.label: v.reason for v in sc.verdicts if v.excluded}
        out["per_positive"][positive] = res
    return out


def run(scale: str = "default") -> dict:
    import tempfile

    rows = read_captions(24 if scale == "tiny" else None)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(rows, build_pool(rows, Path(tmp) / "pool"))
    per = result["per_positive"]
    recall = {p: (v["negmine"]["caught"], v["negmine"]["shows"]) for p, v in per.items()}
    return {"name": "text_exclusion", **result,
            "targets": {"measured": True},
            "summary": {p: {"caught": c, "shows": s, "dropped_for_nothing": len(per[p]["negmine"]["dropped_for_nothing"]),
                            "commonest_sense_caught": per[p]["commonest_sense"]["caught"],
                            "commonest_sense_dropped_for_nothing": len(per[p]["commonest_sense"]["dropped_for_nothing"])}
                        for p, (c, s) in recall.items()}}


def table(result: dict) -> str:
    """The BENCHMARKS.md table: caught / missed / dropped for nothing per reading."""
    readings = ("negmine", "every_sense", "photo_sense", "commonest_sense")
    lines = ["| positive | photos showing it | negmine (common senses): caught / missed / dropped for nothing | "
             "every sense | the senses a positive's name gets | commonest sense only |", "|---|---|---|---|---|---|"]
    for p, v in result["per_positive"].items():
        cells = [f"{v[k]['caught']} / {len(v[k]['missed'])} / {len(v[k]['dropped_for_nothing'])}" for k in readings]
        lines.append(f"| {p} | {v['negmine']['shows']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    res = run(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "default")
    print(table(res) if "--table" in sys.argv else json.dumps(res, indent=1))
