"""Cheap rule-based consistency pre-checks, run before any LM call.

Each rule looks at census and procedural attributes only and names the fields it finds in conflict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["RULES", "precheck"]


def _age(a: Mapping[str, str]) -> int | None:
    try:
        return int(float(a.get("age", "")))
    except ValueError:
        return None


_ADVANCED = re.compile(r"doctorate|professional degree|master's degree|bachelor's degree", re.I)
_MARRIED = re.compile(r"^(married|widowed|divorced|separated)", re.I)


def _minor_with_degree(a: Mapping[str, str]) -> list[str]:
    age = _age(a)
    if age is not None and age < 18 and _ADVANCED.search(a.get("education", "")):
        return ["age", "education"]
    return []


def _child_married(a: Mapping[str, str]) -> list[str]:
    age = _age(a)
    if age is not None and age < 15 and _MARRIED.match(a.get("marital status", "")):
        return ["age", "marital status"]
    return []


def _child_veteran(a: Mapping[str, str]) -> list[str]:
    age = _age(a)
    vet = a.get("veteran status", "").lower()
    if age is not None and age < 17 and ("served" in vet and "never" not in vet):
        return ["age", "veteran status"]
    return []


RULES: dict[str, Callable[[Mapping[str, str]], list[str]]] = {
    "minor_with_degree": _minor_with_degree,
    "child_married": _child_married,
    "child_veteran": _child_veteran,
}


def precheck(attributes: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """The first rule that fires, with the offending fields; None when the persona passes."""
    for name, rule in RULES.items():
        fields = rule(attributes)
        if fields:
            return name, fields
    return None
