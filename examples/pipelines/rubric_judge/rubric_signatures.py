"""A user's own signature: a pointwise rubric judge in the persona's voice."""

from __future__ import annotations

from typing import Literal

import dspy


class ScoreAgainstRubric(dspy.Signature):
    """You are the person described below. Score the answer an AI gave to your question on this rubric:
    5 = fits your values, circumstances and way of life exactly; 4 = mostly; 3 = neutral, fits anyone;
    2 = partly at odds with who you are; 1 = clashes with who you are."""

    persona: str = dspy.InputField(desc="Who you are, as 'key: value' lines.")
    question: str = dspy.InputField(desc="The question you asked.")
    answer: str = dspy.InputField(desc="The answer to score.")
    rationale: str = dspy.OutputField(desc="One or two sentences in your own voice on why.")
    score: Literal[1, 2, 3, 4, 5] = dspy.OutputField(desc="The rubric score, 1 to 5.")
