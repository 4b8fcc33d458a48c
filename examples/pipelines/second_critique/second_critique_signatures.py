"""A user's own signature: the persona critiques the revision (a second round of Direct Principle Feedback)."""

from __future__ import annotations

import dspy

from persona_gen.signatures import PersonaCritique


class CritiqueRevision(dspy.Signature):
    """You are the person described below. An AI revised its answer to your question to suit you better.
    Judge, in your own voice, whether the revision now suits your values, circumstances and way of life,
    and what still misses. Quote the revision where it matters."""

    persona: str = dspy.InputField(desc="Who you are, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The question you asked.")
    revision: str = dspy.InputField(desc="The revised answer.")
    critique: PersonaCritique = dspy.OutputField(desc="EVALUATION and SUGGESTIONS.")
