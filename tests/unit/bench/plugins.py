"""Methods plugged into the bench by import path in the tests (``bench.method=tests.unit.bench.plugins:...``)."""

from __future__ import annotations

import dspy


class TerseAnswerer(dspy.Module):
    """A user's own method: a string signature, no ``config`` argument."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("persona, question -> answer")

    def forward(self, persona: str, question: str) -> dspy.Prediction:
        return self.predict(persona=persona, question=question)


class FixedAnswerer:
    """Not even a DSPy module: returns a plain string."""

    def __call__(self, persona: str, question: str) -> str:
        return "It depends on what matters most to you."


class NeedsArgument(dspy.Module):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.style = style
