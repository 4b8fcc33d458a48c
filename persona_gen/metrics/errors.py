"""The error every metric raises on bad input.

It lives here, not in ``persona_gen.core.errors``, because only this package raises it; it is a
``PersonaGenError`` (so ``except PersonaGenError`` catches it) and a ``ValueError`` (so code that
expects numpy/scikit-learn style errors catches it too).
"""

from __future__ import annotations

__all__ = ["MetricError"]

from persona_gen.core.errors import PersonaGenError


class MetricError(PersonaGenError, ValueError):
    """A metric got input it cannot score: empty, of mismatched lengths, or out of range."""
