"""What `negmine dedup` writes: its report (JSON or CSV), and with an output folder a copy of the
folder holding one image per duplicate group (local, or uploaded to an fsspec URL)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from negmine.errors import NegmineError
from negmine.filters.dedup import DedupResult
from negmine.outputs.writers import checked_rel, filesystem, is_url, refuse_out_inside, refuse_whole_bucket


def _upload_kept(result: DedupResult, out: str, keep: list[str]) -> int:
    fs, root = filesystem(out)
    refuse_whole_bucket(fs, root, out)
    try:
        fs.invalidate_cache()
        if fs.exists(root) and fs.ls(root, detail=False):
            raise NegmineError(f"--out {out} is not empty")
        targets = []
        for rel in keep:
            folder, name = checked_rel(rel)
            targets.append(f"{root}/{folder}/{name}" if folder else f"{root}/{name}")
        if keep:
            try:
                fs.put([str(result.root / rel) for rel in keep], targets)
            except BaseException:
                _remove_all(fs, root)              # it was empty: nothing of the user's goes
                raise
    except NegmineError:
        raise
    except Exception as exc:           # no bucket, no credentials: one line
        raise NegmineError(f"cannot write to {out}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return len(keep)


def _remove_all(fs, root: str, quiet_for: float = 1.0, within: float = 15.0) -> None:
    """Remove everything under `root`, again until nothing has appeared there for `quiet_for`
    seconds: after Ctrl-C, uploads s3fs had already started finish in its own event loop."""
    import time

    deadline, quiet_since = time.monotonic() + within, None
    while time.monotonic() < deadline:
        try:
            fs.invalidate_cache()
            left = fs.find(root)
            if left:
                fs.rm(left)
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_for:
                return
        except Exception:
            pass
        time.sleep(0.2)


def write_report(result: DedupResult, path: Path) -> None:
    """`result` as JSON, or as CSV when `path` ends in .csv: one row per dropped duplicate, leak,
    skipped file and (with --content-check) image that looks like a positive."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["kind", "path", "duplicates", "distance"])
            for g in result.groups:
                for d in g["duplicates"]:
                    w.writerow(["group", d["path"], g["keep"], d["distance"]])
            for x in result.leaks:
                w.writerow(["against", x["path"], x["duplicates"], x["distance"]])
            for x in result.skipped:
                w.writerow(["skipped", x["path"], x["reason"], ""])
            for x in (result.content_audit or {}).get("flagged", []):     # distance column: the score
                w.writerow(["looks-like-a-positive", x["path"], x["content_label"], x["content_score"]])
    else:
        path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")


def copy_kept(result: DedupResult, out: Path | str) -> int:
    """Copy every image that is neither a dropped duplicate nor unreadable; the source is untouched.
    `out`: an empty (or new) local folder, or an fsspec URL (s3://bucket/prefix), where the files are
    uploaded together (s3fs and gcsfs send them concurrently). Returns the number of files copied.
    All or nothing: an interruption or error removes what was copied (`out` was empty), so a partial
    copy is never mistaken for the deduplicated folder."""
    refuse_out_inside(out, [("FOLDER", result.root), ("--against", result.against)])
    drop = result.dropped | {x["path"] for x in result.skipped}
    if is_url(out):
        return _upload_kept(result, str(out), [rel for rel in result.files if rel not in drop])
    out = Path(out).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise NegmineError(f"--out {out} is not empty")
    n = 0
    try:
        for rel in result.files:
            if rel in drop:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.root / rel, target)
            n += 1
    except BaseException:
        for child in out.iterdir() if out.is_dir() else ():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        raise
    return n
