"""Signatures of the questions stage: controversy classifier and question generation."""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field

__all__ = ["ControversyVerdict", "DraftQuestions", "JudgeControversy"]


class ControversyVerdict(BaseModel):
    controversial: bool = Field(description="True if people with different values would answer differently.")
    reason: str = Field(description="One sentence on why.")


class JudgeControversy(dspy.Signature):
    """Decide whether this question would draw diverse opinions: would people of different ages,
    cultures, religions or politics want different answers to it?"""

    question: str = dspy.InputField(desc="A question someone asked an AI assistant.")
    verdict: ControversyVerdict = dspy.OutputField(desc="Whether the question is value-laden, with a reason.")


class DraftQuestions(dspy.Signature):
    """Write questions a person might ask an AI assistant on this topic, where people with
    different values, cultures or politics would want different answers. Each is one sentence
    ending in '?', at least five words."""

    topic: str = dspy.InputField(desc="The topic of the questions.")
    count: int = dspy.InputField(desc="How many questions to write.")
    questions: list[str] = dspy.OutputField(max_length=20, desc="The questions, each ending with '?'.")
