"""Signatures of PERSONA Bench: the personalization methods under test and the persona-voiced critic."""

from __future__ import annotations

import dspy

__all__ = ["AnswerForPersona", "AnswerFromPersonaSummary", "CritiqueBenchAnswer", "SummarizePersona"]


# The baseline mode answers with persona_gen.signatures.AnswerQuestion (no persona at all).


class AnswerForPersona(dspy.Signature):
    """Answer the question for the person described below. Be genuinely helpful, and personalize
    subtly: fit the answer to their circumstances, values and way of life, but never name or
    mention any of their attributes."""

    persona: str = dspy.InputField(desc="The person asking, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The person's question.")
    answer: str = dspy.OutputField(desc="A helpful answer in a few sentences, subtly fitted to the person.")


class SummarizePersona(dspy.Signature):
    """Summarize who this person is in two or three sentences: the demographics, circumstances
    and values that most shape which answers would suit them."""

    persona: str = dspy.InputField(desc="The person, as 'key: value' lines.")
    summary: str = dspy.OutputField(desc="A short third-person summary of the person.")


class AnswerFromPersonaSummary(dspy.Signature):
    """Answer the question for the person summarized below. Be genuinely helpful, and personalize
    subtly: fit the answer to their circumstances, values and way of life, but never name or
    mention any of their attributes."""

    persona_summary: str = dspy.InputField(desc="A short summary of the person asking.")
    question: str = dspy.InputField(desc="The person's question.")
    answer: str = dspy.OutputField(desc="A helpful answer in a few sentences, subtly fitted to the person.")


class CritiqueBenchAnswer(dspy.Signature):
    """You are the person described below. You asked an AI assistant the question below and got
    this answer. Judge it in your own voice on two counts. Personalization: does it fit your
    values, circumstances and way of life, subtly, without naming your attributes? Helpfulness:
    does it actually answer your question well? It needs revision if it fails either count."""

    # One call plays both critics and the decision, so leave-one-out rejudging stays affordable
    # (one call per attribute and answer); the reason comes first so the verdicts follow from it.
    persona: str = dspy.InputField(desc="Who you are, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The question you asked.")
    answer: str = dspy.InputField(desc="The answer you got.")
    reason: str = dspy.OutputField(desc="One or two sentences, in your voice, on how well the answer suits you.")
    personalization_ok: bool = dspy.OutputField(desc="True if the answer fits who you are.")
    helpful: bool = dspy.OutputField(desc="True if the answer answers your question well.")
    needs_revision: bool = dspy.OutputField(desc="True if the answer must be revised before it suits you.")
