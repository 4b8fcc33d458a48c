"""The pairwise judge step: every complete pair judged in both orders by every configured variant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from persona_gen.core.records import Judgment
from persona_gen.core.steps import Row, RowResult, Step, StepContext

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

    def run_rows(self, ctx: StepContext, rows: Sequence[Row]) -> dict[str, RowResult]:
        from persona_gen.core.calls import program_hash
        from persona_gen.core.lm import signature_hash
        from persona_gen.judge.stage import PersonaJudge, preferred_of
        from persona_gen.signatures import JudgeInVoice

        caller = ctx.runtime.caller(self.role, stats=ctx.stats)
        loaded = self.judges() or {}
        records: dict[str, list[Judgment]] = {row.key: [] for row in rows}
        for variant in self.variants():
            judge = loaded.get(variant) or PersonaJudge(variant)
            items, keys = [], []
            for row in rows:
                inp = row.inputs
                for order in ORDERS:
                    first, second = ((inp["original"], inp["revision"]) if order == "original_first"
                                     else (inp["revision"], inp["original"]))
                    items.append({"persona": inp["persona"], "question": inp["question"], "first_answer": first,
                                  "second_answer": second})
                    keys.append((row, order))
            results = caller.map(f"{self.name}_{variant}", judge, items, desc=f"{self.name}: {variant}")
            phash, shash = program_hash(judge), signature_hash(JudgeInVoice)
            for (row, order), res in zip(keys, results, strict=True):
                choice = str(res.outputs["preferred"]) if res.ok else "abstain"
                pair_id = row.pair.feedback_id
                records[row.key].append(Judgment(
                    judgment_id=self._judgment_id(pair_id, variant, order), feedback_id=pair_id,
                    persona_id=row.persona.persona_id, question_id=row.question.question_id, variant=variant,
                    order=order, choice=choice, preferred=preferred_of(choice, order),
                    reasoning=str(res.outputs.get("reasoning", "")) if res.ok else "",
                    judge_model=caller.client.model_id, signature_hash=shash, program_hash=phash,
                    failure=res.failure))
        return {key: RowResult({"judgments": recs}, records=tuple(recs)) for key, recs in records.items()}

    @staticmethod
    def _judgment_id(pair_id: str, variant: str, order: str) -> str:
        from persona_gen.core.records import stable_id

        return stable_id("j", pair_id, variant, order)

    def records_frame(self, records: list[Judgment]) -> pd.DataFrame:
        import json

        cols = list(Judgment.model_fields)
        if not records:
            return pd.DataFrame(columns=cols).astype(str)
        rows = []
        for r in records:
            d = r.model_dump(mode="json")
            d["failure"] = json.dumps(d["failure"], sort_keys=True, ensure_ascii=False)
            rows.append(d)
        return pd.DataFrame(rows)

    def merge_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Canonical order whatever the chunking: by variant, then pair order, then presentation order."""
        return frame.sort_values("variant", kind="stable").reset_index(drop=True)

    def card_context(self, frame: pd.DataFrame, plot_dir: Any) -> dict[str, Any]:
        from pathlib import Path

        from persona_gen.judge.scorecard import judge_scorecard, plot_judges

        scorecard, agreement = judge_scorecard(frame)
        plot = plot_judges(scorecard, Path(plot_dir) / "judge_scorecard.png")
        return {"scorecard": scorecard, "agreement": agreement, "plots": [plot] if plot else []}
