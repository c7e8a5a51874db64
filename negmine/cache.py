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


class HashCache:
    """Hashes of files keyed by (real path, size, mtime, hash settings): a second run over the
    same positives decodes nothing. SQLite from the standard library: safe across processes."""

    def __init__(self, settings: str):
        import sqlite3

        self.settings = settings
        self.db = sqlite3.connect(cache_dir() / "hashes.sqlite", timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, value TEXT)")

    def _key(self, path: str) -> str:
        st = os.stat(path)
        return f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{self.settings}"

    def get(self, paths: list[str]) -> dict[str, str]:
        keys = {self._key(p): p for p in paths}
        found = {}
        items = list(keys)
        for i in range(0, len(items), 500):
            chunk = items[i:i + 500]
            q = f"SELECT key, value FROM hashes WHERE key IN ({','.join('?' * len(chunk))})"
            for key, value in self.db.execute(q, chunk):
                found[keys[key]] = value
        return found

    def put(self, values: dict[str, str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?)",
                                [(self._key(p), v) for p, v in values.items()])

    def close(self) -> None:
        self.db.close()
