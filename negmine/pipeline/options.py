"""The options of `negmine sample` (`SampleOptions`) and their checks (`check_options`): every
option is checked here, before anything is read, so a bad command line costs nothing."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from negmine.errors import NegmineError
from negmine.filters.contamination import DEFAULT_MAX_CONTAMINATION
from negmine.filters.hashing import DEFAULT_DISTANCE, HASH_KINDS
from negmine.outputs.formats import check_class_name, check_format
from negmine.naming import safe_name
from negmine.outputs.writers import check_workers, is_url, plain_record, refuse_local_only, refuse_out_inside
from negmine.licences import parse_policy
from negmine.sampling.plan import parse_split
from negmine.sources import SourceSpec
from negmine.synthetic.cutout import CutoutOptions
from negmine.synthetic.shortcuts import DEFAULT_FILLS

LINK_MODES = ("copy", "hardlink", "symlink")


@dataclass
class SampleOptions:
    """Everything `negmine sample` is told (one field per CLI option; see `negmine sample --help`)."""

    positives: Path
    out: Path | str                          # a local folder, or an fsspec URL (s3://bucket/ds, ...)
    sources: list[SourceSpec] = field(default_factory=list)
    image_column: str | None = None
    label_column: str | None = None
    text_column: str | None = None           # text columns read as nouns (negmine.sources.text), comma-separated
    ratio: float | list[float] | None = None  # a list: a sweep (pipeline.sweep)
    balanced: bool = False
    count: int | list[int] | None = None      # a list: a sweep
    allow_short: bool = False
    stratify: bool = True
    max_read_ratio: float | None = None      # None: sampling.HUB_READ_RATIO for Hub parquet, off for local
    max_download: int | None = None          # bytes the draw may download from the Hub; None: no cap
    hub_rate: str | None = None              # resolver requests per window, "N[/SECONDS]"
    split: str = "0.8,0.1,0.1"
    negative_class: str = "other"
    exclude: list[str] = field(default_factory=list)
    auto_exclude: bool = True
    allow_unmapped: bool = False             # draw pool classes WordNet cannot place (warned)
    concepts: dict = field(default_factory=dict)     # --concept: {name: wnid or lemma}
    max_contamination: float = DEFAULT_MAX_CONTAMINATION
    content_check: str | None = None          # "clip": score candidates against the positives (negmine.filters.content)
    content_model: str | None = None          # default: negmine.filters.content.DEFAULT_MODEL
    allow_unlabelled: bool = False            # draw images no label vouches for (negmine.filters.unlabelled), and say so
    verified_absent: bool = False
    licence: str | None = None               # --licence: "commercial" or licence ids (negmine.licences)
    near: float | None = None
    synthetic: float | None = None
    boxes: Path | None = None
    masks: Path | None = None
    box_format: str = "auto"
    cutout_fills: tuple[str, ...] = DEFAULT_FILLS     # chosen by bench/shortcut.py (synthetic.shortcuts)
    cutout_region: str = "box"
    cutout_margin: str = "0"
    unannotated: str = "error"               # yolo-det: a positive without annotation stops the run, or "skip"
    hash: str = "phash"
    hash_distance: int = DEFAULT_DISTANCE
    dihedral: bool = False
    dedup_positives: bool = False            # keep one positive per duplicate group
    allow_missing_classes: bool = False      # write a class too small for every split (ids then differ per split)
    eval_from: Path | None = None            # val/test of this earlier output (pipeline.eval_from); train drawn anew
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
        """The options as negmine.json records them (JSON-able), less those that change nothing written."""
        d = plain_record(asdict(self))
        # none changes what is written (the engine neither: its output is byte-identical to local)
        for volatile in ("progress", "resume", "dry_run", "hub_rate", "engine", "ray_address"):
            d.pop(volatile)
        return d


@dataclass(frozen=True)
class Settings:
    """What the checked options come to: the values every stage reads instead of re-deriving them."""

    seed: int                                # --seed, or a fresh one (recorded, so the run can be redone)
    hash_kind: str | None                    # None: --hash none
    split_names: tuple[str, ...]             # ("train", "val", "test")[:n]
    split_fracs: tuple[float, ...]           # one fraction per split, summing to 1
    negative_class: str                      # --negative-class as a safe folder name
    cutout: CutoutOptions                    # --cutout-*: the synthetic negatives' options


def check_options(opts: SampleOptions) -> Settings:
    """Check every option on its own and against the others (before any input is read), and
    derive the run's `Settings`. Raises NegmineError naming the option at fault."""
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
    cutout = CutoutOptions(region=opts.cutout_region, margin=opts.cutout_margin,
                           fills=tuple(opts.cutout_fills) or DEFAULT_FILLS, quality=opts.quality).validate()
    hash_kind = None if opts.hash == "none" else opts.hash
    seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
    split_names, split_fracs = parse_split(opts.split)
    negative_class = safe_name(opts.negative_class)
    check_format(opts.format, split_names)
    check_class_name(negative_class, opts.format)
    if opts.content_check not in (None, "clip"):
        raise NegmineError("--content-check must be 'clip'")
    if opts.format == "yolo-det" and opts.boxes is None:
        raise NegmineError("--format yolo-det needs the positives' boxes: --boxes (COCO/VOC/YOLO/CSV)")
    if opts.seed is not None and opts.seed < 0:
        raise NegmineError(f"--seed must be 0 or more, got {opts.seed}")
    if opts.licence:
        parse_policy(opts.licence)              # a bad --licence fails before any pool is opened
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
    refuse_out_inside(opts.out, [("--positives", opts.positives), ("--boxes", opts.boxes), ("--masks", opts.masks),
                                 ("--eval-from", opts.eval_from)]
                      + [("--source", s.location) for s in opts.sources])
    return Settings(seed, hash_kind, split_names, split_fracs, negative_class, cutout)
