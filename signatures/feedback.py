"""Signatures of Direct Principle Feedback: answer, critique in the persona's voice, revise."""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field

__all__ = ["AnswerQuestion", "CritiqueInVoice", "PersonaCritique", "ReviseForPersona"]


class AnswerQuestion(dspy.Signature):
    """Answer the user's question helpfully and concisely."""

    question: str = dspy.InputField(desc="The user's question.")
    answer: str = dspy.OutputField(desc="A helpful answer in a few sentences.")


class PersonaCritique(BaseModel):
    evaluation: str = Field(description="How well the answer suits you, quoting the part that matters most.")
    suggestions: str = Field(description="What should change so the answer suits you better.")


class CritiqueInVoice(dspy.Signature):
    """You are the person described below. Read the answer an AI gave to your question and judge,
    in your own voice, how well it suits you: your values, circumstances and way of life. Quote the
    answer where it matters."""

    persona: str = dspy.InputField(desc="Who you are, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The question you asked.")
    answer: str = dspy.InputField(desc="The answer you got.")
    critique: PersonaCritique = dspy.OutputField(desc="EVALUATION and SUGGESTIONS.")


class ReviseForPersona(dspy.Signature):
    """Revise the answer following the critique so it suits the person better. Personalize subtly:
    never name or mention the person's attributes. Keep it no longer than the original."""

    persona: str = dspy.InputField(desc="The person the answer is for, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The question.")
    answer: str = dspy.InputField(desc="The original answer.")
    critique: str = dspy.InputField(desc="The person's critique of the original answer.")
    revision: str = dspy.OutputField(desc="The revised answer, no longer than the original.")
