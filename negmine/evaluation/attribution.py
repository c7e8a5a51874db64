"""Which pool classes the model takes for positives: the false positives of the negatives of a split,
per source class and per source (the manifest's `source` and `label` of every negative), each
class named by WordNet with the shortest hypernym path to the nearest positive concept, and the
worst images (the highest-scoring negatives, the lowest-scoring positives)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from negmine.filters.taxonomy import Taxonomy

WNID_IN_TEXT = re.compile(r"\((n\d{8})\)")
CUTOUT = "cutout: "          # a synthetic negative's "class": its fill (no pool class, no WordNet place)
NO_LABEL = "(no label)"


def row_label(row: dict) -> str:
    """A negative's source class as its manifest records it: `label`, else its `labels` joined; a
    cutout's fill ('cutout: tile'); NO_LABEL for an image without any."""
    if isinstance(row.get("cutout"), dict):
        return f"{CUTOUT}{row['cutout'].get('fill')}"
    if row.get("label"):
        return str(row["label"])
    labels = row.get("labels")
    return ", ".join(map(str, labels)) if isinstance(labels, list) and labels else NO_LABEL


def positive_synsets(record: dict, positive_classes: list[str], tax: Taxonomy) -> dict[int, str]:
    """{synset: positive class} for the positives of an output: the senses its negmine.json
    `classes.concepts` records (what the run excluded by), else the class names looked up."""
    out: dict[int, str] = {}
    for c in ((record.get("classes") or {}).get("concepts") or []):
        for text in c.get("synsets") or []:
            m = WNID_IN_TEXT.search(str(text))
            s = tax.from_wnid(m.group(1)) if m else None
            if s is not None:
                out.setdefault(s, str(c.get("term")))
    if not out:
        for name in positive_classes:
            for s in tax.lookup(name):
                out.setdefault(s, name)
    return out


def wordnet_place(label: str, positives: dict[int, str], tax: Taxonomy) -> dict:
    """A source class in WordNet: its name (`wordnet`: 'lemma (wnid)', or None when WordNet does not
    know the label), the `nearest_positive` concept and the `path` to it through their closest
    shared hypernym ('feather boa -> scarf -> ... -> whole <- ... <- dog'; `steps`: its length)."""
    synsets = tax.lookup(label) if label != NO_LABEL and not label.startswith(CUTOUT) else []
    if not synsets:
        return {"wordnet": None, "nearest_positive": None, "path": None, "steps": None}
    best = None
    for s in synsets:
        for p, term in positives.items():
            chain, top = tax.link(s, p)
            if chain and (best is None or len(chain) < len(best[0])):
                best = (chain, top, term, s)
    if best is None:
        return {"wordnet": tax.label(synsets[0]), "nearest_positive": None, "path": None, "steps": None}
    chain, top, term, s = best
    k = chain.index(top)
    word = [tax.lemmas[x][0].replace("_", " ") for x in chain]
    path = " -> ".join(word[: k + 1]) + "".join(f" <- {w}" for w in word[k + 1:])
    return {"wordnet": tax.label(s), "nearest_positive": term, "path": path, "steps": len(chain) - 1}


def false_positives(rows: list[dict], y: np.ndarray, score: np.ndarray, thresholds: dict[str, float | None],
                    positives: dict[int, str], tax: Taxonomy | None) -> dict:
    """False positives of the negatives, per source class and per source.

    `thresholds`: {name: threshold} (an image at or above it is called positive; None: nothing is);
    each table row counts, per threshold, `fp_<name>` and the class's rate `fp_rate_<name>` (FP over
    its negatives in the split), plus `negatives`, `mean_score`, `max_score`. Classes are sorted by
    the FP count at the first threshold, then the mean score, highest first. With `tax`, each class
    row carries `wordnet_place`. Returns {"classes": [...], "sources": [...]}."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r, yy, s in zip(rows, y, score):
        if not yy:
            groups[(str(r.get("source")), row_label(r))].append(float(s))

    def counts(scores: list[float]) -> dict:
        arr = np.array(scores)
        out: dict = {"negatives": len(scores)}
        for name, t in thresholds.items():
            fp = int((arr >= t).sum()) if t is not None else 0
            out[f"fp_{name}"] = fp
            out[f"fp_rate_{name}"] = fp / len(scores)
        out["mean_score"], out["max_score"] = float(arr.mean()), float(arr.max())
        return out

    first = f"fp_{next(iter(thresholds))}"
    classes = []
    for (source, label), scores in groups.items():
        row = {"source": source, "label": label, **counts(scores)}
        if tax is not None:
            row.update(wordnet_place(label, positives, tax))
        classes.append(row)
    classes.sort(key=lambda c: (-c[first], -c["mean_score"], c["source"], c["label"]))
    per_source: dict[str, list[float]] = defaultdict(list)
    for (source, _), scores in groups.items():
        per_source[source] += scores
    sources = sorted(({"source": s, **counts(v)} for s, v in per_source.items()),
                     key=lambda c: (-c[first], -c["mean_score"], c["source"]))
    return {"classes": classes, "sources": sources}


def worst(rows: list[dict], y: np.ndarray, score: np.ndarray, n: int) -> dict:
    """The `n` highest-scoring negatives and the `n` lowest-scoring positives (ties by path):
    {"negatives": [...], "positives": [...]}, each {path, class, source, label, score}."""
    def item(i: int) -> dict:
        r = rows[i]
        return {"path": r["path"], "class": r.get("class"), "source": r.get("source"), "label": row_label(r),
                "score": float(score[i])}

    neg = sorted((i for i in range(len(rows)) if not y[i]), key=lambda i: (-score[i], rows[i]["path"]))
    pos = sorted((i for i in range(len(rows)) if y[i]), key=lambda i: (score[i], rows[i]["path"]))
    return {"negatives": [item(i) for i in neg[:n]], "positives": [item(i) for i in pos[:n]]}
