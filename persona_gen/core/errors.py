"""Errors of persona_gen.

Every message says what went wrong, what was expected, what was got, where, and how to fix it,
e.g. ``sampler.num_personas must be >= 1, but got 0 (conf/sampler/census_six_states.yaml); raise it``.
"""

from __future__ import annotations

__all__ = [
    "CensusError",
    "ConfigError",
    "LMOutputError",
    "PersonaGenError",
    "PublishError",
    "format_error",
]


def format_error(what: str, *, expected: str | None = None, got: object = None, where: str | None = None,
                 fix: str | None = None) -> str:
    """Build a message in the house format: what, expected, got, where, how to fix."""
    msg = what
    if expected is not None:
        msg += f" must be {expected}"
    if got is not None:
        msg += f", but got {got!r}"
    if where:
        msg += f" ({where})"
    if fix:
        msg += f"; {fix}"
    return msg


class PersonaGenError(Exception):
    """Base class of every error persona_gen raises on purpose."""


class ConfigError(PersonaGenError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class CensusError(PersonaGenError, ValueError):
    """Census microdata or its dictionary cannot be read, decoded or sampled."""


class LMOutputError(PersonaGenError):
    """A language model answer could not be parsed into the expected record."""


class PublishError(PersonaGenError):
    """The dataset could not be written or uploaded."""
