"""Chance-corrected agreement: Cohen's kappa (two raters) and Fleiss' kappa (many raters).

Both follow the reference implementations to floating-point precision, undefined cases included:
``cohen_kappa_score`` equals ``sklearn.metrics.cohen_kappa_score`` and the asymptotic interval of
``cohen_kappa`` equals ``statsmodels.stats.inter_rater.cohens_kappa``; ``fleiss_kappa`` equals
``statsmodels.stats.inter_rater.fleiss_kappa``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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

__all__ = ["KappaResult", "cohen_kappa", "cohen_kappa_score", "confusion_table", "fleiss_kappa"]

CIMethod = Literal["asymptotic", "bootstrap"]


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with a confidence interval.

    Attributes:
        kappa: The point estimate; equals ``sklearn.metrics.cohen_kappa_score``. NaN when undefined.
        ci_low: Lower end of the confidence interval (NaN when it cannot be computed).
        ci_high: Upper end of the confidence interval.
        n: Number of items both raters judged.
        se: Standard error: the asymptotic one (Fleiss, Cohen & Everitt 1969), or the standard
            deviation of the bootstrap replicates when ``method="bootstrap"``.
        ci: Confidence level of the interval, e.g. 0.95.
        method: How the interval was computed: ``"asymptotic"`` or ``"bootstrap"``.
    """

    kappa: float
    ci_low: float
    ci_high: float
    n: int
    se: float
    ci: float
    method: CIMethod

    def __float__(self) -> float:
        return self.kappa


def confusion_table(a: Sequence[Hashable], b: Sequence[Hashable], *,
                    labels: Sequence[Hashable] | None = None) -> tuple[np.ndarray, list[Hashable]]:
    """Cross-tabulate two raters: rows are ``a``'s labels, columns ``b``'s.

    Args:
        a: One label per item from the first rater.
        b: One label per item from the second rater, aligned with ``a``.
        labels: The label set and its order. Defaults to the labels seen in ``a`` or ``b``, sorted
            when they sort and in order of first appearance otherwise.

    Returns:
        The ``k x k`` count matrix (float) and the labels that index its rows and columns.

    Raises:
        MetricError: On empty or mismatched input, missing values, or labels outside ``labels``.
    """
    where = "confusion_table"
    arr_a, arr_b = as_labels(a, "a", where=where), as_labels(b, "b", where=where)
    _check_pair(arr_a, arr_b, where=where)
    return _table(arr_a, arr_b, labels, where=where)


def cohen_kappa_score(a: Sequence[Hashable], b: Sequence[Hashable], *,
                      labels: Sequence[Hashable] | None = None, undefined: float = math.nan) -> float:
    """Cohen's kappa of two raters, as a plain float equal to scikit-learn's.

    Args:
        a: One label per item from the first rater.
        b: One label per item from the second rater, aligned with ``a``.
        labels: Optional label set; unlike scikit-learn, a label outside it is an error rather than
            a silently dropped item.
        undefined: Value returned when kappa is undefined (see ``cohen_kappa``).

    Returns:
        Kappa in [-1, 1], or ``undefined``.

    Raises:
        MetricError: On empty or mismatched input, missing values, or labels outside ``labels``.
    """
    where = "cohen_kappa_score"
    arr_a, arr_b = as_labels(a, "a", where=where), as_labels(b, "b", where=where)
    _check_pair(arr_a, arr_b, where=where)
    table, _ = _table(arr_a, arr_b, labels, where=where)
    return _kappa_from_table(table, undefined)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable], *, labels: Sequence[Hashable] | None = None,
                ci: float = 0.95, method: CIMethod = "asymptotic", n_boot: int = 2000, seed: int = 0,
                undefined: float = math.nan) -> KappaResult:
    """Cohen's (unweighted) kappa of two raters with a confidence interval.

    The point estimate equals ``sklearn.metrics.cohen_kappa_score``. The asymptotic interval is
    ``kappa +/- z * se`` with the large-sample standard error of Fleiss, Cohen & Everitt (1969), the
    same numbers as ``statsmodels.stats.inter_rater.cohens_kappa`` (which fixes ``ci=0.95``). The
    bootstrap interval resamples items with replacement (a seeded ``numpy`` generator) and takes
    percentiles; replicates where kappa is undefined are left out.

    Kappa is undefined when both raters give every item the same single label: observed and
    chance agreement are then both 1 and kappa is 0/0. scikit-learn (>= 1.9) returns NaN there
    (``replace_undefined_by=np.nan``) and so does this function, with ``undefined`` to change it.
    Two raters that are each constant but disagree are defined: kappa is 0.

    Args:
        a: One label per item from the first rater.
        b: One label per item from the second rater, aligned with ``a``.
        labels: Optional label set (order is irrelevant to unweighted kappa); a label outside it is
            an error.
        ci: Confidence level in (0, 1).
        method: ``"asymptotic"`` (default) or ``"bootstrap"``.
        n_boot: Bootstrap replicates (``method="bootstrap"`` only).
        seed: Seed of the bootstrap generator.
        undefined: Value of ``kappa`` (and of the interval) when kappa is undefined.

    Returns:
        A ``KappaResult``; ``float(result)`` is the kappa.

    Raises:
        MetricError: On empty or mismatched input, missing values, labels outside ``labels``,
            ``ci`` outside (0, 1), an unknown ``method`` or ``n_boot < 1``.

    Example:
        >>> r = cohen_kappa(["A", "B", "A", "A"], ["A", "B", "B", "A"])
        >>> round(r.kappa, 4), r.n
        (0.5, 4)
    """
    where = "cohen_kappa"
    _check_ci(ci, where=where)
    if method not in ("asymptotic", "bootstrap"):
        raise metric_error("method", expected="'asymptotic' or 'bootstrap'", got=method, where=where,
                           fix="pick one of the two")
    arr_a, arr_b = as_labels(a, "a", where=where), as_labels(b, "b", where=where)
    _check_pair(arr_a, arr_b, where=where)
    table, _ = _table(arr_a, arr_b, labels, where=where)
    kappa = _kappa_from_table(table, math.nan)
    n = len(arr_a)
    if math.isnan(kappa):
        return KappaResult(undefined, undefined, undefined, n, math.nan, ci, method)
    if method == "asymptotic":
        se = _fce_se(table, kappa)
        delta = float(stats.norm.isf((1 - ci) / 2)) * se
        return KappaResult(kappa, kappa - delta, kappa + delta, n, se, ci, method)
    if n_boot < 1:
        raise metric_error("n_boot", expected=">= 1", got=n_boot, where=where, fix="use e.g. 2000 replicates")
    reps = _bootstrap_kappas(table, n_boot=n_boot, seed=seed)
    if reps.size == 0:
        return KappaResult(kappa, math.nan, math.nan, n, math.nan, ci, method)
    low, high = np.quantile(reps, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    se = float(np.std(reps, ddof=1)) if reps.size > 1 else math.nan
    return KappaResult(kappa, float(low), float(high), n, se, ci, method)


def fleiss_kappa(table: Any, *, method: Literal["fleiss", "randolph"] = "fleiss") -> float:
    """Fleiss' kappa of many raters from a subjects x categories count table.

    Equals ``statsmodels.stats.inter_rater.fleiss_kappa``. ``table[i, j]`` is how many raters put
    subject ``i`` in category ``j``; every subject must have the same number (>= 2) of ratings,
    though the raters themselves may differ between subjects. When all ratings fall in one category
    kappa is 0/0 and NaN is returned, as statsmodels does.

    Args:
        table: 2-D array-like of non-negative counts (or a pandas DataFrame).
        method: ``"fleiss"`` (chance agreement from the category marginals) or ``"randolph"``
            (free-marginal kappa: chance agreement ``1 / n_categories``).

    Returns:
        Kappa as a float (NaN when undefined).

    Raises:
        MetricError: When the table is empty, not 2-D, has negative counts or unequal row sums.
    """
    where = "fleiss_kappa"
    if method not in ("fleiss", "randolph"):
        raise metric_error("method", expected="'fleiss' or 'randolph'", got=method, where=where,
                           fix="pick one of the two")
    arr = np.asarray(table, dtype=float)
    if arr.ndim != 2:
        raise metric_error("table", expected="2-D (subjects x categories)", got=Text(f"shape {arr.shape}"),
                           where=where, fix="pass one row per subject and one column per category")
    require_nonempty(arr.size, "table", where=where, fix="pass at least one subject and one category")
    if np.isnan(arr).any() or (arr < 0).any():
        raise metric_error("table", expected="non-negative counts", got=Text("negative or NaN entries"),
                           where=where, fix="count, per subject, how many raters chose each category")
    per_subject = arr.sum(axis=1)
    n_rat = per_subject.max()
    if not np.all(per_subject == n_rat) or n_rat < 2:
        raise metric_error("table row sums", expected="equal and >= 2 (every subject rated by as many raters)",
                           got=Text(f"row sums from {per_subject.min():g} to {n_rat:g}"), where=where,
                           fix="keep subjects rated by the same number of raters, or use krippendorff_alpha "
                               "which allows missing ratings")
    n_total = arr.sum()
    p_cat = arr.sum(axis=0) / n_total
    p_subject = ((arr * arr).sum(axis=1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean = p_subject.mean()
    p_exp = (p_cat * p_cat).sum() if method == "fleiss" else 1.0 / arr.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((p_mean - p_exp) / (1 - p_exp))


def _check_pair(a: np.ndarray, b: np.ndarray, *, where: str) -> None:
    require_same_length({"a": len(a), "b": len(b)}, where=where)
    require_nonempty(len(a), "a", where=where, fix="pass at least one judged item")
    for name, arr in (("a", a), ("b", b)):
        miss = missing_mask(arr)
        if miss.any():
            raise metric_error(name, expected="free of missing labels (None/NaN)",
                               got=Text(f"{int(miss.sum())} missing at positions {np.flatnonzero(miss)[:5].tolist()}"),
                               where=where, fix="drop the items either rater skipped (agreement_matrix does this "
                                                "pairwise)")


def _check_ci(ci: float, *, where: str) -> None:
    if not 0 < ci < 1:
        raise metric_error("ci", expected="a confidence level in (0, 1)", got=ci, where=where, fix="use e.g. 0.95")


def _sorted_labels(values: list[Hashable]) -> list[Hashable]:
    # Sorting gives a stable order for numbers and strings alike; a mix that does not sort keeps
    # the order of first appearance, which is still deterministic for a given input.
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)  # type: ignore[type-var]
    except TypeError:
        return unique


def _table(a: np.ndarray, b: np.ndarray, labels: Sequence[Hashable] | None, *,
           where: str) -> tuple[np.ndarray, list[Hashable]]:
    if labels is None:
        label_list = _sorted_labels([*a.tolist(), *b.tolist()])
    else:
        label_list = list(dict.fromkeys(labels))
        require_nonempty(len(label_list), "labels", where=where, fix="pass the label set, or None to infer it")
    index = {label: i for i, label in enumerate(label_list)}
    # scikit-learn silently drops items whose label is not in `labels`; dropping judgments without
    # saying so hides bugs, so it is an error here.
    unknown = [v for v in dict.fromkeys([*a.tolist(), *b.tolist()]) if v not in index]
    if unknown:
        raise metric_error("labels", expected="a superset of the labels in a and b",
                           got=Text(f"{unknown[:5]!r} missing"), where=where,
                           fix="add them to labels, or pass labels=None")
    k = len(label_list)
    rows = np.fromiter((index[v] for v in a), dtype=np.intp, count=len(a))
    cols = np.fromiter((index[v] for v in b), dtype=np.intp, count=len(b))
    table = np.bincount(rows * k + cols, minlength=k * k).reshape(k, k).astype(float)
    return table, label_list


def _kappa_from_table(table: np.ndarray, undefined: float) -> float:
    # The same arithmetic as scikit-learn (1 - weighted disagreement / chance disagreement), so
    # results agree to the last bits rather than to a tolerance.
    k = table.shape[0]
    sum0, sum1 = table.sum(axis=0), table.sum(axis=1)
    total = sum0.sum()
    if total == 0:
        return undefined
    expected = np.outer(sum0, sum1) / total
    w_mat = np.ones((k, k))
    np.fill_diagonal(w_mat, 0)
    denominator = float(np.sum(w_mat * expected))
    if denominator == 0:
        return undefined
    return float(1 - np.sum(w_mat * table) / denominator)


def _fce_se(table: np.ndarray, kappa: float) -> float:
    """Large-sample standard error of kappa (Fleiss, Cohen & Everitt 1969, eq. 13).

    Written as statsmodels writes it so the two agree to rounding.
    """
    nobs = table.sum()
    probs = table / nobs
    freq_row = table.sum(axis=1) / nobs
    freq_col = table.sum(axis=0) / nobs
    agree_exp = float(np.sum(freq_row * freq_col))
    term_a = float(np.sum(np.diag(probs) * (1 - (freq_row + freq_col) * (1 - kappa)) ** 2))
    term_b = probs * (freq_col[:, None] + freq_row) ** 2
    np.fill_diagonal(term_b, 0)
    term_b_sum = (1 - kappa) ** 2 * float(term_b.sum())
    term_c = (kappa - agree_exp * (1 - kappa)) ** 2
    var = (term_a + term_b_sum - term_c) / (1 - agree_exp) ** 2 / nobs
    # Rounding can push a variance that is exactly 0 (perfect agreement) a hair below zero.
    return math.sqrt(max(var, 0.0))


def _bootstrap_kappas(table: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
    # Resampling items with replacement is the same as drawing the cells of the confusion table
    # from a multinomial with the observed cell shares, so no item-level arrays are needed.
    rng = np.random.default_rng(seed)
    n = int(table.sum())
    k = table.shape[0]
    draws = rng.multinomial(n, (table / n).ravel(), size=n_boot).reshape(n_boot, k, k).astype(float)
    p_obs = np.trace(draws, axis1=1, axis2=2) / n
    p_exp = np.einsum("bi,bi->b", draws.sum(axis=2), draws.sum(axis=1)) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = (p_obs - p_exp) / (1 - p_exp)
    return reps[np.isfinite(reps)]
