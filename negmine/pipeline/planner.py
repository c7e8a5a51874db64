"""Planning a `sample` run into a `Plan`: everything decided before anything is written.

`make_plan` scans and splits the positives (`prepare`), opens and checks the sources, plans the
classes (`filters.overlap.plan_classes`), the unlabelled rows and --verified-absent, and the priority
order of the draw and its --max-download fit (`order`). A pool that cannot be used is refused
here, before any output exists. A run whose cutouts (--synthetic) supply every negative opens no
pool at all (`pool_wanted`; `Plan.pool` says why).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from negmine.errors import NegmineError, PoolTooSmall
from negmine.filters.licences import check_licences, check_preset_licences, row_licences
from negmine.filters.overlap import ClassPlan, absence_groups, plan_classes
from negmine.filters.text import is_text_source, text_rejects
from negmine.outputs.formats import check_class_name
from negmine.pipeline.eval_from import hash_held_out, hold_out_positives, load_eval_from
from negmine.pipeline.options import SampleOptions, Settings
from negmine.pipeline.order import fit_download, plan_order
from negmine.pipeline.plan import Plan
from negmine.pipeline.prepare import (check_every_split, check_negative_class, leave_out_unannotated,
                                      prepare_positives)
from negmine.licences import parse_policy
from negmine.positives import scan_positives
from negmine.progress import warn
from negmine.sampling.plan import negatives_needed
from negmine.sources import DEFAULT_PRESET, SourceSpec, budget, open_sources
from negmine.synthetic.command import Annotated, annotated_images
from negmine.synthetic.cutout import box_region_reason
from negmine.synthetic.shortcuts import judged_share, shortcut_warning


def release_freed_memory() -> None:
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


def make_plan(opts: SampleOptions, settings: Settings) -> Plan:
    """Plan the run (see the module docstring). Raises NegmineError (or PoolTooSmall, a subclass)
    for every input that cannot be used, before anything is written."""
    release_freed_memory()
    o = opts
    plan = Plan(opts, settings)
    if o.eval_from is not None:      # refused before any read if it cannot be the yardstick
        plan.held_out = load_eval_from(o.eval_from, o.format, settings.negative_class)
        plan.settings = plan.held_out.settings_for(settings)
    budget.configure(o.hub_rate)
    plan.positives = scan_positives(o.positives, follow_symlinks=o.follow_symlinks)
    if plan.negative_class.lower() in {c.lower() for c in plan.positives.classes}:
        raise NegmineError(f"the negative class {plan.negative_class!r} is also a positive class; "
                           "choose another with --negative-class")
    for cls in plan.positives.classes:
        check_class_name(cls, o.format)
    negatives_needed(plan.positives.sizes, ratio=o.ratio, balanced=o.balanced, count=o.count)  # checks options
    check_every_split(plan, {c: len(f) for c, f in plan.positives.classes.items()})   # before any hashing
    # the pool is opened and its labels checked before the positives are hashed, so a pool that
    # cannot be used is refused before any work; `want` (which WebDataset shards are indexed) is
    # counted on the positives found, an upper bound of those written. A run whose cutouts supply
    # every negative draws nothing from a pool, so it opens none (`pool_wanted`)
    specs = [replace(s, image_column=s.image_column or o.image_column, label_column=s.label_column or o.label_column,
                     text_column=s.text_column or o.text_column) for s in o.sources]
    ann = annotated_images(plan.positives.root, o.boxes, o.masks, None, o.box_format) \
        if o.synthetic or o.format == "yolo-det" else None
    if pool_wanted(plan, ann if o.synthetic else None):
        open_pool(plan, specs, ann)
    prepare_positives(plan)
    if ann is not None:                     # read above, for yolo-det or --synthetic
        plan.pos_boxes, plan.pos_masks = ann.boxes, ann.masks
        if o.format == "yolo-det":
            leave_out_unannotated(plan, ann.invalid)
        else:                               # still positives; only their cutouts are impossible
            plan.left_out = [{"role": "synthetic", "source": str(plan.positives.root), "file": k, "reason": r}
                             for k, r in sorted(ann.invalid.items())]
    if plan.held_out is not None:    # val/test are the earlier run's: what is in them stays out of train
        hash_held_out(plan.held_out, plan.hash_kind, o.dihedral, o.workers, o.engine, o.ray_address, o.progress)
        hold_out_positives(plan)
    # counted on the positives that will be written (unreadable ones, dropped duplicates and, for
    # yolo-det, unannotated ones are not)
    plan.needed = negatives_needed(plan.positives.sizes or [0], ratio=o.ratio, balanced=o.balanced, count=o.count)
    check_negative_class(plan, plan.needed)
    plan.synthetic_target = 0
    if o.synthetic:
        # at most one cutout per annotated positive; what they cannot supply comes from the pool
        plan.synthetic_target = min(cuttable(plan, ann),
                                    int(math.floor(o.synthetic * plan.needed + 0.5)))
        plan.shortcut_note = shortcut_warning(settings.cutout.fills,
                                              judged_share(o.synthetic, plan.synthetic_target / max(1, plan.needed)),
                                              f"--synthetic {o.synthetic:g}", noise=settings.cutout.noise)
        if plan.shortcut_note:               # said before the work, and again in the summary and negmine.json
            warn(plan.shortcut_note, o.progress)
    plan.pool_target = plan.needed - plan.synthetic_target
    if plan.pool_target > 0 and plan.pool is not None:
        # fewer positives than found can be cut (unreadable, dropped duplicates): the pool is needed after all
        open_pool(plan, specs, ann)
    if plan.pool is None:
        plan_verified_absent(plan)
        plan_order(plan)
        if o.max_download is not None:
            fit_download(plan, o.max_download)
    release_freed_memory()
    if plan.available < plan.pool_target and not o.allow_short:
        raise PoolTooSmall(f"the pool has only {plan.available} images after excluding overlapping classes, "
                           f"{plan.pool_target} negatives needed from it; add a source, lower --ratio/--count, "
                           "or pass --allow-short", plan.available, plan.pool_target)
    return plan


def cuttable(plan: Plan, ann: Annotated) -> int:
    """The positives still in `plan.positives` that can be cut out (`ann`: synthetic.command.Annotated):
    those with an object box or a mask file, less those whose boxes leave no usable cutout by
    their geometry alone (`cutout.box_region_reason`: the region would cover too much of the image),
    which the synthetic stage would skip with that reason."""
    cut = plan.settings.cutout
    n = 0
    for f in (f for fs in plan.positives.classes.values() for f in fs):
        if f.rel in ann.masks:
            n += 1
        elif ann.boxes.get(f.rel):
            size = (ann.sizes or {}).get(f.rel)
            n += size is None or box_region_reason(ann.boxes[f.rel], *size, cut) is None
    return n


def pool_wanted(plan: Plan, ann: Annotated | None) -> bool:
    """Whether the run draws from a pool: False only when the cutouts of the annotated positives
    found (`ann`: synthetic.command.Annotated, None without --synthetic) supply every negative
    (`pool_target` 0). Then `plan.pool` says why no pool is opened (plan summary, negmine.json);
    `make_plan` opens the pool after all when fewer positives than found can be cut."""
    o = plan.opts
    if ann is None:
        return True
    needed = negatives_needed(plan.positives.sizes or [0], ratio=o.ratio, balanced=o.balanced, count=o.count)
    cut = min(cuttable(plan, ann), int(math.floor(o.synthetic * needed + 0.5)))
    if needed - cut > 0 and o.synthetic >= 1 and not o.sources:
        # every negative was asked to be a cutout and no pool was named: opening the default preset
        # (a download) for the few photos that cannot be cut would surprise; say what is short instead
        found = sum(len(fs) for fs in plan.positives.classes.values())
        raise PoolTooSmall(f"--synthetic {o.synthetic:g}: {cut} of the {found} positives can be cut (the others have "
                           f"no usable box or their object covers more than --max-cover), {needed} negatives asked; "
                           f"ask for --count {cut} or fewer, or name a pool with --source to draw the rest from",
                           cut, needed)
    if needed - cut > 0:
        return True
    given = [s.location for s in o.sources]
    plan.pool = {"used": False,
                 "reason": f"every negative is a cutout of an annotated positive (--synthetic {o.synthetic:g}): "
                           "nothing is drawn from a pool, so none was opened",
                 "not_opened": given or [DEFAULT_PRESET]}
    plan.sources, plan.unlabelled, plan.unlabelled_masks = [], [], []
    plan.classes = ClassPlan([], [], max_contamination=o.max_contamination)
    plan.order_row, plan.order_src, plan.order_stratum = (np.zeros(0, np.int64), np.zeros(0, np.int16),
                                                           np.zeros(0, np.int16))
    return False


def open_pool(plan: Plan, specs: list[SourceSpec], ann: Annotated | None = None) -> None:
    """Open the sources (`specs`; the default preset when none), check their labels and plan the
    classes they keep out and their unlabelled rows: the positive folders' concepts, `--exclude`,
    and for `--format yolo-det` every class the annotations (`ann`) name. Raises NegmineError for a
    pool that cannot be used."""
    o = plan.opts
    plan.pool = None
    policy = parse_policy(o.licence) if o.licence else None
    check_preset_licences(specs, policy)        # a preset's stated terms refuse it before any download
    plan.sources = open_sources(specs, o.progress, o.follow_symlinks, seed=plan.seed,
                                want=negatives_needed(plan.positives.sizes or [0], ratio=o.ratio,
                                                      balanced=o.balanced, count=o.count))
    check_text_columns(plan.sources, specs)
    # per-row licences win over the card's: such a pool's rows are judged one licence value at a time
    plan.licence_rows = [row_licences(s, policy) for s in plan.sources]
    plan.licences = {s.id: r.counts for s, r in zip(plan.sources, plan.licence_rows) if r is not None}
    if policy is not None:
        check_licences([s for s, r in zip(plan.sources, plan.licence_rows) if r is None], policy)
    folders = list(plan.positives.labels.values()) if o.auto_exclude else []
    # a detector learns every class its labels name (data.yaml's names): a background showing any
    # of them would teach "no object here", so they are kept out of the pool as the folders are
    detector = sorted({b.label for bs in ann.boxes.values() for b in bs if b.label} - set(folders)) \
        if ann is not None and o.format == "yolo-det" and o.auto_exclude else []
    plan.classes = plan_classes(plan.sources, folders + detector + list(o.exclude), allow_unmapped=o.allow_unmapped,
                                named=o.concepts, anchors=folders, max_contamination=o.max_contamination)
    plan.classes.refuse_unplaced()
    for note in plan.classes.notes():       # said before the draw, not only in the summary
        warn(note, o.progress)
    plan_unlabelled(plan, specs)


def plan_unlabelled(plan: Plan, specs: list[SourceSpec]) -> None:
    """Refuse a source none of whose images carries a label, leave the unlabelled rows of the
    others out of the draw, or (--allow-unlabelled, ?unlabelled=allow, --content-check) keep them
    and warn (negmine.filters.unlabelled). Sets `unlabelled` (per source: UnlabelledRows or None),
    `unlabelled_masks` (rows left out, or None) and `unlabelled_estimate`; an imagefolder image
    no metadata record names, left out, gets a rejects.jsonl row. Raises UnlabelledPool."""
    from negmine.filters.unlabelled import check_sources, expected_share
    from negmine.sources import ImageFolderSource

    allowed = [plan.opts.allow_unlabelled or s.unlabelled == "allow" for s in specs]
    plan.unlabelled, plan.unlabelled_masks = check_sources(plan.sources, allowed, bool(plan.opts.content_check))
    plan.unlabelled_estimate = (expected_share(plan.classes.concepts, plan.classes.unmapped_terms)
                                if any(u is not None and u.drawn for u in plan.unlabelled) else None)
    plan.unlabelled_rejects = []
    for src, u in zip(plan.sources, plan.unlabelled):
        if u is not None and not u.drawn and isinstance(src, ImageFolderSource):
            plan.unlabelled_rejects += [
                {"role": "negative", "source": src.id, "revision": src.revision, **src.origin(r), "label": None,
                 "reason": "no metadata record: not in the dataset as `datasets` reads it (--allow-unlabelled "
                           "draws it)"} for r in src.unlisted]
    plan.text = {}
    for src, sc, mask in zip(plan.sources, plan.classes.per_source, plan.unlabelled_masks):
        if is_text_source(src):            # each image the text keeps out, with the words that did
            rows, counts = text_rejects(sc, mask)
            plan.unlabelled_rejects += rows
            plan.text[src.id] = {"columns": list(src.text_columns), "nouns": len(src.classes), **counts,
                                 "text_bytes_read": getattr(src, "index_stats", {}).get("text_chunk_bytes")}


def check_text_columns(sources, specs: list[SourceSpec]) -> None:
    """--text-column (or ?text=) names columns of a table source; a source that reads no text
    (a folder, tar shards) refuses it rather than ignore it."""
    for src, spec in zip(sources, specs or [None] * len(sources)):
        if spec is not None and spec.text_column and not is_text_source(src):
            raise NegmineError(f"{src.id}: --text-column (?text=) is read from parquet pools only; this source "
                               "has no text columns negmine reads")


def plan_verified_absent(plan: Plan) -> None:
    """`--verified-absent`: per source, the groups of classes whose confirmed absence verifies
    each positive concept (`overlap.absence_groups`). Sets `plan.verified` ({source id:
    {"verified": terms, "cannot_verify": terms}}) and `plan.absence` (per source, the groups
    every drawn row must pass: None without the flag). Raises NegmineError when no source can
    verify any positive concept."""
    plan.verified = {}
    plan.absence = [None] * len(plan.sources)
    if not plan.opts.verified_absent:
        return
    terms = [c.term for c in plan.classes.concepts] + list(plan.classes.unmapped_terms)
    for i, (src, sc) in enumerate(zip(plan.sources, plan.classes.per_source)):
        groups = absence_groups(plan.classes, sc) if src.absent_offsets is not None else {}
        ok = [t for t in terms if groups.get(t) and all(len(g) for g in groups[t])]
        plan.absence[i] = [g for t in ok for g in groups[t]]
        plan.verified[src.id] = {"verified": ok, "cannot_verify": [t for t in terms if t not in ok],
                                 "confirmed_absent_labels": src.absent_offsets is not None}
    if not any(v["verified"] for v in plan.verified.values()):
        why = "; ".join(f"{sid}: " + ("records no label confirmed absent (confidence 0)"
                                      if not v["confirmed_absent_labels"] else
                                      f"has no label verifying {', '.join(v['cannot_verify'])}")
                        for sid, v in plan.verified.items())
        raise NegmineError(f"--verified-absent: no source can verify that a positive concept is absent ({why})")
