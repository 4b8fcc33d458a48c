"""Scores broken down by demographic attribute, and intersectional subsets of a table."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_gen.metrics._validate import Text, metric_error
from persona_gen.metrics.kappa import cohen_kappa
from persona_gen.metrics.rates import rate_with_ci

__all__ = ["breakdown", "filter_intersection"]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MEMBERSHIP = ("in", "not in")


def filter_intersection(df: pd.DataFrame, conditions: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of ``df`` that meet every attribute condition (an intersectional subgroup).

    Each condition is ``column -> test``; the tests are combined with AND:

    * a plain value: equality, ``{"sex": "Female"}``;
    * ``(op, value)`` with ``op`` one of ``==, !=, <, <=, >, >=``: ``{"age": (">=", 65)}``;
    * ``("in", values)`` or ``("not in", values)``: membership;
    * a list, set or frozenset: membership, ``{"race": ["Asian", "Black"]}``;
    * a callable: applied to the column, must return a boolean mask, ``{"age": lambda s: s % 2 == 0}``.

    A tuple is read as an operator condition only when its first item is one of the operator
    strings; any other tuple is an error (use a list for membership), so nothing is guessed.
    Rows whose value is missing fail every test except ``!=`` and ``not in``.

    Args:
        df: One row per persona (or per judgment) with attribute columns.
        conditions: Column -> test, as above. An empty mapping keeps every row.

    Returns:
        The matching rows (a copy), index kept.

    Raises:
        MetricError: On an unknown column or a malformed test.

    Example:
        >>> people = pd.DataFrame({"sex": ["Female", "Male", "Female"], "age": [70, 70, 30]})
        >>> filter_intersection(people, {"sex": "Female", "age": (">=", 65)}).index.tolist()
        [0]
    """
    where = "filter_intersection"
    mask = pd.Series(True, index=df.index)
    for column, test in conditions.items():
        if column not in df.columns:
            raise metric_error(f"condition column {column!r}", expected="a column of df", got=Text("no such column"),
                               where=where, fix=f"use one of {list(df.columns)}")
        mask &= _condition_mask(df[column], test, column=column, where=where)
    return df[mask.to_numpy(dtype=bool)].copy()


def breakdown(df: pd.DataFrame, by: str | Sequence[str], *,
              metric: Literal["accuracy", "kappa"] | Callable[[pd.DataFrame], float] = "accuracy",
              column: str = "correct", pair: tuple[str, str] = ("rater_a", "rater_b"), ci: float = 0.95,
              min_size: int = 1, dropna: bool = True) -> pd.DataFrame:
    """A metric per group of one or more demographic attributes, with group sizes.

    Args:
        df: One row per scored item, with the attribute columns in ``by``.
        by: Attribute column(s) to group on, e.g. ``"education"`` or ``["sex", "age_band"]``.
        metric: ``"accuracy"`` (mean of the boolean ``column``, with a Wilson interval),
            ``"kappa"`` (Cohen's kappa between the two label columns in ``pair``, with the
            asymptotic interval), or a callable ``group_df -> float`` (no interval).
        column: Boolean column scored by ``"accuracy"``.
        pair: The two label columns compared by ``"kappa"``.
        ci: Confidence level of the intervals.
        min_size: Groups with fewer rows are left out.
        dropna: Leave out rows whose ``by`` value is missing (pandas' ``groupby`` default); with
            False they form their own group.

    Returns:
        One row per group, indexed by ``by``, sorted by group key: ``n`` (rows in the group),
        ``value``, ``ci_low`` and ``ci_high``.

    Raises:
        MetricError: On a missing column, an unknown metric, or a non-boolean accuracy column.
    """
    where = "breakdown"
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise metric_error("by", expected="one or more column names", got=Text("none"), where=where,
                           fix="name the attribute(s) to group on")
    needed = list(keys)
    if metric == "accuracy":
        needed.append(column)
    elif metric == "kappa":
        needed.extend(pair)
    elif not callable(metric):
        raise metric_error("metric", expected="'accuracy', 'kappa' or a callable", got=metric, where=where,
                           fix="pick one of those")
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise metric_error("columns", expected="present in df", got=Text(f"{absent} missing"), where=where,
                           fix=f"use columns among {list(df.columns)}")
    if metric == "accuracy":
        _check_boolean(df[column], column=column, where=where)

    rows = []
    for key, group in df.groupby(keys, sort=True, dropna=dropna):
        if len(group) < min_size:
            continue
        value, low, high = _score(group, metric, column=column, pair=pair, ci=ci)
        rows.append((*key, len(group), value, low, high))
    out = pd.DataFrame(rows, columns=[*keys, "n", "value", "ci_low", "ci_high"])
    return out.set_index(keys)


def _score(group: pd.DataFrame, metric: Any, *, column: str, pair: tuple[str, str],
           ci: float) -> tuple[float, float, float]:
    if metric == "accuracy":
        r = rate_with_ci(int(group[column].astype(bool).sum()), len(group), ci=ci)
        return r.rate, r.ci_low, r.ci_high
    if metric == "kappa":
        k = cohen_kappa(group[pair[0]].tolist(), group[pair[1]].tolist(), ci=ci)
        return k.kappa, k.ci_low, k.ci_high
    return float(metric(group)), math.nan, math.nan


def _check_boolean(series: pd.Series, *, column: str, where: str) -> None:
    values = series.dropna().unique() if series.dtype == object else series.unique()
    if series.isna().any() or not set(np.asarray(values).tolist()) <= {True, False}:
        raise metric_error(f"column {column!r}", expected="boolean (True/False or 1/0) with no missing values",
                           got=Text(f"values like {list(values)[:5]!r}"), where=where,
                           fix="score each item as correct or not before the breakdown")


def _condition_mask(series: pd.Series, test: Any, *, column: str, where: str) -> pd.Series:
    if callable(test):
        mask = test(series)
        if not isinstance(mask, pd.Series | np.ndarray) or len(mask) != len(series):
            raise metric_error(f"condition on {column!r}", expected="a callable returning one boolean per row",
                               got=Text(type(mask).__name__), where=where, fix="return e.g. series >= 65")
        return pd.Series(np.asarray(mask, dtype=bool), index=series.index)
    if isinstance(test, tuple):
        if len(test) != 2 or test[0] not in (*_OPERATORS, *_MEMBERSHIP):
            raise metric_error(f"condition on {column!r}",
                               expected="(op, value) with op in " + ", ".join([*_OPERATORS, *_MEMBERSHIP]),
                               got=test, where=where, fix="use a list, not a tuple, for membership")
        op, value = test
        if op in _MEMBERSHIP:
            inside = series.isin(_as_collection(value, column=column, where=where))
            return inside if op == "in" else ~inside
        try:
            result = _OPERATORS[op](series, value)
        except TypeError as exc:
            raise metric_error(f"condition on {column!r}", expected=f"comparable with {value!r}",
                               got=Text(f"dtype {series.dtype}"), where=where,
                               fix="compare with a value of the column's type") from exc
        # Comparisons with missing values give NA/False; NA means "no match" except for !=.
        return result.fillna(op == "!=").astype(bool)
    if isinstance(test, list | set | frozenset):
        return series.isin(list(test))
    return (series == test).fillna(False).astype(bool)


def _as_collection(value: Any, *, column: str, where: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise metric_error(f"membership condition on {column!r}", expected="a collection of values", got=value,
                           where=where, fix="wrap a single value in a list")
    return list(value)
