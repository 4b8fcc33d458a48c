"""Signatures of the questions stage: controversy classifier and question generation."""

from __future__ import annotations

from functools import cache
from typing import Annotated

import dspy
from pydantic import BaseModel, Field, WithJsonSchema, create_model

__all__ = [
    "DRAFT_MAX_CHARS",
    "DRAFT_MAX_ITEMS",
    "ControversyVerdict",
    "DraftQuestions",
    "JudgeControversy",
    "QuestionDrafts",
    "draft_questions_signature",
]

# Hard caps that reach the JSON schema (maxItems, maxLength), so a grammar-constrained model such as
# SmolLM2 cannot loop on the list until max_tokens. `dspy.OutputField(max_length=...)` never reaches the
# schema DSPy builds: only the annotation does, so the caps live on a pydantic model. Validation stays
# lenient (WithJsonSchema / json_schema_extra change the schema only): an unconstrained server that
# ignores the caps still parses, and the stage trims and filters what comes back.
DRAFT_MAX_ITEMS = 5
DRAFT_MAX_CHARS = 200

_DraftText = Annotated[str, WithJsonSchema({"type": "string", "maxLength": DRAFT_MAX_CHARS})]


class ControversyVerdict(BaseModel):
    controversial: bool = Field(description="True if people with different values would answer differently.")
    reason: str = Field(description="One sentence on why.")


class JudgeControversy(dspy.Signature):
    """Decide whether this question would draw diverse opinions: would people of different ages,
    cultures, religions or politics want different answers to it?"""

    question: str = dspy.InputField(desc="A question someone asked an AI assistant.")
    verdict: ControversyVerdict = dspy.OutputField(desc="Whether the question is value-laden, with a reason.")


class QuestionDrafts(BaseModel):
    questions: list[_DraftText] = Field(
        description="The questions, each one sentence ending with '?'.",
        json_schema_extra={"minItems": 1, "maxItems": DRAFT_MAX_ITEMS})


class DraftQuestions(dspy.Signature):
    """Write questions a person might ask an AI assistant on this topic, where people with
    different values, cultures or politics would want different answers. Each is one sentence
    ending in '?', at least five words."""

    topic: str = dspy.InputField(desc="The topic of the questions.")
    count: int = dspy.InputField(desc="How many questions to write.")
    drafts: QuestionDrafts = dspy.OutputField(desc="The questions, each ending with '?'.")


@cache
def draft_questions_signature(max_items: int) -> type[dspy.Signature]:
    """``DraftQuestions`` whose schema allows at most ``max_items`` questions (same name and instructions).

    The model class is named after its cap, so the cap is part of the signature identity (and the cache key).
    """
    if max_items == DRAFT_MAX_ITEMS:
        return DraftQuestions
    model = create_model(
        f"QuestionDraftsMax{max_items}", __base__=QuestionDrafts,
        questions=(list[_DraftText], Field(description=QuestionDrafts.model_fields["questions"].description,
                                           json_schema_extra={"minItems": 1, "maxItems": max_items})))
    signature = DraftQuestions.with_updated_fields("drafts", type_=model)
    signature.__name__ = signature.__qualname__ = DraftQuestions.__name__
    return signature
