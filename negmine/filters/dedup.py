"""`negmine dedup`: duplicate groups inside a folder, or images of one folder that duplicate another
(train/val leakage, pool vs positives). Reads only; the report, and the copy holding one image per
group, are written by `negmine.outputs.dedup`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.engine.distribute import make_distributor
from negmine.errors import NegmineError
from negmine.filters.neighbors import nearest, pairs_within
from negmine.filters.overlap import hash_files
from negmine.positives import images_under


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


def find_root(parent: list[int], i: int) -> int:
    """The root of `i` in the union-find forest `parent` (halving the path on the way)."""
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
        ra, rb = find_root(parent, a), find_root(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for k in range(len(ok)):
        members.setdefault(find_root(parent, k), []).append(k)
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
