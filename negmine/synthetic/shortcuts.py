"""Which synthetic negatives teach a shortcut instead of the object: the table `bench/shortcut.py`
measured, the default fills and share of cutouts chosen from it, and the one-line warning a run
gets when its cutouts are what the table found harmful.

The table (BENCHMARKS.md, section 12; `python -m bench.shortcut`): a small CNN learned raccoon vs
not-raccoon from the 200 raccoon photos of ../shared/data/raccoon-voc against negatives of which a
share were cutouts of those photos (one fill, or a mix of fills) and the rest real photos; each
figure is the share of 300 real held-out non-raccoon photos (ImageNet) the model called raccoon
(sigmoid > 0.5), the mean of 3 seeds. The seed spread is wide (real negatives only: 2-65%), so the
rule below asks for a large difference (RISK_MARGIN).
"""

from __future__ import annotations

from collections.abc import Sequence

SOURCE = "bench/shortcut.py, measured 2026-12-07 (BENCHMARKS.md section 12)"
REAL_ONLY = 34               # FP rate (%) with real negatives only (seeds: 2-65%)
# fills (one fill, or a mix joined by "+") -> share of the negatives that were cutouts -> FP rate (%)
MEASURED: dict[str, dict[float, int]] = {
    "noise": {0.2: 46, 0.5: 55, 1.0: 86},
    "blur": {0.2: 34, 0.5: 63, 1.0: 76},
    "mean": {0.2: 30, 0.5: 68, 1.0: 79},
    "black": {0.2: 54, 0.5: 64, 1.0: 96},
    "tile": {0.2: 42, 0.5: 48, 1.0: 38},
    "inpaint": {0.2: 25, 0.5: 44, 1.0: 69},
    "tile+blur+inpaint": {0.2: 30, 0.5: 45, 1.0: 63},
    "tile+blur": {0.2: 21, 0.5: 54, 1.0: 48},
}
# cutouts teach a shortcut when the table's model, trained with them, called more than this many
# percentage points more of the real held-out photos positive than with real negatives only: wide,
# because one seed differs from the next by up to 60 points at p > 0.5
RISK_MARGIN = 20
# the default --cutout-fill / --fill: of the measured sets that need no optional package (inpaint
# needs OpenCV: negmine[cv]), the one with the lowest FP rate averaged over the shares measured
# (tile+blur 41%, tile 43%, then blur 58%, mean 59%, noise 62%, black 71%)
DEFAULT_FILLS: tuple[str, ...] = ("tile", "blur")
# `--synthetic` without a value: the largest share measured at which the single fills, on average,
# stayed within RISK_MARGIN of real negatives only (0.2: +5 points; 0.5: +23)
DEFAULT_SHARE = 0.2


def measured(fills: Sequence[str], share: float) -> tuple[float, int] | None:
    """(share measured, FP rate in %) of the table for cutouts of `fills` (in any order; repeats
    ignored) making `share` (0-1) of the negatives: the row measured at the largest share not above
    `share`. None when that fill set was not measured, or `share` is below every share measured."""
    wanted = set(fills)
    row = next((v for k, v in MEASURED.items() if set(k.split("+")) == wanted), None)
    below = [s for s in (row or {}) if s <= share + 1e-9]
    return (max(below), row[max(below)]) if below else None


def shortcut_warning(fills: Sequence[str], share: float, what: str, fill_option: str = "--cutout-fill") -> str | None:
    """One line when cutouts of `fills` making `share` (0-1) of the negatives are, by the table,
    a shortcut (FP rate more than RISK_MARGIN points above real negatives only); else None. `what` names the
    setting in the line ("--synthetic 1"), `fill_option` the option that picks fills. Sets the table
    did not measure get no line."""
    found = measured(fills, share)
    if found is None or found[1] - REAL_ONLY <= RISK_MARGIN:
        return None
    at, fpr = found
    uniq = list(dict.fromkeys(fills))
    kind = f"one fill ({uniq[0]})" if len(uniq) == 1 else f"fills {'+'.join(uniq)}"
    return (f"{what} with {kind}: in bench/shortcut.py such sets ({at:.0%} of the negatives cutouts) made a "
            f"model call {fpr}% of real non-raccoon photos positive ({REAL_ONLY}% with real negatives "
            f"only); mix fills ({' '.join(f'{fill_option} {f}' for f in DEFAULT_FILLS)}) and keep most "
            f"negatives real (cutouts {DEFAULT_SHARE:.0%} at most: --synthetic {DEFAULT_SHARE:g})")
