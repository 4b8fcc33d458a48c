"""The questions step: value-laden questions from prompt sets (filtered) and/or LM drafts; clusters; split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from persona_gen.core.steps import Step, StepContext

__all__ = ["QuestionsStep"]

# What each shipped prompt set is, and its license, for the card's input credits.
SOURCE_CREDITS = {
    "prism_examples": ("PRISM opening prompts (Kirk et al., 2024)", "CC-BY-4.0"),
    "anthropic_values": ("Anthropic model-written evaluations, value statements (Perez et al., 2022)", "CC-BY-4.0"),
}


class QuestionsStep(Step):
    """Questions: prompts filtered ('?', min words, near-duplicates, LM judges controversial), clustered, split."""

    default_scope = "run"
    needs_role = True
    outputs = ("questions", "filter_counts")

    def _settings(self) -> Any:
        from persona_gen.questions.config import QuestionsSettings

        return QuestionsSettings.from_cfg(self.settings)

    def check(self) -> None:
        if self.scope != "run":
            raise self.error("scope", "run", self.scope, "the question set is made once per run")
        self._settings()

    def signatures(self) -> list[type]:
        from persona_gen.signatures import DraftQuestions, JudgeControversy

        s = self._settings()
        return ([DraftQuestions] if s.generate.enabled else []) + \
            ([JudgeControversy] if "lm_controversial" in s.filters else [])

    def stats_keys(self) -> tuple[str, ...]:
        return ("questions",)

    def credits(self) -> list[tuple[str, str]]:
        out = []
        for spec in self._settings().sources:
            if spec.kind in SOURCE_CREDITS:
                out.append(SOURCE_CREDITS[spec.kind])
            else:
                out.append((f"prompt file {Path(str(spec.path)).name} ({spec.label})", "as its source states"))
        return list(dict.fromkeys(out))

    def describe(self) -> str:
        s = self._settings()
        names = [SOURCE_CREDITS[sp.kind][0] if sp.kind in SOURCE_CREDITS else f"prompt file {sp.label}"
                 for sp in s.sources]
        made = "; ".join(dict.fromkeys(names))
        if s.generate.enabled:
            made = (made + " + " if made else "") + f"LM-drafted questions ({s.generate.per_cluster} per topic)"
        steps = {"has_question_mark": "has '?'", "min_words": f">= {s.min_words} words", "dedup": "near-duplicates "
                 "removed", "lm_controversial": "LM judges controversial"}
        return f"{made or 'no source'}, filtered: " + ", ".join(steps[f] for f in s.filters) + \
            "; clustered by topic, split train / held out"

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.questions.stage import run_questions

        caller = ctx.runtime.caller(self.role, stats=ctx.stats)
        result = run_questions(cfg=self.settings, caller=caller, seed=self.seed(),
                               max_candidates=self.cfg.scale.get("max_candidate_prompts"),
                               plot_dir=ctx.out_dir / "questions")
        return {"questions": result.questions, "filter_counts": result.filter_counts, "_result": result}

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"filter_counts": outputs["filter_counts"], "min_words": self.settings.min_words}

    def plots(self, outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return [(Path(p).name, Path(p)) for p in getattr(outputs["_result"], "plots", []) or []]

    def frame(self, output: str, value: Any) -> pd.DataFrame:
        return pd.DataFrame([q.model_dump(mode="json") for q in value])
