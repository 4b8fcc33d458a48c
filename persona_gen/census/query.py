"""A small, safe ``where`` language for conditional sampling: comparisons joined by and/or/not.

Examples: ``age >= 18``, ``state in ['Hawaii']``, ```employment status` == 'Unemployed'``,
``employment_status == 'Unemployed' and PINCP > 50000``. The expression is checked against a whitelist of Python
syntax (no calls, attributes, subscripts, ``@`` variables) and of column names before pandas evaluates it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from persona_gen.core.errors import CensusError, format_error

__all__ = ["evaluate_where"]

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Invert,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.BitAnd, ast.BitOr,
    ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
)
_BACKTICK = re.compile(r"`([^`]*)`")


def _fail(what: str, expr: str, fix: str, *, got: object = None, expected: str | None = None) -> CensusError:
    return CensusError(format_error(what, expected=expected, got=expr if got is None else got,
                                    where="sampler.where", fix=fix))


def _check(expr: str, columns: Iterable[str]) -> None:
    allowed = set(columns)
    quoted: dict[str, str] = {}

    def _placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in allowed:
            raise _fail(f"where expression names an unknown column `{name}`", expr,
                        f"use one of: {', '.join(sorted(allowed))}", expected="a column of the census source")
        key = f"__quoted_{len(quoted)}"
        quoted[key] = name
        return key

    try:
        tree = ast.parse(_BACKTICK.sub(_placeholder, expr), mode="eval")
    except SyntaxError as exc:
        raise _fail("where expression cannot be parsed", expr,
                    "write comparisons such as \"age >= 18 and state in ['Hawaii']\"; quote names with spaces in "
                    "backticks", got=f"{expr!r} ({exc.msg})",
                    expected="comparisons joined by and / or / not") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise _fail(f"where expression uses {type(node).__name__}, which is not allowed", expr,
                        "use only columns, constants, comparisons, in/not in, and/or/not",
                        expected="columns, constants and comparisons joined by and / or / not")
        if isinstance(node, ast.Name) and node.id not in quoted and node.id not in allowed \
                and node.id not in ("True", "False"):
            raise _fail(f"where expression names an unknown column {node.id!r}", expr,
                        f"use one of: {', '.join(sorted(allowed))}", expected="a column of the census source")


def evaluate_where(frame: pd.DataFrame, expr: str) -> npt.NDArray[np.bool_]:
    """Evaluate a checked ``where`` expression on a frame of allowed columns.

    Args:
        frame: One column per name the expression may use.
        expr: The expression.

    Returns:
        A boolean mask over the frame's rows.

    Raises:
        CensusError: When the expression is not allowed, names an unknown column, or does not give one boolean
            per row.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise _fail("where expression", repr(expr), "pass a non-empty string or None", expected="a non-empty string")
    _check(expr, frame.columns)
    try:
        result = frame.eval(expr, engine="python")
    except Exception as exc:  # pandas raises many types for a bad comparison; report them all the same way
        raise _fail("where expression cannot be evaluated", expr,
                    "compare labels with strings and numbers with numbers (e.g. age >= 18)",
                    expected="comparisons of values of one type",
                    got=f"{expr!r} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(result, pd.Series) or len(result) != len(frame):
        raise _fail("where expression must give one true/false per record", expr,
                    "use a comparison such as age >= 18", got=f"{expr!r} (gives {type(result).__name__})")
    if result.dtype != bool:
        try:
            result = result.astype("boolean").fillna(False).astype(bool)
        except (TypeError, ValueError) as exc:
            raise _fail("where expression must give one true/false per record", expr,
                        "use a comparison such as age >= 18", got=f"{expr!r} (gives {result.dtype})") from exc
    return result.to_numpy(dtype=bool)
