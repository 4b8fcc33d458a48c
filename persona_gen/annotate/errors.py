"""The error annotation raises on bad input files.

It lives here, like ``MetricError`` beside the metrics, because only this package raises it; it is a
``PersonaGenError`` (the CLI prints it as one line) and a ``ValueError``.
"""

from __future__ import annotations

from persona_gen.core.errors import PersonaGenError

__all__ = ["AnnotationError"]


class AnnotationError(PersonaGenError, ValueError):
    """An annotation file (tasks, key or labels) is missing, malformed or does not match its tasks."""
