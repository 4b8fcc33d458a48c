"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from persona_gen.metrics._validate import Text, metric_error

__all__ = ["pass_at_k", "pass_at_k_curve"]


def pass_at_k(n: Any, c: Any, k: Any) -> float | np.ndarray:
    """Unbiased estimate of the chance that at least one of ``k`` samples passes.

    From ``n`` samples of which ``c`` pass, ``pass@k = 1 - C(n - c, k) / C(n, k)``. As in the Codex
    paper it is computed as ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)``, which never forms the
    huge binomial coefficients, and is exactly 1 when ``n - c < k`` (every k-subset holds a pass).

    Args:
        n: Samples drawn per problem (int or array of ints, ``>= 1``).
        c: Samples that passed (``0 <= c <= n``).
        k: Budget (``1 <= k <= n``).

    The three arguments broadcast against each other like numpy arrays.

    Returns:
        A float when all arguments are scalars, else an array of the broadcast shape.

    Raises:
        MetricError: On non-integer or negative values, ``c > n``, ``k < 1`` or ``k > n``, or
            shapes that do not broadcast.

    Example:
        >>> round(pass_at_k(4, 2, 2), 4)  # 1 - C(2, 2) / C(4, 2) = 5/6
        0.8333
    """
    where = "pass_at_k"
    arrays = {name: _as_int_array(value, name, where=where) for name, value in (("n", n), ("c", c), ("k", k))}
    try:
        n_arr, c_arr, k_arr = np.broadcast_arrays(arrays["n"], arrays["c"], arrays["k"])
    except ValueError:
        shapes = ", ".join(f"{name}: {arr.shape}" for name, arr in arrays.items())
        raise metric_error("n, c and k", expected="broadcastable shapes", got=Text(shapes), where=where,
                           fix="pass scalars or arrays of one shape") from None
    _check_range(n_arr, c_arr, k_arr, where=where)
    out = np.empty(n_arr.shape, dtype=float)
    for idx in np.ndindex(n_arr.shape):
        out[idx] = _estimate(int(n_arr[idx]), int(c_arr[idx]), int(k_arr[idx]))
    if out.ndim == 0:
        return float(out)
    return out


def pass_at_k_curve(n: Any, c: Any, ks: Iterable[int] = range(1, 17)) -> pd.DataFrame:
    """Mean pass@k over problems for each budget k.

    Args:
        n: Samples per problem (int or array of ints).
        c: Passing samples per problem, broadcastable with ``n``.
        ks: Budgets to evaluate; each must be ``<= min(n)``.

    Returns:
        Columns ``k`` and ``pass_at_k`` (the mean over problems), one row per k, in the order given.

    Raises:
        MetricError: As ``pass_at_k``, or when ``ks`` is empty.
    """
    budgets = [int(k) for k in ks]
    if not budgets:
        raise metric_error("ks", expected="non-empty", got=Text("no budgets"), where="pass_at_k_curve",
                           fix="pass e.g. range(1, 17)")
    smallest_n = int(np.min(_as_int_array(n, "n", where="pass_at_k_curve")))
    if max(budgets) > smallest_n:
        raise metric_error("ks", expected=f"<= min(n)={smallest_n}", got=Text(f"k={max(budgets)}"),
                           where="pass_at_k_curve", fix=f"pass ks=range(1, {smallest_n + 1}) or draw more samples")
    means = [float(np.mean(pass_at_k(n, c, k))) for k in budgets]
    return pd.DataFrame({"k": budgets, "pass_at_k": means})


def _estimate(n: int, c: int, k: int) -> float:
    # Codex paper, Figure 3: numerically stable form of 1 - C(n - c, k) / C(n, k).
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _as_int_array(value: Any, name: str, *, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        raise metric_error(name, expected="non-empty", got=Text("an empty array"), where=where,
                           fix="pass at least one problem")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or not np.all(np.mod(arr, 1) == 0):
        raise metric_error(name, expected="whole numbers", got=Text(f"{arr.ravel()[:5].tolist()!r}"), where=where,
                           fix="pass counts of samples")
    return arr.astype(np.int64)


def _check_range(n: np.ndarray, c: np.ndarray, k: np.ndarray, *, where: str) -> None:
    checks = (
        ("n", n < 1, ">= 1", "draw at least one sample per problem"),
        ("c", c < 0, ">= 0", "count passing samples, never negative"),
        ("c", c > n, "<= n", "c counts passing samples among the n drawn"),
        ("k", k < 1, ">= 1", "use budgets from 1"),
        ("k", k > n, "<= n", "draw at least k samples per problem, or lower k to at most min(n)"),
    )
    for name, bad, expected, fix in checks:
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            got = f"{name}={int({'n': n, 'c': c, 'k': k}[name][idx])}"
            if name != "n":
                got += f" with n={int(n[idx])}"
            if idx:
                got += f" at index {idx if len(idx) > 1 else idx[0]}"
            raise metric_error(name, expected=expected, got=Text(got), where=where, fix=fix)
