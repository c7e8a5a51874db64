"""The PNGs of `negmine eval` (matplotlib, headless): the ROC curve, score histograms by role, and
false positives by source class. Each function writes one file and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from negmine.errors import NegmineError
from negmine.evaluation.metrics import EXTRA

FP_BARS = 15          # the source classes a bar chart shows: more are unreadable at 800 px


def pyplot():
    """matplotlib.pyplot on the Agg backend; a NegmineError naming the extra when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise NegmineError(f"negmine eval needs matplotlib for its plots: pip install 'negmine[{EXTRA}]'") from None
    return plt


def require_extra() -> None:
    """Raise one NegmineError naming every package of the `eval` extra that does not import
    (scikit-learn for the metrics, matplotlib for the plots), so one install fixes all."""
    missing = []
    for package, module in (("scikit-learn", "sklearn.metrics"), ("matplotlib", "matplotlib")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise NegmineError(f"negmine eval needs {' and '.join(missing)} (not installed): "
                           f"pip install 'negmine[{EXTRA}]'")


def roc(curves: dict[str, dict], path: Path, target_fpr: float) -> Path:
    """ROC curves ({name: {"fpr": [...], "tpr": [...], "auroc": x}}) with the target FPR marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for name, c in curves.items():
        ax.plot(c["fpr"], c["tpr"], drawstyle="steps-post", label=f"{name} (AUROC {c['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8, linestyle=":")
    ax.axvline(target_fpr, color="tab:red", linewidth=0.8, linestyle="--", label=f"target FPR {target_fpr:g}")
    ax.set(xlabel="false-positive rate (negatives called positive)", ylabel="true-positive rate",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC: positives vs other")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def histogram(y: np.ndarray, score: np.ndarray, path: Path, threshold: float | None, xlabel: str) -> Path:
    """Positive scores of the positives and of the negatives, on shared bins, the threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    lo, hi = float(score.min()), float(score.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
    y = np.asarray(y).astype(bool)
    ax.hist(score[y], bins=bins, alpha=0.6, label=f"positives ({int(y.sum())})", color="tab:blue")
    ax.hist(score[~y], bins=bins, alpha=0.6, label=f"negatives ({int((~y).sum())})", color="tab:orange")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=0.8, label="threshold at target FPR")
    ax.set(xlabel=xlabel, ylabel="images", title="scores by role")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fp_classes(classes: list[dict], path: Path) -> Path:
    """A bar per source class (the FP_BARS with most false positives at 95% TPR): FP count and negatives."""
    plt = pyplot()
    top = classes[:FP_BARS][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(top), 3) + 1.2), dpi=100)
    names = [f"{c['label']}" + (f" ({c['wordnet'].split(' (')[0]})" if c.get("wordnet") and
                                  not c["wordnet"].startswith(c["label"]) else "") for c in top]
    ax.barh(names, [c["negatives"] for c in top], color="0.85", label="negatives in the split")
    ax.barh(names, [c["fp_95tpr"] for c in top], color="tab:red", label="false positives at 95% TPR")
    ax.set(xlabel="images", title="false positives by source class")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
