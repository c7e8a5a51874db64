"""The metrics of `negmine eval`, from scikit-learn where it has them (AUROC, average precision, the
ROC curve), and OSCR, which it has not.

Conventions: a score is "higher = more like a positive"; an image is called positive when its score
is at or above a threshold (scikit-learn's `roc_curve` convention), so tied scores fall on the same
side. AUPR-In is the average precision with the positives as the positive class, AUPR-Out with the
negatives as the positive class and the score negated (Hendrycks & Gimpel 2017, as OpenOOD reports
them). FPR@95TPR: the false-positive rate at the first threshold reaching 95% true positives.
"""

from __future__ import annotations

import math

import numpy as np

from negmine.errors import NegmineError

EXTRA = "eval"            # the pyproject extra holding scikit-learn and matplotlib


def sklearn_metrics():
    """scikit-learn's metrics module; a NegmineError naming the extra when it is not installed."""
    try:
        from sklearn import metrics
    except ImportError:
        raise NegmineError(f"negmine eval needs scikit-learn: pip install 'negmine[{EXTRA}]'") from None
    return metrics


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def binary(y: np.ndarray, score: np.ndarray, target_fpr: float, what: str = "positives vs negatives") -> dict:
    """AUROC, AUPR-In/Out, FPR at 95% TPR and the threshold meeting `target_fpr` for labels `y`
    (1 positive, 0 negative; shape (n,)) and scores (n,). Rates are fractions in [0, 1].

    `target`: the threshold with the highest TPR whose FPR is at most `target_fpr` (None when only
    calling nothing positive meets it), its TPR and FPR. Raises NegmineError when `y` holds one
    class only (no rate is defined)."""
    m = sklearn_metrics()
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise NegmineError(f"{what}: the scored images are all {'negatives' if n_pos == 0 else 'positives'} "
                           f"({len(y)}); AUROC and FPR need both")
    fpr, tpr, thr = m.roc_curve(y, score, drop_intermediate=False)
    i95 = int(np.argmax(tpr >= 0.95 - 1e-12))
    ok = np.nonzero(fpr <= target_fpr + 1e-12)[0]
    it = int(ok[-1])                        # fpr and tpr only grow: the last such point has the most TPR
    threshold = _finite(thr[it])
    return {
        "positives": n_pos, "negatives": n_neg,
        "auroc": float(m.roc_auc_score(y, score)),
        "aupr_in": float(m.average_precision_score(y, score)),
        "aupr_out": float(m.average_precision_score(1 - y, -score)),
        "fpr_at_95tpr": float(fpr[i95]), "threshold_at_95tpr": _finite(thr[i95]),
        "target": {"fpr_asked": target_fpr, "threshold": threshold, "tpr": float(tpr[it]), "fpr": float(fpr[it])},
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }


def oscr(y: np.ndarray, score: np.ndarray, correct: np.ndarray) -> float:
    """Open-set classification rate (Dhamija, Guenther & Boult, NeurIPS 2018): the area under the
    curve of the correct classification rate (positives whose class is right and whose score is at
    or above the threshold, over all positives) against the false-positive rate (negatives at or
    above it, over all negatives), from (0, 0) over every distinct score, by the trapezoid rule.
    `correct`: (n,) bool, whether the image's predicted positive class is its class (read for
    positives only). In [0, 1]; equals AUROC when every positive is classified right."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    correct = np.asarray(correct).astype(bool) & y
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise NegmineError("OSCR needs positives and negatives")
    xs, ys = [0.0], [0.0]
    for t in np.unique(score)[::-1]:
        above = score >= t
        xs.append(float((above & ~y).sum() / n_neg))
        ys.append(float((above & correct).sum() / n_pos))
    return float(np.trapezoid(ys, xs)) if hasattr(np, "trapezoid") else float(np.trapz(ys, xs))


def confusion(true: list[str], pred: list[str], rows: list[str], columns: list[str]) -> dict:
    """A confusion table: {"rows": true classes, "columns": predicted classes, "counts": one list per
    row, one count per column (images of that row's class predicted as that column's)}. `rows` and
    `columns` first, in their order, then any other name met."""
    rows = list(dict.fromkeys([*rows, *true]))
    columns = list(dict.fromkeys([*columns, *pred]))
    r, c = {x: i for i, x in enumerate(rows)}, {x: i for i, x in enumerate(columns)}
    counts = [[0] * len(columns) for _ in rows]
    for t, p in zip(true, pred):
        counts[r[t]][c[p]] += 1
    return {"rows": rows, "columns": columns, "counts": counts}


def accuracy(true: list[str], pred: list[str]) -> float:
    """The share of images whose predicted class is their class."""
    return float(np.mean([t == p for t, p in zip(true, pred)])) if true else math.nan
