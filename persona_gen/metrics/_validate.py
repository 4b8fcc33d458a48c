"""Input checks shared by the metrics; every failure is a house-format ``MetricError``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from persona_gen.core.errors import format_error
from persona_gen.metrics.errors import MetricError

__all__ = [
    "Text",
    "as_labels",
    "is_missing",
    "metric_error",
    "missing_mask",
    "require_nonempty",
    "require_same_length",
]


class Text(str):
    """A ``got`` value that ``format_error`` shows as is, without the quotes of ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def metric_error(what: str, *, expected: str, got: object, where: str, fix: str) -> MetricError:
    """Build a ``MetricError`` whose message says what, expected, got, where and how to fix."""
    return MetricError(format_error(what, expected=expected, got=got, where=where, fix=fix))


def is_missing(value: Any) -> bool:
    """Whether one judgment is missing: ``None``, a float NaN, ``pandas.NA`` or ``NaT``."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    # pd.isna also covers pd.NA, NaT and numpy NaN scalars; list-like values make it raise or
    # return an array, and a list-like judgment is not "missing".
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def missing_mask(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Boolean mask, True where a judgment is missing."""
    return np.fromiter((is_missing(v) for v in values), dtype=bool, count=len(values))


def as_labels(values: Any, name: str, *, where: str) -> np.ndarray:
    """Turn a sequence of labels into a 1-D object array, or raise.

    Object dtype keeps each label as given (``"A"`` stays a string, ``1`` stays an int) and stops
    numpy from coercing a mix of ints and strings into strings.
    """
    if isinstance(values, str | bytes | dict) or np.ndim(values) == 0:
        raise metric_error(name, expected="a sequence of labels (one per item)", got=Text(type(values).__name__),
                           where=where, fix="pass a list, tuple, 1-D numpy array or pandas Series")
    if np.ndim(values) != 1:
        raise metric_error(name, expected="one-dimensional", got=Text(f"shape {np.shape(values)}"), where=where,
                           fix="pass one label per item")
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def require_nonempty(n: int, name: str, *, where: str, fix: str = "pass at least one item") -> None:
    """Raise when a metric input holds no items."""
    if n == 0:
        raise metric_error(name, expected="non-empty", got=Text("0 items"), where=where, fix=fix)


def require_same_length(lengths: dict[str, int], *, where: str) -> None:
    """Raise when inputs that pair up item by item differ in length."""
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"len({k})={v}" for k, v in lengths.items())
        raise metric_error(" and ".join(lengths), expected="of the same length (one entry per item)", got=Text(got),
                           where=where, fix="align them on the same items first")
