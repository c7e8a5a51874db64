"""Where negmine keeps what it can reuse across runs (pool indexes, image hashes)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$NEGMINE_CACHE, else $XDG_CACHE_HOME/negmine, else ~/.cache/negmine."""
    root = os.environ.get("NEGMINE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "negmine")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
