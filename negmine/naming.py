"""Safe, deterministic file and folder names from data (labels, file names).

Nothing derived from data may contain a path separator, start with a dot, be a reserved device
name on Windows, or be longer than a file system allows; the result is joined under --out only
after going through `safe_name`, so it can never escape it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_STEM = 80


def safe_name(text: str, *, fallback: str = "unnamed", max_len: int = MAX_STEM) -> str:
    """Map any string to a portable name made of ``[A-Za-z0-9._+-]``.

    Accents are folded (NFKD), everything else unsafe becomes ``_``. Long names are cut and get a
    short digest of the full text, so two long names that share a prefix stay distinct.
    """
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE.sub("_", folded).strip("._ -")
    name = re.sub(r"_+", "_", name)
    if not name:
        name = fallback
    if name.split(".")[0].lower() in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > max_len:
        digest = hashlib.sha1(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = name[: max_len - 9].rstrip("._-") + "-" + digest
    return name


class UniqueNames:
    """Hands out names that are unique ignoring case (macOS/Windows file systems fold case)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, stem: str, suffix: str = "") -> str:
        candidate, n = stem, 1
        while (candidate + suffix).lower() in self._taken:
            n += 1
            candidate = f"{stem}-{n}"
        self._taken.add((candidate + suffix).lower())
        return candidate + suffix
