"""Signatures of the enrichment stage: LM-written idiosyncrasies and the consistency check."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import BaseModel, Field

__all__ = ["CheckPersonaConsistency", "ConsistencyVerdict", "Idiosyncrasies", "WritePersonaDetails"]


class Idiosyncrasies(BaseModel):
    """The five LM-written persona fields (keys of the released PERSONA dataset)."""

    detailed_job_description: str = Field(description="What this person does at work each day, or why they do not work.")
    defining_quirks: str = Field(description="One or two habits or traits that set this person apart.")
    mannerisms: str = Field(description="How this person talks and carries themselves.")
    personal_time: str = Field(description="What this person does with free time.")
    lifestyle: str = Field(description="This person's daily routine, home life and priorities.")


class WritePersonaDetails(dspy.Signature):
    """You write realistic, specific details for a synthetic person drawn from US census data.

    Stay consistent with every given attribute (age, job, income, health, family). Touch on each of
    the given categories. Write plainly, one or two sentences per field, no names."""

    # The paper picks several high-level categories per persona to force coverage of the space.
    persona: str = dspy.InputField(desc="The person's attributes as 'key: value' lines.")
    categories: str = dspy.InputField(desc="Comma-separated categories the details must cover.")
    details: Idiosyncrasies = dspy.OutputField(desc="The five fields, each one or two sentences.")


class ConsistencyVerdict(BaseModel):
    consistent: bool = Field(description="True if no attribute contradicts another.")
    offending_fields: list[str] = Field(max_length=4, description="Keys of the attributes that contradict each other; empty if none.")
    reason: str = Field(description="One sentence naming the contradiction, or 'none'.")


class CheckPersonaConsistency(dspy.Signature):
    """Check whether this synthetic person is self-consistent: could one real person have all of
    these attributes at once? Flag contradictions only (for example a child with a doctorate, a
    retiree working full time as a student, a quirk that contradicts a disability)."""

    persona: str = dspy.InputField(desc="The person's attributes as 'key: value' lines.")
    verdict: ConsistencyVerdict = dspy.OutputField(desc="The verdict with the offending fields.")


# Literal kept importable for tests that build verdicts by hand.
Verdict = Literal["consistent", "inconsistent"]
