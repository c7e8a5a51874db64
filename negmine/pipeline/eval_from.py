"""`sample --eval-from OUT`: a new run scored on the val and test of an earlier one.

The rule (docs/guide/sweeps.md): val and test, positives and negatives, are OUT's, the same files
(hardlinked where the filesystem allows, copied otherwise; negmine.json `eval_from` says which),
with OUT's manifest rows. The new run writes train only: every positive of --positives that is not
in OUT's val/test goes to train, and --ratio/--balanced/--count size the train negatives against
the train positives. Nothing of OUT's val/test may reach train: a positive or a drawn negative with
the same bytes (sha256) as one of them, or a perceptual hash within --hash-distance bits, is left
out with its reason in rejects.jsonl (a positive that is OUT's own val/test image is expected
when the same --positives folder is given, and is said so).

Refused in one line, before any pool is read: OUT not a negmine output (or a sweep folder: give
a member), another --format or negative class, no val/test split in OUT, a val/test file changed
since OUT was written; after the positives are scanned: another class list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from negmine.engine.distribute import make_distributor
from negmine.errors import NegmineError
from negmine.filters.neighbors import nearest_within
from negmine.filters.overlap import hash_files
from negmine.naming import safe_name
from negmine.outputs.manifest import read_jsonl
from negmine.outputs.writers import RUN_RECORD
from negmine.pipeline.contract import RunContext, StageOutput
from negmine.sampling.plan import parse_split


@dataclass(eq=False)
class HeldOut:
    """OUT's val and test: its manifest rows, their files, and what the leakage checks compare
    against (sha256 of each file; perceptual hashes of the new run's kind, `owners[i]` the row path
    of `hashes[i]`)."""

    out: Path
    record: dict
    split_names: tuple[str, ...]
    rows: list[dict]
    sha: dict[str, str] = field(default_factory=dict)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    owners: list[str] = field(default_factory=list)
    link: str = "hardlink"

    @property
    def positive_classes(self) -> set[str]:
        """The positive classes of OUT (its folders' names)."""
        return set(self.record.get("positives_classes") or [])

    def settings_for(self, settings):
        """The run's Settings with OUT's split names and every new image in train."""
        fracs = (1.0,) + (0.0,) * (len(self.split_names) - 1)
        return replace(settings, split_names=self.split_names, split_fracs=fracs)

    def describe(self) -> dict:
        """What negmine.json and the summary say about the held-out splits."""
        counts: dict[str, dict[str, int]] = {}
        for r in self.rows:
            counts.setdefault(r["split"], {}).setdefault(r["class"], 0)
            counts[r["split"]][r["class"]] += 1
        return {"out": str(self.out), "seed": self.record.get("seed"), "split_names": list(self.split_names),
                "splits": list(self.split_names[1:]),
                "counts": counts, "link": self.link,
                # taken from OUT, not written by this run (the summary's positives/negatives are the new ones)
                "positives": sum(1 for r in self.rows if r["role"] == "positive"),
                "negatives": sum(1 for r in self.rows if r["role"] != "positive")}


def load_eval_from(path: Path, fmt: str, negative_class: str) -> HeldOut:
    """Read OUT (`path`) for --eval-from and check it can be the yardstick of a run writing `fmt`
    with the negatives' class `negative_class`; every val/test file is read and its sha256 checked
    against OUT's manifest. Raises NegmineError (one line)."""
    out = Path(path).expanduser().absolute()
    if not (out / RUN_RECORD).is_file() or not (out / "manifest.jsonl").is_file():
        if (out / "sweep.json").is_file():
            raise NegmineError(f"--eval-from {path} is a sweep; give one of its members ({path}/<member>): "
                               "they share val and test")
        raise NegmineError(f"--eval-from {path} is not a negmine output (no {RUN_RECORD} and manifest.jsonl); "
                           "give the folder of an earlier `negmine sample` run")
    try:
        record = json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))
        rows = read_jsonl(out / "manifest.jsonl")
        opts = record["options"]
        names, _ = parse_split(opts["split"])
    except (ValueError, KeyError, TypeError, NegmineError) as exc:
        raise NegmineError(f"--eval-from {path}: cannot read its {RUN_RECORD} or manifest.jsonl ({exc})") from None
    if record.get("eval_from"):          # its val/test came from further back: the split names are the same
        names = tuple(record["eval_from"].get("split_names") or names)
    if opts.get("format") != fmt:
        raise NegmineError(f"--eval-from {path} was written as --format {opts.get('format')}, this run writes "
                           f"--format {fmt}; use the same format")
    theirs = safe_name(opts.get("negative_class") or "other")
    if theirs != negative_class:
        raise NegmineError(f"--eval-from {path} names its negatives {theirs!r}, this run {negative_class!r}; "
                           "use the same --negative-class")
    held = [r for r in rows if r["split"] in names[1:]]
    if not held:
        raise NegmineError(f"--eval-from {path} has no val or test images (--split {opts['split']})")
    record["positives_classes"] = sorted({r["class"] for r in rows if r["role"] == "positive"})
    result = HeldOut(out, record, tuple(names), held)
    for r in held:
        f = out / r["path"]
        try:
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError as exc:
            raise NegmineError(f"--eval-from {path}: cannot read {r['path']} ({exc.strerror})") from None
        if digest != r["sha256"]:
            raise NegmineError(f"--eval-from {path}: {r['path']} changed since it was written (sha256 differs "
                               "from its manifest row); it cannot be the same yardstick")
        result.sha[digest] = r["path"]
    return result


def hash_held_out(held: HeldOut, kind: str | None, dihedral: bool, workers: int | None, engine: str,
                  address: str | None, progress: bool) -> None:
    """Perceptual hashes of OUT's val/test images (`kind`, None: --hash none, only bytes compared),
    as the positives are hashed (`filters.overlap.hash_files`), into `held.hashes`/`held.owners`."""
    if not kind:
        return
    distributor = make_distributor(workers, engine, address)
    try:
        paths = [str(held.out / r["path"]) for r in held.rows]
        got = hash_files(paths, kind, dihedral, distributor, progress, desc="hashing --eval-from val/test")
    finally:
        distributor.close()
    hashes, owners = [], []
    for r, p in zip(held.rows, paths):
        res = got[p]
        if isinstance(res, str):
            raise NegmineError(f"--eval-from {held.out}: cannot hash {r['path']} ({res})")
        hashes += res[0]
        owners += [r["path"]] * len(res[0])
    held.hashes, held.owners = np.array(hashes, dtype=np.uint64), owners


def hold_out_positives(plan) -> None:
    """Check the class list against OUT's, and leave out of `plan.positives` every positive in
    OUT's val/test (same bytes, or hash within --hash-distance: rejects rows with the reason); the
    rest is in train (`plan.pos_split`). Raises NegmineError for another class list, or a class
    left without a train image (unless --allow-missing-classes)."""
    held, pos = plan.held_out, plan.positives
    ours, theirs = set(pos.classes), held.positive_classes
    if ours != theirs:
        only = sorted(ours - theirs)
        missing = sorted(theirs - ours)
        raise NegmineError(f"--eval-from {held.out} has other classes: "
                           + "; ".join(x for x in (f"only here: {', '.join(only)}" if only else "",
                                                   f"only there: {', '.join(missing)}" if missing else "") if x))
    if plan.opts.format == "yolo-det":       # their label files are written from --boxes, as the new ones are
        unboxed = [r["file"] for r in held.rows if r["role"] == "positive" and r["file"] not in plan.pos_boxes]
        if unboxed:
            raise NegmineError(f"--eval-from {held.out}: its val/test positive {unboxed[0]} has no annotation in "
                               f"--boxes ({len(unboxed)} in all); give the --boxes the earlier run had")
    root = str(pos.root)
    for cls, files in list(pos.classes.items()):
        keep = []
        for f in files:
            reason = positive_leak(plan, f)
            if reason is None:
                keep.append(f)
                plan.pos_split[f.rel] = 0
            else:
                plan.pos_rejects.append({"role": "positive", "source": root, "file": f.rel, "reason": reason})
        if not keep and not plan.opts.allow_missing_classes:
            raise NegmineError(f"class {cls!r} has no positive left for train: every one is in the val/test of "
                               f"--eval-from {held.out}; add images, or pass --allow-missing-classes")
        pos.classes[cls] = keep
    plan.pos_rejects.sort(key=lambda r: r["file"])


def positive_leak(plan, f) -> str | None:
    """Why positive `f` may not be in train (it is in OUT's val/test), or None."""
    held = plan.held_out
    digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
    if digest in held.sha:
        return f"in the val/test of --eval-from (same bytes as {held.sha[digest]})"
    hashes = plan.pos_hashed.get(str(f.path), ([], None))[0] if plan.hash_kind else []
    if len(hashes) and len(held.hashes):
        d, j = nearest_within(np.array(hashes, dtype=np.uint64), held.hashes, plan.opts.hash_distance)
        k = int(np.argmin(d))
        if d[k] <= plan.opts.hash_distance:
            return (f"near-duplicate of {held.owners[int(j[k])]} in the val/test of --eval-from "
                    f"(hash distance {int(d[k])})")
    return None


class HeldOutFilter:
    """The draw's filter (interface of `filters.overlap.ExactDuplicates`): a candidate with the bytes
    of one of OUT's val/test images (source or written bytes), or a hash within `radius` bits of one,
    is dropped; its reject row names the image."""

    def __init__(self, held: HeldOut, radius: int):
        self.held, self.radius = held, radius
        self._near: dict = {}

    def prepare(self, cands) -> None:
        live = [c for c in cands if c.reason is None and c.phash is not None]
        self._near = {}
        if live and len(self.held.hashes):
            d, j = nearest_within(np.array([c.phash for c in live], dtype=np.uint64), self.held.hashes, self.radius)
            self._near = {id(live[k]): (int(d[k]), int(j[k])) for k in np.flatnonzero(d <= self.radius).tolist()}

    def check(self, c) -> str | None:
        for digest in (c.file_sha256, c.sha256):
            if digest in self.held.sha:
                c.dup_of = ("positive", self.held.sha[digest], 0)
                return "in the val/test of --eval-from (same bytes)"
        d, j = self._near.get(id(c), (65, -1))
        if d <= self.radius:
            c.dup_of = ("positive", self.held.owners[j], d)
            return f"near-duplicate of an --eval-from val/test image (hash distance {d})"
        return None

    def accept(self, c) -> None:
        pass


class CopyHeldOut:
    """The stage that puts OUT's val/test into the new run: each file under its own path (hardlinked
    where the writer can, else copied), with OUT's manifest row. Runs after the negatives stage, so
    --ratio counts the train positives only and the draw's own filters never see these rows."""

    def run(self, ctx: RunContext) -> StageOutput:
        held = ctx.plan.held_out
        mode = "hardlink" if isinstance(ctx.writer.out, Path) else "copy"
        for r in held.rows:
            if mode == "hardlink":
                try:
                    ctx.writer.place(r["path"], held.out / r["path"], "hardlink")
                    continue
                except NegmineError:          # another device, no hardlinks: copy from here on
                    mode = "copy"
            ctx.writer.place(r["path"], held.out / r["path"], "copy")
        held.link = mode
        return StageOutput([dict(r) for r in held.rows], [])
