"""`--source SPEC?licence=ID`: the licence of a pool that states none, as its user declares it.

A folder of one's own photos, or a pool whose card says nothing (or only "other"), has no licence
negmine can read, so `--licence commercial` refuses it (fail closed). The user who knows the terms
says them with `?licence=`; the declaration is recorded as theirs (negmine.json's source
`licence_declared_by`, ATTRIBUTION.md, the dry run), never taken for the pool's own word. A pool
that states a licence negmine reads (its card, or a preset's terms) keeps it: a declaration that
would override it is refused rather than chosen between.
"""

from __future__ import annotations

from negmine.errors import NegmineError
from negmine.licences import parse_licence

# what a pool "states no licence" means here: nothing, or words negmine.licences cannot read
UNSTATED = ("unknown", "other")


def declare_licence(src, declared: str | None, where: str) -> None:
    """Set `src.licence` to the user's `declared` licence (an id negmine.licences reads) and mark
    it declared (`src.licence_declared`). `src`: an opened Source; `where`: the --source text for
    messages. Does nothing when `declared` is None. Raises NegmineError (one line) when the id is
    not read, or when the pool already states a readable licence that differs."""
    if declared is None:
        return
    lic = parse_licence(declared)
    if lic.id in UNSTATED:
        raise NegmineError(f"--source {where}: ?licence={declared!r} is not a licence id negmine reads "
                           "(e.g. cc0-1.0, cc-by-4.0, cc-by-nc-4.0, all-rights-reserved)")
    own = parse_licence(src.licence)
    if own.id not in UNSTATED and own.id != lic.id:
        raise NegmineError(f"--source {where}: the pool states its licence, {own.id} ({src.licence}); "
                           f"?licence= declares one only for a pool that states none")
    src.licence = declared
    src.licence_declared = own.id in UNSTATED
