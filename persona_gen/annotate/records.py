"""Records of human role-play annotation: tasks shown to raters, the private answer key, labels, labeled items.

They follow ``persona_gen.core.records`` (frozen pydantic, no unknown fields) and cross only the
annotation and optimization tasks; no generation stage reads them.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from persona_gen.core.records import Record

__all__ = ["CHOICES", "PREFERENCES", "AnnotationTask", "Label", "LabeledItem", "Rating", "TaskKey", "majority"]

CHOICES: tuple[str, ...] = ("a", "b", "tie")
PREFERENCES: tuple[str, ...] = ("original", "revision", "tie")

Choice = Literal["a", "b", "tie"]
Preference = Literal["original", "revision", "tie"]
Source = Literal["original", "revision"]


class AnnotationTask(Record):
    """What a rater sees: one persona, one question, two answers in a seeded random order."""

    task_id: str
    persona_id: str
    persona: str = Field(description="The persona as newline-separated 'key: value' text.")
    question: str
    answer_a: str
    answer_b: str


class TaskKey(Record):
    """The private side of a task: which answer is the original and which the persona-aware revision.

    Kept out of the files that go to a crowd platform so raters cannot see it.
    """

    task_id: str
    feedback_id: str
    persona_id: str
    question_id: str
    answer_a: Source = Field(description="Which dataset answer was shown as answer A.")
    question_type: Literal["train", "test"] = "train"
    seen: bool = False
    generator_model: str = ""

    def preference(self, choice: str) -> str:
        """Map a rater's ``a``/``b``/``tie`` to ``original``/``revision``/``tie``."""
        if choice == "tie":
            return "tie"
        other = "revision" if self.answer_a == "original" else "original"
        return self.answer_a if choice == "a" else other


class Label(Record):
    """One rater's answer to one task, as imported (``source`` says file:line)."""

    rater_id: str
    task_id: str
    choice: Choice
    justification: str = ""
    source: str = ""


class Rating(Record):
    """One rater's label of an item, in the answer space of the dataset."""

    rater_id: str
    preferred: Preference
    justification: str = ""


class LabeledItem(Record):
    """A task with its answer key and every human rating: the unit of agreement and optimization."""

    task_id: str
    feedback_id: str
    persona_id: str
    question_id: str
    persona: str
    question: str
    original: str
    revision: str
    ratings: tuple[Rating, ...]
    majority: Preference | None = Field(description="The most frequent preference; None when the top is split.")


def majority(preferences: list[str]) -> str | None:
    """The most frequent label, or None when two labels share the top count (or there is none)."""
    counts = Counter(preferences).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]
