"""Signatures of the enrichment stage: LM-written idiosyncrasies and the consistency check."""

from __future__ import annotations

from typing import Annotated, Literal

import dspy
from pydantic import BaseModel, Field

__all__ = [
    "DETAIL_GUIDE",
    "CheckPersonaConsistency",
    "ConsistencyVerdict",
    "Idiosyncrasies",
    "WritePersonaDetails",
]

# Bounds on free text. They reach the JSON schema (maxLength / maxItems), so a constrained decoder stops a small
# model that would otherwise write one string, or loop on one array, until max_tokens truncates the JSON. They
# are generous on purpose: pydantic validates every answer against them, and a strong model's two sentences
# (~300 characters) must never fail validation. The embedded engine tightens them further to fit its token
# budget (persona_gen.core.lm.bound_schema); that shapes decoding only.
DETAIL_MAX_CHARS = 1500
JOB_MAX_CHARS = 2000
MAX_OFFENDING_FIELDS = 6
FIELD_KEY_MAX_CHARS = 80
REASON_MAX_CHARS = 600


# What each LM-written field should say. The same words are in WritePersonaDetails' docstring (a test checks), not
# in Idiosyncrasies' JSON schema: SmolLM2-135M copied schema descriptions into values (the old "This person's daily
# routine, home life and priorities." into all five fields) and copied the adapter's framing into 5 of 19 answers
# with them there, 0 of 16 with them in the instructions. The stage rejects a value that echoes one of these, a
# field name or a sentence of the prompt (failure kind "echo").
DETAIL_GUIDE: dict[str, str] = {
    "detailed_job_description": "their work in concrete terms (tasks, workplace, hours), or what fills their days if "
                                "they do not work.",
    "defining_quirks": "one or two specific habits or traits that set them apart.",
    "mannerisms": "how they speak, move and behave around others.",
    "personal_time": "what they do in their free time, with specifics.",
    "lifestyle": "their daily routine, home life and priorities.",
}


class Idiosyncrasies(BaseModel):
    """Five details about the person, each in your own words."""

    # The five LM-written keys of the released PERSONA dataset, with _ for spaces; what each says is in DETAIL_GUIDE.
    detailed_job_description: str = Field(min_length=1, max_length=JOB_MAX_CHARS)
    defining_quirks: str = Field(min_length=1, max_length=DETAIL_MAX_CHARS)
    mannerisms: str = Field(min_length=1, max_length=DETAIL_MAX_CHARS)
    personal_time: str = Field(min_length=1, max_length=DETAIL_MAX_CHARS)
    lifestyle: str = Field(min_length=1, max_length=DETAIL_MAX_CHARS)


class WritePersonaDetails(dspy.Signature):
    """Write the idiosyncratic details of one synthetic US resident, given their census and survey attributes.

    Every detail must fit every attribute: age, employment status, occupation, income, education, disability and
    difficulties, household and family, religion, politics and personality. A child, a retiree or someone not in
    the labor force has no job: say what fills their days instead. Weave the given categories into the fields.
    Be concrete and specific. One or two sentences per field in your own words, no names; never copy these
    instructions, the attribute list or the field descriptions.

    - detailed_job_description: their work in concrete terms (tasks, workplace, hours), or what fills their days
      if they do not work.
    - defining_quirks: one or two specific habits or traits that set them apart.
    - mannerisms: how they speak, move and behave around others.
    - personal_time: what they do in their free time, with specifics.
    - lifestyle: their daily routine, home life and priorities."""

    # The paper picks several high-level categories per persona to force coverage of the space.
    persona: str = dspy.InputField(desc="The person's attributes as 'key: value' lines.")
    categories: str = dspy.InputField(desc="Comma-separated categories the details must cover.")
    details: Idiosyncrasies = dspy.OutputField(desc="The five details about this person.")


class ConsistencyVerdict(BaseModel):
    """Whether one real person could have all the attributes, and which attributes clash."""

    # The reason comes first so a model names the clash before it decides.
    reason: str = Field(max_length=REASON_MAX_CHARS,
                        description="The contradiction in one sentence, or 'none'.")
    offending_fields: list[Annotated[str, Field(max_length=FIELD_KEY_MAX_CHARS)]] = Field(
        max_length=MAX_OFFENDING_FIELDS,
        description="Keys (the text before the colon) of the attributes that contradict each other; empty if none.")
    consistent: bool = Field(description="False if any attribute contradicts another, else true.")


class CheckPersonaConsistency(dspy.Signature):
    """Decide whether one real person could have all of these attributes at once.

    Flag only real contradictions between attributes, for example: a job description that a child, a retiree or
    someone not in the labor force could not have; an activity that a stated disability or difficulty rules out;
    a lifestyle far beyond the stated income; a household or family that the household type rules out.
    Unusual but possible combinations are consistent. Name the clashing attributes by their keys."""

    persona: str = dspy.InputField(desc="The person's attributes as 'key: value' lines.")
    verdict: ConsistencyVerdict = dspy.OutputField(desc="The verdict with the offending fields.")


# Literal kept importable for tests that build verdicts by hand.
Verdict = Literal["consistent", "inconsistent"]
