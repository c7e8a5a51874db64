"""`negmine sample`: source -> filter -> sample -> transform -> write, one stage per module.

This module only wires the stages together; each stage can be used (and tested) on its own.
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from negmine.progress import bar as progress_bar

from negmine import __version__
from negmine.engine.distribute import engine_session, make_distributor
from negmine.errors import InterruptedEarly, NegmineError, PoolTooSmall
from negmine.outputs.formats import check_class_name, check_format, finalize, push_to_hub, rel_path
from negmine.filters.hashing import DEFAULT_DISTANCE, HASH_KINDS
from negmine.images import (EncodeOptions, ImageRejected, encode, portable_extension,
                            probe_size)
from negmine.outputs.manifest import row as manifest_row
from negmine.outputs.manifest import sort_rows, write_outputs
from negmine.naming import UniqueNames, safe_name
from negmine.sampling.draw import Candidate, draw, window_size
from negmine.outputs.gallery import save_thumbnail
from negmine.outputs.report import DROP_THUMBNAILS, write_report
from negmine.filters.contamination import DEFAULT_MAX_CONTAMINATION
from negmine.filters.overlap import ExactDuplicates, NearDuplicates, absence_groups, hash_files, near_codes, plan_classes
from negmine.positives import Positives, scan_positives
from negmine.sampling.plan import (HUB_READ_RATIO, assign_group_splits, assign_splits, clustered_order, merge_orders,
                              negatives_needed, parse_split, small_index, stratified_order, uniform_order)
from negmine.seeds import rng_for
from negmine.sources import Source, SourceSpec, budget, open_sources
from negmine.outputs.writers import (DatasetWriter, Journal, Run, check_workers, is_url, plain_record, refuse_local_only, refuse_out_inside,
                             run_options, stored_seed)
from negmine.synthetic.cutout import CutoutOptions
from negmine.synthetic.command import _task as _cutout_task
from negmine.synthetic.command import annotated_images, image_seed
from negmine.filters.unlabelled import say

LINK_MODES = ("copy", "hardlink", "symlink")


def _release_freed_memory() -> None:
    """Hand the planner's freed per-row arrays back to the OS, and keep blocks of 1 MB and more
    (page reads, per-row arrays) in mmap from now on: after the first large free, glibc raises its
    mmap threshold and serves such blocks from a heap it rarely shrinks, so what the draw allocates
    would stack on top of what the planner freed."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
        libc.mallopt(-3, 1 << 20)              # M_MMAP_THRESHOLD (also turns off its dynamic growth)
    except (OSError, AttributeError):          # not glibc: nothing to do
        pass


@dataclass
class SampleOptions:
    positives: Path
    out: Path | str                          # a local folder, or an fsspec URL (s3://bucket/ds, ...)
    sources: list[SourceSpec] = field(default_factory=list)
    image_column: str | None = None
    label_column: str | None = None
    ratio: float | None = None
    balanced: bool = False
    count: int | None = None
    allow_short: bool = False
    stratify: bool = True
    max_read_ratio: float | None = None      # None: sampling.HUB_READ_RATIO for Hub parquet, off for local
    max_download: int | None = None          # bytes the draw may download from the Hub; None: no cap
    hub_rate: str | None = None              # resolver requests per window, "N[/SECONDS]"
    split: str = "0.8,0.1,0.1"
    negative_class: str = "other"
    exclude: list[str] = field(default_factory=list)
    auto_exclude: bool = True
    exclude_unmapped: bool = False
    concepts: dict = field(default_factory=dict)     # --concept: {name: wnid or lemma}
    max_contamination: float = DEFAULT_MAX_CONTAMINATION
    content_check: str | None = None          # "clip": score candidates against the positives (negmine.filters.content)
    content_model: str | None = None          # default: negmine.filters.content.DEFAULT_MODEL
    allow_unlabelled: bool = False            # draw images no label vouches for (negmine.filters.unlabelled), and say so
    verified_absent: bool = False
    near: float | None = None
    synthetic: float | None = None
    boxes: Path | None = None
    masks: Path | None = None
    box_format: str = "auto"
    cutout_fills: tuple[str, ...] = ("noise",)
    cutout_region: str = "box"
    cutout_margin: str = "0"
    unannotated: str = "error"               # yolo-det: a positive without annotation stops the run, or "skip"
    hash: str = "phash"
    hash_distance: int = DEFAULT_DISTANCE
    dihedral: bool = False
    dedup_positives: bool = False            # keep one positive per duplicate group
    allow_missing_classes: bool = False      # write a class too small for every split (ids then differ per split)
    format: str = "imagefolder"
    push_to_hub: str | None = None
    public: bool = False
    link: str = "copy"
    follow_symlinks: bool = False
    quality: int = 95
    max_size: int | None = None
    seed: int | None = None
    workers: int | None = None
    engine: str = "local"                    # "ray": the per-candidate work on Ray tasks (negmine.engine.distribute)
    ray_address: str | None = None           # with engine "ray": the cluster (default $RAY_ADDRESS, else a local Ray)
    overwrite: bool = False
    report: bool = False
    resume: bool = False
    dry_run: bool = False
    progress: bool = True

    def record(self) -> dict:
        d = plain_record(asdict(self))
        # none changes what is written (the engine neither: its output is byte-identical to local)
        for volatile in ("progress", "resume", "dry_run", "hub_rate", "engine", "ray_address"):
            d.pop(volatile)
        return d


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
        if opts.hash not in HASH_KINDS + ("none",):
            raise NegmineError(f"--hash must be one of {', '.join(HASH_KINDS)} or none")
        if not 0 <= opts.hash_distance <= 64:
            raise NegmineError("--hash-distance must be between 0 and 64 bits")
        if opts.near is not None and not 0 <= opts.near <= 1:
            raise NegmineError("--near must be a fraction between 0 and 1")
        if opts.synthetic is not None and not 0 <= opts.synthetic <= 1:
            raise NegmineError("--synthetic must be a fraction between 0 and 1")
        if opts.synthetic and opts.boxes is None and opts.masks is None:
            raise NegmineError("--synthetic needs the objects in the positives: --boxes (COCO/VOC/YOLO/CSV) or --masks")
        self.cutout_opts = CutoutOptions(region=opts.cutout_region, margin=opts.cutout_margin,
                                         fills=tuple(opts.cutout_fills) or ("noise",), quality=opts.quality).validate()
        self.hash_kind = None if opts.hash == "none" else opts.hash
        self.seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
        self.split_names, self.split_fracs = parse_split(opts.split)
        self.negative_class = safe_name(opts.negative_class)
        check_format(opts.format, self.split_names)
        check_class_name(self.negative_class, opts.format)
        if opts.content_check not in (None, "clip"):
            raise NegmineError("--content-check must be 'clip'")
        if opts.format == "yolo-det" and opts.boxes is None:
            raise NegmineError("--format yolo-det needs the positives' boxes: --boxes (COCO/VOC/YOLO/CSV)")
        if opts.seed is not None and opts.seed < 0:
            raise NegmineError(f"--seed must be 0 or more, got {opts.seed}")
        if opts.unannotated not in ("error", "skip"):
            raise NegmineError("--unannotated must be error or skip")
        seen = [(s.location, s.split, s.config) for s in opts.sources]
        if len(set(seen)) < len(seen):
            twice = next(s for s in seen if seen.count(s) > 1)
            raise NegmineError(f"--source {twice[0]} is given twice; give it once (its weight sets its share: "
                               "SPEC?weight=2)")
        if is_url(opts.out):
            refuse_local_only(opts.out, link=opts.link, report=opts.report, push_to_hub=opts.push_to_hub)
            check_workers(opts.out, opts.workers, opts.engine)
        refuse_out_inside(opts.out, [("--positives", opts.positives), ("--boxes", opts.boxes), ("--masks", opts.masks)]
                          + [("--source", s.location) for s in opts.sources])
        self._forced_ratio: float | None = None    # --max-download: clustering past the class-coverage cap
        self.fit_note: str | None = None           # what fitting --max-download cost in classes
        self.t0 = time.monotonic()

    def _bar(self, **kw):
        return progress_bar(show=self.opts.progress, dynamic_ncols=True, **kw)

    # -- planning -------------------------------------------------------------------------------
    def plan(self) -> dict:
        _release_freed_memory()
        o = self.opts
        budget.configure(o.hub_rate)
        self.positives: Positives = scan_positives(o.positives, follow_symlinks=o.follow_symlinks)
        if self.negative_class.lower() in {c.lower() for c in self.positives.classes}:
            raise NegmineError(f"the negative class {self.negative_class!r} is also a positive class; "
                               "choose another with --negative-class")
        for cls in self.positives.classes:
            check_class_name(cls, o.format)
        negatives_needed(self.positives.sizes, ratio=o.ratio, balanced=o.balanced, count=o.count)  # checks options
        self._check_every_split({c: len(f) for c, f in self.positives.classes.items()})   # before any hashing
        # the pool is opened and its labels checked before the positives are hashed, so a pool that
        # cannot be used is refused before any work; `want` (which WebDataset shards are indexed) is
        # counted on the positives found, an upper bound of those written
        specs = [replace(s, image_column=s.image_column or o.image_column, label_column=s.label_column or o.label_column)
                 for s in o.sources]
        self.sources: list[Source] = open_sources(specs, o.progress, o.follow_symlinks, seed=self.seed,
                                                  want=negatives_needed(self.positives.sizes or [0], ratio=o.ratio,
                                                                        balanced=o.balanced, count=o.count))
        folders = list(self.positives.labels.values()) if o.auto_exclude else []
        self.classes = plan_classes(self.sources, folders + list(o.exclude), exclude_unmapped=o.exclude_unmapped,
                                    named=o.concepts, anchors=folders, max_contamination=o.max_contamination)
        if o.progress:                          # said before the draw, not only in the summary
            for note in self.classes.notes():
                print(f"warning: {note}", file=sys.stderr)
        self._plan_unlabelled(specs)
        self._prepare_positives()
        self.pos_boxes: dict[str, list] = {}
        self.pos_masks: dict[str, Path] = {}
        self.left_out: list[dict] = []          # positives not written (yolo-det: no or bad annotation)
        if o.format == "yolo-det" or o.synthetic:
            ann = annotated_images(self.positives.root, o.boxes, o.masks, None, o.box_format)
            self.pos_boxes, self.pos_masks = ann.boxes, ann.masks
            if o.format == "yolo-det":
                self._leave_out_unlabelled(ann.invalid)
            else:                               # still positives; only their cutouts are impossible
                self.left_out = [{"role": "synthetic", "source": str(self.positives.root), "file": k, "reason": r}
                                 for k, r in sorted(ann.invalid.items())]
        # counted on the positives that will be written (unreadable ones, dropped duplicates and, for
        # yolo-det, unannotated ones are not)
        self.needed = negatives_needed(self.positives.sizes or [0], ratio=o.ratio, balanced=o.balanced, count=o.count)
        self._check_negative_class(self.needed)
        self.synthetic_target = 0
        if o.synthetic:
            annotated = len({k for k, v in self.pos_boxes.items() if v} | set(self.pos_masks))
            # at most one cutout per annotated positive; what they cannot supply comes from the pool
            self.synthetic_target = min(annotated, int(math.floor(o.synthetic * self.needed + 0.5)))
        self.pool_target = self.needed - self.synthetic_target
        self._plan_verified_absent()
        self._plan_order()
        if o.max_download is not None:
            self._fit_download(o.max_download)
        _release_freed_memory()
        if self.available < self.pool_target and not o.allow_short:
            raise PoolTooSmall(f"the pool has only {self.available} images after excluding overlapping classes, "
                               f"{self.pool_target} negatives needed from it; add a source, lower --ratio/--count, "
                               "or pass --allow-short", self.available, self.pool_target)
        return self._plan_summary()

    def _leave_out_unlabelled(self, invalid: dict[str, str]) -> None:
        """A detector takes an image without label lines for a background, so a positive is written
        only when its annotation says what is in it (an explicitly empty one: a true background).
        Unannotated positives stop the run unless --unannotated skip; images with a bad box or
        frame (`objects.resolve`) are left out. Both are recorded in rejects.jsonl."""
        files = [f for fs in self.positives.classes.values() for f in fs]
        missing = [f.rel for f in files if f.rel not in self.pos_boxes and f.rel not in invalid]
        if missing and self.opts.unannotated == "error":
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise NegmineError(f"{len(missing)} positives have no annotation in --boxes ({', '.join(missing[:5])}{more}); "
                               "a detector would learn them as backgrounds. Annotate them (an empty label file "
                               "means 'no object'), or leave them out with --unannotated skip")
        reasons = {**{k: "positive has no annotation (--unannotated skip)" for k in missing}, **invalid}
        for cls, fs in list(self.positives.classes.items()):
            self.positives.classes[cls] = [f for f in fs if f.rel not in reasons]
            if not self.positives.classes[cls]:
                del self.positives.classes[cls]
        if not self.positives.classes:
            raise NegmineError("no positive is left with a usable annotation (see the reasons with --unannotated skip)"
                               if missing else f"no positive is left with a usable annotation: {next(iter(invalid.values()))}")
        self.left_out = [{"role": "positive", "source": str(self.positives.root), "file": k, "reason": r}
                         for k, r in sorted(reasons.items())]

    def _plan_unlabelled(self, specs: list[SourceSpec]) -> None:
        """Refuse a source none of whose images carries a label, leave the unlabelled rows of the
        others out of the draw, or (--allow-unlabelled, ?unlabelled=allow, --content-check) keep them
        and warn (negmine.filters.unlabelled). Sets `unlabelled` (per source: UnlabelledRows or None),
        `unlabelled_masks` (rows left out, or None) and `unlabelled_estimate`; an imagefolder image
        no metadata record names, left out, gets a rejects.jsonl row. Raises UnlabelledPool."""
        from negmine.sources import ImageFolderSource
        from negmine.filters.unlabelled import check_sources, expected_share

        allowed = [self.opts.allow_unlabelled or s.unlabelled == "allow" for s in specs]
        self.unlabelled, self.unlabelled_masks = check_sources(self.sources, allowed, bool(self.opts.content_check))
        self.unlabelled_estimate = (expected_share(self.classes.concepts, self.classes.unmapped_terms)
                                    if any(u is not None and u.drawn for u in self.unlabelled) else None)
        self.unlabelled_rejects = []
        for src, u in zip(self.sources, self.unlabelled):
            if u is not None and not u.drawn and isinstance(src, ImageFolderSource):
                self.unlabelled_rejects += [
                    {"role": "negative", "source": src.id, "revision": src.revision, **src.origin(r), "label": None,
                     "reason": "no metadata record: not in the dataset as `datasets` reads it (--allow-unlabelled "
                               "draws it)"} for r in src.unlisted]

    def unlabelled_lines(self, taken: list | None = None) -> tuple[list[str], list[str]]:
        """(warnings: unlabelled images the draw takes, with the expected contamination; notes:
        unlabelled images left out). `taken`: the Candidates written; None: the rows the plan draws."""
        from negmine.filters.unlabelled import left_out_line, unlabelled_mask, warning

        warns, notes = [], []
        for i, u in enumerate(self.unlabelled):
            if u is None:
                continue
            if not u.drawn:
                notes.append(left_out_line(u))
                continue
            if taken is None:
                n = min(self.pool_target, self.available)
                rows = self.order_row[:n][self.order_src[:n] == i]
            else:
                rows = np.array([c.row for c in taken if c.source == i], dtype=np.int64)
            count = int(unlabelled_mask(self.sources[i])[rows].sum())
            warns.append(warning(u, self.unlabelled_estimate, count, "planned" if taken is None else "written"))
        return warns, notes

    def _links_lines(self) -> list[str]:
        """One line per pool folder whose links out of it were skipped (the plan and the run alike)."""
        from negmine.sources.folder import links_line

        return [links_line(s.id, s.skipped_links) for s in self.sources if getattr(s, "skipped_links", None)]

    def _plan_verified_absent(self) -> None:
        """`--verified-absent`: per source, the groups of classes whose confirmed absence verifies
        each positive concept (`overlap.absence_groups`). Sets `self.verified` ({source id:
        {"verified": terms, "cannot_verify": terms}}) and `self.absence` (per source, the groups
        every drawn row must pass: None without the flag). Raises NegmineError when no source can
        verify any positive concept."""
        self.verified: dict[str, dict] = {}
        self.absence: list = [None] * len(self.sources)
        if not self.opts.verified_absent:
            return
        terms = [c.term for c in self.classes.concepts] + list(self.classes.unmapped_terms)
        for i, (src, sc) in enumerate(zip(self.sources, self.classes.per_source)):
            groups = absence_groups(self.classes, sc) if src.absent_offsets is not None else {}
            ok = [t for t in terms if groups.get(t) and all(len(g) for g in groups[t])]
            self.absence[i] = [g for t in ok for g in groups[t]]
            self.verified[src.id] = {"verified": ok, "cannot_verify": [t for t in terms if t not in ok],
                                     "confirmed_absent_labels": src.absent_offsets is not None}
        if not any(v["verified"] for v in self.verified.values()):
            why = "; ".join(f"{sid}: " + ("records no label confirmed absent (confidence 0)"
                                          if not v["confirmed_absent_labels"] else
                                          f"has no label verifying {', '.join(v['cannot_verify'])}")
                            for sid, v in self.verified.items())
            raise NegmineError(f"--verified-absent: no source can verify that a positive concept is absent ({why})")

    def _plan_order(self) -> None:
        """The priority order over every eligible pool row: per source (and near/far stratum) a
        stratified or uniform order, interleaved by weight."""
        o = self.opts
        self.near_levels: dict[str, int | None] = {}
        orders, weights, nears = [], [], []
        for i, (src, sc) in enumerate(zip(self.sources, self.classes.per_source)):
            ratio = self.read_ratio(src)
            keep = ~src.rows_with_any(sc.excluded_codes)     # multi-label: an image goes for any label
            if self.unlabelled_masks[i] is not None:             # no label vouches for them
                keep &= ~self.unlabelled_masks[i]
            if self.absence[i] is not None:                      # --verified-absent: a person said so
                keep &= src.rows_verified_absent(self.absence[i])
            eligible = None if keep.all() else small_index(np.flatnonzero(keep))   # None: every row
            del keep
            strata = [(eligible, src.weight, None)]
            if o.near:
                if eligible is None:
                    eligible = small_index(np.arange(len(src.codes)))
                want = math.ceil(self.needed * o.near * src.weight / sum(s.weight for s in self.sources))
                codes, level = near_codes(sc.verdicts, src.codes, eligible, want)
                self.near_levels[src.id] = level
                is_near = np.isin(src.codes[eligible], codes)
                strata = [(eligible[is_near], src.weight * o.near, True),
                          (eligible[~is_near], src.weight * (1 - o.near), False)]
            for k, (rows, weight, near) in enumerate(strata):
                if weight <= 0:
                    continue
                rng = rng_for(self.seed, "draw", i, k)
                codes = src.codes if rows is None else src.codes[rows]
                local = stratified_order(codes, rng) if o.stratify else uniform_order(len(codes), rng)
                order = local if rows is None else rows[local]
                del local
                if ratio:
                    cap = None
                    if o.max_read_ratio is None and not self._forced_ratio:
                        # default: never fewer classes than an unclustered draw
                        want = math.ceil(self.pool_target * weight / sum(s.weight for s in self.sources))
                        cap = want // max(1, len(np.unique(codes)))
                    order = clustered_order(order, *src.blocks(), ratio, cap)
                del codes
                orders.append(order)
                weights.append(weight)
                nears.append((i, near))
        stratum, self.order_row = merge_orders(orders, weights)
        source_of = np.array([nears[s][0] for s in range(len(nears))], np.int16 if len(nears) < 2**15 else np.int32)
        self.order_src = stratum if len(nears) <= 1 else source_of[stratum]   # one stratum: all zeros already
        self.order_near = [nears[s][1] for s in range(len(nears))]
        self.order_stratum = stratum
        self.available = len(self.order_row)

    def _download(self) -> dict:
        """What the planned draw would download from the Hub (bytes, range and resolver requests):
        the pages or row groups of its first window of candidates."""
        n = min(window_size(self.pool_target, self.sources), self.available)
        total = {"bytes": 0, "requests": 0, "resolver_requests": 0}
        for i, src in enumerate(self.sources):
            if hasattr(src, "download_estimate"):
                est = src.download_estimate(self.order_row[:n][self.order_src[:n] == i])
                for k in total:
                    total[k] += est[k]
        return total

    def _fit_download(self, cap: int) -> None:
        """`--max-download`: cluster the draw more (more rows from each page or row group read,
        even if that reaches fewer classes) until what it downloads fits, or say what it needs."""
        need = self._download()["bytes"]
        before = self._classes_drawn()
        for ratio in (HUB_READ_RATIO, 3.0, 2.0, 1.5, 1.0):
            if need <= cap:
                break
            self._forced_ratio = ratio
            self._plan_order()
            need = self._download()["bytes"]
        if need <= cap:
            after = self._classes_drawn()
            if after < before:
                self.fit_note = (f"--max-download {_size(cap)}: the draw takes more rows from each page or row group "
                                 f"it reads (--max-read-ratio {ratio:g}) and reaches {after} source classes instead "
                                 f"of {before}")
            return
        raise NegmineError(f"the draw would download {_size(need)} from the Hub even taking every row of each "
                           f"page or row group it reads, over --max-download {_size(cap)}; raise "
                           "--max-download, or ask for fewer negatives")

    def _classes_drawn(self) -> int:
        """Distinct (source, class) pairs among the rows the draw plans to keep."""
        n = min(self.pool_target, self.available)
        pairs = set()
        for i, src in enumerate(self.sources):
            pairs.update((i, c) for c in np.unique(src.codes[self.order_row[:n][self.order_src[:n] == i]]).tolist())
        return len(pairs)

    def read_ratio(self, src: Source) -> float | None:
        """Clustering applies to sources read by page or row group; by default only to Hub repos,
        where every byte is a download (decided by the spec, so offline and online runs agree), and
        only as far as the draw still reaches as many classes as an unclustered one."""
        if not hasattr(src, "blocks"):
            return None
        if self._forced_ratio and src.downloads:
            return self._forced_ratio
        r = self.opts.max_read_ratio
        if r is None:
            return HUB_READ_RATIO if src.revision else None
        return r or None

    def _plan_summary(self) -> dict:
        n = min(self.pool_target, self.available)
        per_source: dict[str, Counter] = {}
        for s, r in zip(self.order_src[:n].tolist(), self.order_row[:n].tolist()):
            src = self.sources[s]
            per_source.setdefault(src.id, Counter())[src.label_of(r) or "(unlabelled)"] += 1
        splits = {name: {} for name in self.split_names}
        for cls, files in self.positives.classes.items():
            for name, k in zip(self.split_names, np.bincount([self.pos_split[f.rel] for f in files],
                                                            minlength=len(self.split_names))):
                splits[name][cls] = int(k)
        neg_splits = assign_splits(n + self.synthetic_target, self.split_fracs, rng_for(self.seed, "split-neg"))
        for name, k in zip(self.split_names, np.bincount(neg_splits, minlength=len(self.split_names))):
            splits[name][self.negative_class] = int(k)
        io = {}
        for i, src in enumerate(self.sources):
            if hasattr(src, "read_estimate"):
                rows = self.order_row[:n][self.order_src[:n] == i]
                read, total = src.read_estimate(rows)
                io[src.id] = {"image_bytes_to_read": read, "pool_image_bytes": total, "remote": src._remote,
                              "note": src.read_note(),
                              "image_bytes_drawn_estimate": int(total / max(1, len(src)) * len(rows)),
                              "max_read_ratio": self.read_ratio(src)}
                if src.downloads and hasattr(src, "download_estimate"):
                    w = min(window_size(self.pool_target, self.sources), self.available)
                    est = src.download_estimate(self.order_row[:w][self.order_src[:w] == i])
                    io[src.id].update(download_bytes=est["bytes"], download_requests=est["requests"],
                                      resolver_requests=est["resolver_requests"],
                                      min_seconds=budget.min_seconds(est["resolver_requests"]))
        plan = {
            "seed": self.seed, "negatives_needed": self.needed, "pool_available": self.available, "io": io,
            "positives": {c: len(f) for c, f in self.positives.classes.items()},
            "splits": splits, "sources": [s.describe() for s in self.sources],
            "draw": {sid: dict(sorted(c.items())) for sid, c in per_source.items()},
            "classes": self.classes.report(),
            "duplicate_positives": self.pos_groups, "skipped_positives": self.pos_rejects,
        }
        if budget.used() is not None:
            plan["hub_planning"] = budget.used()
        plan["notes"] = [n for n in (s.partial_note() for s in self.sources) if n] + (
            [self.fit_note] if self.fit_note else [])
        warns, notes = self.unlabelled_lines()
        say(warns, self.opts.progress)
        plan["notes"] += notes + self._links_lines()
        plan["warnings"] = warns
        plan["unlabelled"] = [u.as_dict() for u in self.unlabelled if u is not None]
        if self.unlabelled_estimate:
            plan["unlabelled_contamination"] = self.unlabelled_estimate
        expected = self._expected_contaminated(n)
        if expected:
            plan["contamination"] = expected
        if self.opts.synthetic:
            plan["synthetic"] = {"fraction": self.opts.synthetic, "planned": self.synthetic_target,
                                 "annotated_positives": len({k for k, v in self.pos_boxes.items() if v}
                                                            | set(self.pos_masks))}
        coverage = self._label_coverage(n)
        if coverage:
            plan["label_coverage"] = coverage
        if self.opts.verified_absent:
            plan["verified_absent"] = self.verified
        if self.opts.near:
            near = sum(1 for s in self.order_stratum[:n].tolist() if self.order_near[s])
            plan["near"] = {"fraction": self.opts.near, "planned": near, "levels": self.near_levels}
        return plan

    def _label_coverage(self, n: int) -> dict:
        """Multi-label sources: how much of the vocabulary the first `n` planned rows reach, as
        strata (each image's rarest label, what the draw spreads over) and as labels carried."""
        out = {}
        for i, src in enumerate(self.sources):
            if not src.multi_label:
                continue
            rows = self.order_row[:n][self.order_src[:n] == i]
            pool = self.order_row[self.order_src == i]
            carried = [src.label_codes[src.label_offsets[r]:src.label_offsets[r + 1]] for r in rows.tolist()]
            out[src.id] = {"rule": "each image's stratum is its rarest label in the pool",
                           "strata_drawn": int(len(np.unique(src.codes[rows][src.codes[rows] >= 0]))),
                           "strata_eligible": int(len(np.unique(src.codes[pool][src.codes[pool] >= 0]))),
                           "labels_drawn": int(len(np.unique(np.concatenate(carried)))) if carried else 0,
                           "labels_in_pool": len(src.classes)}
        return out

    def _check_every_split(self, sizes: dict[str, int], distinct: dict[str, int] | None = None,
                           missing: dict[str, list[str]] | None = None) -> None:
        """Every class needs an image in every split with a fraction > 0: loaders that list classes
        per split folder (torchvision, Keras, datasets' imagefolder) number them per split, so a
        class missing from one shifts the ids of the others there. Raises NegmineError naming the
        class and the count it needs, unless --allow-missing-classes. `distinct`: images per class
        once duplicates are grouped; `missing`: splits an assignment left without the class."""
        if self.opts.allow_missing_classes or self.opts.format == "yolo-det":   # yolo-det: ids from data.yaml
            return
        wanted = sum(f > 0 for f in self.split_fracs)
        for cls, n in sizes.items():
            units = n if distinct is None else distinct[cls]
            lost = (missing or {}).get(cls)
            if units < wanted or lost:
                grouped = "" if distinct is None or units == n else f" ({units} once duplicates are grouped)"
                where = f", none in {', '.join(lost)}" if lost else ""
                raise NegmineError(f"class {cls!r} has {n} usable images{grouped}{where}; every split of --split "
                                   f"{self.opts.split} needs one, so it needs at least {wanted} distinct images: "
                                   "add images, change --split, or pass --allow-missing-classes")

    def _check_negative_class(self, needed: int) -> None:
        wanted = sum(f > 0 for f in self.split_fracs)
        if 0 < needed < wanted and not self.opts.allow_missing_classes and self.opts.format != "yolo-det":
            raise NegmineError(f"class {self.negative_class!r} (the negatives) would have {needed} images; every "
                               f"split of --split {self.opts.split} needs one, so it needs at least {wanted}: raise "
                               "--ratio or --count, change --split, or pass --allow-missing-classes")

    def _prepare_positives(self) -> None:
        """Decide, before anything is written, which positives are used and their splits.

        Sets `pos_hashed` (path -> (hashes, (w, h))), `pos_rejects` (reject rows: skipped files,
        unreadable images, duplicates dropped by --dedup-positives), `pos_groups` (the duplicate
        groups: same file bytes, or perceptual hashes within --hash-distance bits, counting the
        rotations/flips with --dihedral) and `pos_split` (file -> split index). The members of a
        group share a split, also across classes, so no picture is both trained and tested on."""
        o, pos = self.opts, self.positives
        root = str(pos.root)
        self.pos_rejects = [{"role": "positive", "source": root, "file": x["file"], "reason": x["reason"],
                             "skipped": True} for x in pos.skipped]
        files = [f for fs in pos.classes.values() for f in fs]
        if self.hash_kind:
            distributor = make_distributor(o.workers, o.engine, o.ray_address)
            try:
                self.pos_hashed = hash_files([str(f.path) for f in files], self.hash_kind, o.dihedral, distributor,
                                             o.progress, desc="hashing positives")
            finally:
                distributor.close()
        else:
            self.pos_hashed = {}
            for f in files:
                try:
                    self.pos_hashed[str(f.path)] = ([], probe_size(str(f.path)))
                except ImageRejected as exc:
                    self.pos_hashed[str(f.path)] = str(exc)
        ok = []
        for f in files:
            res = self.pos_hashed[str(f.path)]
            if isinstance(res, str):
                self.pos_rejects.append({"role": "positive", "source": root, "file": f.rel, "reason": res})
            else:
                ok.append(f)
        group = _duplicate_groups(ok, self.pos_hashed, self.opts.hash_distance if self.hash_kind else None)
        members: dict[int, list] = {}
        for f in ok:
            members.setdefault(group[f.rel], []).append(f)
        dups = sorted((sorted(m, key=lambda f: f.rel) for m in members.values() if len(m) > 1),
                      key=lambda m: m[0].rel)
        cls_of = {f.rel: c for c, fs in pos.classes.items() for f in fs}
        self.pos_groups = [{"files": [f.rel for f in m], "classes": sorted({cls_of[f.rel] for f in m})} for m in dups]
        drop = set()
        if o.dedup_positives:
            for g, m in zip(self.pos_groups, dups):
                # keep the largest picture (most pixels); ties by path, as `negmine dedup` does
                size = {f.rel: self.pos_hashed[str(f.path)][1] for f in m}
                keep = min(m, key=lambda f: (-size[f.rel][0] * size[f.rel][1], f.rel)).rel
                g["kept"] = keep
                for f in m:
                    if f.rel != keep:
                        drop.add(f.rel)
                        self.pos_rejects.append({"role": "positive", "source": root, "file": f.rel,
                                                 "reason": f"duplicate of the positive {keep} (--dedup-positives)"})
        usable = {f.rel for f in ok} - drop
        before = {c: [f for f in fs if f.rel in usable] for c, fs in pos.classes.items()}
        pos.classes = {c: fs for c, fs in before.items() if fs or not o.allow_missing_classes}
        self.pos_rejects.sort(key=lambda r: r["file"])
        fixed: dict[int, int] = {}
        self.pos_split: dict[str, int] = {}
        missing, distinct = {}, {}
        for cls, fs in pos.classes.items():
            gids = [group[f.rel] for f in fs]
            distinct[cls] = len(set(gids))
            rng = rng_for(self.seed, "split-pos", int(hashlib.sha1(cls.encode()).hexdigest()[:8], 16))
            splits = assign_group_splits(gids, self.split_fracs, rng, {g: fixed[g] for g in gids if g in fixed})
            for f, g, sp in zip(fs, gids, splits.tolist()):
                self.pos_split[f.rel] = sp
                fixed[g] = sp
            missing[cls] = [self.split_names[i] for i, frac in enumerate(self.split_fracs)
                            if frac > 0 and i not in set(splits.tolist())]
        self._check_every_split({c: len(fs) for c, fs in pos.classes.items()}, distinct, missing)

    def _expected_contaminated(self, n: int) -> dict | None:
        """Negatives expected to show a positive among the `n` drawn from the pool, before and after
        the co-occurrence exclusions (overlap.ClassPlan.expected_contaminated; sources share `n` by
        weight, --near strata ignored). None when no source has ImageNet-1k classes."""
        per = [(sc, src.weight) for src, sc in zip(self.sources, self.classes.per_source) if sc.contamination]
        if not per:
            return None
        total = sum(s.weight for s in self.sources)
        out = {"negatives": n, "taxonomy_only": 0.0, "with_prior": 0.0,
               "max_contamination": self.classes.max_contamination}
        for sc, weight in per:
            e = self.classes.expected_contaminated(sc, round(n * weight / total), self.opts.stratify)
            out["taxonomy_only"] = round(out["taxonomy_only"] + e["taxonomy_only"], 2)
            out["with_prior"] = round(out["with_prior"] + e["with_prior"], 2)
        return out

    # -- execution ------------------------------------------------------------------------------
    def run_key(self) -> dict:
        """What must not change between an interrupted run and its --resume."""
        opts = run_options({**self.opts.record(), "seed": self.seed})
        return {"negmine_version": __version__, "seed": self.seed, "options": opts,
                "sources": [s.describe() for s in self.sources]}

    def execute(self) -> dict:
        distributor = make_distributor(self.opts.workers, self.opts.engine, self.opts.ray_address)
        try:
            with Run(self.opts.out, self.run_key(), overwrite=self.opts.overwrite, resume=self.opts.resume) as run:
                summary = self._execute(run.writer, distributor, run.journal)
                run.journal.close()
                run.writer.publish()
        finally:
            distributor.close()
        if self.opts.push_to_hub:
            summary["pushed"] = push_to_hub(run.writer.out, self.opts.push_to_hub, summary, self.rows,
                                            private=not self.opts.public)
        return summary

    def _execute(self, writer: DatasetWriter, distributor, journal: Journal) -> dict:
        self.neg_names = UniqueNames()          # synthetic and pool negatives share the class folder
        rows, rejects, pos_hashes = self._write_positives(writer, distributor, journal)
        self.content = self._content_check() if self.opts.content_check else None
        synthetic, syn_rejects = self._make_synthetic(writer, distributor, journal, rows)
        written = Counter(r["class"] for r in rows)
        # --ratio and --balanced count the positives written: a positive that failed to encode is not one
        self.needed = negatives_needed([written[c] for c in self.positives.classes] or [0], ratio=self.opts.ratio,
                                       balanced=self.opts.balanced, count=self.opts.count)
        target = self.needed - len(synthetic)
        accepted, dropped = self._draw_negatives(writer, distributor, journal, rows, pos_hashes, target)
        short = len(accepted) < target
        if short and not self.opts.allow_short:
            raise PoolTooSmall(f"only {len(accepted)} usable negatives in the pool after filtering "
                               f"({len(dropped)} rejected), {target} needed; pass --allow-short "
                               "to keep fewer", len(accepted), target)
        rows += synthetic + self._place_negatives(writer, distributor, accepted)
        rejects += self.left_out + self.unlabelled_rejects + syn_rejects + [self._reject_row(c) for c in dropped]
        rows = sort_rows(rows, self.split_names)
        counts: dict[str, dict[str, int]] = {s: {} for s in self.split_names}
        for r in rows:
            counts[r["split"]][r["class"]] = counts[r["split"]].get(r["class"], 0) + 1
        reasons = Counter(r["reason"].split(" (")[0] for r in rejects)
        summary = {
            "negmine_version": __version__, "seed": self.seed, "out": str(writer.out),
            "positives": sum(1 for r in rows if r["role"] == "positive"),
            "negatives": len(accepted) + len(synthetic), "synthetic": len(synthetic),
            "negatives_needed": self.needed, "short": short,
            "rejected": sum(1 for r in rejects if not r.get("skipped")),
            "reject_reasons": dict(sorted(reasons.items())), "counts": counts,
            "near": sum(1 for c in accepted if c.near) if self.opts.near else None,
            "hash": self.hash_kind, "hash_distance": self.opts.hash_distance,
            "sources": [s.describe() for s in self.sources],
            "skipped": sum(1 for r in rejects if r.get("skipped")),
            "duplicate_positives": self._groups_with_splits(rows),
            "excluded_classes": {sc.source.id: [sum(v.excluded for v in sc.verdicts), len(sc.verdicts)]
                                 for sc in self.classes.per_source},
        }
        if budget.used() is not None:
            summary["hub"] = budget.used()
        if self.content is not None:
            flagged = [c for c in dropped if c.reason and c.reason.startswith("looks like a positive")]
            summary["content_check"] = {**self.content_info, "flagged": len(flagged),
                                        "scored": sum(1 for c in accepted + dropped if c.content is not None)}
        boxes = {k: [[b.x0, b.y0, b.x1, b.y1, b.label] for b in v] for k, v in self.pos_boxes.items()}
        summary["warnings"] = finalize(self.opts.format, writer, rows, self.split_names, self.negative_class, boxes)
        summary["warnings"] += [n for n in (s.read_note() for s in self.sources if hasattr(s, "read_note")) if n]
        summary["warnings"] += [n for n in (s.partial_note() for s in self.sources) if n]
        summary["warnings"] += [self.fit_note] if self.fit_note else []
        summary["warnings"] += self.unlabelled_lines(accepted)[0] + self._links_lines()
        summary["unlabelled"] = [u.as_dict() for u in self.unlabelled if u is not None]
        summary["warnings"] += self.classes.notes()
        self.rows = rows
        write_outputs(writer, rows, rejects, {**summary, "out": None, "options": self.opts.record(),
                                              "classes": self.classes.report(),
                                              "contamination": self._expected_contaminated(len(accepted)),
                                              **({"unlabelled_contamination": self.unlabelled_estimate}
                                                 if self.unlabelled_estimate else {}),
                                              **({"verified_absent": self.verified} if self.opts.verified_absent else {})})
        if self.opts.report:
            summary["report"] = write_report(writer.staging, display=writer.out)["html"]
        summary["seconds"] = round(time.monotonic() - self.t0, 2)
        return summary

    def _content_check(self):
        """Load CLIP, build the prompts (positive terms and WordNet neighbour labels) and calibrate the
        threshold on the positives (negmine.filters.content)."""
        from negmine.filters.content import DEFAULT_MODEL, ClipScorer, ContentCheck, neighbour_labels, open_rgb

        name = self.opts.content_model or DEFAULT_MODEL
        terms = list(dict.fromkeys(list(self.positives.labels.values()) + list(self.opts.exclude)))
        check = ContentCheck(ClipScorer.load(name), terms, neighbour_labels(terms))
        images = [im for im in (open_rgb(f.path) for files in self.positives.classes.values() for f in files)
                  if im is not None]
        self.content_info = {"model": name, "prompts": len(check.labels), "terms": terms,
                             **check.calibrate(images)}
        return check

    def _write_positives(self, writer: DatasetWriter, distributor, journal: Journal):
        """Hash (one decode each, in parallel, cached) and place the positives."""
        rows, rejects = [], []
        done = {e["file"]: e for e in journal.entries if e["t"] in ("pos", "pos-reject")}
        all_files = [f for files in self.positives.classes.values() for f in files]
        hashed = self.pos_hashed                        # hashed while planning (splits follow duplicates)
        rejects += self.pos_rejects
        pos_hashes, pos_owner = [], []
        bar = self._bar(total=len(all_files), desc="positives", unit="img")
        for cls, files in self.positives.classes.items():
            splits = [self.pos_split[f.rel] for f in files]
            names = UniqueNames()
            for f, s in zip(files, splits):
                bar.update()
                if f.rel in done:                       # placed before an interruption
                    e = done[f.rel]
                    if e["t"] == "pos-reject":
                        rejects.append(e["row"])
                        continue
                    if writer.exists(e["row"]["path"]):
                        names.take(*_split_suffix(Path(e["row"]["path"]).name))
                        rows.append(e["row"])
                        hashes = hashed[str(f.path)][0] if self.hash_kind else []
                        pos_hashes += hashes
                        pos_owner += [e["row"]["path"]] * len(hashes)
                        continue
                try:
                    hashes, (width, height) = hashed[str(f.path)]
                    suffix = portable_extension(str(f.path))
                    if suffix is None:   # re-encoded like the negatives, so no loader reads it differently
                        enc = encode(f.path.read_bytes(), EncodeOptions(self.opts.quality))
                except ImageRejected as exc:
                    rejects.append({"role": "positive", "source": str(self.positives.root), "file": f.rel,
                                    "reason": str(exc)})
                    journal.append({"t": "pos-reject", "file": f.rel, "row": rejects[-1]})
                    continue
                inner = f.rel.split("/", 1)[-1] if len(self.positives.classes) > 1 or "/" in f.rel else f.rel
                stem = safe_name(str(Path(inner).with_suffix("")))
                if suffix is None:
                    rel = rel_path(self.opts.format, self.split_names[s], cls, names.take(stem, '.jpg'))
                    writer.write_bytes(rel, enc.data)
                    digest, (width, height) = hashlib.sha256(enc.data).hexdigest(), (enc.width, enc.height)
                else:
                    rel = rel_path(self.opts.format, self.split_names[s], cls, names.take(stem, suffix))
                    writer.place(rel, f.path, self.opts.link)
                    digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
                pos_hashes += hashes
                pos_owner += [rel] * len(hashes)
                rows.append(manifest_row(
                    path=rel, split=self.split_names[s], **{"class": cls}, role="positive",
                    source=str(self.positives.root), file=f.rel, label=self.positives.labels[cls],
                    sha256=digest, width=width, height=height, reencoded=suffix is None,
                    hash=f"{hashes[0]:016x}" if hashes else None))
                journal.append({"t": "pos", "file": f.rel, "row": rows[-1]})
        bar.close()
        return rows, rejects, (np.array(pos_hashes, dtype=np.uint64), pos_owner)

    def _make_synthetic(self, writer: DatasetWriter, distributor, journal: Journal, positive_rows):
        """Cutouts of annotated positives in a seeded order, each in its source image's split (no scene
        crosses splits); a positive that cannot be cut is skipped and the next one is used."""
        if not self.synthetic_target:
            return [], []
        done = {e["file"]: e for e in journal.entries if e["t"] in ("syn", "syn-reject")}
        pos_row = {r["file"]: r for r in positive_rows}
        keys = sorted(k for k in pos_row if self.pos_boxes.get(k) or k in self.pos_masks)
        order = [keys[i] for i in rng_for(self.seed, "synthetic").permutation(len(keys))]
        rows, rejects, names, queue = [], [], self.neg_names, []
        for k in order:
            e = done.get(k)
            if e is not None and e["t"] == "syn-reject":
                rejects.append(e["row"])
            elif e is not None and writer.exists(e["row"]["path"]):
                names.take(*_split_suffix(Path(e["row"]["path"]).name))
                rows.append(e["row"])
            else:
                queue.append(k)
        fn = partial(_cutout_task, opts=self.cutout_opts, mode="cutout", crop={})
        pos = 0
        while len(rows) < self.synthetic_target and pos < len(queue):
            batch = queue[pos:pos + self.synthetic_target - len(rows)]
            pos += len(batch)
            tasks = [(str(self.positives.root / k), self.pos_boxes.get(k, []),
                      self.pos_masks.get(k), image_seed(self.seed, k)) for k in batch]
            for k, result in zip(batch, distributor.imap(fn, tasks)):
                if isinstance(result, str):
                    rejects.append({"role": "synthetic", "source": str(self.positives.root), "file": k,
                                    "reason": result})
                    journal.append({"t": "syn-reject", "file": k, "row": rejects[-1]})
                    continue
                c, split = result[0], pos_row[k]["split"]
                rel = rel_path(self.opts.format, split, self.negative_class,
                               names.take(safe_name(Path(k).stem + '_' + c.fill), '.jpg'))
                writer.write_bytes(rel, c.data)
                rows.append(manifest_row(
                    path=rel, split=split, **{"class": self.negative_class}, role="negative",
                    source=str(self.positives.root), file=k, label=pos_row[k]["label"],
                    sha256=hashlib.sha256(c.data).hexdigest(), width=c.width, height=c.height, reencoded=True,
                    cutout={"boxes": c.boxes, "region": c.region, "fill": c.fill, "seed": c.seed,
                            "margin": self.cutout_opts.margin, "region_area": c.region_area}))
                journal.append({"t": "syn", "file": k, "row": rows[-1]})
        return rows, rejects

    def _draw_negatives(self, writer: DatasetWriter, distributor, journal: Journal, positive_rows, pos_hashes,
                        target: int):
        """Walk the planned order; keep the first `target` candidates that pass every filter."""
        filters = [ExactDuplicates({r["sha256"]: r["path"] for r in positive_rows})]
        if self.hash_kind:
            filters.append(NearDuplicates(pos_hashes[0], pos_hashes[1], self.opts.hash_distance))
        if self.content is not None:        # last, so a duplicate is recorded as one; scores a window per batch
            from negmine.filters.content import ContentFilter

            filters.append(ContentFilter(self.content, lambda c: writer.read_scratch(c.tmp)))

        def candidate(p: int) -> Candidate:
            return Candidate(p, int(self.order_src[p]), int(self.order_row[p]),
                             near=self.order_near[int(self.order_stratum[p])])

        kept_thumbs = [sum(1 for e in journal.entries if e["t"] == "drop" and e.get("thumb"))]

        def on_drop(c: Candidate) -> None:
            # a few thumbnails of dropped duplicates, so the report can show them beside their twin
            flagged = (c.reason or "").startswith("looks like a positive")
            if (c.dup_of or flagged) and c.tmp and kept_thumbs[0] < DROP_THUMBNAILS:
                kept_thumbs[0] += 1
                c.thumbnail = f"report/drops/{c.priority}.jpg"
                thumb = io.BytesIO()
                save_thumbnail(io.BytesIO(writer.read_scratch(c.tmp)), thumb)
                writer.write_bytes(c.thumbnail, thumb.getvalue())

        with self._bar(total=target, desc="negatives", unit="img") as bar:
            return draw(candidate, self.available, target, self.sources, filters, writer, distributor,
                        EncodeOptions(self.opts.quality, self.opts.max_size), self.hash_kind, journal, bar, on_drop)

    def _place_negatives(self, writer: DatasetWriter, distributor, accepted: list[Candidate]) -> list[dict]:
        """Give kept negatives their split and final name, and write them out of scratch; splits
        are exact even when short."""
        splits = assign_splits(len(accepted), self.split_fracs, rng_for(self.seed, "split-neg"))
        rows: list[dict] = []
        writer.place_scratch(self._negative_rows(accepted, splits, rows), distributor)
        writer.clear_scratch()
        return rows

    def _negative_rows(self, accepted: list[Candidate], splits: np.ndarray, rows: list[dict]):
        """Name each kept negative and add its manifest row; yields (scratch ref, path) to write."""
        names = self.neg_names
        for c, s in zip(accepted, splits):
            src = self.sources[c.source]
            label = src.label_of(c.row)
            named = c.origin.get("member") or c.origin.get("file")   # a tar or zip member: its own name
            if c.origin.get("row") is None and named:                 # a file: its own name says most
                stem = safe_name(Path(named).stem)
            else:
                stem = safe_name(f"{label or 'img'}_{src.short}_{c.origin.get('row', c.row)}")
            c.path = rel_path(self.opts.format, self.split_names[s], self.negative_class, names.take(stem, '.jpg'))
            rows.append(manifest_row(
                path=c.path, split=self.split_names[s], **{"class": self.negative_class}, role="negative",
                source=src.id, revision=src.revision, file=c.origin.get("file"), row=c.origin.get("row"),
                member=c.origin.get("member"),
                label=label, sha256=c.sha256, width=c.encoded.width, height=c.encoded.height,
                licence=src.licence, reencoded=c.encoded.reencoded, near=c.near,
                hash=f"{c.phash:016x}" if c.phash is not None else None,
                labels=src.labels_of(c.row), verified_absent=self._verification(c)))
            if c.content is not None:
                rows[-1]["content_score"], rows[-1]["content_label"] = c.content
            yield c.tmp, c.path

    def _verification(self, c: Candidate) -> dict | None:
        """--verified-absent: the positive concepts a rater confirmed absent from this negative,
        and the pool's confirmed-absent labels that say so."""
        groups = self.absence[c.source]
        if groups is None:
            return None
        src = self.sources[c.source]
        wanted = {src.classes[k] for g in groups for k in g.tolist()}
        return {"concepts": self.verified[src.id]["verified"],
                "absent_labels": [x for x in src.absent_labels_of(c.row) if x in wanted]}

    def _reject_row(self, c: Candidate) -> dict:
        src = self.sources[c.source]
        row = {"role": "negative", "source": src.id, "revision": src.revision, **c.origin,
               "label": src.label_of(c.row), "reason": c.reason}
        if src.multi_label:
            row["labels"] = src.labels_of(c.row)
        if c.dup_of:
            kind, other, dist = c.dup_of
            row["duplicate_of"] = other if kind == "positive" else other.path
            row["distance"] = dist
        if c.thumbnail:
            row["thumbnail"] = c.thumbnail
        if c.content is not None:
            row["content_score"], row["content_label"] = c.content
        return row


    def _groups_with_splits(self, rows: list[dict]) -> list[dict]:
        """The duplicate groups of the positives, each with the split its members went to."""
        split_of = {r["file"]: r["split"] for r in rows if r["role"] == "positive"}
        return [{**g, "split": next((split_of[f] for f in g["files"] if f in split_of), None)} for g in self.pos_groups]


def _duplicate_groups(files: list, hashed: dict, radius: int | None) -> dict[str, int]:
    """Group id of each positive (by its `rel`): equal for files with the same bytes, or, with a
    `radius`, perceptual hashes within `radius` bits (any of a file's dihedral variants counts), and
    joined transitively (union-find, as `negmine dedup` groups)."""
    from negmine.filters.dedup import _find
    from negmine.filters.neighbors import pairs_within

    parent = list(range(len(files)))

    def union(a: int, b: int) -> None:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for k, f in enumerate(files):
        digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
        union(first.setdefault(digest, k), k)
    if radius is not None and files:
        hashes = [hashed[str(f.path)][0] for f in files]
        ident = np.array([h[0] for h in hashes], dtype=np.uint64)
        variants = np.array([x for h in hashes for x in h], dtype=np.uint64)
        owner = np.repeat(np.arange(len(files)), [len(h) for h in hashes])
        i, j, _ = pairs_within(ident, variants, radius)
        for a, b in zip(i.tolist(), owner[j].tolist()):
            if a != b:
                union(a, b)
    return {f.rel: _find(parent, k) for k, f in enumerate(files)}


def _size(n: float) -> str:
    """Bytes for people: decimal units, 3 significant digits (as --max-download reads them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"


def _split_suffix(name: str) -> tuple[str, str]:
    p = Path(name)
    return p.stem, p.suffix


def run_sample(opts: SampleOptions) -> dict:
    """Library entry point: plan, and unless dry_run, write the dataset. Returns the summary."""
    if opts.resume and opts.seed is None:
        opts.seed = stored_seed(opts.out)
    # one engine for the whole run: hashing the positives and the draw share a Ray (started once)
    with engine_session(opts.engine, opts.workers, opts.ray_address):
        run = SampleRun(opts)
        try:
            plan = run.plan()
        except KeyboardInterrupt:
            raise InterruptedEarly(f"interrupted while planning, before anything was written: run the same command "
                                   f"again (with --seed {run.seed} to draw the same); --resume has nothing to resume"
                                   ) from None
        if opts.dry_run:
            return {"dry_run": True, **plan}
        return run.execute()
