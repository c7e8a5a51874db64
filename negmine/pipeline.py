"""`negmine sample`: source -> filter -> sample -> transform -> write, one stage per module.

This module only wires the stages together; each stage can be used (and tested) on its own.
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from negmine.progress import bar as progress_bar

from negmine import __version__
from negmine.distribute import make_distributor
from negmine.errors import NegmineError, PoolTooSmall
from negmine.formats import check_class_name, check_format, finalize, push_to_hub, rel_path
from negmine.hashing import DEFAULT_DISTANCE, HASH_KINDS
from negmine.images import (EncodeOptions, ImageRejected, encode, portable_extension,
                            probe_size)
from negmine.manifest import row as manifest_row
from negmine.manifest import sort_rows, write_outputs
from negmine.naming import UniqueNames, safe_name
from negmine.draw import Candidate, draw
from negmine.report import DROP_THUMBNAILS, save_thumbnail, write_report
from negmine.contamination import DEFAULT_MAX_CONTAMINATION
from negmine.overlap import ExactDuplicates, NearDuplicates, hash_files, near_codes, plan_classes
from negmine.positives import Positives, scan_positives
from negmine.sampling import (HUB_READ_RATIO, assign_splits, clustered_order, merge_orders, negatives_needed,
                              parse_split, rng_for, small_index, stratified_order, uniform_order)
from negmine.sources import Source, SourceSpec, open_sources
from negmine.writers import DatasetWriter, Journal, Run, plain_record, run_options, stored_seed
from negmine.cutout import CutoutOptions
from negmine.synthetic import _task as _cutout_task
from negmine.synthetic import annotated_images, image_seed

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
    out: Path
    sources: list[SourceSpec] = field(default_factory=list)
    image_column: str | None = None
    label_column: str | None = None
    ratio: float | None = None
    balanced: bool = False
    count: int | None = None
    allow_short: bool = False
    stratify: bool = True
    max_read_ratio: float | None = None      # None: sampling.HUB_READ_RATIO for Hub parquet, off for local
    split: str = "0.8,0.1,0.1"
    negative_class: str = "other"
    exclude: list[str] = field(default_factory=list)
    auto_exclude: bool = True
    exclude_unmapped: bool = False
    max_contamination: float = DEFAULT_MAX_CONTAMINATION
    content_check: str | None = None          # "clip": score candidates against the positives (negmine.content)
    content_model: str | None = None          # default: negmine.content.DEFAULT_MODEL
    near: float | None = None
    synthetic: float | None = None
    boxes: Path | None = None
    masks: Path | None = None
    box_format: str = "auto"
    cutout_fills: tuple[str, ...] = ("noise",)
    cutout_region: str = "box"
    cutout_margin: str = "0"
    hash: str = "phash"
    hash_distance: int = DEFAULT_DISTANCE
    dihedral: bool = False
    format: str = "imagefolder"
    push_to_hub: str | None = None
    public: bool = False
    link: str = "copy"
    follow_symlinks: bool = False
    quality: int = 95
    max_size: int | None = None
    seed: int | None = None
    workers: int | None = None
    overwrite: bool = False
    report: bool = False
    resume: bool = False
    dry_run: bool = False
    progress: bool = True

    def record(self) -> dict:
        d = plain_record(asdict(self))
        for volatile in ("progress", "resume", "dry_run"):
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
        self.t0 = time.monotonic()

    def _bar(self, **kw):
        return progress_bar(show=self.opts.progress, dynamic_ncols=True, **kw)

    # -- planning -------------------------------------------------------------------------------
    def plan(self) -> dict:
        _release_freed_memory()
        o = self.opts
        self.positives: Positives = scan_positives(o.positives, follow_symlinks=o.follow_symlinks)
        if self.negative_class.lower() in {c.lower() for c in self.positives.classes}:
            raise NegmineError(f"the negative class {self.negative_class!r} is also a positive class; "
                               "choose another with --negative-class")
        self.needed = negatives_needed(self.positives.sizes, ratio=o.ratio, balanced=o.balanced, count=o.count)
        for cls in self.positives.classes:
            check_class_name(cls, o.format)
        self.pos_boxes: dict[str, list] = {}
        self.pos_masks: dict[str, Path] = {}
        self.synthetic_target = 0
        if o.format == "yolo-det" or o.synthetic:
            _, _, self.pos_boxes, self.pos_masks = annotated_images(self.positives.root, o.boxes, o.masks, None,
                                                                    o.box_format)
        if o.synthetic:
            annotated = len({k for k, v in self.pos_boxes.items() if v} | set(self.pos_masks))
            # at most one cutout per annotated positive; what they cannot supply comes from the pool
            self.synthetic_target = min(annotated, int(math.floor(o.synthetic * self.needed + 0.5)))
        self.pool_target = self.needed - self.synthetic_target
        specs = [SourceSpec(s.location, s.split, s.weight, s.image_column or o.image_column,
                            s.label_column or o.label_column) for s in o.sources]
        self.sources: list[Source] = open_sources(specs, o.progress, o.follow_symlinks)
        folders = list(self.positives.labels.values()) if o.auto_exclude else []
        self.classes = plan_classes(self.sources, folders + list(o.exclude), exclude_unmapped=o.exclude_unmapped,
                                    anchors=folders, max_contamination=o.max_contamination)
        self._plan_order()
        _release_freed_memory()
        if self.available < self.pool_target and not o.allow_short:
            raise PoolTooSmall(f"the pool has only {self.available} images after excluding overlapping classes, "
                               f"{self.pool_target} negatives needed from it; add a source, lower --ratio/--count, "
                               "or pass --allow-short", self.available, self.pool_target)
        return self._plan_summary()

    def _plan_order(self) -> None:
        """The priority order over every eligible pool row: per source (and near/far stratum) a
        stratified or uniform order, interleaved by weight."""
        o = self.opts
        self.near_levels: dict[str, int | None] = {}
        orders, weights, nears = [], [], []
        for i, (src, sc) in enumerate(zip(self.sources, self.classes.per_source)):
            ratio = self.read_ratio(src)
            keep = ~np.isin(src.codes, sc.excluded_codes)
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
                    if o.max_read_ratio is None:    # default: never fewer classes than an unclustered draw
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

    def read_ratio(self, src: Source) -> float | None:
        """Clustering applies to sources read by page or row group; by default only to Hub repos,
        where every byte is a download (decided by the spec, so offline and online runs agree), and
        only as far as the draw still reaches as many classes as an unclustered one."""
        if not hasattr(src, "blocks"):
            return None
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
            for name, k in zip(self.split_names, np.bincount(self._positive_splits(cls, len(files)),
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
        plan = {
            "seed": self.seed, "negatives_needed": self.needed, "pool_available": self.available, "io": io,
            "positives": {c: len(f) for c, f in self.positives.classes.items()},
            "splits": splits, "sources": [s.describe() for s in self.sources],
            "draw": {sid: dict(sorted(c.items())) for sid, c in per_source.items()},
            "classes": self.classes.report(),
        }
        expected = self._expected_contaminated(n)
        if expected:
            plan["contamination"] = expected
        if self.opts.synthetic:
            plan["synthetic"] = {"fraction": self.opts.synthetic, "planned": self.synthetic_target,
                                 "annotated_positives": len({k for k, v in self.pos_boxes.items() if v}
                                                            | set(self.pos_masks))}
        if self.opts.near:
            near = sum(1 for s in self.order_stratum[:n].tolist() if self.order_near[s])
            plan["near"] = {"fraction": self.opts.near, "planned": near, "levels": self.near_levels}
        return plan

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

    def _positive_splits(self, cls: str, n: int) -> np.ndarray:
        return assign_splits(n, self.split_fracs, rng_for(self.seed, "split-pos", int(hashlib.sha1(cls.encode()).hexdigest()[:8], 16)))

    # -- execution ------------------------------------------------------------------------------
    def run_key(self) -> dict:
        """What must not change between an interrupted run and its --resume."""
        opts = run_options({**self.opts.record(), "seed": self.seed})
        return {"negmine_version": __version__, "seed": self.seed, "options": opts,
                "sources": [s.describe() for s in self.sources]}

    def execute(self) -> dict:
        distributor = make_distributor(self.opts.workers)
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
        target = self.needed - len(synthetic)
        accepted, dropped = self._draw_negatives(writer, distributor, journal, rows, pos_hashes, target)
        short = len(accepted) < target
        if short and not self.opts.allow_short:
            raise PoolTooSmall(f"only {len(accepted)} usable negatives in the pool after filtering "
                               f"({len(dropped)} rejected), {target} needed; pass --allow-short "
                               "to keep fewer", len(accepted), target)
        rows += synthetic + self._place_negatives(writer, distributor, accepted)
        rejects += syn_rejects + [self._reject_row(c) for c in dropped]
        rows = sort_rows(rows, self.split_names)
        counts: dict[str, dict[str, int]] = {s: {} for s in self.split_names}
        for r in rows:
            counts[r["split"]][r["class"]] = counts[r["split"]].get(r["class"], 0) + 1
        reasons = Counter(r["reason"].split(" (")[0] for r in rejects)
        summary = {
            "negmine_version": __version__, "seed": self.seed, "out": str(writer.out),
            "positives": sum(1 for r in rows if r["role"] == "positive"),
            "negatives": len(accepted) + len(synthetic), "synthetic": len(synthetic),
            "negatives_needed": self.needed, "short": short, "rejected": len(rejects),
            "reject_reasons": dict(sorted(reasons.items())), "counts": counts,
            "near": sum(1 for c in accepted if c.near) if self.opts.near else None,
            "hash": self.hash_kind, "hash_distance": self.opts.hash_distance,
            "sources": [s.describe() for s in self.sources],
        }
        if self.content is not None:
            flagged = [c for c in dropped if c.reason and c.reason.startswith("looks like a positive")]
            summary["content_check"] = {**self.content_info, "flagged": len(flagged),
                                        "scored": sum(1 for c in accepted + dropped if c.content is not None)}
        boxes = {k: [[b.x0, b.y0, b.x1, b.y1, b.label] for b in v] for k, v in self.pos_boxes.items()}
        summary["warnings"] = finalize(self.opts.format, writer, rows, self.split_names, self.negative_class, boxes)
        summary["warnings"] += [n for n in (s.read_note() for s in self.sources if hasattr(s, "read_note")) if n]
        self.rows = rows
        write_outputs(writer, rows, rejects, {**summary, "out": None, "options": self.opts.record(),
                                              "classes": self.classes.report(),
                                              "contamination": self._expected_contaminated(len(accepted))})
        if self.opts.report:
            summary["report"] = write_report(writer.staging, display=writer.out)["html"]
        summary["seconds"] = round(time.monotonic() - self.t0, 2)
        return summary

    def _content_check(self):
        """Load CLIP, build the prompts (positive terms and WordNet neighbour labels) and calibrate the
        threshold on the positives (negmine.content)."""
        from negmine.content import DEFAULT_MODEL, ClipScorer, ContentCheck, neighbour_labels, open_rgb

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
        if self.hash_kind:
            hashed = hash_files([str(f.path) for f in all_files], self.hash_kind, self.opts.dihedral, distributor,
                                self.opts.progress, desc="hashing positives")
        pos_hashes, pos_owner = [], []
        bar = self._bar(total=len(all_files), desc="positives", unit="img")
        for cls, files in self.positives.classes.items():
            splits = self._positive_splits(cls, len(files))
            names = UniqueNames()
            for f, s in zip(files, splits):
                bar.update()
                if f.rel in done:                       # placed before an interruption
                    e = done[f.rel]
                    if e["t"] == "pos-reject":
                        rejects.append(e["row"])
                        continue
                    if writer.path(e["row"]["path"]).exists() or writer.path(e["row"]["path"]).is_symlink():
                        names.take(*_split_suffix(Path(e["row"]["path"]).name))
                        rows.append(e["row"])
                        hashes = hashed[str(f.path)][0] if self.hash_kind else []
                        pos_hashes += hashes
                        pos_owner += [e["row"]["path"]] * len(hashes)
                        continue
                res = hashed[str(f.path)] if self.hash_kind else None
                try:
                    if isinstance(res, str):
                        raise ImageRejected(res)
                    hashes, (width, height) = res if res else ([], probe_size(str(f.path)))
                except ImageRejected as exc:
                    rejects.append({"role": "positive", "source": str(self.positives.root), "file": f.rel,
                                    "reason": str(exc)})
                    journal.append({"t": "pos-reject", "file": f.rel, "row": rejects[-1]})
                    continue
                inner = f.rel.split("/", 1)[-1] if len(self.positives.classes) > 1 or "/" in f.rel else f.rel
                stem = safe_name(str(Path(inner).with_suffix("")))
                suffix = portable_extension(str(f.path))
                if suffix is None:       # re-encoded like the negatives, so no loader reads it differently
                    enc = encode(f.path.read_bytes(), EncodeOptions(self.opts.quality))
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
            elif e is not None and writer.path(e["row"]["path"]).exists():
                names.take(*_split_suffix(Path(e["row"]["path"]).name))
                rows.append(e["row"])
            else:
                queue.append(k)
        fn = partial(_cutout_task, opts=self.cutout_opts, mode="cutout", crop={})
        pos = 0
        while len(rows) < self.synthetic_target and pos < len(queue):
            batch = queue[pos:pos + self.synthetic_target - len(rows)]
            pos += len(batch)
            tasks = [(str(self.positives.root / k), [(b.x0, b.y0, b.x1, b.y1, b.label) for b in self.pos_boxes.get(k, [])],
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
                            "margin": self.cutout_opts.margin}))
                journal.append({"t": "syn", "file": k, "row": rows[-1]})
        return rows, rejects

    def _draw_negatives(self, writer: DatasetWriter, distributor, journal: Journal, positive_rows, pos_hashes,
                        target: int):
        """Walk the planned order; keep the first `target` candidates that pass every filter."""
        filters = [ExactDuplicates({r["sha256"]: r["path"] for r in positive_rows})]
        if self.hash_kind:
            filters.append(NearDuplicates(pos_hashes[0], pos_hashes[1], self.opts.hash_distance))
        if self.content is not None:        # last, so a duplicate is recorded as one; scores a window per batch
            from negmine.content import ContentFilter

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
                save_thumbnail(io.BytesIO(writer.read_scratch(c.tmp)), writer.path(c.thumbnail))

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
            if c.origin.get("row") is None and c.origin.get("file"):   # a file: its own name says most
                stem = safe_name(Path(c.origin["file"]).stem)
            else:
                stem = safe_name(f"{label or 'img'}_{src.short}_{c.origin.get('row', c.row)}")
            c.path = rel_path(self.opts.format, self.split_names[s], self.negative_class, names.take(stem, '.jpg'))
            rows.append(manifest_row(
                path=c.path, split=self.split_names[s], **{"class": self.negative_class}, role="negative",
                source=src.id, revision=src.revision, file=c.origin.get("file"), row=c.origin.get("row"),
                label=label, sha256=c.sha256, width=c.encoded.width, height=c.encoded.height,
                licence=src.licence, reencoded=c.encoded.reencoded, near=c.near,
                hash=f"{c.phash:016x}" if c.phash is not None else None))
            if c.content is not None:
                rows[-1]["content_score"], rows[-1]["content_label"] = c.content
            yield c.tmp, c.path

    def _reject_row(self, c: Candidate) -> dict:
        src = self.sources[c.source]
        row = {"role": "negative", "source": src.id, "revision": src.revision, **c.origin,
               "label": src.label_of(c.row), "reason": c.reason}
        if c.dup_of:
            kind, other, dist = c.dup_of
            row["duplicate_of"] = other if kind == "positive" else other.path
            row["distance"] = dist
        if c.thumbnail:
            row["thumbnail"] = c.thumbnail
        if c.content is not None:
            row["content_score"], row["content_label"] = c.content
        return row


def _split_suffix(name: str) -> tuple[str, str]:
    p = Path(name)
    return p.stem, p.suffix


def run_sample(opts: SampleOptions) -> dict:
    """Library entry point: plan, and unless dry_run, write the dataset. Returns the summary."""
    if opts.resume and opts.seed is None:
        opts.seed = stored_seed(opts.out)
    run = SampleRun(opts)
    plan = run.plan()
    if opts.dry_run:
        return {"dry_run": True, **plan}
    return run.execute()
