"""Positives hiding under other labels: a co-occurrence prior for pools labelled with ImageNet-1k classes.

Excluding the positive *classes* does not exclude the positive *objects*: 14 of the 50 ImageNet
validation images labelled "muzzle" show a dog. The shipped table (negmine/data/
imagenet-real-cooccurrence.tsv.gz, built by scripts/build_cooccurrence.py from ImageNet-ReaL,
Apache-2.0) says, for each of the 1000 classes, which other classes its 50 validation images show.
For the positives (mapped to ImageNet classes through the taxonomy: "dog" covers the 118 breeds),
each source class that maps to an ImageNet class gets a contamination rate: the share of its 50
images that show any positive class, with a 95% Wilson score interval.

Why Wilson: 50 images per class is little (one image = 2 points); the Wald interval collapses to
[0, 0] at 0/50 and undercovers near 0, Clopper-Pearson is exact but conservative (and needs beta
quantiles, i.e. scipy), while Wilson keeps close to nominal coverage at small n and small rates
(Brown, Cai & DasGupta 2001, Statistical Science 16:101) and has a closed form.

The estimates describe the ImageNet *validation* images, 50 per class; a pool built from the
*training* images of the same classes (the presets) is assumed to be alike. Images ReaL raters found
no fitting class for count as clean.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from negmine.filters.concepts import ClassVerdict, Concept, judge_classes
from negmine.filters.taxonomy import Taxonomy

TABLE = "imagenet-real-cooccurrence.tsv.gz"
# Chosen from bench/contamination.py (BENCHMARKS.md, 7): tables built from half of each class's
# images and measured on the other half, ten concepts, three splits. Excluding above 0.05 removes
# 26-31% of the held-out contaminated images for 0.27-0.37% of the classes, and the classes it
# excludes show positives in 8-10% of their held-out images (~90x the pool's 0.1%). Excluding on
# any single image removes 1.45x as much for 4.4x the classes, whose held-out rate is only ~1%.
DEFAULT_MAX_CONTAMINATION = 0.05
Z95 = 1.959963984540054
SOURCE_NOTE = ("ImageNet-ReaL (Beyer et al. 2020): 50 validation images per ImageNet-1k class, "
               "95% Wilson score interval")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (default 95%); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact at the ends: rounding would leave 1e-17 above 0 for k = 0 (a bound above the estimate)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class ClassImages:
    """One ImageNet class's validation images, as the ReaL raters saw them."""

    wnid: str
    images: int                                   # 50 in the full table
    no_label: int                                 # images raters found no fitting class for
    not_own: int                                  # images whose ReaL labels omit the class itself
    pairs: dict[int, int]                         # other class index -> images showing it
    sets: tuple[tuple[frozenset[int], int], ...]  # exact set of other classes -> images


class Cooccurrence:
    """The shipped co-occurrence table: index k = the k-th ImageNet-1k wnid in sorted order (ReaL's)."""

    def __init__(self, rows: list[ClassImages]):
        self.rows = rows
        self.wnids = [r.wnid for r in rows]
        self.index = {int(w[1:]): i for i, w in enumerate(self.wnids)}   # synset offset -> class index

    @classmethod
    def parse(cls, lines) -> "Cooccurrence":
        """From the text of the table (see scripts/build_cooccurrence.py); '#' lines are comments."""
        rows = []
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            wnid, n, empty, not_own, pairs, sets = line.rstrip("\n").split("\t")
            pair = {int(j): int(c) for j, c in (x.split(":") for x in pairs.split(",") if x)}
            group = tuple((frozenset(int(j) for j in s.split("+")), int(c))
                          for s, c in (x.split(":") for x in sets.split(",") if x))
            rows.append(ClassImages(wnid, int(n), int(empty), int(not_own), pair, group))
        return cls(rows)

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> "Cooccurrence":
        """The table shipped in negmine/data (~40 KB, parsed in a few ms)."""
        path = resources.files("negmine") / "data" / TABLE
        with gzip.open(path.open("rb"), "rt", encoding="utf-8") as f:
            return cls.parse(f)

    def showing(self, c: int, targets: set[int]) -> int:
        """Images of class index `c` that show at least one class of `targets` (other than c)."""
        return sum(n for s, n in self.rows[c].sets if not s.isdisjoint(targets))


@dataclass
class Estimate:
    """How often the images of one source class show a positive, from its ImageNet class's images."""

    imagenet: str                     # wnid of the ImageNet class the source label maps to
    images: int                       # images showing any positive class
    of: int                           # images of the class in the table (50)
    shows: dict[str, int] = field(default_factory=dict)   # positive term -> images showing it
    excluded: bool = False            # excluded for this rate (not by the taxonomy)

    @property
    def rate(self) -> float:
        return self.images / self.of if self.of else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(self.images, self.of)

    def as_dict(self) -> dict:
        lo, hi = self.ci95
        return {"imagenet": self.imagenet, "rate": round(self.rate, 4), "images": self.images, "of": self.of,
                "ci95": [round(lo, 4), round(hi, 4)], "shows": dict(self.shows)}

    def text(self) -> str:
        lo, hi = self.ci95
        what = ", ".join(f"{t} {k}" for t, k in self.shows.items() if k)
        return (f"{self.images} of its {self.of} ImageNet-ReaL validation images show a positive ({what}): "
                f"{self.rate:.0%}, 95% Wilson interval {lo:.0%}-{hi:.0%}")


def positive_classes(concepts: list[Concept], tax: Taxonomy, table: Cooccurrence) -> dict[str, set[int]]:
    """Positive term -> the ImageNet-1k class indices it covers (is, is a kind of, or contains, as the
    taxonomy judges a pool's classes: 'dog' -> the 118 breeds)."""
    out = {}
    for c in concepts:
        verdicts = judge_classes(table.wnids, [c], tax)
        out[c.term] = {i for i, v in enumerate(verdicts) if v.excluded}
    return out


def estimate_classes(verdicts: list[ClassVerdict], concepts: list[Concept], tax: Taxonomy,
                     table: Cooccurrence | None = None) -> list[Estimate | None]:
    """An estimate per source class that maps to an ImageNet-1k class and is not excluded already;
    None for the others (excluded, unmapped, or not an ImageNet-1k class). A label with several
    ImageNet senses ('crane': bird or machine) gets the higher of their rates."""
    table = table or Cooccurrence.load()
    per_term = positive_classes(concepts, tax, table)
    union = set().union(*per_term.values()) if per_term else set()
    out: list[Estimate | None] = []
    for v in verdicts:
        best = None
        if not v.excluded and union:
            for s in v.synsets:
                c = table.index.get(s)
                if c is None:
                    continue
                est = Estimate(table.wnids[c], table.showing(c, union), table.rows[c].images,
                               {t: table.showing(c, p) for t, p in per_term.items()})
                if best is None or est.rate > best.rate:
                    best = est
        out.append(best)
    return out


def apply_threshold(verdicts: list[ClassVerdict], estimates: list[Estimate | None], max_rate: float) -> int:
    """Exclude the classes whose estimated rate is above `max_rate` (a fraction; 1 turns it off).
    Sets the verdict's `excluded`/`reason` and the estimate's `excluded`; returns how many."""
    n = 0
    for v, est in zip(verdicts, estimates):
        if est is not None and not v.excluded and est.rate > max_rate:
            v.excluded, est.excluded = True, True
            v.reason = f"positives under its label: {est.text()} > --max-contamination {max_rate:g}"
            n += 1
    return n


def spread(rows: np.ndarray, n: int, stratify: bool) -> np.ndarray:
    """Expected draw per class for `n` negatives over classes with `rows` eligible rows each:
    stratified = as even as the classes allow (round-robin; a class that runs out drops out),
    uniform = in proportion to rows. Fractional; sums to min(n, rows.sum())."""
    rows = np.asarray(rows, dtype=float)
    total = rows.sum()
    if total <= 0 or n <= 0:
        return np.zeros_like(rows)
    n = min(float(n), total)
    if not stratify:
        return rows * (n / total)
    # water-filling: every class gets the same quota q, capped by its rows
    order = np.sort(rows)
    left, k = n, len(order)
    q = 0.0
    for i, r in enumerate(order):
        share = left / (k - i)
        if r >= share:
            q = share
            break
        left -= r
    else:
        q = order[-1]
    return np.minimum(rows, q)


def table_lines(wnids: list[str], real: list[list[int]], keep=None) -> list[str]:
    """The table's text lines from ImageNet-ReaL: `wnids` the original label of each validation
    image, `real` its ReaL label indices (into the sorted wnids); `keep(image_index)` selects the
    images counted (default: all; the benchmark builds a table from half of them). Columns: wnid,
    images, images with no ReaL label, images whose labels omit the class itself, pairs "j:n"
    (n images show class j), sets "j+k:n" (n images show exactly the other classes {j, k})."""
    from collections import Counter

    classes = sorted(set(wnids))
    index = {w: i for i, w in enumerate(classes)}
    per = [{"n": 0, "empty": 0, "not_own": 0, "pairs": Counter(), "sets": Counter()} for _ in classes]
    for i, (w, labels) in enumerate(zip(wnids, real)):
        if keep is not None and not keep(i):
            continue
        own = index[w]
        row = per[own]
        row["n"] += 1
        row["empty"] += not labels
        row["not_own"] += own not in labels
        others = tuple(sorted(set(labels) - {own}))
        row["pairs"].update(others)
        if others:
            row["sets"]["+".join(map(str, others))] += 1
    lines = []
    for w, row in zip(classes, per):
        pairs = ",".join(f"{j}:{n}" for j, n in sorted(row["pairs"].items()))
        sets = ",".join(f"{s}:{n}" for s, n in sorted(row["sets"].items()))
        lines.append(f"{w}\t{row['n']}\t{row['empty']}\t{row['not_own']}\t{pairs}\t{sets}")
    return lines
