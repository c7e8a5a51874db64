"""Image cells that hold a path instead of bytes: ``{"bytes": null, "path": "images/x.jpg"}``.

`datasets` writes such cells when a dataset of local image files is saved with `to_parquet`
(nothing embedded), and the Hub's docs describe parquet with an image column pointing at files
stored beside it in the same repo. negmine reads a relative path as a file of the same repo at the
same revision (the commit the parquet was read at; a local folder: under that folder): on the Hub
through `remote.RangeFile` (counted, kept per commit, one resolver request per file). A path that
is not a plain relative path inside the repo (absolute, ``..``, a URL, an fsspec chain such as
``zip://x.jpg::https://...``) is refused in one line saying what the column holds: no rule says
which repo, archive or machine it means.
"""

from __future__ import annotations

import os
import posixpath

from negmine.errors import NegmineError, SourceNotFound


def path_problem(path: str) -> str | None:
    """Why a cell's path is not a file of the repo negmine can read, or None."""
    if "://" in path or "::" in path:
        return "a URL or chained fsspec path"
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return "an absolute path"
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        return "a path outside the repo"
    return None


def refuse(source_id: str, column: str, path: str, why: str) -> SourceNotFound:
    """The one-line refusal for a column of paths negmine does not follow."""
    return SourceNotFound(f"{source_id}: image column {column!r} holds file paths, not image bytes "
                          f"(e.g. {path!r}: {why}); negmine reads paths relative to the repo (images/x.jpg), "
                          "at the same revision, only")


def read_repo_file(base: str, path: str) -> bytes:
    """The bytes of `path` (checked by `path_problem` first) in the repo at `base`
    (``hf://datasets/OWNER/NAME@SHA`` or a local folder). Raises SourceNotFound when it is not
    there; Hub failures as `remote.RangeFile` raises them."""
    rel = posixpath.normpath(path.replace("\\", "/"))
    if base.startswith("hf://"):
        from negmine.sources.remote import RangeFile

        return RangeFile(f"{base.rstrip('/')}/{rel}").read_all()
    try:
        with open(os.path.join(base, *rel.split("/")), "rb") as f:
            return f.read()
    except OSError as exc:
        raise SourceNotFound(f"{rel} does not exist ({exc.strerror or exc})") from None


def read_cell(base: str, path: str, source_id: str, column: str) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, why) for a path cell whose file is missing; a path negmine does not
    follow raises `refuse`'s one-line error (the whole column holds such paths)."""
    why = path_problem(path)
    if why:
        raise refuse(source_id, column, path, why)
    try:
        return read_repo_file(base, path), None
    except SourceNotFound as exc:
        if isinstance(exc, NegmineError) and "does not exist" not in str(exc):
            raise
        return None, f"the image column names {path!r}, which is not in the repo at this revision"
