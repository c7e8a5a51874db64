"""`--licence`: a pool whose licence does not allow what the user asked for is refused before
anything is drawn from it, and in a pool with per-row licences the rows it does not allow are left
out of the draw (`row_licences`).

Licences are read per source (the dataset card's `license:`, or the preset table for a preset
whose card says only "other") and per row where the pool has licence columns
(negmine.sources.rowlicence); what each allows is negmine.licences'. A pool or row that cannot
say is refused too: fail closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from negmine.errors import NegmineError
from negmine.licences import LicencePolicy, parse_licence


class LicenceRefused(NegmineError):
    """A source's licence does not allow what `--licence` asks for."""


def check_licences(sources: Sequence, policy: LicencePolicy) -> None:
    """Refuse (LicenceRefused, one line naming every refused source and why) unless every source's
    licence is allowed by `policy`. `sources`: opened sources (`.id`, `.licence`)."""
    refused = [f"{s.id}: {policy.why_not(parse_licence(s.licence))}" for s in sources
               if not policy.allows(parse_licence(s.licence))]
    if refused:
        raise LicenceRefused(f"--licence {policy.text}: " + "; ".join(refused)
                             + " (`negmine sources` lists each preset's licence; a pool's card says its own)")


@dataclass
class RowLicences:
    """A pool's per-row licences under `--licence`: `left_out` (bool per row: the policy does not
    allow its licence; None when every row is allowed or there is no policy) and `counts`, what
    negmine.json, the dry run and the summary say: {"columns", "card", "rows_without_licence",
    "rows" ({licence id: rows in the pool}), "left_out" ({licence id: {"rows", "reason"}})}."""

    left_out: np.ndarray | None
    counts: dict


def row_licences(src, policy: LicencePolicy | None) -> RowLicences | None:
    """Judge every row of a pool with per-row licence codes (`src.licence_codes`, `licence_values`;
    None for a pool without them): a row's own licence wins, a row with none (null, empty,
    "unknown") falls back to the card's (`src.licence`), and where neither says one `--licence`
    refuses the row (fail closed). Per distinct value, never per row: a 10M-row pool is a
    bincount. Raises LicenceRefused (one line, counts per licence) when no row is allowed."""
    if getattr(src, "licence_codes", None) is None:
        return None
    card = parse_licence(src.licence)
    lics = [parse_licence(t, u) for t, u in src.licence_values]
    fallback = [lic.id == "unknown" for lic in lics] + [True]
    lics = [card if fb else lic for lic, fb in zip(lics, fallback)] + [card]
    codes = src.licence_codes
    idx = np.where(codes < 0, len(lics) - 1, codes)
    per = np.bincount(idx, minlength=len(lics))
    rows: Counter = Counter()
    for lic, n in zip(lics, per.tolist()):
        rows[lic.id] += n
    cols = [c for c in (src.attribution_columns.licence, src.attribution_columns.licence_url) if c] \
        if hasattr(src, "attribution_columns") else []
    counts = {"columns": cols, "card": card.id, "rows_without_licence": int(sum(n for n, fb in zip(per.tolist(), fallback) if fb)),
              "rows": dict(rows.most_common()), "left_out": {}}
    if policy is None:
        return RowLicences(None, counts)
    ok = np.array([policy.allows(lic) for lic in lics])
    for lic, n, good in zip(lics, per.tolist(), ok.tolist()):
        if not good and n:
            entry = counts["left_out"].setdefault(lic.id, {"rows": 0, "reason": policy.why_not(lic)})
            entry["rows"] += n
    if ok.all():
        return RowLicences(None, counts)
    left_out = ~ok[idx]
    if left_out.all():
        why = "; ".join(f"{k}: {v['rows']} rows, {v['reason']}" for k, v in counts["left_out"].items())
        raise LicenceRefused(f"--licence {policy.text}: no row of {src.id} has a licence it allows ({why})")
    return RowLicences(left_out, counts)


def check_preset_licences(specs: Sequence, policy: LicencePolicy | None) -> None:
    """Refuse (LicenceRefused, one line) before any network access a preset whose terms, as the
    preset table states them (negmine.sources.presets), are known not to allow `policy`, where
    the preset's rows carry no licence of their own to judge them by. `specs`: SourceSpecs (a
    `?licence=` on a preset is refused too: its terms are stated). Pools other than presets are
    judged once opened (`check_licences`); no spec means the default preset, as for open_sources."""
    from negmine.sources.presets import DEFAULT_PRESET, PRESETS

    if policy is None:
        return
    refused = []
    for location, declared in [(s.location, s.licence) for s in specs] or [(DEFAULT_PRESET, None)]:
        preset = PRESETS.get(location)
        if preset is None or preset.per_row_licences:
            continue
        if declared is not None:
            raise LicenceRefused(f"--source {location}?licence=...: the preset's terms are stated "
                                 f"({preset.licence}); ?licence= declares one only for a pool that states none")
        lic = parse_licence(preset.licence)
        if lic.known and not policy.allows(lic):
            refused.append(f"{preset.name}: {policy.why_not(lic)} ({preset.licence})")
    if refused:
        raise LicenceRefused(f"--licence {policy.text}: " + "; ".join(refused)
                             + " (`negmine sources` lists each preset's licence; nothing was downloaded)")
