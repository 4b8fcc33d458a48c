"""The bench's output record: one scored (or failed) answer.

It lives beside the bench rather than in ``persona_gen.core.records`` because no other stage reads it;
the bench reads ``Persona`` and ``Question`` records like every stage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from persona_gen.core.records import Failure, Record

__all__ = ["Analysis", "BenchRow"]

Analysis = Literal["eval", "leave_one_out", "pass_at_k"]


class BenchRow(Record):
    """One answer of one method to one (persona, question) pair, and the persona-voiced critic's verdict.

    A row whose answer or verdict failed keeps the failure and is never scored (``passed`` is None).
    """

    analysis: Analysis
    mode: str = Field(description="The method: baseline, output_only, chain_of_thought, demographic_summary, custom.")
    persona_id: str
    question_id: str
    sample_index: int = Field(default=0, description="Distinct samples of one pair (pass@k), 0 otherwise.")
    dropped_attribute: str | None = Field(default=None, description="Leave-one-out: the key the critic did not see.")
    answer: str = ""
    reason: str = ""
    personalization_ok: bool | None = None
    helpful: bool | None = None
    needs_revision: bool | None = None
    generator_model: str
    judge_model: str
    failure: Failure | None = None

    @property
    def passed(self) -> bool | None:
        """True when the critic asked for no revision; None when there is no verdict."""
        if self.failure is not None or self.needs_revision is None:
            return None
        return not self.needs_revision
