"""`negmine dedup`: duplicate groups inside a folder, or images of one folder that duplicate another
(train/val leakage, pool vs positives). Reads only; writes a report, and with an output folder a
copy holding one image per group."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.engine.distribute import make_distributor
from negmine.errors import NegmineError
from negmine.filters.neighbors import nearest, pairs_within
from negmine.filters.overlap import hash_files
from negmine.positives import images_under
from negmine.outputs.writers import checked_rel, filesystem, is_url, refuse_out_inside, refuse_whole_bucket


@dataclass
class DedupResult:
    root: Path
    files: list[str]                                     # relative to root, sorted
    groups: list[dict] = field(default_factory=list)     # {"keep", "duplicates": [{"path", "distance"}]}
    leaks: list[dict] = field(default_factory=list)      # {"path", "duplicates", "distance"} (--against)
    skipped: list[dict] = field(default_factory=list)    # {"path", "reason"}
    against: Path | None = None
    content_audit: dict | None = None                    # --content-check: negmine.filters.content.audit_images

    @property
    def dropped(self) -> set[str]:
        return {d["path"] for g in self.groups for d in g["duplicates"]} | {x["path"] for x in self.leaks}

    def summary(self) -> dict:
        return {"folder": str(self.root), "against": str(self.against) if self.against else None,
                "images": len(self.files), "groups": len(self.groups),
                "duplicates": sum(len(g["duplicates"]) for g in self.groups), "leaks": len(self.leaks),
                "skipped": len(self.skipped), "kept": len(self.files) - len(self.dropped) - len(self.skipped)}

    def to_dict(self) -> dict:
        out = {**self.summary(), "duplicate_groups": self.groups, "against_matches": self.leaks,
               "skipped_files": self.skipped}
        if self.content_audit is not None:
            out["content_audit"] = self.content_audit
        return out


def _scan(folder: Path) -> list[Path]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NegmineError(f"{folder} is not a folder")
    return images_under(folder.resolve(), folder.resolve(), follow_symlinks=False)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def find_duplicates(folder: Path, against: Path | None = None, *, kind: str = "phash", radius: int = 10,
                    dihedral: bool = False, workers: int | None = None, progress: bool = True,
                    engine: str = "local", ray_address: str | None = None) -> DedupResult:
    """Duplicate groups in `folder` (or its images that duplicate one of `against`). The hashing
    runs on `engine` (with "ray", on the cluster's workers, which read the files by path: shared
    storage on a cluster); the exact search within `radius` bits runs here (see BENCHMARKS.md for
    the sizes it handles)."""
    root = Path(folder).expanduser().resolve()
    paths = _scan(root)
    other = _scan(Path(against)) if against else []
    distributor = make_distributor(workers, engine, ray_address)
    try:
        hashed = hash_files([str(p) for p in paths + other], kind, dihedral, distributor, progress)
    finally:
        distributor.close()
    result = DedupResult(root, [p.relative_to(root).as_posix() for p in paths],
                         against=Path(against).expanduser().resolve() if against else None)
    ok = []
    for p in paths:
        res = hashed[str(p)]
        if isinstance(res, str):
            result.skipped.append({"path": p.relative_to(root).as_posix(), "reason": res})
        else:
            ok.append((p, res))
    if not ok:
        return result
    ident = np.array([h[0] for _, (h, _) in ok], dtype=np.uint64)
    variants = np.array([x for _, (h, _) in ok for x in h], dtype=np.uint64)
    owner = np.repeat(np.arange(len(ok)), [len(h) for _, (h, _) in ok])
    i, j, _ = pairs_within(ident, variants, radius)
    j = owner[j]
    keep_pair = i != j
    parent = list(range(len(ok)))
    for a, b in zip(i[keep_pair].tolist(), j[keep_pair].tolist()):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for k in range(len(ok)):
        members.setdefault(_find(parent, k), []).append(k)
    rel = [p.relative_to(root).as_posix() for p, _ in ok]
    for group in members.values():
        if len(group) < 2:
            continue
        # keep the largest picture (most pixels); ties by path, so the choice is deterministic
        keep = max(group, key=lambda k: (ok[k][1][1][0] * ok[k][1][1][1], [-ord(ch) for ch in rel[k]]))
        keep_variants = variants[owner == keep]
        dups = [{"path": rel[k], "distance": int(np.bitwise_count(keep_variants ^ ident[k]).min())}
                for k in sorted(group, key=lambda k: rel[k]) if k != keep]
        result.groups.append({"keep": rel[keep], "duplicates": dups})
    result.groups.sort(key=lambda g: g["keep"])
    if other:
        ref = [(p, hashed[str(p)]) for p in other if not isinstance(hashed[str(p)], str)]
        ref_h = np.array([x for _, (h, _) in ref for x in h], dtype=np.uint64)
        ref_owner = np.repeat(np.arange(len(ref)), [len(h) for _, (h, _) in ref])
        dd, jj = nearest(ident, ref_h)
        for k in np.nonzero(dd <= radius)[0].tolist():
            result.leaks.append({"path": rel[k], "duplicates": str(ref[ref_owner[jj[k]]][0]),
                                 "distance": int(dd[k])})
    return result


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
