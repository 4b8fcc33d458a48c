"""Krippendorff's alpha: agreement of any number of raters, with missing ratings, at four levels."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_gen.metrics._validate import Text, metric_error, require_nonempty

__all__ = ["krippendorff_alpha"]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
_LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


def krippendorff_alpha(ratings: Any, level: Level = "nominal") -> float:
    """Krippendorff's alpha reliability coefficient.

    Computed from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"): ``alpha = 1 - (n - 1) * sum(o * d) / sum(n_c * n_k * d)`` where ``o`` is
    the coincidence matrix, ``n_c`` its marginals, ``n`` the number of pairable values and ``d``
    the squared difference function of the level. Units with fewer than two ratings are not
    pairable and are left out, as the definition requires.

    Args:
        ratings: Raters x units array-like (a pandas DataFrame works too) with NaN or None for a
            missing rating. Values may be any hashable labels at the nominal level; the other
            levels need numbers.
        level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``.

    Returns:
        Alpha as a float; 1 is perfect agreement, 0 agreement at chance. NaN when there is no
        expected disagreement (every pairable value is the same), where alpha is 0/0.

    Raises:
        MetricError: On an unknown level, a non-2-D input, non-numeric values at a numeric
            level, or fewer than two pairable values.

    Example:
        >>> krippendorff_alpha([[1, 2, 3, None], [1, 2, 3, 3]])
        1.0
    """
    where = "krippendorff_alpha"
    if level not in _LEVELS:
        raise metric_error("level", expected="one of " + ", ".join(map(repr, _LEVELS)), got=level, where=where,
                           fix="pick the measurement level of the ratings")
    frame = pd.DataFrame(ratings)
    if frame.ndim != 2 or frame.size == 0:
        raise metric_error("ratings", expected="a non-empty raters x units table", got=Text(f"shape {frame.shape}"),
                           where=where, fix="pass one row per rater and one column per unit, NaN where missing")
    # Count how often each value occurs in each unit: a units x values table is all alpha needs.
    long = frame.stack().reset_index(level=0, drop=True)  # index: unit, value: rating (NaN dropped)
    long = long[~long.map(_missing)]
    require_nonempty(len(long), "ratings", where=where, fix="pass at least two ratings of the same unit")
    counts = pd.crosstab(long.index, long.to_numpy())
    counts = counts[counts.sum(axis=1) >= 2]  # only units with >= 2 ratings are pairable
    values = list(counts.columns)
    n_uv = counts.to_numpy(dtype=float)
    if n_uv.sum() < 2:
        raise metric_error("ratings", expected="at least one unit rated by two or more raters",
                           got=Text("no pairable unit"), where=where, fix="add ratings so units overlap")
    m_u = n_uv.sum(axis=1)
    # Coincidence matrix: o[c, k] = sum_u n_uc * (n_uk - [c == k]) / (m_u - 1).
    weighted = n_uv / (m_u - 1)[:, None]
    coincidence = weighted.T @ n_uv - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _delta(values, n_c, level, where=where)
    observed = float(np.sum(coincidence * delta))
    expected = float(n_c @ delta @ n_c)
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1.0) * observed / expected)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _delta(values: list[Any], n_c: np.ndarray, level: str, *, where: str) -> np.ndarray:
    """Squared difference function (Krippendorff's metric delta^2) between every pair of values."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise metric_error("ratings", expected=f"numeric at level {level!r}", got=Text(f"values like {values[:3]!r}"),
                           where=where, fix="map the labels to numbers or use level='nominal'") from None
    # crosstab sorts its columns, so values (and n_c) are already in rank order for the ordinal metric.
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        # sum_{g=c..k} n_g - (n_c + n_k) / 2, for c <= k; symmetric.
        i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2
        return between**2
    diff = x[:, None] - x[None, :]
    if level == "interval":
        return diff**2
    if (x < 0).any():
        raise metric_error("ratings", expected="non-negative at level 'ratio'", got=Text(f"min {x.min():g}"),
                           where=where, fix="use level='interval' for values that can be negative")
    total = x[:, None] + x[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total == 0, 0.0, diff / total)
    return ratio**2
