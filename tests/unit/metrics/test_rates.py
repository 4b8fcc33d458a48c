"""Wilson intervals, bootstrap accuracy and the pairwise judge scorecard."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from persona_gen.metrics import (
    AccuracyResult,
    MetricError,
    accuracy_with_std,
    order_consistency,
    position_bias,
    rate_with_ci,
)


def test_rate_with_ci_equals_statsmodels_wilson() -> None:
    for n in (1, 2, 7, 30, 1000):
        for successes in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for ci in (0.8, 0.95, 0.99):
                low, high = proportion_confint(successes, n, alpha=1 - ci, method="wilson")
                result = rate_with_ci(successes, n, ci=ci)
                assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-9)
                assert result.rate == successes / n


def test_rate_with_ci_stays_inside_unit_interval_at_the_edges() -> None:
    none, every = rate_with_ci(0, 5), rate_with_ci(5, 5)
    assert none.ci_low == 0.0 and 0 < none.ci_high < 1
    assert every.ci_high == 1.0 and 0 < every.ci_low < 1


def test_rate_with_ci_rejects_zero_trials() -> None:
    with pytest.raises(MetricError, match=r"n must be >= 1, but got 0 \(rate_with_ci\); a rate needs at least one"):
        rate_with_ci(0, 0)


def test_rate_with_ci_rejects_more_successes_than_trials() -> None:
    with pytest.raises(MetricError, match=r"successes must be between 0 and n=3, but got 4"):
        rate_with_ci(4, 3)


def test_rate_with_ci_rejects_fractional_counts() -> None:
    with pytest.raises(MetricError, match=r"successes must be an integer count, but got 1.5"):
        rate_with_ci(1.5, 3)  # type: ignore[arg-type]


def test_accuracy_with_std_is_reproducible_with_a_seed() -> None:
    bools = [True, False, True, True] * 25
    assert accuracy_with_std(bools, seed=3) == accuracy_with_std(bools, seed=3)
    assert accuracy_with_std(bools, seed=3).std != accuracy_with_std(bools, seed=4).std


def test_accuracy_with_std_is_close_to_the_binomial_standard_error() -> None:
    rng = np.random.default_rng(0)
    bools = (rng.random(400) < 0.7).tolist()
    result = accuracy_with_std(bools, n_boot=4000)
    p = sum(bools) / 400
    assert isinstance(result, AccuracyResult)
    assert float(result) == p
    assert result.std == pytest.approx(math.sqrt(p * (1 - p) / 400), rel=0.05)


def test_accuracy_with_std_accepts_zero_one_values() -> None:
    assert accuracy_with_std([1, 0, 1, 1]).accuracy == 0.75


def test_accuracy_with_std_rejects_non_boolean_values() -> None:
    with pytest.raises(MetricError, match=r"bools must be True/False or 1/0 .* values \['yes'\]"):
        accuracy_with_std([True, "yes"])  # type: ignore[list-item]


def test_accuracy_with_std_rejects_missing_values() -> None:
    with pytest.raises(MetricError, match=r"bools must be True/False or 1/0 with no missing values"):
        accuracy_with_std([True, None])  # type: ignore[list-item]


def test_accuracy_with_std_rejects_empty_input() -> None:
    with pytest.raises(MetricError, match=r"bools must be non-empty, but got 0 items \(accuracy_with_std\)"):
        accuracy_with_std([])


def test_accuracy_with_std_rejects_a_single_replicate() -> None:
    with pytest.raises(MetricError, match=r"n_boot must be >= 2, but got 1"):
        accuracy_with_std([True], n_boot=1)


def test_order_consistency_counts_choices_that_flip_with_the_swap() -> None:
    # Item 0 and 1 flip (consistent), item 2 picks A both times (position-driven), item 3 ties twice.
    result = order_consistency(["A", "B", "A", "tie"], ["B", "A", "A", "tie"])
    assert (result.successes, result.n, result.rate) == (3, 4, 0.75)


def test_order_consistency_accepts_custom_position_labels() -> None:
    assert order_consistency([1, 2], [2, 2], positions=(1, 2)).successes == 1


def test_order_consistency_rejects_mismatched_lengths() -> None:
    with pytest.raises(MetricError, match=r"first_order and swapped_order must be of the same length"):
        order_consistency(["A", "B"], ["B"])


def test_order_consistency_rejects_missing_judgments() -> None:
    with pytest.raises(MetricError, match=r"swapped_order must be free of missing judgments, but got 1 missing"):
        order_consistency(["A", "B"], ["B", None])


def test_order_consistency_rejects_empty_input() -> None:
    with pytest.raises(MetricError, match=r"first_order must be non-empty"):
        order_consistency([], [])


def test_position_bias_pools_orders_and_leaves_ties_out() -> None:
    result = position_bias(["A", "A", "tie"], ["A", "B"])
    assert (result.successes, result.n) == (3, 4)


def test_position_bias_rejects_no_decisive_judgment() -> None:
    with pytest.raises(MetricError, match=r"judgments must be at least one choice of 'A' or 'B', but got 2 judgments"):
        position_bias(["tie", "tie"])


def test_position_bias_rejects_no_orders() -> None:
    with pytest.raises(MetricError, match=r"orders must be at least one sequence of judgments"):
        position_bias()
