"""Which synthetic negatives teach a shortcut instead of the object: the table `bench/shortcut.py`
measured, the default fills and share of cutouts chosen from it, and the one-line warning a run
gets when its cutouts are what the table found harmful.

The table (BENCHMARKS.md, "Synthetic negatives that teach a shortcut"; `python -m bench.shortcut`):
a small CNN learned raccoon vs not-raccoon from the 200 raccoon photos of ../shared/data/raccoon-voc
against negatives of which a share were cutouts of those photos (one fill, or a mix of fills) and
the rest real photos. Per row: the share of 300 real held-out non-raccoon photos (ImageNet) the
model called raccoon (sigmoid > 0.5, in %), and the AUC of the test raccoons against those photos;
means of 3 seeds. Seeds differ a lot (real negatives only: 2-65% called raccoon), so the rules below
ask for large differences, and choose the default fills by the AUC, which no threshold moves.
"""

from __future__ import annotations

from collections.abc import Sequence

SOURCE = "bench/shortcut.py, measured 2026-12-07 (BENCHMARKS.md, \"Synthetic negatives that teach a shortcut\")"
REAL_ONLY = (34, 0.73)       # real negatives only: FP rate (%; seeds 2-65%), AUC against real photos
# fills (one fill, or a mix joined by "+"; "noise" is --noise matched, the default, "noise-uniform"
# --noise uniform) -> share of the negatives that were cutouts -> (FP rate %, AUC against real photos)
MEASURED: dict[str, dict[float, tuple[int, float]]] = {
    "noise": {0.2: (34, 0.75), 0.5: (29, 0.73), 1.0: (51, 0.61)},
    "blur": {0.2: (30, 0.73), 0.5: (75, 0.70), 1.0: (76, 0.67)},
    "mean": {0.2: (30, 0.72), 0.5: (68, 0.74), 1.0: (79, 0.69)},
    "black": {0.2: (54, 0.74), 0.5: (64, 0.71), 1.0: (96, 0.66)},
    "tile": {0.2: (56, 0.74), 0.5: (50, 0.73), 1.0: (39, 0.69)},
    "inpaint": {0.2: (29, 0.75), 0.5: (41, 0.75), 1.0: (64, 0.65)},
    "noise-uniform": {0.2: (46, 0.73), 0.5: (55, 0.73), 1.0: (86, 0.62)},
    "tile+blur+inpaint": {0.2: (25, 0.76), 0.5: (52, 0.75), 1.0: (62, 0.68)},
    "tile+blur": {0.2: (24, 0.75), 0.5: (46, 0.75), 1.0: (54, 0.69)},
}
# cutouts teach a shortcut from a share on when, at that share and every larger one measured, the
# table's model called more than this many percentage points more of the real held-out photos
# positive than with real negatives only (one noisy row alone does not make a warning)
RISK_MARGIN = 20
# the default --cutout-fill / --fill: of the measured sets of fills that need no optional package
# (inpaint needs OpenCV: negmine[cv]), the one whose model best told real raccoons from real
# non-raccoon photos (AUC), averaged over the shares measured: tile+blur 0.730, tile 0.720, mean
# 0.717, black 0.703, blur 0.700, noise 0.697
DEFAULT_FILLS: tuple[str, ...] = ("tile", "blur")
# `--synthetic` without a value: the largest share measured at which the six fills, on average,
# stayed within RISK_MARGIN of real negatives only (0.2: +5 points; 0.5: +21)
DEFAULT_SHARE = 0.2


def row_name(fills: Sequence[str], noise: str = "matched") -> str | None:
    """The table's row for cutouts of `fills` (any order; repeats ignored) with noise kind `noise`,
    or None when that set was not measured (gaussian noise neither)."""
    if "noise" in fills and noise != "matched":
        if noise != "uniform":
            return None
        fills = [f if f != "noise" else "noise-uniform" for f in fills]
    return next((k for k in MEASURED if set(k.split("+")) == set(fills)), None)


def measured(fills: Sequence[str], share: float, noise: str = "matched") -> tuple[float, int] | None:
    """(share measured, FP rate in %) of the table for cutouts of `fills` making `share` (0-1) of
    the negatives: the row measured at the largest share not above `share`. None when that set was
    not measured (`row_name`), or `share` is below every share measured."""
    name = row_name(fills, noise)
    below = [s for s in MEASURED.get(name, {}) if s <= share + 1e-9]
    return (max(below), MEASURED[name][max(below)][0]) if below else None


def judged_share(asked: float, realised: float) -> float:
    """The share (0-1) of the negatives that were cutouts a run is judged by: the share the user asked
    for (`--synthetic`), or the share the plan realised when that is larger (rounding). A few images
    that could not be cut (too small, over --max-cover) lower the realised share; they do not make a
    harmful set pass, so the asked share is never replaced by a smaller one."""
    return max(asked, realised)


def shortcut_warning(fills: Sequence[str], share: float, what: str, fill_option: str = "--cutout-fill",
                     noise: str = "matched") -> str | None:
    """One line when cutouts of `fills` (noise kind `noise`) making `share` (0-1; see `judged_share`)
    of the negatives teach a shortcut by the table, else None. The rule: the row measured at the
    largest share not above `share` (`measured`; 1 for `share` 1, never a smaller row for a share a
    few uncuttable images lowered: callers judge by the asked share), and every larger share measured,
    must be over REAL_ONLY by more than RISK_MARGIN points. A set of fills the table did not measure
    gets a line saying so (not measured: nothing known either way); a share below every share
    measured gets none. `what` names the setting in the line ("--synthetic 1"), `fill_option` the
    option that picks fills."""
    uniq = list(dict.fromkeys(fills))
    kind = f"one fill ({uniq[0]})" if len(uniq) == 1 else f"fills {'+'.join(uniq)}"
    if "noise" in uniq and noise != "matched":
        kind = kind[:-1] + f", --noise {noise})" if len(uniq) == 1 else kind + f" (--noise {noise})"
    safe = f"{' '.join(f'{fill_option} {f}' for f in DEFAULT_FILLS)}"
    if row_name(fills, noise) is None:
        return (f"{what} with {kind}: not measured by bench/shortcut.py, so whether these cutouts teach a "
                f"shortcut is unknown; the measured sets are {', '.join(MEASURED)} (the default, {safe}, "
                f"was measured safe at {DEFAULT_SHARE:.0%} cutouts)")
    found = measured(fills, share, noise)
    if found is None:
        return None
    at, fpr = found
    larger = [v[0] for s, v in MEASURED[row_name(fills, noise)].items() if s >= at]
    if min(larger) - REAL_ONLY[0] <= RISK_MARGIN:
        return None
    return (f"{what} with {kind}: in bench/shortcut.py such sets ({at:.0%} of the negatives cutouts) made a "
            f"model call {fpr}% of real non-raccoon photos positive ({REAL_ONLY[0]}% with real negatives "
            f"only); use the fills measured safe ({safe}) and keep most negatives real (cutouts "
            f"{DEFAULT_SHARE:.0%} of the negatives at most"
            + (f": --synthetic {DEFAULT_SHARE:g})" if fill_option == "--cutout-fill" else ")"))
