"""Rates with intervals: accuracy, and the scorecard of a pairwise judge asked in both orders."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from persona_gen.metrics._validate import (
    Text,
    as_labels,
    metric_error,
    missing_mask,
    require_nonempty,
    require_same_length,
)

__all__ = ["AccuracyResult", "RateResult", "accuracy_with_std", "order_consistency", "position_bias", "rate_with_ci"]


@dataclass(frozen=True)
class RateResult:
    """A proportion with its Wilson score interval.

    Attributes:
        rate: ``successes / n``.
        ci_low: Lower end of the Wilson interval.
        ci_high: Upper end of the Wilson interval.
        successes: Count of successes.
        n: Count of trials.
        ci: Confidence level, e.g. 0.95.
    """

    rate: float
    ci_low: float
    ci_high: float
    successes: int
    n: int
    ci: float

    def __float__(self) -> float:
        return self.rate


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy with its bootstrap standard deviation.

    Attributes:
        accuracy: Share of True values.
        std: Standard deviation (ddof=1) of the bootstrap replicates of the accuracy.
        n: Number of scored items.
        n_boot: Number of bootstrap replicates.
    """

    accuracy: float
    std: float
    n: int
    n_boot: int

    def __float__(self) -> float:
        return self.accuracy


def rate_with_ci(successes: int, n: int, *, ci: float = 0.95) -> RateResult:
    """A proportion with its Wilson score interval (Wilson 1927).

    Unlike the normal (Wald) interval, Wilson's stays inside [0, 1] and does not collapse to a
    point at 0 or n successes, which matters for the small subgroups of a demographic breakdown.
    It equals ``statsmodels.stats.proportion.proportion_confint(..., method="wilson")``.

    Args:
        successes: Count of successes, ``0 <= successes <= n``.
        n: Count of trials, ``>= 1``.
        ci: Confidence level in (0, 1).

    Returns:
        A ``RateResult``; ``float(result)`` is the rate.

    Raises:
        MetricError: On ``n < 1``, ``successes`` outside ``[0, n]``, non-integer counts or ``ci``
            outside (0, 1).
    """
    where = "rate_with_ci"
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not float(value).is_integer():
            raise metric_error(name, expected="an integer count", got=value, where=where, fix="pass whole counts")
    successes, n = int(successes), int(n)
    if n < 1:
        raise metric_error("n", expected=">= 1", got=n, where=where, fix="a rate needs at least one trial")
    if not 0 <= successes <= n:
        raise metric_error("successes", expected=f"between 0 and n={n}", got=successes, where=where,
                           fix="count successes among the n trials")
    if not 0 < ci < 1:
        raise metric_error("ci", expected="a confidence level in (0, 1)", got=ci, where=where, fix="use e.g. 0.95")
    p = successes / n
    z = float(stats.norm.isf((1 - ci) / 2))
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return RateResult(p, max(center - half, 0.0), min(center + half, 1.0), successes, n, ci)


def accuracy_with_std(bools: Sequence[bool | int] | np.ndarray, n_boot: int = 1000, seed: int = 0) -> AccuracyResult:
    """Accuracy and its bootstrap standard deviation, as PERSONA Bench reports them.

    Resampling n items with replacement and averaging 0/1 values gives ``Binomial(n, acc) / n``
    exactly, so the replicates are drawn from that binomial: the same bootstrap distribution in
    O(n_boot) memory instead of O(n_boot * n).

    Args:
        bools: One True/False (or 1/0) per scored item; no missing values.
        n_boot: Bootstrap replicates, ``>= 2``.
        seed: Seed of the ``numpy`` generator, so the std is reproducible.

    Returns:
        An ``AccuracyResult``; ``float(result)`` is the accuracy.

    Raises:
        MetricError: On empty input, non-boolean or missing values, or ``n_boot < 2``.
    """
    where = "accuracy_with_std"
    values = as_labels(bools, "bools", where=where)
    require_nonempty(len(values), "bools", where=where, fix="pass one True/False per scored item")
    if missing_mask(values).any() or not all(isinstance(v, bool | np.bool_) or v in (0, 1) for v in values):
        bad = [v for v in values if not isinstance(v, bool | np.bool_) and v not in (0, 1)][:5]
        raise metric_error("bools", expected="True/False or 1/0 with no missing values", got=Text(f"values {bad!r}"),
                           where=where, fix="score each item as correct or not; count failures separately")
    if n_boot < 2:
        raise metric_error("n_boot", expected=">= 2", got=n_boot, where=where, fix="use e.g. 1000 replicates")
    n = len(values)
    hits = int(sum(bool(v) for v in values))
    rng = np.random.default_rng(seed)
    replicates = rng.binomial(n, hits / n, size=n_boot) / n
    return AccuracyResult(hits / n, float(np.std(replicates, ddof=1)), n, n_boot)


def order_consistency(first_order: Sequence[Hashable], swapped_order: Sequence[Hashable], *,
                      positions: tuple[Hashable, Hashable] = ("A", "B"), ci: float = 0.95) -> RateResult:
    """Share of pairs a judge decides the same way when the two responses swap positions.

    Item ``i`` was judged once with responses (x, y) in positions (A, B) and once with (y, x).
    The judgments agree when the choice flips with the swap: A then B, or B then A. Any other
    label (e.g. ``"tie"``) agrees only with itself.

    Args:
        first_order: The chosen position per item in the original order.
        swapped_order: The chosen position per item with the responses swapped, aligned.
        positions: The two position labels.
        ci: Confidence level of the Wilson interval.

    Returns:
        A ``RateResult`` over all items.

    Raises:
        MetricError: On empty or mismatched input, or missing judgments (filter failed LM answers
            out first and report their count beside this rate).
    """
    where = "order_consistency"
    first = _judgments(first_order, "first_order", where=where)
    swapped = _judgments(swapped_order, "swapped_order", where=where)
    require_same_length({"first_order": len(first), "swapped_order": len(swapped)}, where=where)
    flip = {positions[0]: positions[1], positions[1]: positions[0]}
    agree = sum(flip.get(f, f) == s for f, s in zip(first, swapped, strict=True))
    return rate_with_ci(int(agree), len(first), ci=ci)


def position_bias(*orders: Sequence[Hashable], positions: tuple[Hashable, Hashable] = ("A", "B"),
                  ci: float = 0.95) -> RateResult:
    """Share of decisive judgments that pick the first position (0.5 means no position bias).

    Pass one or more sequences of chosen positions (typically the original and the swapped
    order); they are pooled. Judgments that pick neither position (e.g. ``"tie"``) are left out
    of the denominator, so the rate compares A with B only.

    Args:
        *orders: Sequences of chosen position labels.
        positions: The two position labels; the rate is the share of ``positions[0]``.
        ci: Confidence level of the Wilson interval.

    Returns:
        A ``RateResult``; an interval that excludes 0.5 signals a position bias.

    Raises:
        MetricError: With no judgments, missing judgments, or no decisive judgment at all.
    """
    where = "position_bias"
    if not orders:
        raise metric_error("orders", expected="at least one sequence of judgments", got=Text("none"), where=where,
                           fix="pass e.g. position_bias(first_order, swapped_order)")
    pooled = [v for i, order in enumerate(orders) for v in _judgments(order, f"orders[{i}]", where=where)]
    decisive = [v for v in pooled if v in positions]
    if not decisive:
        raise metric_error("judgments", expected=f"at least one choice of {positions[0]!r} or {positions[1]!r}",
                           got=Text(f"{len(pooled)} judgments, none decisive"), where=where,
                           fix="check the position labels passed as positions=")
    return rate_with_ci(sum(v == positions[0] for v in decisive), len(decisive), ci=ci)


def _judgments(values: Any, name: str, *, where: str) -> np.ndarray:
    arr = as_labels(values, name, where=where)
    require_nonempty(len(arr), name, where=where, fix="pass one judgment per item")
    miss = missing_mask(arr)
    if miss.any():
        raise metric_error(name, expected="free of missing judgments", got=Text(f"{int(miss.sum())} missing"),
                           where=where, fix="filter failed LM answers out first and report their count")
    return arr
