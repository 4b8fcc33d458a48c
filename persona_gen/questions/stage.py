"""Questions: load prompt sources, apply PERSONA's filter chain, cluster, split train / held-out.

The paper keeps PRISM opening prompts that contain '?', have >= 5 words and that an LM judges
likely to draw diverse opinions (3,868 of 8,011), and splits them 3,000 / 868 so both splits cover
the topics. Counts at each step are kept for the manifest and the card.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import dspy
import numpy as np
import pandas as pd

from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Question, stable_id
from persona_gen.signatures import JudgeControversy

__all__ = ["ControversyClassifier", "QuestionsResult", "load_prism_examples", "run_questions", "split_by_cluster"]


class ControversyClassifier(dspy.Module):
    """Says whether a question would draw diverse opinions."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(JudgeControversy)

    def forward(self, question: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(question=question, **kwargs)


@dataclass
class QuestionsResult:
    questions: list[Question]
    filter_counts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def load_prism_examples() -> pd.DataFrame:
    """The PRISM example prompts shipped in the package: columns text, cluster."""
    with resources.files("persona_gen.questions").joinpath("data/prism_examples.csv").open("rb") as fh:
        raw = pd.read_csv(fh)
    rows = []
    for _, r in raw.iterrows():
        label = str(r["gpt_description"]).strip().strip('"')
        for text in ast.literal_eval(r["top_texts"]):
            rows.append({"text": str(text).strip(), "cluster": label})
    return pd.DataFrame(rows)


def _load(source: str) -> pd.DataFrame:
    if source == "prism_examples":
        return load_prism_examples()
    raise ConfigError(format_error("stage.questions.source", expected="'prism_examples'", got=source,
                                   where="conf/stage/questions/", fix="pick a shipped source"))


def split_by_cluster(questions: list[Question], *, held_out_share: float, seed: int) -> list[Question]:
    """Seeded split stratified by cluster: a cluster with >= 2 questions appears in both splits."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    out: dict[str, Question] = {}
    by_cluster: dict[str, list[Question]] = {}
    for q in questions:
        by_cluster.setdefault(q.cluster, []).append(q)
    for cluster in sorted(by_cluster):
        group = sorted(by_cluster[cluster], key=lambda q: q.question_id)
        order = rng.permutation(len(group))
        n_held = round(len(group) * held_out_share)
        if len(group) >= 2:
            n_held = min(max(n_held, 1), len(group) - 1)
        for rank, i in enumerate(order):
            q = group[i]
            out[q.question_id] = q.model_copy(update={"split": "held_out" if rank < n_held else "train"})
    return [out[q.question_id] for q in questions]


def run_questions(*, cfg: Any, caller: Caller, seed: int, max_candidates: int | None) -> QuestionsResult:
    frame = _load(cfg.source).drop_duplicates("text").reset_index(drop=True)
    counts = [{"step": "loaded", "kept": len(frame), "dropped": 0}]
    result = QuestionsResult(questions=[], filter_counts=counts)

    def step(name: str, mask: pd.Series) -> pd.DataFrame:
        for text in frame.loc[~mask, "text"]:
            result.rejected.append({"text": text, "step": name})
        counts.append({"step": name, "kept": int(mask.sum()), "dropped": int((~mask).sum())})
        return frame[mask].reset_index(drop=True)

    if cfg.require_question_mark:
        frame = step("has_question_mark", frame["text"].str.contains("?", regex=False))
    frame = step(f"min_words_{cfg.min_words}", frame["text"].str.split().str.len() >= int(cfg.min_words))
    if max_candidates is not None and len(frame) > max_candidates:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
        keep = np.zeros(len(frame), dtype=bool)
        keep[rng.choice(len(frame), size=max_candidates, replace=False)] = True
        frame = step("scale_cap", pd.Series(keep))
    if cfg.controversy_filter:
        verdicts = caller.map("questions", ControversyClassifier(), [{"question": t} for t in frame["text"]],
                              desc="questions: controversy")
        # A failed verdict keeps the question: the filter only drops on a clear 'not controversial'.
        mask = pd.Series([not r.ok or bool(r.outputs["verdict"].get("controversial", True)) for r in verdicts])
        frame = step("lm_controversial", mask)
    qs = [Question(question_id=stable_id("q", cfg.source, t), text=t, source=cfg.source, cluster=c)
          for t, c in zip(frame["text"], frame["cluster"], strict=True)]
    result.questions = split_by_cluster(qs, held_out_share=float(cfg.held_out_share), seed=seed)
    return result
