"""Steps of Direct Principle Feedback around the LM calls: pairing, the revision length check, extra candidates.

The three LM calls (answer, critique, revision) are plain ``LMStep`` declarations in ``conf/pipeline/persona.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from persona_gen.core.records import Failure
from persona_gen.core.steps import Call, Row, RowResult, Step, StepContext

__all__ = ["AssignStep", "CandidatesStep", "LengthCheck"]


class AssignStep(Step):
    """Pairing: each persona gets train + seen-test questions from the train split and unseen-test ones held out."""

    default_scope = "run"
    outputs = ("pairs",)
    what = "persona-question pairs: train and seen-test questions from the train split, unseen-test from held out"

    def required_inputs(self) -> tuple[str, ...]:
        return ("personas", "questions")

    def check(self) -> None:
        if self.scope != "run":
            raise self.error("scope", "run", self.scope, "pairs are drawn once per run")

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.feedback.stage import assign_questions

        scale = self.settings
        return {"pairs": assign_questions(
            inputs["personas"], inputs["questions"], train_rows=int(scale.train_rows_per_persona),
            seen_rows=int(scale.test_seen_per_persona), unseen_rows=int(scale.test_unseen_per_persona),
            seed=self.seed())}

    def persona_part(self, ctx: StepContext, inputs: Mapping[str, Any], persona: Any) -> Mapping[str, Any]:
        """One persona's pairs (its part of ``pairs``, which is seeded per persona): streaming execution draws them
        the moment the persona is final, before the other personas are."""
        return self.run_once(ctx, {**inputs, "personas": [persona]})

    def planned_rows_per_persona(self) -> int:
        """Pairs of each persona: train + seen-test + unseen-test rows."""
        scale = self.settings
        return int(scale.train_rows_per_persona) + int(scale.test_seen_per_persona) + \
            int(scale.test_unseen_per_persona)

    def planned_questions_used(self, num_personas: int, train: int, held_out: int) -> float:
        """Expected distinct questions the pairs use: each persona draws k of T train questions (and u of H held
        out) without replacement, independently, so a question goes unused with probability (1 - k/T)^P."""
        scale = self.settings
        k = int(scale.train_rows_per_persona) + int(scale.test_seen_per_persona)
        u = int(scale.test_unseen_per_persona)

        def used(total: int, drawn: int) -> float:
            if total <= 0 or drawn <= 0:
                return 0.0
            return total * (1.0 - (1.0 - min(drawn, total) / total) ** num_personas)

        return used(train, k) + used(held_out, u)


def _words(text: str) -> int:
    return len(str(text).split())


class LengthCheck(Step):
    """The revision is no longer than ``max_ratio`` x the original (DPF's length control); a longer one is kept and
    recorded as a failure of kind ``length``."""

    default_scope = "pair"
    extra_keys = ("max_ratio", "failure_stage")
    what = "revision no longer than the original (longer ones kept, recorded as failures)"

    def required_inputs(self) -> tuple[str, ...]:
        return ("original", "revision")

    def check(self) -> None:
        try:
            ratio = float(self.spec.get("max_ratio", 1.0))
        except (TypeError, ValueError):
            ratio = -1.0
        if ratio <= 0:
            raise self.error("max_ratio", "a number > 0", self.spec.get("max_ratio"), "e.g. max_ratio: 1.0")

    def calls(self, row: Row) -> list[Call]:
        return []

    def finish(self, ctx: StepContext, row: Row, results: Sequence[Any]) -> RowResult:
        ratio = float(self.spec.get("max_ratio", 1.0))
        orig, revision = str(row.inputs["original"]), str(row.inputs["revision"])
        if revision and orig and _words(revision) > ratio * _words(orig):
            return RowResult(None, Failure(
                stage=str(self.spec.get("failure_stage") or self.name), kind="length",
                message=f"revision has {_words(revision)} words, original {_words(orig)}; limit is {ratio}x"))
        return RowResult({})


class CandidatesStep(Step):
    """Extra candidate generators: each answers every question used in the run, without a persona."""

    default_scope = "run"
    needs_role = False
    outputs = ("candidates",)

    def required_inputs(self) -> tuple[str, ...]:
        return ("pairs",)

    def _configs(self) -> list[tuple[str, Any]]:
        from persona_gen.feedback.stage import candidate_model_configs

        return candidate_model_configs(self.settings, self.cfg.models)

    def check(self) -> None:
        from persona_gen.core.config import check_model

        for i, (_, mcfg) in enumerate(self._configs()):
            check_model(mcfg, f"stage.feedback.candidates[{i}]")

    def describe(self) -> str:
        names = [name for name, _ in self._configs()]
        return (f"no-persona answers of the extra candidate generators {names} to every question used" if names
                else "none configured (stage.feedback.candidates is empty)")

    def made_by(self, runtime: Any) -> str:
        return ", ".join(f"{name}={runtime.client(f'candidate:{name}', mcfg).model_id}"
                         for name, mcfg in self._configs()) or "n/a"

    def stats_keys(self) -> tuple[str, ...]:
        return tuple(f"candidate_{name}" for name, _ in self._configs())

    def signatures(self) -> list[type]:
        from persona_gen.signatures import AnswerQuestion

        return [AnswerQuestion] if self._configs() else []

    def planned_calls(self, plan: Any) -> list[Any]:
        """Each extra candidate generator answers every question the pairs use (estimated like the answer step)."""
        from persona_gen.core.planning import PlannedCall
        from persona_gen.signatures import AnswerQuestion

        calls = int(plan.rows.get("question", 0))
        exact = plan.exact("question")
        return [PlannedCall(f"candidate_{name}", f"candidate:{name}", calls, AnswerQuestion,
                            {"question": plan.question_text()}, exact=exact, model_cfg=mcfg, batches=(calls,),
                            note="" if exact else "one per question used (estimated)")
                for name, mcfg in self._configs()]

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.feedback.stage import run_candidates

        configs = self._configs()
        clients = [(name, ctx.runtime.client(f"candidate:{name}", mcfg)) for name, mcfg in configs]
        responses = run_candidates([a.question for a in inputs["pairs"]], clients, cache=ctx.runtime.cache,
                                   stats=ctx.stats)
        return {"candidates": responses if configs else None}

    def frame(self, output: str, value: Any) -> pd.DataFrame | None:
        if value is None:
            return None
        from persona_gen.core.records import records_frame

        return records_frame(value)
