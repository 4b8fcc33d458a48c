"""The pairwise judge step: every complete pair judged in both orders by every configured variant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from persona_gen.core.records import Judgment
from persona_gen.core.steps import Call, Row, RowResult, Step, StepContext

__all__ = ["PairwiseJudgeStep"]

ORDERS = ("original_first", "revision_first")


class PairwiseJudgeStep(Step):
    """Persona-voiced pairwise judge: original vs revision, both orders, variants direct / chain_of_thought."""

    default_scope = "pair"
    needs_role = True
    outputs = ("judgments",)

    def required_inputs(self) -> tuple[str, ...]:
        return ("persona", "question", "original", "revision")

    def variants(self) -> list[str]:
        return [str(v) for v in self.settings.get("variants") or []]

    def check(self) -> None:
        from persona_gen.judge.stage import PersonaJudge

        for v in self.variants():
            PersonaJudge(v)  # raises the house-format error for an unknown variant

    def describe(self) -> str:
        return f"persona-voiced pairwise judge, both orders, variants {', '.join(self.variants()) or 'none'}"

    def stats_keys(self) -> tuple[str, ...]:
        return tuple(f"judge_{v}" for v in self.variants())

    def signatures(self) -> list[type]:
        from persona_gen.signatures import JudgeInVoice

        return [JudgeInVoice] if self.variants() else []

    def info(self, outputs: Any = None) -> dict[str, Any]:
        return {"judge_variants": self.variants()}

    def judges(self) -> dict[str, Any] | None:
        path = self.settings.get("program_path")
        if not path:
            return None
        from persona_gen.judge.programs import load_judges

        return load_judges(path)

    def planned_calls(self, plan: Any) -> list[Any]:
        """Per variant, two calls (both orders) for each of the first ``max_rows_per_persona`` pairs of a persona."""
        from persona_gen.core.planning import PlannedCall
        from persona_gen.judge.stage import PersonaJudge

        rows = plan.scope_rows(self)
        typical = plan.inputs_for(self)
        inputs = {"persona": typical["persona"], "question": typical["question"],
                  "first_answer": typical["original"], "second_answer": typical["revision"]}
        loaded = self.judges() or {}
        return [PlannedCall(f"{self.name}_{v}", str(self.role), rows * len(ORDERS), loaded.get(v) or PersonaJudge(v),
                            inputs, exact=plan.exact(self.scope), batches=plan.batches(self, len(ORDERS)),
                            label=f"JudgeInVoice ({v})")
                for v in self.variants()]

    def _judge(self, variant: str) -> Any:
        """The judge module of a variant, made (or loaded from ``program_path``) once: its identity keys the cache."""
        if getattr(self, "_judges", None) is None:
            from persona_gen.judge.stage import PersonaJudge

            loaded = self.judges() or {}
            self._judges = {v: loaded.get(v) or PersonaJudge(v) for v in self.variants()}
        return self._judges[variant]

    def calls(self, row: Row) -> list[Call]:
        inp = row.inputs
        out = []
        for variant in self.variants():
            for order in ORDERS:
                first, second = ((inp["original"], inp["revision"]) if order == "original_first"
                                 else (inp["revision"], inp["original"]))
                out.append(Call(f"{self.name}_{variant}", self._judge(variant),
                                {"persona": inp["persona"], "question": inp["question"], "first_answer": first,
                                 "second_answer": second}, str(self.role), desc=f"{self.name}: {variant}"))
        return out

    def finish(self, ctx: StepContext, row: Row, results: Sequence[Any]) -> RowResult:
        from persona_gen.core.calls import program_hash
        from persona_gen.core.lm import signature_hash
        from persona_gen.judge.stage import preferred_of
        from persona_gen.signatures import JudgeInVoice

        model = ctx.runtime.client(self.role).model_id
        if getattr(self, "_row_constants", None) is None:  # the same for every row: worked out once
            self._row_constants = (signature_hash(JudgeInVoice),
                                   [(v, program_hash(self._judge(v))) for v in self.variants()])
        shash, variants = self._row_constants
        pair_id = row.pair.feedback_id
        records = []
        answers = iter(results)
        for variant, phash in variants:
            for order in ORDERS:
                res = next(answers)
                choice = str(res.outputs["preferred"]) if res.ok else "abstain"
                records.append(Judgment(
                    judgment_id=self._judgment_id(pair_id, variant, order), feedback_id=pair_id,
                    persona_id=row.persona.persona_id, question_id=row.question.question_id, variant=variant,
                    order=order, choice=choice, preferred=preferred_of(choice, order),
                    reasoning=str(res.outputs.get("reasoning", "")) if res.ok else "", judge_model=model,
                    signature_hash=shash, program_hash=phash, failure=res.failure))
        return RowResult({"judgments": records}, records=tuple(records))

    @staticmethod
    def _judgment_id(pair_id: str, variant: str, order: str) -> str:
        from persona_gen.core.records import stable_id

        return stable_id("j", pair_id, variant, order)

    def records_frame(self, records: list[Judgment]) -> pd.DataFrame:

        from persona_gen.core.records import records_frame

        return records_frame(records, columns=Judgment.model_fields)

    def merge_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Canonical order whatever the chunking: by variant, then pair order, then presentation order."""
        return frame.sort_values("variant", kind="stable").reset_index(drop=True)

    def card_context(self, frame: pd.DataFrame, plot_dir: Any) -> dict[str, Any]:
        from pathlib import Path

        from persona_gen.judge.scorecard import judge_scorecard, plot_judges

        scorecard, agreement = judge_scorecard(frame)
        plot = plot_judges(scorecard, Path(plot_dir) / "judge_scorecard.png")
        return {"scorecard": scorecard, "agreement": agreement, "plots": [plot] if plot else []}
