"""Planning the draw's order: the priority order over every eligible pool row (per source and
--near stratum, stratified or uniform, clustered by page or row group where reads cost), and
fitting it to --max-download. Part of `planner.make_plan`."""

from __future__ import annotations

import math

import numpy as np

from negmine.errors import NegmineError
from negmine.filters.overlap import near_codes
from negmine.pipeline.plan import Plan
from negmine.sampling.draw import window_size
from negmine.sampling.plan import HUB_READ_RATIO, clustered_order, merge_orders, small_index, stratified_order, uniform_order
from negmine.seeds import rng_for
from negmine.sources import Source


def plan_order(plan: Plan) -> None:
    """The priority order over every eligible pool row: per source (and near/far stratum) a
    stratified or uniform order, interleaved by weight. Sets `order_row`, `order_src`,
    `order_near`, `order_stratum`, `near_levels` and `available` of `plan`."""
    o = plan.opts
    plan.near_levels = {}
    orders, weights, nears = [], [], []
    for i, (src, sc) in enumerate(zip(plan.sources, plan.classes.per_source)):
        ratio = read_ratio(plan, src)
        keep = ~src.rows_with_any(sc.excluded_codes)     # multi-label: an image goes for any label
        if plan.unlabelled_masks[i] is not None:             # no label vouches for them
            keep &= ~plan.unlabelled_masks[i]
        lic = plan.licence_rows[i] if i < len(plan.licence_rows) else None
        if lic is not None and lic.left_out is not None:    # --licence: the row's licence does not allow it
            keep &= ~lic.left_out
        if plan.absence[i] is not None:                      # --verified-absent: a person said so
            keep &= src.rows_verified_absent(plan.absence[i])
        eligible = None if keep.all() else small_index(np.flatnonzero(keep))   # None: every row
        del keep
        strata = [(eligible, src.weight, None)]
        if o.near:
            if eligible is None:
                eligible = small_index(np.arange(len(src.codes)))
            want = math.ceil(plan.needed * o.near * src.weight / sum(s.weight for s in plan.sources))
            codes, level = near_codes(sc.verdicts, src.codes, eligible, want)
            plan.near_levels[src.id] = level
            is_near = np.isin(src.codes[eligible], codes)
            strata = [(eligible[is_near], src.weight * o.near, True),
                      (eligible[~is_near], src.weight * (1 - o.near), False)]
        for k, (rows, weight, near) in enumerate(strata):
            if weight <= 0:
                continue
            rng = rng_for(plan.seed, "draw", i, k)
            codes = src.codes if rows is None else src.codes[rows]
            local = stratified_order(codes, rng) if o.stratify else uniform_order(len(codes), rng)
            order = local if rows is None else rows[local]
            del local
            if ratio:
                cap = None
                if o.max_read_ratio is None and not plan.forced_ratio and not src.default_read_ratio:
                    # default: never fewer classes than an unclustered draw (a preset's own ratio is
                    # for a pool in no order of content: neighbours are as varied as any rows)
                    want = math.ceil(plan.pool_target * weight / sum(s.weight for s in plan.sources))
                    cap = want // max(1, len(np.unique(codes)))
                order = clustered_order(order, *src.blocks(), ratio, cap)
            del codes
            orders.append(order)
            weights.append(weight)
            nears.append((i, near))
    stratum, plan.order_row = merge_orders(orders, weights)
    source_of = np.array([nears[s][0] for s in range(len(nears))], np.int16 if len(nears) < 2**15 else np.int32)
    plan.order_src = stratum if len(nears) <= 1 else source_of[stratum]   # one stratum: all zeros already
    plan.order_near = [nears[s][1] for s in range(len(nears))]
    plan.order_stratum = stratum
    plan.available = len(plan.order_row)


def read_ratio(plan: Plan, src: Source) -> float | None:
    """Clustering applies to sources read by page or row group; by default only to Hub repos,
    where every byte is a download (decided by the spec, so offline and online runs agree), and
    only as far as the draw still reaches as many classes as an unclustered one. None: no clustering."""
    if not hasattr(src, "blocks"):
        return None
    if plan.forced_ratio and src.downloads:
        return plan.forced_ratio
    r = plan.opts.max_read_ratio
    if r is None:
        return src.default_read_ratio or (HUB_READ_RATIO if src.revision else None)
    return r or None


def download_estimate(plan: Plan) -> dict:
    """What the planned draw would download from the Hub ({"bytes", "requests",
    "resolver_requests"}): the pages or row groups of its first window of candidates."""
    n = min(window_size(plan.pool_target, plan.sources), plan.available)
    total = {"bytes": 0, "requests": 0, "resolver_requests": 0}
    for i, src in enumerate(plan.sources):
        if hasattr(src, "download_estimate"):
            est = src.download_estimate(plan.order_row[:n][plan.order_src[:n] == i])
            for k in total:
                total[k] += est[k]
    return total


def fit_download(plan: Plan, cap: int) -> None:
    """`--max-download` (`cap` bytes): cluster the draw more (more rows from each page or row group
    read, even if that reaches fewer classes) until what it downloads fits; sets `plan.fit_note`
    when that costs classes. Raises NegmineError saying what it needs when nothing fits."""
    need = download_estimate(plan)["bytes"]
    before = classes_drawn(plan)
    for ratio in (HUB_READ_RATIO, 3.0, 2.0, 1.5, 1.0):
        if need <= cap:
            break
        plan.forced_ratio = ratio
        plan_order(plan)
        need = download_estimate(plan)["bytes"]
    if need <= cap:
        after = classes_drawn(plan)
        if after < before:
            plan.fit_note = (f"--max-download {size_text(cap)}: the draw takes more rows from each page or row "
                             f"group it reads (--max-read-ratio {ratio:g}) and reaches {after} source classes "
                             f"instead of {before}")
        return
    raise NegmineError(f"the draw would download {size_text(need)} from the Hub even taking every row of each "
                       f"page or row group it reads, over --max-download {size_text(cap)}; raise "
                       "--max-download, or ask for fewer negatives")


def classes_drawn(plan: Plan) -> int:
    """Distinct (source, class) pairs among the rows the draw plans to keep."""
    n = min(plan.pool_target, plan.available)
    pairs = set()
    for i, src in enumerate(plan.sources):
        pairs.update((i, c) for c in np.unique(src.codes[plan.order_row[:n][plan.order_src[:n] == i]]).tolist())
    return len(pairs)


def size_text(n: float) -> str:
    """Bytes for people: decimal units, 3 significant digits (as --max-download reads them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"
