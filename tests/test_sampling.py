from collections import Counter

import numpy as np
import pytest

from negmine.errors import NegmineError
from negmine.sampling.plan import (assign_splits, merge_orders, negatives_needed, parse_split, split_counts,
                              stratified_order, uniform_order)
from negmine.seeds import rng_for


def test_stratified_order_every_prefix_is_even_across_classes():
    # class-sorted pool with very unequal classes: 500 of class 0, 50 of class 1, 5 of class 2
    codes = np.array([0] * 500 + [1] * 50 + [2] * 5, dtype=np.int32)
    order = stratified_order(codes, rng_for(0, "t"))
    assert sorted(order.tolist()) == list(range(len(codes)))       # a permutation of the pool
    for n in (3, 10, 15, 30, 100):
        got = Counter(codes[order[:n]].tolist())
        # water-filling: small classes give all they have, the rest share evenly
        assert got[2] in (min(5, n // 3), min(5, -(-n // 3)))
        assert abs(got[0] - got[1]) <= 1 or got[1] == 50


def test_stratified_order_is_random_within_classes_and_seeded():
    codes = np.repeat(np.arange(4), 100).astype(np.int32)
    a = stratified_order(codes, rng_for(1, "t"))
    b = stratified_order(codes, rng_for(1, "t"))
    c = stratified_order(codes, rng_for(2, "t"))
    assert (a == b).all() and not (a == c).all()
    first_of_class0 = [r for r in a[:40] if codes[r] == 0]
    assert first_of_class0 != sorted(first_of_class0) or max(first_of_class0) > 20   # not the first rows


def test_uniform_order_is_a_permutation():
    order = uniform_order(1000, rng_for(0, "u"))
    assert sorted(order.tolist()) == list(range(1000)) and order[:10].tolist() != list(range(10))


def test_merge_orders_follows_weights_and_falls_back_when_a_source_runs_out():
    a, b = np.arange(1000), np.arange(10)
    src, rows = merge_orders([a, np.arange(1000)], [3.0, 1.0])
    assert Counter(src[:400].tolist()) == {0: 300, 1: 100}
    src, rows = merge_orders([a, b], [1.0, 1.0])
    assert Counter(src[:100].tolist()) == {0: 90, 1: 10}          # b had only 10 rows
    assert sorted(rows[src == 1].tolist()) == list(range(10))


def test_counts_ratio_balanced_count():
    assert negatives_needed([10, 20, 31]) == 61                     # default ratio 1
    assert negatives_needed([10, 20, 31], ratio=0.5) == 31         # 30.5 rounds half up
    assert negatives_needed([10, 20, 31], balanced=True) == 20     # median class size
    assert negatives_needed([10, 21], balanced=True) == 16         # median 15.5 -> 16
    assert negatives_needed([10, 20], count=7) == 7
    with pytest.raises(NegmineError):
        negatives_needed([10], ratio=1, count=3)


def test_split_parsing_and_exact_counts():
    assert parse_split("0.8,0.1,0.1") == (("train", "val", "test"), (0.8, 0.1, 0.1))
    assert parse_split("0.9,0.1")[0] == ("train", "val")
    for bad in ("0.5,0.4", "a,b", "1,0,0,0", "-0.1,1.1"):
        with pytest.raises(NegmineError):
            parse_split(bad)
    for n in range(0, 50):
        counts = split_counts(n, (0.8, 0.1, 0.1))
        assert sum(counts) == n
        if n >= 3:
            assert min(counts) >= 1                # every class appears in every split
        if n >= 10:
            assert all(abs(c - n * f) < 1 for c, f in zip(counts, (0.8, 0.1, 0.1)))
    assert split_counts(3, (0.8, 0.1, 0.1)) == [1, 1, 1] and split_counts(2, (0.8, 0.1, 0.1)) == [2, 0, 0]
    assert split_counts(5, (1.0,)) == [5] and split_counts(4, (0.5, 0.5, 0.0)) == [2, 2, 0]
    splits = assign_splits(20, (0.8, 0.1, 0.1), rng_for(0, "s"))
    assert Counter(splits.tolist()) == {0: 16, 1: 2, 2: 2}
