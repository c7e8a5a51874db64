"""What a plan says before the draw (the dry run's output, and the notes and warnings the run's
summary repeats): the draw per source and class, splits, reads and downloads, contamination
expected, unlabelled rows, label coverage."""

from __future__ import annotations

from collections import Counter

import numpy as np

from negmine.filters.unlabelled import say
from negmine.pipeline.order import read_ratio
from negmine.pipeline.plan import Plan
from negmine.sampling.draw import window_size
from negmine.sampling.plan import stable_splits
from negmine.seeds import rng_for
from negmine.sources import budget


def plan_summary(plan: Plan) -> dict:
    """The plan as `negmine sample --dry-run` prints it (JSON-able); warns on stderr (unless
    --quiet) about the unlabelled images the draw would take."""
    n = min(plan.pool_target, plan.available)
    per_source: dict[str, Counter] = {}
    for s, r in zip(plan.order_src[:n].tolist(), plan.order_row[:n].tolist()):
        src = plan.sources[s]
        per_source.setdefault(src.id, Counter())[src.label_of(r) or "(unlabelled)"] += 1
    splits = {name: {} for name in plan.split_names}
    for cls, files in plan.positives.classes.items():
        for name, k in zip(plan.split_names, np.bincount([plan.pos_split[f.rel] for f in files],
                                                        minlength=len(plan.split_names))):
            splits[name][cls] = int(k)
    neg_splits = stable_splits(n + plan.synthetic_target, plan.split_fracs, rng_for(plan.seed, "split-neg"))
    for name, k in zip(plan.split_names, np.bincount(neg_splits, minlength=len(plan.split_names))):
        splits[name][plan.negative_class] = int(k)
    io = {}
    for i, src in enumerate(plan.sources):
        if hasattr(src, "read_estimate"):
            rows = plan.order_row[:n][plan.order_src[:n] == i]
            read, total = src.read_estimate(rows)
            io[src.id] = {"image_bytes_to_read": read, "pool_image_bytes": total, "remote": src.is_remote,
                          "note": src.read_note(),
                          "image_bytes_drawn_estimate": int(total / max(1, len(src)) * len(rows)),
                          "max_read_ratio": read_ratio(plan, src)}
            if src.downloads and hasattr(src, "download_estimate"):
                w = min(window_size(plan.pool_target, plan.sources), plan.available)
                est = src.download_estimate(plan.order_row[:w][plan.order_src[:w] == i])
                io[src.id].update(download_bytes=est["bytes"], download_requests=est["requests"],
                                  resolver_requests=est["resolver_requests"],
                                  min_seconds=budget.min_seconds(est["resolver_requests"]))
    out = {
        "seed": plan.seed, "negatives_needed": plan.needed, "pool_available": plan.available, "io": io,
        "positives": {c: len(f) for c, f in plan.positives.classes.items()},
        "splits": splits, "sources": [s.describe() for s in plan.sources],
        **({"pool": plan.pool} if plan.pool else {}),
        "draw": {sid: dict(sorted(c.items())) for sid, c in per_source.items()},
        "classes": plan.classes.report(),
        "duplicate_positives": plan.pos_groups, "skipped_positives": plan.pos_rejects,
    }
    if budget.used() is not None:
        out["hub_planning"] = budget.used()
    out["notes"] = [x for x in (s.partial_note() for s in plan.sources) if x] + (
        [plan.fit_note] if plan.fit_note else []) + ([pool_line(plan.pool)] if plan.pool else [])
    warns, notes = unlabelled_lines(plan)
    say(warns, plan.opts.progress)
    out["notes"] += notes + links_lines(plan)
    out["warnings"] = warns + ([plan.shortcut_note] if plan.shortcut_note else [])
    out["unlabelled"] = [u.as_dict() for u in plan.unlabelled if u is not None]
    if plan.unlabelled_estimate:
        out["unlabelled_contamination"] = plan.unlabelled_estimate
    expected = expected_contaminated(plan, n)
    if expected:
        out["contamination"] = expected
    if plan.opts.synthetic:
        out["synthetic"] = {"fraction": plan.opts.synthetic, "planned": plan.synthetic_target,
                            "annotated_positives": len({k for k, v in plan.pos_boxes.items() if v}
                                                       | set(plan.pos_masks))}
    coverage = label_coverage(plan, n)
    if coverage:
        out["label_coverage"] = coverage
    if plan.text:
        out["text"] = plan.text
    if plan.licences:
        out["row_licences"] = plan.licences
    if plan.opts.verified_absent:
        out["verified_absent"] = plan.verified
    if plan.opts.near:
        near = sum(1 for s in plan.order_stratum[:n].tolist() if plan.order_near[s])
        out["near"] = {"fraction": plan.opts.near, "planned": near, "levels": plan.near_levels}
    return out


def pool_line(pool: dict) -> str:
    """One line saying why a run opened no pool (`Plan.pool`), naming the sources not opened."""
    return f"{pool['reason']} (not opened: {', '.join(pool['not_opened'])})"


def unlabelled_lines(plan: Plan, taken: list | None = None) -> tuple[list[str], list[str]]:
    """(warnings: unlabelled images the draw takes, with the expected contamination; notes:
    unlabelled images left out). `taken`: the Candidates written; None: the rows the plan draws."""
    from negmine.filters.unlabelled import left_out_line, unlabelled_mask, warning

    warns, notes = [], []
    for i, u in enumerate(plan.unlabelled):
        if u is None:
            continue
        if not u.drawn:
            notes.append(left_out_line(u))
            continue
        if taken is None:
            n = min(plan.pool_target, plan.available)
            rows = plan.order_row[:n][plan.order_src[:n] == i]
        else:
            rows = np.array([c.row for c in taken if c.source == i], dtype=np.int64)
        count = int(unlabelled_mask(plan.sources[i])[rows].sum())
        warns.append(warning(u, plan.unlabelled_estimate, count, "planned" if taken is None else "written"))
    return warns, notes


def links_lines(plan: Plan) -> list[str]:
    """One line per pool folder whose links out of it were skipped (the plan and the run alike)."""
    from negmine.sources.folder import links_line

    return [links_line(s.id, s.skipped_links) for s in plan.sources if getattr(s, "skipped_links", None)]


def label_coverage(plan: Plan, n: int) -> dict:
    """Multi-label sources: how much of the vocabulary the first `n` planned rows reach, as
    strata (each image's rarest label, what the draw spreads over) and as labels carried."""
    out = {}
    for i, src in enumerate(plan.sources):
        if not src.multi_label:
            continue
        rows = plan.order_row[:n][plan.order_src[:n] == i]
        pool = plan.order_row[plan.order_src == i]
        carried = [src.label_codes[src.label_offsets[r]:src.label_offsets[r + 1]] for r in rows.tolist()]
        out[src.id] = {"rule": "each image's stratum is its rarest label in the pool",
                       "strata_drawn": int(len(np.unique(src.codes[rows][src.codes[rows] >= 0]))),
                       "strata_eligible": int(len(np.unique(src.codes[pool][src.codes[pool] >= 0]))),
                       "labels_drawn": int(len(np.unique(np.concatenate(carried)))) if carried else 0,
                       "labels_in_pool": len(src.classes)}
    return out


def expected_contaminated(plan: Plan, n: int) -> dict | None:
    """Negatives expected to show a positive among the `n` drawn from the pool, before and after
    the co-occurrence exclusions (overlap.ClassPlan.expected_contaminated; sources share `n` by
    weight, --near strata ignored). None when no source has ImageNet-1k classes."""
    per = [(sc, src.weight) for src, sc in zip(plan.sources, plan.classes.per_source) if sc.contamination]
    if not per:
        return None
    total = sum(s.weight for s in plan.sources)
    out = {"negatives": n, "taxonomy_only": 0.0, "with_prior": 0.0,
           "max_contamination": plan.classes.max_contamination}
    for sc, weight in per:
        e = plan.classes.expected_contaminated(sc, round(n * weight / total), plan.opts.stratify)
        out["taxonomy_only"] = round(out["taxonomy_only"] + e["taxonomy_only"], 2)
        out["with_prior"] = round(out["with_prior"] + e["with_prior"], 2)
    return out
