"""`--licence`: a pool whose licence does not allow what the user asked for is refused before
anything is drawn from it.

Licences are read per source (the dataset card's `license:`, or the preset table for a preset
whose card says only "other"); what each allows is negmine.licences'. A pool that cannot say is
refused too: fail closed.
"""

from __future__ import annotations

from collections.abc import Sequence

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
