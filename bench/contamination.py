"""Positives under other labels: how much of the contamination the co-occurrence prior removes, and
what it costs, measured on images the prior never saw.

ImageNet-ReaL split by image: for each class, 25 of its 50 validation images (seeded) build the
table, the other 25 measure. For each concept, the positive ImageNet classes are those the taxonomy
excludes; a kept class's image is contaminated when its ReaL labels include a positive class.
Reported per threshold: the share of the held-out contaminated images (in classes the taxonomy
keeps) that the excluded classes hold, the share of kept classes it costs (every class has 25
held-out images, so the share of images is the same), and the contamination of the negatives
left (taxonomy alone = threshold 1).
"""

from __future__ import annotations

import json

import numpy as np

from bench.common import SHARED

CONCEPTS = ["dog", "domestic cat", "car", "bird", "bear", "hotdog", "snake", "truck", "monkey", "bottle"]
THRESHOLDS = [0.0, 0.04, 0.05, 0.1, 0.2, 1.0]


def _split_tables(wnids, real, seed: int):
    from negmine.filters.contamination import Cooccurrence, table_lines

    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, w in enumerate(wnids):
        by_class.setdefault(w, []).append(i)
    half_a = set()
    for w in sorted(by_class):
        imgs = by_class[w]
        half_a.update(imgs[k] for k in rng.permutation(len(imgs))[: len(imgs) // 2])
    a = Cooccurrence.parse(table_lines(wnids, real, keep=half_a.__contains__))
    b = Cooccurrence.parse(table_lines(wnids, real, keep=lambda i: i not in half_a))
    return a, b


def measure(concepts=CONCEPTS, thresholds=THRESHOLDS, seed: int = 0) -> dict:
    from negmine.filters.contamination import DEFAULT_MAX_CONTAMINATION, Cooccurrence, positive_classes
    from negmine.filters.concepts import judge_classes, resolve_concepts
    from negmine.filters.taxonomy import Taxonomy

    folder = SHARED / "imagenet-real"
    wnids = (folder / "val_synsets.txt").read_text().split()
    real = json.loads((folder / "real.json").read_text())
    table_a, table_b = _split_tables(wnids, real, seed)
    tax = Taxonomy.load()
    out = {}
    for term in concepts:
        cs, _ = resolve_concepts([term], tax)
        positive = positive_classes(cs, tax, table_a)[term]
        kept = [i for i, v in enumerate(judge_classes(table_a.wnids, cs, tax)) if not v.excluded]
        rate_a = np.array([table_a.showing(c, positive) / table_a.rows[c].images for c in kept])
        cont_b = np.array([table_b.showing(c, positive) for c in kept])
        imgs_b = np.array([table_b.rows[c].images for c in kept])
        full = Cooccurrence.load()
        rate_full = np.array([full.showing(c, positive) / full.rows[c].images for c in kept])
        row = {"positive_classes": len(positive), "kept_classes": len(kept),
               "shipped_table_default": {"classes_excluded": int((rate_full > DEFAULT_MAX_CONTAMINATION).sum()),
                                         "in_sample_removed_share": round(float(
                                             rate_full[rate_full > DEFAULT_MAX_CONTAMINATION].sum()
                                             / max(1e-9, rate_full.sum())), 4),
                                         "contaminated_images_50": int(round(rate_full.sum() * 50))},
               "contaminated_held_out": int(cont_b.sum()), "held_out_images": int(imgs_b.sum()),
               "classes_with_any_a": int((rate_a > 0).sum()), "by_threshold": {}}
        for t in thresholds:
            ex = rate_a > t
            left = imgs_b[~ex].sum()
            row["by_threshold"][f"{t:g}"] = {
                "classes_excluded": int(ex.sum()),
                "class_share": round(float(ex.mean()), 4),
                "image_share": round(float(imgs_b[ex].sum() / imgs_b.sum()), 4),
                "removed_share": round(float(cont_b[ex].sum() / max(1, cont_b.sum())), 4),
                "contamination_left": round(float(cont_b[~ex].sum() / max(1, left)), 5),
                "held_out_rate_of_excluded": round(float(cont_b[ex].sum() / max(1, imgs_b[ex].sum())), 4),
            }
        out[term] = row
    return out


def summary(per: dict, thresholds=THRESHOLDS) -> dict:
    """Pooled over the concepts: contaminated images removed and classes excluded, per threshold."""
    tot = {}
    for t in thresholds:
        k = f"{t:g}"
        cont = sum(r["contaminated_held_out"] for r in per.values())
        removed = sum(r["by_threshold"][k]["removed_share"] * r["contaminated_held_out"] for r in per.values())
        classes = sum(r["by_threshold"][k]["classes_excluded"] for r in per.values())
        kept = sum(r["kept_classes"] for r in per.values())
        held = sum(r["held_out_images"] for r in per.values())
        left = sum(r["by_threshold"][k]["contamination_left"] * r["held_out_images"]
                   * (1 - r["by_threshold"][k]["image_share"]) for r in per.values())
        tot[k] = {"removed_share": round(removed / max(1, cont), 4), "class_share": round(classes / kept, 4),
                  "classes_excluded": classes, "contaminated_removed": int(round(removed)),
                  "contaminated_held_out": cont,
                  "held_out_rate_of_excluded": round(removed / max(1, classes * 25), 4),
                  "contamination_left": round(left / held, 5)}
    return tot


def run(scale: str = "default") -> dict:
    """`tiny`: three concepts (for the test suite); otherwise all ten and two more seeds."""
    concepts = CONCEPTS[:3] if scale == "tiny" else CONCEPTS
    per = measure(concepts, seed=0)
    result = {"name": "contamination", "targets": {}, "concepts": per, "pooled": summary(per)}
    if scale != "tiny":
        result["pooled_other_seeds"] = {s: summary(measure(concepts, seed=s)) for s in (1, 2)}
    return result


if __name__ == "__main__":
    import sys

    r = run(sys.argv[1] if len(sys.argv) > 1 else "default")
    print(json.dumps(r, indent=1))
