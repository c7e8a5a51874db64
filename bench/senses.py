"""Which senses a class name stands for: COCO's 80 names as positives, judged against what they mean.

For each COCO category name P as the only positive, negmine resolves P (`resolve_concepts`) and
judges two pools' classes (`judge_classes`): the other 79 COCO categories (labelled by their COCO
names, as a COCO-style multi-label pool is) and the 1,000 ImageNet-1k classes (by wnid). The
reference excludes a class when it is, is a kind of, or contains the COCO category's own synset
(LVIS' official COCO-to-synset table, shipped in negmine/data/vocab-names.tsv), the same relations
negmine promises, applied to the one sense COCO means. Per name: excluded, expected, agree (both),
too much (excluded, not expected), too little (expected, not excluded). The same counts for the old
rule (a word stands for every WordNet sense) show what the sense choice changed.
"""

from __future__ import annotations

import json


def _coco(tax) -> dict[str, list[int]]:
    """COCO name -> the synsets COCO means (vocab-names.tsv keeps COCO's spelling; tax.vocab does not)."""
    from importlib import resources

    out: dict[str, list[int]] = {}
    for line in (resources.files("negmine") / "data" / "vocab-names.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("coco\t"):
            _, name, wnid = line.split("\t")
            out.setdefault(name, []).append(int(wnid[1:]))
    return out


def _related(a: list[int], b: list[int], tax) -> bool:
    """b is, is a kind of, or contains one of a."""
    return any(x in tax.ancestors(y) or y in tax.ancestors(x) for x in a for y in b)


def measure(names: list[str] | None = None) -> dict:
    from negmine.filters.concepts import Concept, judge_classes, resolve_concepts
    from negmine.filters.taxonomy import Taxonomy

    tax = Taxonomy.load()
    coco = _coco(tax)
    imagenet = sorted(tax.wnid(s) for s in tax.imagenet)
    out = {}
    for name in names or list(coco):
        others = [n for n in coco if n != name]
        concepts, _ = resolve_concepts([name], tax)
        every = list(dict.fromkeys(tax.lemma_synsets(name) + tax.lookup(name)))     # the old rule
        old = [Concept(name, every or list(concepts[0].synsets), "lemma")]
        row = {"synsets": [tax.label(s) for s in concepts[0].synsets],
               "dropped": [tax.label(s) for s, _ in concepts[0].dropped]}
        for pool, labels, meaning in (("coco", others, {n: coco[n] for n in others}),
                                      ("imagenet", imagenet, {w: [int(w[1:])] for w in imagenet})):
            expected = {x for x in labels if _related(coco[name], meaning[x], tax)}
            for rule, cs in (("negmine", concepts), ("all_senses", old)):
                got = {v.label for v in judge_classes(labels, cs, tax) if v.excluded}
                named = (lambda xs: sorted(xs)) if pool == "coco" else (
                    lambda xs: sorted(tax.label(int(x[1:])) for x in xs))
                row[f"{pool}_{rule}"] = {"excluded": len(got), "expected": len(expected),
                                         "agree": len(got & expected), "too_much": named(got - expected),
                                         "too_little": named(expected - got)}
        out[name] = row
    return out


def totals(per: dict) -> dict:
    tot = {}
    for key in ("coco_negmine", "coco_all_senses", "imagenet_negmine", "imagenet_all_senses"):
        rows = [r[key] for r in per.values()]
        tot[key] = {"excluded": sum(r["excluded"] for r in rows), "expected": sum(r["expected"] for r in rows),
                    "agree": sum(r["agree"] for r in rows), "too_much": sum(len(r["too_much"]) for r in rows),
                    "too_little": sum(len(r["too_little"]) for r in rows),
                    "names_exact": sum(not r["too_much"] and not r["too_little"] for r in rows)}
    return tot


def table(per: dict) -> str:
    """The BENCHMARKS.md table: one row per name, COCO and ImageNet counts, then the disagreements."""
    lines = ["| name | senses used | COCO excl / exp / agree / much / little | ImageNet excl / exp / agree / "
             "much / little | all senses: much (COCO, IN) |", "|---|---|---|---|---|"]
    for name, r in per.items():
        c, i = r["coco_negmine"], r["imagenet_negmine"]
        lines.append(f"| {name} | {'; '.join(r['synsets'])} | {c['excluded']} / {c['expected']} / {c['agree']} / "
                     f"{len(c['too_much'])} / {len(c['too_little'])} | {i['excluded']} / {i['expected']} / "
                     f"{i['agree']} / {len(i['too_much'])} / {len(i['too_little'])} | "
                     f"{len(r['coco_all_senses']['too_much'])}, {len(r['imagenet_all_senses']['too_much'])} |")
    lines.append("")
    for name, r in per.items():
        for pool in ("coco", "imagenet"):
            d = r[f"{pool}_negmine"]
            if d["too_much"] or d["too_little"]:
                lines.append(f"- **{name}** ({pool}): " + "; ".join(
                    x for x in (f"too much: {', '.join(d['too_much'])}" if d["too_much"] else "",
                                f"too little: {', '.join(d['too_little'])}" if d["too_little"] else "") if x))
    return "\n".join(lines)


def run(scale: str = "default") -> dict:
    """`tiny`: four names (for the test suite); otherwise all 80."""
    names = ["dog", "mouse", "cell phone", "person"] if scale == "tiny" else None
    per = measure(names)
    return {"name": "senses", "targets": {}, "names": per, "totals": totals(per)}


if __name__ == "__main__":
    import sys

    r = run(sys.argv[1] if len(sys.argv) > 1 else "default")
    if "--table" in sys.argv:
        print(table(r["names"]))
        print(json.dumps(r["totals"], indent=1))
    else:
        print(json.dumps(r, indent=1))
