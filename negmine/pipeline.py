"""`negmine sample`: source -> filter -> sample -> transform -> write, one stage per module.

This module only wires the stages together; each stage can be used (and tested) on its own.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from negmine import __version__
from negmine.distribute import make_distributor
from negmine.errors import NegmineError, PoolTooSmall
from negmine.images import EncodeOptions, Encoded, ImageRejected, encode_or_reason, probe_size
from negmine.manifest import row as manifest_row
from negmine.manifest import sort_rows, write_json, write_jsonl
from negmine.naming import UniqueNames, safe_name
from negmine.positives import Positives, scan_positives
from negmine.sampling import (assign_splits, merge_orders, negatives_needed, parse_split, rng_for,
                              stratified_order, uniform_order)
from negmine.sources import Source, SourceSpec, open_sources
from negmine.writers import RUN_RECORD, DatasetWriter

LINK_MODES = ("copy", "hardlink", "symlink")


@dataclass
class SampleOptions:
    positives: Path
    out: Path
    sources: list[SourceSpec] = field(default_factory=list)
    image_column: str | None = None
    label_column: str | None = None
    ratio: float | None = None
    balanced: bool = False
    count: int | None = None
    allow_short: bool = False
    stratify: bool = True
    split: str = "0.8,0.1,0.1"
    negative_class: str = "other"
    link: str = "copy"
    quality: int = 95
    max_size: int | None = None
    seed: int | None = None
    workers: int | None = None
    overwrite: bool = False
    dry_run: bool = False
    progress: bool = True

    def record(self) -> dict:
        d = asdict(self)
        d["positives"], d["out"] = str(self.positives), str(self.out)
        d["sources"] = [asdict(s) for s in self.sources]
        d.pop("progress")
        return d


@dataclass
class Candidate:
    """A drawn pool row on its way through the transform and filter stages."""

    priority: int
    source: int
    row: int
    origin: dict = field(default_factory=dict)
    encoded: Encoded | None = None
    file_sha256: str | None = None
    reason: str | None = None
    tmp: str | None = None
    sha256: str | None = None       # of the bytes written


# Image-level filters: return a reason to drop the candidate, or None; called in priority order.
ImageFilter = Callable[[Candidate], "str | None"]


def _exact_duplicates(positive_shas: set[str]) -> ImageFilter:
    seen: set[str] = set()

    def check(c: Candidate) -> str | None:
        if c.file_sha256 in positive_shas:
            return "exact copy of a positive image file"
        if c.encoded.pixel_sha256 in seen:
            return "exact duplicate of an earlier negative (same pixels)"
        seen.add(c.encoded.pixel_sha256)
        return None

    return check


def _encode_item(data: bytes, opts: EncodeOptions) -> tuple[Encoded | str, str]:
    return encode_or_reason(data, opts), hashlib.sha256(data).hexdigest()


class SampleRun:
    """One `sample` run. `plan()` does everything up to the draw; `execute()` writes the dataset."""

    def __init__(self, opts: SampleOptions):
        self.opts = opts
        if opts.link not in LINK_MODES:
            raise NegmineError(f"--link must be one of {', '.join(LINK_MODES)}")
        if not 1 <= opts.quality <= 100:
            raise NegmineError("--quality must be between 1 and 100")
        if opts.max_size is not None and opts.max_size < 1:
            raise NegmineError("--max-size must be a positive number of pixels")
        self.seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
        self.split_names, self.split_fracs = parse_split(opts.split)
        self.negative_class = safe_name(opts.negative_class)
        self.t0 = time.monotonic()

    def _bar(self, **kw):
        return tqdm(disable=not self.opts.progress or None, dynamic_ncols=True, **kw)

    # -- planning -------------------------------------------------------------------------------
    def plan(self) -> dict:
        o = self.opts
        self.positives: Positives = scan_positives(o.positives)
        if self.negative_class.lower() in {c.lower() for c in self.positives.classes}:
            raise NegmineError(f"the negative class {self.negative_class!r} is also a positive class; "
                               "choose another with --negative-class")
        self.needed = negatives_needed(self.positives.sizes, ratio=o.ratio, balanced=o.balanced, count=o.count)
        specs = [SourceSpec(s.location, s.split, s.weight, s.image_column or o.image_column,
                            s.label_column or o.label_column) for s in o.sources]
        self.sources: list[Source] = open_sources(specs, o.progress)
        orders = []
        for i, src in enumerate(self.sources):
            eligible = np.arange(len(src), dtype=np.int64)   # class-level filters narrow this (overlap removal)
            rng = rng_for(self.seed, "draw", i)
            local = stratified_order(src.codes[eligible], rng) if o.stratify else uniform_order(len(eligible), rng)
            orders.append(eligible[local])
        self.order_src, self.order_row = merge_orders(orders, [s.weight for s in self.sources])
        self.available = len(self.order_row)
        if self.available < self.needed and not o.allow_short:
            raise PoolTooSmall(f"the pool has only {self.available} images, {self.needed} negatives needed; "
                               "add a source, lower --ratio/--count, or pass --allow-short",
                               self.available, self.needed)
        return self._plan_summary()

    def _plan_summary(self) -> dict:
        n = min(self.needed, self.available)
        per_source: dict[str, Counter] = {}
        for s, r in zip(self.order_src[:n].tolist(), self.order_row[:n].tolist()):
            src = self.sources[s]
            per_source.setdefault(src.id, Counter())[src.label_of(r) or "(unlabelled)"] += 1
        splits = {name: {} for name in self.split_names}
        for cls, files in self.positives.classes.items():
            for name, k in zip(self.split_names, np.bincount(self._positive_splits(cls, len(files)),
                                                            minlength=len(self.split_names))):
                splits[name][cls] = int(k)
        for name, k in zip(self.split_names, np.bincount(assign_splits(n, self.split_fracs, rng_for(self.seed, "split-neg")),
                                                        minlength=len(self.split_names))):
            splits[name][self.negative_class] = int(k)
        return {
            "seed": self.seed, "negatives_needed": self.needed, "pool_available": self.available,
            "positives": {c: len(f) for c, f in self.positives.classes.items()},
            "splits": splits, "sources": [s.describe() for s in self.sources],
            "draw": {sid: dict(sorted(c.items())) for sid, c in per_source.items()},
        }

    def _positive_splits(self, cls: str, n: int) -> np.ndarray:
        return assign_splits(n, self.split_fracs, rng_for(self.seed, "split-pos", int(hashlib.sha1(cls.encode()).hexdigest()[:8], 16)))

    # -- execution ------------------------------------------------------------------------------
    def execute(self) -> dict:
        writer = DatasetWriter(self.opts.out, overwrite=self.opts.overwrite)
        try:
            summary = self._execute(writer)
            writer.publish()
        except BaseException:
            writer.abort()
            raise
        return summary

    def _execute(self, writer: DatasetWriter) -> dict:
        rows, rejects = self._write_positives(writer)
        accepted, neg_rejects = self._draw_negatives(writer)
        rejects += neg_rejects
        short = len(accepted) < self.needed
        if short and not self.opts.allow_short:
            raise PoolTooSmall(f"only {len(accepted)} usable negatives in the pool after filtering "
                               f"({len(neg_rejects)} rejected), {self.needed} needed; pass --allow-short "
                               "to keep fewer", len(accepted), self.needed)
        rows += self._place_negatives(writer, accepted)
        rows = sort_rows(rows, self.split_names)
        counts: dict[str, dict[str, int]] = {s: {} for s in self.split_names}
        for r in rows:
            counts[r["split"]][r["class"]] = counts[r["split"]].get(r["class"], 0) + 1
        summary = {
            "negmine_version": __version__, "seed": self.seed, "out": str(writer.out),
            "positives": self.positives.total, "negatives": len(accepted), "negatives_needed": self.needed,
            "short": short, "rejected": len(rejects), "counts": counts,
            "sources": [s.describe() for s in self.sources],
        }
        write_jsonl(writer.path("manifest.jsonl"), rows)
        write_jsonl(writer.path("rejects.jsonl"), rejects)
        write_json(writer.path(RUN_RECORD), {**summary, "out": None, "options": self.opts.record()})
        summary["seconds"] = round(time.monotonic() - self.t0, 2)
        return summary

    def _write_positives(self, writer: DatasetWriter) -> tuple[list[dict], list[dict]]:
        rows, rejects = [], []
        bar = self._bar(total=self.positives.total, desc="positives", unit="img")
        for cls, files in self.positives.classes.items():
            splits = self._positive_splits(cls, len(files))
            names = UniqueNames()
            for f, s in zip(files, splits):
                bar.update()
                try:
                    width, height = probe_size(str(f.path))
                except ImageRejected as exc:
                    rejects.append({"role": "positive", "source": str(self.positives.root), "file": f.rel,
                                    "reason": str(exc)})
                    continue
                stem = safe_name(Path(f.rel).with_suffix("").as_posix().split("/", 1)[-1] if "/" in f.rel
                                 else Path(f.rel).stem)
                rel = f"{self.split_names[s]}/{cls}/{names.take(stem, f.path.suffix.lower())}"
                writer.place(rel, f.path, self.opts.link)
                rows.append(manifest_row(
                    path=rel, split=self.split_names[s], **{"class": cls}, role="positive",
                    source=str(self.positives.root), file=f.rel, label=self.positives.labels[cls],
                    sha256=hashlib.sha256(f.path.read_bytes()).hexdigest(), width=width, height=height))
        bar.close()
        return rows, rejects

    def _draw_negatives(self, writer: DatasetWriter) -> tuple[list[Candidate], list[dict]]:
        """Walk the planned order in windows; keep the first candidates that pass every filter."""
        opts = EncodeOptions(self.opts.quality, self.opts.max_size)
        filters: list[ImageFilter] = [_exact_duplicates(self.positives.sha256s())]
        accepted: list[Candidate] = []
        rejects: list[dict] = []
        pos = 0
        distributor = make_distributor(self.opts.workers)
        bar = self._bar(total=self.needed, desc="negatives", unit="img")
        try:
            while len(accepted) < self.needed and pos < self.available:
                need = self.needed - len(accepted)
                window = range(pos, min(self.available, pos + math.ceil(need * 1.05) + 8))
                pos = window.stop
                for c in self._transform(window, writer, distributor, opts):
                    # Priority order: what is kept never depends on how the work was batched.
                    if c.reason is None and len(accepted) >= self.needed:
                        writer.path(c.tmp).unlink(missing_ok=True)   # surplus of the window's margin
                        continue
                    for check in filters if c.reason is None else ():
                        c.reason = check(c)
                        if c.reason:
                            break
                    if c.reason is None:
                        accepted.append(c)
                        bar.update()
                        continue
                    if c.tmp:
                        writer.path(c.tmp).unlink(missing_ok=True)
                    src = self.sources[c.source]
                    rejects.append({"role": "negative", "source": src.id, "revision": src.revision,
                                    **c.origin, "label": src.label_of(c.row), "reason": c.reason})
        finally:
            distributor.close()
            bar.close()
        return accepted, rejects

    def _transform(self, window: range, writer: DatasetWriter, distributor, opts: EncodeOptions) -> list[Candidate]:
        """Read one window in storage order (each shard row group once) and encode it to temp files."""
        cands = {(int(self.order_src[p]), int(self.order_row[p])): Candidate(p, int(self.order_src[p]), int(self.order_row[p]))
                 for p in window}
        todo = []

        def items():
            for s, src in enumerate(self.sources):
                rows = [r for (si, r) in cands if si == s]
                if not rows:
                    continue
                for item in src.read(rows):
                    c = cands[(s, item.row)]
                    c.origin = item.origin
                    if item.data is None:
                        c.reason = item.error or "no image data"
                        continue
                    todo.append(c)
                    yield item.data

        for k, (result, file_sha) in enumerate(distributor.imap(partial(_encode_item, opts=opts), items())):
            c = todo[k]
            c.file_sha256 = file_sha
            if isinstance(result, str):
                c.reason = result
                continue
            c.tmp = f".work/{c.priority}.jpg"
            writer.write_bytes(c.tmp, result.data)
            c.encoded = Encoded(b"", result.width, result.height, result.pixel_sha256, result.reencoded)
            c.sha256 = hashlib.sha256(result.data).hexdigest()
        return sorted(cands.values(), key=lambda c: c.priority)

    def _place_negatives(self, writer: DatasetWriter, accepted: list[Candidate]) -> list[dict]:
        """Give kept negatives their split and final name; splits are exact even when short."""
        splits = assign_splits(len(accepted), self.split_fracs, rng_for(self.seed, "split-neg"))
        names = UniqueNames()
        rows = []
        for c, s in zip(accepted, splits):
            src = self.sources[c.source]
            label = src.label_of(c.row)
            if c.origin.get("row") is None and c.origin.get("file"):   # a file: its own name says most
                stem = safe_name(Path(c.origin["file"]).stem)
            else:
                stem = safe_name(f"{label or 'img'}_{src.short}_{c.origin.get('row', c.row)}")
            rel = f"{self.split_names[s]}/{self.negative_class}/{names.take(stem, '.jpg')}"
            writer.move(c.tmp, rel)
            rows.append(manifest_row(
                path=rel, split=self.split_names[s], **{"class": self.negative_class}, role="negative",
                source=src.id, revision=src.revision, file=c.origin.get("file"), row=c.origin.get("row"),
                label=label, sha256=c.sha256, width=c.encoded.width, height=c.encoded.height,
                licence=src.licence, reencoded=c.encoded.reencoded))
        work = writer.staging / ".work"
        if work.exists():
            for leftover in work.iterdir():
                leftover.unlink()
            work.rmdir()
        return rows


def run_sample(opts: SampleOptions) -> dict:
    """Library entry point: plan, and unless dry_run, write the dataset. Returns the summary."""
    run = SampleRun(opts)
    plan = run.plan()
    if opts.dry_run:
        return {"dry_run": True, **plan}
    return run.execute()
