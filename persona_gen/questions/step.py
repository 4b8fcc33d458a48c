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
        # The plot is drawn with the card's facts (``plots``), after the questions are handed on: the rows that
        # read them need not wait for matplotlib.
        result = run_questions(cfg=self.settings, caller=caller, seed=self.seed(),
                               max_candidates=self.cfg.scale.get("max_candidate_prompts"), plot_dir=None)
        return {"questions": result.questions, "filter_counts": result.filter_counts, "_result": result,
                "_plot_dir": ctx.out_dir / "questions"}

    # -- planning (task=plan): counts from the prompt files and the rule filters, no LM ------------------------

    def planned_candidates(self) -> dict[str, Any]:
        """What the LM will see, from the sources and the rule filters alone (no LM, no clustering).

        Returns ``topics`` (one ``DraftQuestions`` call each), ``drafts`` (questions asked of them, an upper
        bound: the model may write fewer), ``candidates`` (prompts that reach ``lm_controversial``, after the rule
        filters before it and ``scale.max_candidate_prompts``) and ``exact`` (False when drafts are among them).
        """
        if getattr(self, "_planned", None) is not None:
            return self._planned
        from persona_gen.questions.filters import has_question_mark, min_words, near_duplicates
        from persona_gen.questions.sources import load_sources
        from persona_gen.questions.stage import LM_STEPS, NOT_TOPICS

        settings = self._settings()
        frame = load_sources(settings.sources)
        topics: list[str] = []
        drafts = 0
        if settings.generate.enabled:
            topics = list(settings.generate.topics) or sorted(
                c for c in set(frame["cluster"]) if c and c.lower() not in NOT_TOPICS)
            drafts = len(topics) * int(settings.generate.per_cluster)
        frame = frame[~frame.duplicated(["source", "text"])]
        texts = frame["text"].tolist()
        for name in settings.filters:
            if name in LM_STEPS:
                break
            if name == "has_question_mark":
                texts = [t for t, k in zip(texts, has_question_mark(texts), strict=True) if k]
            elif name == "min_words":
                texts = [t for t, k in zip(texts, min_words(texts, settings.min_words), strict=True) if k]
            elif name == "dedup":
                d = settings.dedup
                dup_of = near_duplicates(texts, threshold=float(d.threshold), analyzer=d.analyzer,
                                         ngram_range=(int(d.ngram_min), int(d.ngram_max)))
                texts = [t for t, j in zip(texts, dup_of, strict=True) if j is None]
        count = len(texts) + drafts
        cap = self.cfg.scale.get("max_candidate_prompts")
        candidates = count if cap is None else min(int(cap), count)
        self._planned = {"topics": topics, "drafts": drafts, "candidates": candidates,
                         "exact": not settings.generate.enabled}
        return self._planned

    def planned_questions(self, plan: Any) -> dict[str, Any]:
        """Questions kept (``kept``, ``train``, ``held_out``) and whether the count is exact.

        With ``lm_controversial`` the kept share is ``plan.controversial_share`` (an estimate); ``questions.kept``
        in ``plan.known`` replaces it. The split follows ``held_out_share`` (rounded per cluster in the run).
        """
        settings = self._settings()
        found = self.planned_candidates()
        lm_filter = any(f == "lm_controversial" for f in settings.filters)
        share = plan.assumption("controversial_share", 0.9) if lm_filter else 1.0
        kept, measured = plan.measured(f"{self.name}.kept", found["candidates"] * share)
        exact = measured or (found["exact"] and not lm_filter)
        held = round(kept * settings.held_out_share)
        return {"kept": kept, "train": kept - held, "held_out": held, "exact": exact,
                "note": "" if exact else f"estimate: {found['candidates']} candidates x kept share {share:g}"}

    def planned_calls(self, plan: Any) -> list[Any]:
        """A ``DraftQuestions`` call per topic (with generation) and a ``JudgeControversy`` call per candidate."""
        from persona_gen.core.planning import PlannedCall
        from persona_gen.questions.generate import QuestionDrafter
        from persona_gen.questions.stage import ControversyClassifier

        settings = self._settings()
        found = self.planned_candidates()
        out = []
        if settings.generate.enabled and found["topics"]:
            per = int(settings.generate.per_cluster)
            out.append(PlannedCall("questions", str(self.role), len(found["topics"]), QuestionDrafter(per),
                                   {"topic": found["topics"][0], "count": per}, batches=(len(found["topics"]),)))
        if "lm_controversial" in settings.filters and found["candidates"]:
            calls, measured = plan.measured(f"{self.name}.candidates", found["candidates"])
            exact = measured or found["exact"]
            out.append(PlannedCall("questions", str(self.role), calls, ControversyClassifier(),
                                   {"question": plan.question_text()}, exact=exact,
                                   note="" if exact else "drafts counted as if all pass the rule filters",
                                   batches=(calls,)))
        return out

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"filter_counts": outputs["filter_counts"], "min_words": self.settings.min_words}

    def plots(self, outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        from persona_gen.questions.clusters import plot_clusters
        from persona_gen.questions.stage import CLUSTER_PLOT

        path = plot_clusters(outputs["questions"], Path(outputs["_plot_dir"]) / CLUSTER_PLOT,
                             top=self._settings().plot_top)
        return [(Path(path).name, Path(path))]

    def frame(self, output: str, value: Any) -> pd.DataFrame:
        return pd.DataFrame([q.model_dump(mode="json") for q in value])
