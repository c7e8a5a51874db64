"""Licences as data: a licence name, URL or id in, what it allows out.

Pools name licences three ways, and all three are read here:

- SPDX-style ids, as Hub dataset cards give them in `license:` (the Hub's licence identifiers:
  `cc-by-4.0`, `cc0-1.0`, `apache-2.0`, `other`, ...);
- Creative Commons URLs (`http://creativecommons.org/licenses/by-nc-sa/2.0/`), as YFCC100M rows and
  CommonCatalog's `licenseurl` carry them;
- Flickr's licence names (`Attribution-NonCommercial License`, `No known copyright restrictions`,
  ...: the names of flickr.photos.licenses.getInfo, which YFCC100M and CommonCatalog copy).

What each allows is read from the licence itself: a CC licence with NC forbids commercial use, ND
forbids adaptations, SA requires adaptations to carry the same licence, BY requires credit. The
ImageNet terms of access allow "non-commercial research and educational purposes" only. A text
none of these rules reads gives a licence whose `commercial` is None: negmine cannot say, and a
run that asks for commercially usable images refuses it (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from negmine.errors import NegmineError

_CC_URL = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)(?:/(\d\.\d))?", re.I)
# Flickr's names (without version: Flickr licensed under 2.0 until 2023, 4.0 since; the URL, when a
# pool carries it, gives the version)
_FLICKR = {
    "attribution-noncommercial-sharealike license": "by-nc-sa",
    "attribution-noncommercial license": "by-nc",
    "attribution-noncommercial-noderivs license": "by-nc-nd",
    "attribution license": "by",
    "attribution-sharealike license": "by-sa",
    "attribution-noderivs license": "by-nd",
    "public domain dedication (cc0)": "zero",
    "public domain mark": "mark",
}
# ids that are not Creative Commons: commercial use allowed, credit required, share-alike
_OTHER_IDS: dict[str, tuple[bool, bool, bool]] = {
    "apache-2.0": (True, True, False), "mit": (True, True, False), "bsd-2-clause": (True, True, False),
    "bsd-3-clause": (True, True, False), "unlicense": (True, False, False), "pddl": (True, False, False),
    "odc-by": (True, True, False), "odbl": (True, True, True), "cdla-permissive-1.0": (True, True, False),
    "cdla-permissive-2.0": (True, True, False), "cdla-sharing-1.0": (True, True, True),
    "gpl-3.0": (True, True, True), "agpl-3.0": (True, True, True), "lgpl-3.0": (True, True, True),
    "wtfpl": (True, False, False), "us-government-work": (True, False, False),
}


@dataclass(frozen=True)
class Licence:
    """What negmine knows of one image's licence.

    `id`: an SPDX-style id (`CC-BY-4.0`, `CC-BY-NC-SA-2.0`, `CC0-1.0`, `PDM`, `Apache-2.0`; a CC
    licence whose version is unknown keeps its family, `CC-BY`), or `imagenet-terms`, `all-rights-reserved`,
    `other`, `unknown`. `commercial`: True when commercial use is allowed, False when forbidden,
    None when negmine cannot say. `adapt`: adaptations allowed (False for ND). `credit`: the
    licence requires attribution. `share_alike`: adaptations must carry the same licence.
    `text`: what the pool said, as it said it."""

    id: str
    url: str | None
    commercial: bool | None
    adapt: bool | None
    credit: bool
    share_alike: bool
    text: str | None
    # a list of licences (a card's `license: [a, b]`): the rows are under these, and which row is
    # under which is not said; the fields above are then what holds for every row (see `_several`)
    parts: tuple[Licence, ...] = ()

    @property
    def known(self) -> bool:
        return self.commercial is not None


def _cc(code: str, version: str | None, text: str | None, url: str | None) -> Licence:
    code = code.lower()
    if code in ("zero", "cc0"):
        return Licence("CC0-1.0", url or "https://creativecommons.org/publicdomain/zero/1.0/", True, True, False, False, text)
    if code == "mark":
        return Licence("PDM", url or "https://creativecommons.org/publicdomain/mark/1.0/", True, True, False, False, text)
    parts = code.split("-")
    if not parts or parts[0] != "by" or not set(parts[1:]) <= {"nc", "nd", "sa"}:
        return Licence("other", url, None, None, False, False, text)
    lid = "CC-" + "-".join(p.upper() for p in parts) + (f"-{version}" if version else "")
    canonical = url or (f"https://creativecommons.org/licenses/{code}/{version}/" if version else None)
    return Licence(lid, canonical, "nc" not in parts, "nd" not in parts, True, "sa" in parts, text)


def _all(values) -> bool | None:
    """True when every value is True, False when any is False, else None (cannot say)."""
    values = list(values)
    return False if False in values else (True if all(v is True for v in values) else None)


def _several(lics: list[Licence], text: str) -> Licence:
    """One licence for a list of them: the rows are under several licences and the pool does not
    say which row is under which, so a use is allowed only where every listed licence allows it."""
    return Licence(", ".join(lic.id for lic in lics), None, _all(lic.commercial for lic in lics),
                   _all(lic.adapt for lic in lics), any(lic.credit for lic in lics),
                   any(lic.share_alike for lic in lics), text, tuple(lics))


# Creative Commons names as cards and pages spell them out: "Creative Commons Attribution-NonCommercial
# 4.0 International" (the licences' own titles), "CC BY-SA 4.0" (their short names)
_CC_WORDS = {"attribution": "by", "noncommercial": "nc", "non-commercial": "nc", "sharealike": "sa",
             "share-alike": "sa", "noderivatives": "nd", "noderivs": "nd", "no-derivatives": "nd"}
_CC_TITLE = re.compile(r"creative[ -]commons[ -](attribution(?:[ -]+(?:noncommercial|non-commercial|sharealike|"
                       r"share-alike|noderivatives|noderivs|no-derivatives))*)(?:[ -]+v?(\d\.\d))?"
                       r"(?:[ -]+(?:international|generic|unported))?(?:[ -]+licen[cs]e)?")
_CC_ZERO = re.compile(r"(?:cc0|cc-zero|creative[ -]commons[ -]zero)(?:[ -]+v?(1\.0))?(?:[ -]+universal)?")


def _spelled_out(low: str) -> Licence | None:
    """A CC licence written with spaces or in full (`CC BY 4.0`, `cc-by 4.0`, `CC BY-NC-SA 4.0`,
    `Creative Commons Attribution 4.0 International`, `CC0 1.0 Universal`), or None."""
    m = re.fullmatch(_CC_TITLE, low)
    if m:
        words = re.split(r"[ -]+(?=non|share|no)", m.group(1))
        codes = [_CC_WORDS.get(w.strip()) for w in words]
        if None not in codes:
            return _cc("-".join(codes), m.group(2), None, None)
    if re.fullmatch(_CC_ZERO, low):
        return _cc("zero", None, None, None)
    m = re.fullmatch(r"cc[ -]+(by(?:[ -]+(?:nc|nd|sa))*)(?:[ -]+v?(\d\.\d))?(?:[ -]+(?:international|generic|unported))?",
                     low)
    if m:
        return _cc(re.sub(r"[ -]+", "-", m.group(1)), m.group(2), None, None)
    return None


@lru_cache(maxsize=4096)     # called per row and per source with a few distinct texts: parse each once
def parse_licence(text: str | None, url: str | None = None) -> Licence:
    """The licence a pool names by `text` (an id, a name or a URL) and/or `url` (a licence URL).

    A comma-separated list (a card's `license: [cc-by-4.0, cc0-1.0]`, which
    negmine.sources.cards.card_licence joins) gives one Licence whose `parts` are the listed ones
    and whose `id` lists their ids: the rows are under several licences, so it allows a use only
    where every listed licence does. Spaced and spelled-out CC names (`CC BY 4.0`,
    `Creative Commons Attribution 4.0 International`) read as their ids.

    Never raises: what cannot be read gives `id` "unknown" (nothing said) or "other" (something
    said that these rules do not read), both with `commercial` None. Sources of the rules: the
    Creative Commons licence URLs, codes and titles, Flickr's licence names, the Hub's licence
    ids, the ImageNet terms of access (non-commercial research and education)."""
    raw = (text or "").strip()
    if url is None and "," in raw and not _CC_URL.search(raw):
        items = [p.strip() for p in raw.split(",") if p.strip()]
        if len(items) > 1:
            return _several([parse_licence(p) for p in items], text)
    for candidate in (url, raw):
        m = _CC_URL.search(candidate or "")
        if m:
            return _cc(m.group(2), m.group(3), text, (url or raw).strip())
    low = raw.lower()
    if not low or low in ("unknown", "none", "null", "not stated", "n/a"):
        return Licence("unknown", url, None, None, False, False, text)
    if low in _FLICKR:
        return _cc(_FLICKR[low], None, text, url)
    if low in ("all rights reserved", "all-rights-reserved"):
        return Licence("all-rights-reserved", url, False, False, True, False, text)
    if low in ("united states government work", "us government work"):
        return Licence("US-Government-Work", url, True, True, False, False, text)
    if "imagenet" in low:
        return Licence("imagenet-terms", url or "https://image-net.org/download.php", False, False, True, False, text)
    m = re.fullmatch(r"cc-?(by(?:-(?:nc|nd|sa))*)(?:-(\d\.\d))?", low)
    if m:
        return _cc(m.group(1), m.group(2), text, url)
    if re.fullmatch(r"cc0(-1\.0)?", low):
        return _cc("zero", None, text, url)
    if low in ("pdm", "public domain", "public-domain"):
        return _cc("mark", None, text, url)
    if low in _OTHER_IDS:
        commercial, credit, sa = _OTHER_IDS[low]
        return Licence(low if low.startswith("us-") else _spdx_case(low), url, commercial, True, credit, sa, text)
    spelled = _spelled_out(re.sub(r"\s+", " ", low))
    if spelled is not None:
        return replace(spelled, text=text, url=url or spelled.url)
    # "no known copyright restrictions" (Flickr Commons), "other", "openrail", a licence's prose: cannot say
    return Licence("other", url, None, None, False, False, text)


def _spdx_case(low: str) -> str:
    special = {"apache-2.0": "Apache-2.0", "mit": "MIT", "unlicense": "Unlicense", "wtfpl": "WTFPL"}
    return special.get(low, low.upper() if low.startswith(("bsd", "gpl", "agpl", "lgpl", "odbl", "pddl", "cdla")) else low)


@dataclass(frozen=True)
class LicencePolicy:
    """What `--licence` keeps: `commercial` (commercial use and adaptation allowed), or the licence
    ids in `ids` (a family id such as `CC-BY` matches every version)."""

    commercial: bool
    ids: frozenset[str]
    text: str

    def allows(self, lic: Licence) -> bool:
        """Whether an image under `lic` may enter the negatives."""
        if self.commercial:
            # adaptations too: cutouts and re-encoded images are adaptations, and a trainer's
            # augmentations make more; ND images are left to an explicit --licence list
            return lic.commercial is True and lic.adapt is True
        if lic.parts:                       # rows under several licences: each must be listed
            return all(self.allows(p) for p in lic.parts)
        family = re.sub(r"-\d\.\d$", "", lic.id)
        return lic.id in self.ids or family in self.ids

    def why_not(self, lic: Licence) -> str:
        """One phrase: why `lic` is not allowed (for refusals and rejects rows)."""
        if lic.parts:
            bad = [p for p in lic.parts if not self.allows(p)]
            return (f"licence list {lic.id}: its rows are under several licences and nothing says which row is "
                    f"under which, so it is allowed only if every listed licence is; "
                    + "; ".join(self.why_not(p) for p in bad))
        if self.commercial:
            if lic.commercial is None:
                return (f"licence {lic.text!r} does not say whether commercial use is allowed" if lic.text
                        else "states no licence, so nothing says commercial use is allowed")
            if not lic.commercial:
                return f"licence {lic.id} does not allow commercial use"
            return f"licence {lic.id} does not allow adaptations (ND)"
        return f"licence {lic.id} is not in --licence {self.text}"


def parse_policy(text: str) -> LicencePolicy:
    """`--licence commercial` or `--licence ID[,ID...]` (SPDX-style ids as `Licence.id` gives them,
    any case; `CC-BY` for every version). Raises NegmineError for an id these rules do not read."""
    text = text.strip()
    if text.lower() == "commercial":
        return LicencePolicy(True, frozenset(), text)
    ids = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lic = parse_licence(part)
        if lic.id in ("unknown", "other"):
            raise NegmineError(f"--licence: {part!r} is not a licence id negmine reads; use `commercial` or ids "
                               "such as CC0-1.0, CC-BY-4.0, CC-BY (any version), CC-BY-SA, PDM")
        ids.add(lic.id)
    if not ids:
        raise NegmineError("--licence takes `commercial` or a comma-separated list of licence ids")
    return LicencePolicy(False, frozenset(ids), text)


def licence_fields(text: str | None, url: str | None = None, credit: str | None = None,
                   page_url: str | None = None, title: str | None = None) -> dict:
    """The manifest's licence fields of one image: `licence` (its id, `Licence.id`), `licence_url`,
    `credit` (the author to name), `page_url` (where the work is published) and `title` (the
    work's title, where the pool gives one)."""
    lic = parse_licence(text, url)
    return {"licence": lic.id, "licence_url": lic.url, "credit": credit, "page_url": page_url, "title": title}
