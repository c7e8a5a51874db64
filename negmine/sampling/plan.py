"""The sample stage: how many negatives, in what (seeded) order the pool is drawn, and the splits.

The draw is planned over the whole pool from its labels alone, as a priority *order* rather than a
fixed set: the pipeline walks the order and keeps the first candidates that pass the filters, so a
rejected image is replaced by the next one of the plan and any prefix of the order is itself a
stratified sample.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

from negmine.errors import NegmineError

SPLIT_NAMES = {1: ("train",), 2: ("train", "val"), 3: ("train", "val", "test")}


def negatives_needed(class_sizes: Sequence[int], *, ratio: float | None = None, balanced: bool = False,
                     count: int | None = None) -> int:
    """--count N, --balanced (median positive class), or --ratio R x all positives (default R=1)."""
    if sum(x is not None and x is not False for x in (ratio, count, balanced or None)) > 1:
        raise NegmineError("use only one of --ratio, --balanced and --count")
    if count is not None:
        if count < 0:
            raise NegmineError("--count must be >= 0")
        return int(count)
    if balanced:
        return int(math.floor(statistics.median(class_sizes) + 0.5))
    r = 1.0 if ratio is None else ratio
    if r < 0:
        raise NegmineError("--ratio must be >= 0")
    return int(math.floor(r * sum(class_sizes) + 0.5))


def stratified_order(codes: np.ndarray, rng: np.random.Generator, chunk: int = 1 << 16) -> np.ndarray:
    """Row indices ordered so that every prefix is as even across classes as the pool allows.

    Round-robin over classes in random order, a random member of each class per round; a class
    that runs out simply drops out of later rounds. Unlabelled rows (-1) count as one class.
    Vectorised, O(n log n), and frugal for million-row pools: everything per row is int32 (int16
    for the class), and sorting goes `chunk` rows at a time, so the peak is ~14 bytes a row.
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    small = np.int32 if n < 2**31 else np.int64
    perm = rng.permutation(np.arange(n, dtype=small))         # the same permutation as rng.permutation(n)
    k = int(codes.max()) + 2                                  # classes, plus 0 = unlabelled
    cls = np.empty(n, np.int16 if k < 2**15 else small)
    for a in range(0, n, chunk):
        cls[a:a + chunk] = codes[perm[a:a + chunk]] + 1
    counts = np.bincount(cls, minlength=k)
    grouped = _stable_group(cls, counts, chunk, small)       # positions in perm, class by class
    del cls
    for a in range(0, n, chunk):                              # -> rows, in place
        grouped[a:a + chunk] = perm[grouped[a:a + chunk]]
    del perm
    offset = rng.random(len(counts))                          # random class order within each round
    starts = np.cumsum(counts) - counts

    def rows_before(r: int) -> int:                           # rows in rounds < r
        return int(np.minimum(counts, r).sum())

    rounds = int(counts.max())
    out = np.empty(n, dtype=small)
    r0, done = 0, 0
    while r0 < rounds:
        lo, hi = r0 + 1, rounds                               # last round end within one chunk of rows
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if rows_before(mid) - done <= chunk else (lo, mid - 1)
        r1 = lo
        live = np.flatnonzero(counts > r0)                    # classes still drawing in round r0
        lengths = np.minimum(counts[live], r1) - r0
        first = starts[live] + r0
        heads = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        idx = np.repeat(first - heads, lengths) + np.arange(total)   # positions in `grouped`
        key = np.repeat(offset[live], lengths) + (idx - np.repeat(starts[live], lengths))
        out[done:done + total] = grouped[idx[np.argsort(key, kind="stable")]]
        done += total
        r0 = r1
    return out


def _stable_group(cls: np.ndarray, counts: np.ndarray, chunk: int, dtype) -> np.ndarray:
    """np.argsort(cls, kind="stable") as `dtype`, a chunk at a time (a counting sort): no int64
    array per row."""
    out = np.empty(len(cls), dtype=dtype)
    cursor = np.cumsum(counts) - counts                       # next free slot of each class
    for a in range(0, len(cls), chunk):
        part = cls[a:a + chunk]
        idx = np.argsort(part, kind="stable")
        sorted_cls = part[idx]
        part_counts = np.bincount(part, minlength=len(counts))
        rank = np.arange(len(part)) - (np.cumsum(part_counts) - part_counts)[sorted_cls]
        out[cursor[sorted_cls] + rank] = idx + a
        cursor += part_counts
    return out


def small_index(a: np.ndarray) -> np.ndarray:
    """Row numbers as int32 when they fit: planning arrays are per pool row, so this halves them."""
    return a.astype(np.int32, copy=False) if len(a) < 2**31 else a.astype(np.int64, copy=False)


def uniform_order(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n, dtype=np.int32 if n < 2**31 else np.int64))


HUB_READ_RATIO = 5.0


def clustered_order(order: np.ndarray, block_start: np.ndarray, block_rows: np.ndarray, max_read: float,
                    max_share: int | None = None) -> np.ndarray:
    """Reorder a draw so that reading a block (parquet page or row group) pays for several rows:
    where the order first reaches a block, the next rows the order would take from that block later
    are pulled forward to follow it, ceil(rows in block / max_read) rows together (at most
    `max_share`). A block read for one row costs the whole block, so this keeps bytes read per row
    kept near `max_read`, and any prefix still reaches blocks in the original (stratified) order.
    The rows of a block beyond its share keep their places, where they open the next share; with a
    share of 1 the order is unchanged.

    Each block's rows, in order, fall into groups of its share; the result is the groups, by the
    position of their first row, each in order. Blocks are given by their first rows (sorted; an
    empty block may share its start with the next), so nothing is per pool row, and ~8 bytes per
    row of `order` at peak (int32 throughout): the default Hub preset has 1.28M rows.
    """
    n = len(order)
    if n == 0 or max_read <= 0 or len(block_rows) == 0:
        return order
    share = np.maximum(1, np.ceil(np.asarray(block_rows) / max_read)).astype(np.int64)
    if max_share is not None:
        share = np.minimum(share, max(1, int(max_share)))
    if int(share.max()) == 1:
        return order
    small = np.int32 if n < 2**31 else np.int64
    chunk = 1 << 16
    b = np.empty(n, small)                                    # the block of each row of `order`
    for a in range(0, n, chunk):
        b[a:a + chunk] = np.searchsorted(block_start, order[a:a + chunk], side="right") - 1
    counts = np.bincount(b, minlength=len(share))
    by = _stable_group(b, counts, chunk, small)               # positions in `order`, block by block
    del b
    start = (np.cumsum(counts) - counts).astype(small)
    share, counts = share.astype(small), counts.astype(small)
    per = -(-counts // share)                                 # groups per block
    block = np.repeat(np.arange(len(counts), dtype=small), per)
    first = (np.arange(len(block), dtype=small) - np.repeat((np.cumsum(per) - per).astype(small), per)) * share[block]
    begin = start[block] + first                              # each group's first place in `by`
    length = np.minimum(share[block], counts[block] - first)
    del block, first
    by_lead = np.argsort(by[begin])                           # groups by their first row's position
    begin, length = begin[by_lead], length[by_lead]
    del by_lead
    idx = np.repeat(begin - (np.cumsum(length, dtype=small) - length), length)
    del begin, length
    # the rest in place, a chunk at a time (np.take would first copy the int32 indices to int64)
    for a in range(0, n, chunk):
        idx[a:a + chunk] = by[idx[a:a + chunk] + np.arange(a, min(a + chunk, n), dtype=small)]
    del by
    if order.dtype != idx.dtype:
        return order[idx]
    for a in range(0, n, chunk):
        idx[a:a + chunk] = order[idx[a:a + chunk]]
    return idx


def merge_orders(orders: Sequence[np.ndarray], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Interleave per-source orders so any prefix holds sources in proportion to their weights.

    Returns (source index, row) arrays. A source that runs out leaves the rest to the others.
    """
    if len(orders) == 1:      # one stratum: nothing to interleave, and an all-zero view costs no memory
        return np.broadcast_to(np.zeros(1, np.int8), (len(orders[0]),)), orders[0]
    keys, src, rows = [], [], []
    for i, (order, w) in enumerate(zip(orders, weights)):
        keys.append((np.arange(len(order)) + 0.5) / w)
        src.append(np.full(len(order), i, dtype=np.int16 if len(orders) < 2**15 else np.int32))
        rows.append(order)
    if not keys:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    key, src_all, rows_all = np.concatenate(keys), np.concatenate(src), np.concatenate(rows)
    by = np.lexsort((src_all, key))
    return src_all[by], rows_all[by]


def parse_split(text: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """'0.8,0.1,0.1' -> (train, val, test) fractions; they must be >= 0 and sum to 1."""
    try:
        fracs = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise NegmineError(f"--split takes 1-3 comma-separated fractions, got {text!r}") from None
    if len(fracs) not in SPLIT_NAMES or any(f < 0 for f in fracs) or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise NegmineError(f"--split takes 1-3 fractions >= 0 that sum to 1 (train,val[,test]), got {text!r}")
    return SPLIT_NAMES[len(fracs)], fracs


def split_counts(n: int, fracs: Sequence[float]) -> list[int]:
    """Exact per-split counts by largest remainder (ties go to the earlier split). Every split with a
    fraction > 0 gets at least one item when there are enough, so each class appears in every split
    (loaders that list classes per folder would otherwise disagree between train and val)."""
    raw = [n * f for f in fracs]
    counts = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))[: n - sum(counts)]:
        counts[i] += 1
    wanted = [i for i, f in enumerate(fracs) if f > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                counts[max(range(len(counts)), key=lambda j: (counts[j], -j))] -= 1
                counts[i] = 1
    return counts


def assign_splits(n: int, fracs: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Split index for each of n items: exact counts, random placement."""
    labels = np.repeat(np.arange(len(fracs)), split_counts(n, fracs))
    return rng.permutation(labels)


def stable_splits(n: int, fracs: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Split index for each of n items in draw order, such that item k's split never depends on n:
    a run that keeps fewer of the same draw (a smaller --ratio or --count, one seed) has its items
    in the same splits, so its val and test are part of the larger run's.

    The rule: the first item goes to the first split with a fraction > 0, the next ones to the other
    splits with a fraction > 0 in a random order (so every split has one as soon as there are
    enough); after that, item k (1-based) goes to the split that is a whole item behind its share
    k * frac when one is, else to a split behind its share at random, weighted by how far behind.
    Every prefix keeps each split within two items of its share (within one past the first few);
    unlike `assign_splits` the counts are not the exact largest-remainder ones."""
    f = np.asarray(fracs, dtype=float)
    wanted = [i for i, x in enumerate(fracs) if x > 0]
    first = wanted[:1] + [wanted[1:][i] for i in rng.permutation(len(wanted) - 1).tolist()]
    u = rng.random(n)
    counts = np.zeros(len(f))
    out = np.zeros(n, dtype=np.int64)
    for k in range(n):
        if k < len(first):
            s = first[k]
        else:
            behind = (k + 1) * f - counts
            if behind.max() >= 1:
                s = int(np.argmax(behind))
            else:
                w = np.cumsum(np.clip(behind, 0, None))
                s = min(int(np.searchsorted(w / w[-1], u[k], side="right")), len(f) - 1)
        counts[s] += 1
        out[k] = s
    return out


def assign_group_splits(groups: Sequence[int], fracs: Sequence[float], rng: np.random.Generator,
                        fixed: dict[int, int] | None = None) -> np.ndarray:
    """Split index for each of n items where items with the same group id must share a split
    (duplicates of one another: one on each side of a split would be trained on and tested on).

    `fixed` maps group ids already placed (their members in another class) to their split. The
    per-split counts follow `split_counts` as closely as whole groups allow: groups are placed
    largest first (random order among equal sizes), each into the split furthest below its count,
    and while as many groups are left as wanted splits are still empty, into an empty one, so every
    split with a fraction > 0 gets an item whenever there are enough groups. Without groups or
    fixed splits this is exactly `assign_splits` (a seed gives the same splits as before)."""
    n = len(groups)
    fixed = fixed or {}
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(int(g), []).append(i)
    if not fixed and all(len(m) == 1 for m in members.values()):
        return assign_splits(n, fracs, rng)
    targets = split_counts(n, fracs)
    assigned = [0] * len(fracs)
    out = np.zeros(n, dtype=np.int64)
    free = []
    for g, m in members.items():
        if g in fixed:
            out[m] = fixed[g]
            assigned[fixed[g]] += len(m)
        else:
            free.append(m)
    order = rng.permutation(len(free)).tolist()
    order.sort(key=lambda k: -len(free[k]))                 # stable: random among equal sizes
    wanted = [i for i, f in enumerate(fracs) if f > 0]
    for left, k in zip(range(len(order), 0, -1), order):
        empty = [i for i in wanted if assigned[i] == 0]
        pick_from = empty if empty and left <= len(empty) else wanted
        s = max(pick_from, key=lambda i: (targets[i] - assigned[i], -i))
        out[free[k]] = s
        assigned[s] += len(free[k])
    return out
