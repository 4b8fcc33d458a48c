"""pass@k against brute-force enumeration of k-subsets."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest

from persona_gen.metrics import MetricError, pass_at_k, pass_at_k_curve


def _brute_force(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (the first c passing) that hold at least one pass."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_brute_force_enumeration_for_small_n() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    # 1 - C(n - c, k) / C(n, k) in exact rational arithmetic; the product form must stay within 1e-9.
    for n, c, k in [(200, 3, 50), (1000, 1, 10), (500, 250, 100), (200, 0, 100)]:
        exact = 1 - Fraction(comb(n - c, k), comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-9)


def test_pass_at_k_is_one_when_every_subset_holds_a_pass() -> None:
    assert pass_at_k(5, 3, 3) == 1.0


def test_pass_at_k_is_zero_without_passes() -> None:
    assert pass_at_k(16, 0, 4) == 0.0


def test_pass_at_k_at_one_is_the_pass_share() -> None:
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20, abs=1e-12)


def test_pass_at_k_returns_a_float_for_scalars() -> None:
    assert isinstance(pass_at_k(np.int64(4), 1, 2), float)


def test_pass_at_k_broadcasts_over_arrays() -> None:
    n = np.array([[4, 6], [8, 8]])
    c = np.array([1, 2])
    result = pass_at_k(n, c, 2)
    assert isinstance(result, np.ndarray) and result.shape == (2, 2)
    for idx in np.ndindex(n.shape):
        assert result[idx] == pytest.approx(_brute_force(int(n[idx]), int(c[idx[1]]), 2), abs=1e-12)


def test_pass_at_k_rejects_k_above_n() -> None:
    with pytest.raises(MetricError, match=r"k must be <= n, but got k=5 with n=4 \(pass_at_k\); draw at least k"):
        pass_at_k(4, 1, 5)


def test_pass_at_k_rejects_c_above_n() -> None:
    with pytest.raises(MetricError, match=r"c must be <= n, but got c=6 with n=4 at index 1"):
        pass_at_k([4, 4], [1, 6], 1)


def test_pass_at_k_rejects_negative_c() -> None:
    with pytest.raises(MetricError, match=r"c must be >= 0, but got c=-1"):
        pass_at_k(4, -1, 1)


def test_pass_at_k_rejects_zero_k() -> None:
    with pytest.raises(MetricError, match=r"k must be >= 1, but got k=0"):
        pass_at_k(4, 1, 0)


def test_pass_at_k_rejects_zero_n() -> None:
    with pytest.raises(MetricError, match=r"n must be >= 1, but got n=0"):
        pass_at_k(0, 0, 1)


def test_pass_at_k_rejects_fractional_counts() -> None:
    with pytest.raises(MetricError, match=r"c must be whole numbers, but got \[1.5\]"):
        pass_at_k(4, 1.5, 1)


def test_pass_at_k_rejects_empty_arrays() -> None:
    with pytest.raises(MetricError, match=r"n must be non-empty, but got an empty array"):
        pass_at_k([], [], 1)


def test_pass_at_k_rejects_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(MetricError, match=r"n, c and k must be broadcastable shapes, but got n: \(2,\), c: \(3,\)"):
        pass_at_k([4, 4], [1, 1, 1], 1)


def test_pass_at_k_curve_averages_over_problems() -> None:
    curve = pass_at_k_curve([16, 16, 16], [0, 1, 8], ks=[1, 4, 16])
    assert curve["k"].tolist() == [1, 4, 16]
    expected = [np.mean([_brute_force_product(16, c, k) for c in (0, 1, 8)]) for k in (1, 4, 16)]
    assert curve["pass_at_k"].tolist() == pytest.approx(expected, abs=1e-12)


def _brute_force_product(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def test_pass_at_k_curve_defaults_to_k_from_1_to_16_and_rises() -> None:
    curve = pass_at_k_curve(16, [2, 5])
    assert curve["k"].tolist() == list(range(1, 17))
    assert np.all(np.diff(curve["pass_at_k"]) >= 0)


def test_pass_at_k_curve_rejects_k_above_the_smallest_n() -> None:
    expected = r"ks must be <= min\(n\)=8, but got k=16 \(pass_at_k_curve\); pass ks=range\(1, 9\)"
    with pytest.raises(MetricError, match=expected):
        pass_at_k_curve([16, 8], [1, 1])


def test_pass_at_k_curve_rejects_no_budgets() -> None:
    with pytest.raises(MetricError, match=r"ks must be non-empty"):
        pass_at_k_curve(4, 1, ks=[])
