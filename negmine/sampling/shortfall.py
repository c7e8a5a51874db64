"""What `negmine mine` says when it keeps fewer than --count, and which images of an output pool
it leaves out because they are held out for measuring (its val and test splits).

A negmine output's val and test images are the ones its metrics are measured on (`negmine eval`
scores the test split by default, and `examples/train.py` writes those scores). Mining them as new
training negatives puts test images into training: the next model is then measured on images it
was trained on. So `mine` leaves them out unless --allow-held-out, which is then said.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

TRAIN = "train"
EVALUATED = "already in the evaluated output"


def is_held_out(split: str | None) -> bool:
    """True for a manifest split other than train (val, test, ...); a row without a split (a
    `mine` or `cutout` output) is not held out."""
    return split is not None and split != TRAIN


def held_out_reason(split: str) -> str:
    """The rejects.jsonl reason of a held-out image of an output pool."""
    return (f"an image of split {split} of the pool output: held out for measuring, mining it as a training "
            "negative leaks it into training (--allow-held-out mines it)")


def held_out_warning(mined: Counter, pool: str) -> str:
    """The warning of a run that mined held-out images under --allow-held-out (`mined`: split ->
    images kept)."""
    splits = ", ".join(f"{n} of split {s}" for s, n in sorted(mined.items()))
    return (f"{sum(mined.values())} held-out images of the pool output {pool} were mined as training negatives "
            f"({splits}; --allow-held-out): a model trained on them is no longer measured on unseen images "
            "of those splits")


def _kind(reason: str) -> str:
    """A reject reason without its per-image details (a hash distance, a class name), to count by."""
    if "overlaps the positives" in reason:
        return "of a class overlapping the positives"
    if reason.startswith("an image of split"):
        return "held out (val/test of the pool output)"
    return re.sub(r" \(.*", "", reason)


def shortfall_message(kept: int, asked: int, reasons: Iterable[str], *, from_eval: bool, skip_top: float) -> str:
    """The one-line refusal of a `mine` run that kept `kept` of `asked`: how many candidates were
    rejected for what (`reasons`: every reject's reason), why none were left when that is one
    cause (every image of the confused classes already in the evaluated output: the pool it was
    drawn from), and what to do about it."""
    what = "candidates of the confused classes" if from_eval else "scored candidates"
    counts = Counter(_kind(r) for r in reasons)
    msg = f"only {kept} {what} pass the filters, {asked} asked"
    if counts:
        msg += " (rejected: " + "; ".join(f"{n} {k}" for k, n in counts.most_common(5)) + ")"
    if from_eval and counts.get(EVALUATED) and counts[EVALUATED] == sum(counts.values()) and kept == 0:
        msg += (f"; every image of the confused classes in the pool is already in the evaluated output "
                f"({counts[EVALUATED]} of them): is the pool the one it was drawn from?")
    remedies = (["--pool another pool holding these classes"] if from_eval else
                ["scores for more of the pool (--scores)"] + (["a lower --skip-top"] if skip_top else []))
    if counts.get(_kind(held_out_reason("test"))):
        remedies.append("--allow-held-out (leaks held-out images into training)")
    if kept:
        remedies.append(f"a --count of at most {kept}")
    return msg + "; try " + ", or ".join(remedies)
