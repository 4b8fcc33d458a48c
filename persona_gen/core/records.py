"""Records: the only contract between stages.

Every stage reads and writes these frozen pydantic models; nothing else crosses a stage border.
Ids derive from content and seed (never from time), so two runs with one seed agree byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CENSUS_KEYS",
    "LM_KEYS",
    "PERSONA_KEYS",
    "PSYCHO_KEYS",
    "Critique",
    "Failure",
    "Feedback",
    "Judgment",
    "Pair",
    "Persona",
    "Question",
    "Record",
    "Rejection",
    "Response",
    "RunInfo",
    "stable_id",
]

# The 33 keys of the released PERSONA dataset, in its order. Census keys come from ACS PUMS,
# psychodemographic keys from sourced survey tables, LM keys from the enrichment model.
PERSONA_KEYS: tuple[str, ...] = (
    "age", "sex", "race", "ancestry", "household language", "education", "employment status",
    "class of worker", "industry category", "occupation category", "detailed job description",
    "income", "marital status", "household type", "family presence and age", "place of birth",
    "citizenship", "veteran status", "disability", "health insurance", "big five scores",
    "defining quirks", "mannerisms", "personal time", "lifestyle", "ideology", "political views",
    "religion", "cognitive difficulty", "ability to speak english", "vision difficulty", "fertility",
    "hearing difficulty",
)  # fmt: skip
PSYCHO_KEYS: tuple[str, ...] = ("big five scores", "ideology", "political views", "religion")
LM_KEYS: tuple[str, ...] = ("detailed job description", "defining quirks", "mannerisms", "personal time", "lifestyle")
CENSUS_KEYS: tuple[str, ...] = tuple(k for k in PERSONA_KEYS if k not in PSYCHO_KEYS and k not in LM_KEYS)


def stable_id(prefix: str, *parts: Any) -> str:
    """A short id from content: sha256 of the sorted-key JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:16]}"


def records_frame(records: Any, *, json_cols: tuple[str, ...] = ("failure",), columns: Any = None) -> Any:
    """A pandas frame of records (``model_dump(mode="json")``), ``json_cols`` as sorted-key JSON text; with no
    record, an empty frame of ``columns``."""
    import pandas as pd

    rows = []
    for r in records:
        d = r.model_dump(mode="json")
        for col in json_cols:
            d[col] = json.dumps(d[col], sort_keys=True, ensure_ascii=False)
        rows.append(d)
    if not rows and columns is not None:
        return pd.DataFrame(columns=list(columns)).astype(str)
    return pd.DataFrame(rows)


class Record(BaseModel):
    """Base of every record: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Failure(Record):
    """A recorded LM or validation failure: kept with the row, counted, never dropped."""

    stage: str = Field(description="Stage that failed, e.g. 'enrich' or 'judge'.")
    kind: str = Field(description="Failure class, e.g. 'parse', 'length', 'inconsistent', 'lm_error'.")
    message: str = Field(description="What went wrong, in one line.")
    raw: str | None = Field(default=None, description="The raw LM text, when there was one.")


class Persona(Record):
    """A synthetic person: census attributes, procedural psychodemographics, LM idiosyncrasies."""

    persona_id: str
    attributes: dict[str, str] = Field(description="PERSONA key -> value, in PERSONA_KEYS order.")
    source_record_id: str = Field(description="The census person record this persona was drawn from.")
    provenance: dict[str, str] = Field(default_factory=dict, description="Field -> what made it (table/model).")
    failures: tuple[Failure, ...] = ()

    def render(self) -> str:
        """The ``key: value`` text of the released PERSONA dataset, one key per line."""
        return "\n".join(f"{k}: {v}" for k, v in self.attributes.items())

    def summary(self) -> str:
        """A compact one-paragraph summary (the bench's demographic_summary mode uses it)."""
        a = self.attributes
        parts = [
            f"{a.get('age', '?')}-year-old {a.get('sex', '').lower()}",
            a.get("race", ""),
            f"born in {a.get('place of birth', '?')}",
            a.get("education", ""),
            a.get("occupation category", ""),
            a.get("marital status", ""),
            f"ideology {a.get('ideology', '?')}",
            f"religion {a.get('religion', '?')}",
        ]
        return "; ".join(p for p in parts if p)


class Question(Record):
    """A value-laden question."""

    question_id: str
    text: str
    source: str = Field(description="Where it came from, e.g. 'prism_examples' or 'generated:<model>'.")
    cluster: str = ""
    split: Literal["train", "held_out"] = "train"


class Pair(Record):
    """A persona-question pair: one feedback row, and the unit every pair-scope step runs on."""

    persona_id: str
    question: Question
    question_type: Literal["train", "test"]
    seen: bool = Field(description="Test rows: True if the question is from the train split (seen).")

    @property
    def feedback_id(self) -> str:
        """The pair's id: the ``feedback_id`` of its feedback row and of its judgments."""
        return _feedback_id(self.persona_id, self.question.question_id, self.question_type, self.seen)


@functools.lru_cache(maxsize=1 << 16)
def _feedback_id(persona_id: str, question_id: str, question_type: str, seen: bool) -> str:
    # A row's id is asked for at each of its steps (results are keyed by it); the recent pairs' are kept.
    return stable_id("fb", persona_id, question_id, question_type, seen)


class Rejection(Record):
    """An enriched candidate persona that was not kept, and why (the persona_rejections table)."""

    persona_id: str
    source_record_id: str
    reason: str = Field(description="rule:<name> | inconsistent | lm_failure")
    offending_fields: tuple[str, ...] = ()
    message: str = ""
    raw: str | None = None
    failure_kind: str | None = Field(default=None, description="lm_failure only: parse | lm_error | echo | empty")


class RunInfo(BaseModel):
    """What the run-once steps tell the card and the manifest (``global/info.json``): one typed record.

    The named fields are those every run has; each step adds its own facts (``census``, ``enrich``, ``fidelity``,
    ``filter_counts``, ...) through ``Step.info``, kept as extra fields.
    """

    model_config = ConfigDict(extra="allow")

    seed: int
    config_hash: str
    generator: dict[str, Any]
    judge: dict[str, Any]
    generator_model: str
    judge_model: str
    embedded_model: bool
    num_personas: int
    chunk_personas: int
    steps: list[dict[str, Any]] = Field(default_factory=list, description="step, what, scope, made by: card rows")
    inputs: list[tuple[str, str]] = Field(default_factory=list, description="(input, license) credits")
    global_stats: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Response(Record):
    """An answer to a question, with or without a persona."""

    response_id: str
    question_id: str
    persona_id: str | None = None
    text: str
    model: str
    failure: Failure | None = None


class Critique(Record):
    """A critique of a response, written in a persona's voice (EVALUATION + SUGGESTIONS)."""

    persona_id: str
    response_id: str
    evaluation: str
    suggestions: str
    model: str
    failure: Failure | None = None

    @property
    def text(self) -> str:
        return f"EVALUATION: {self.evaluation}\nSUGGESTIONS: {self.suggestions}"


class Feedback(Record):
    """One Direct Principle Feedback row: rejected original, persona critique, chosen revision."""

    feedback_id: str
    persona_id: str
    question_id: str
    persona: str = Field(description="The persona as newline-separated 'key: value' text.")
    instruction: str
    original: str = Field(description="The no-persona answer (rejected).")
    critique: str
    data: str = Field(description="The persona-aware revision (chosen).")
    question_type: Literal["train", "test"]
    seen: bool = Field(description="Test rows: True if the question is from the train split (seen).")
    generator_model: str
    failures: tuple[Failure, ...] = ()


class Judgment(Record):
    """One persona-voiced pairwise judgment of a (first, second) pair in one presentation order."""

    judgment_id: str
    feedback_id: str
    persona_id: str
    question_id: str
    variant: Literal["direct", "chain_of_thought"]
    order: Literal["original_first", "revision_first"]
    choice: Literal["first", "second", "tie", "abstain"]
    preferred: Literal["original", "revision", "tie", "abstain"]
    reasoning: str = ""
    judge_model: str
    signature_hash: str
    program_hash: str = ""
    failure: Failure | None = None
