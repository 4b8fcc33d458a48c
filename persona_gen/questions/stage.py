"""Questions: load prompt sources, generate more, apply PERSONA's filter chain, cluster, split train / held-out.

The paper keeps PRISM opening prompts that contain '?', have >= 5 words and that an LM judges
likely to draw diverse opinions (3,868 of 8,011), and splits them 3,000 / 868 so both splits cover
the topics. Here:

1. load every configured source (``sources.py``) and, if ``generate.enabled``, add LM-written questions per
   topic (``generate.py``);
2. drop exact repeats (always: a question id is its source and text) and assign topic clusters
   (``clusters.py``: the source's own clusters by default, TF-IDF + KMeans for the rest), as PRISM
   clustered all its opening prompts before anyone filtered them;
3. run the configured filter chain in order (``has_question_mark``, ``min_words``, ``dedup``,
   ``lm_controversial``); ``scale.max_candidate_prompts`` caps the candidates, stratified by cluster, just
   before the first LM step (or at the end of a chain without one);
4. split each cluster seeded into train / held-out, and draw the cluster bar chart.

Counts at each step are kept (``filter_counts``: loaded = kept at the end + everything dropped), every
dropped prompt is kept with its step (``rejected``) and every failed LM answer is a recorded ``Failure``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy
import numpy as np
import pandas as pd

from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Failure, Question, stable_id
from persona_gen.questions.clusters import cluster_texts, plot_clusters
from persona_gen.questions.config import WHERE, QuestionsSettings
from persona_gen.questions.filters import has_question_mark, min_words, near_duplicates
from persona_gen.questions.generate import draft_questions
from persona_gen.questions.sources import load_prism_examples, load_sources
from persona_gen.signatures import JudgeControversy

__all__ = [
    "CLUSTER_PLOT",
    "ControversyClassifier",
    "QuestionsResult",
    "load_prism_examples",
    "run_questions",
    "split_by_cluster",
]

CLUSTER_PLOT = "question_clusters.png"
LM_STEPS = frozenset({"lm_controversial"})
NOT_TOPICS = frozenset({"outliers", "unclustered"})


class ControversyClassifier(dspy.Module):
    """Says whether a question would draw diverse opinions."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(JudgeControversy)

    def forward(self, question: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(question=question, **kwargs)

    async def aforward(self, question: str, **kwargs: Any) -> dspy.Prediction:
        return await self.predict.acall(question=question, **kwargs)


@dataclass
class QuestionsResult:
    """What the stage made.

    Attributes:
        questions: the kept questions, each with its cluster and split.
        filter_counts: one row per step, ``{"step", "kept", "dropped"}``, starting with ``loaded``
            (which also carries ``sources``: rows per source); ``loaded`` = last ``kept`` + all ``dropped``.
        rejected: every dropped prompt: ``{"text", "step", "source", "cluster", "detail"}``.
        plots: the cluster bar chart, when ``run_questions`` got a ``plot_dir``.
        failures: failed LM answers (generation and controversy), kept as data.
        source_counts: rows loaded (or generated) per source, before any filter.
        clusters: per cluster of the kept questions: ``{"cluster", "questions", "train", "held_out"}``.
    """

    questions: list[Question]
    filter_counts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    source_counts: dict[str, int] = field(default_factory=dict)
    clusters: list[dict[str, Any]] = field(default_factory=list)


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


def stratified_cap(clusters: list[str], max_count: int, *, seed: int) -> np.ndarray:
    """A mask keeping ``max_count`` rows: clusters in seeded order, two rows of each per round.

    Two at a time, and clusters of two or more first, so that every cluster the cap keeps can reach both
    splits.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clusters):
        groups.setdefault(c, []).append(i)
    names = sorted(groups)
    members = {c: [groups[c][j] for j in rng.permutation(len(groups[c]))] for c in names}
    shuffled = [names[j] for j in rng.permutation(len(names))]
    order = [c for c in shuffled if len(groups[c]) >= 2] + [c for c in shuffled if len(groups[c]) < 2]
    keep = np.zeros(len(clusters), dtype=bool)
    max_count = min(max_count, len(clusters))
    taken, start = 0, 0
    while taken < max_count:
        for c in order:
            for i in members[c][start:start + 2]:
                if taken < max_count:
                    keep[i] = True
                    taken += 1
        start += 2
    return keep


class _Chain:
    """The frame being filtered, with its counts and rejections."""

    def __init__(self, frame: pd.DataFrame, result: QuestionsResult) -> None:
        self.frame = frame.reset_index(drop=True)
        self.result = result

    def step(self, name: str, keep: Any, detail: list[str] | None = None) -> None:
        mask = np.asarray(keep, dtype=bool)
        for i in np.flatnonzero(~mask):
            row = self.frame.iloc[int(i)]
            self.result.rejected.append({"text": row["text"], "step": name, "source": row["source"],
                                         "cluster": row["cluster"], "detail": detail[int(i)] if detail else ""})
        self.result.filter_counts.append({"step": name, "kept": int(mask.sum()), "dropped": int((~mask).sum())})
        self.frame = self.frame[mask].reset_index(drop=True)


def _assign_clusters(frame: pd.DataFrame, settings: QuestionsSettings, seed: int) -> pd.DataFrame:
    cfg = settings.clusters
    todo = frame["cluster"].eq("") if cfg.keep_source else pd.Series(True, index=frame.index)
    if todo.any():
        random_state = int(np.random.SeedSequence([seed, 5]).generate_state(1)[0])
        labels = cluster_texts(frame.loc[todo, "text"].tolist(), num_clusters=cfg.num_clusters, method=cfg.method,
                               label_terms=cfg.label_terms, seed=random_state)
        frame = frame.copy()
        frame.loc[todo, "cluster"] = labels
    return frame


def _controversy(chain: _Chain, caller: Caller) -> None:
    results = caller.map("questions", ControversyClassifier(), [{"question": t} for t in chain.frame["text"]],
                         desc="questions: controversy")
    keep, reasons = [], []
    for r in results:
        if not r.ok:
            # A failed verdict keeps the question: the filter only drops on a clear 'not controversial'.
            chain.result.failures.append(r.failure)  # type: ignore[arg-type]
            keep.append(True)
            reasons.append("")
            continue
        verdict = r.outputs["verdict"] if r.outputs else {}
        keep.append(bool(verdict.get("controversial", True)))
        reasons.append(str(verdict.get("reason", "")))
    chain.step("lm_controversial", keep, reasons)


def run_questions(*, cfg: Any, caller: Caller, seed: int, max_candidates: int | None,
                  plot_dir: str | Path | None = None) -> QuestionsResult:
    """Make the question set of a run (see the module docstring for the steps).

    Args:
        cfg: ``cfg.stage.questions`` (keys in ``persona_gen/questions/config.py``).
        caller: runs the LM steps (generation, controversy) through the cache.
        seed: the stage's seed (cap, clustering, split).
        max_candidates: ``scale.max_candidate_prompts``; None keeps all.
        plot_dir: where to write ``question_clusters.png``; None draws no plot.
    """
    settings = QuestionsSettings.from_cfg(cfg)
    frame = load_sources(settings.sources)
    result = QuestionsResult(questions=[])
    if settings.generate.enabled:
        # A catch-all cluster (PRISM's "Outliers") is no topic to write questions on.
        topics = list(settings.generate.topics) or sorted(
            c for c in set(frame["cluster"]) if c and c.lower() not in NOT_TOPICS)
        if not topics:
            raise ConfigError(format_error(
                "stage.questions.generate.topics", expected="a non-empty list when no source has clusters",
                got=list(settings.generate.topics), where=WHERE, fix="list the topics to write questions on"))
        drafts = draft_questions(topics, caller=caller, per_cluster=settings.generate.per_cluster)
        result.failures.extend(drafts.failures)
        frame = pd.concat([frame, drafts.frame], ignore_index=True)
    result.source_counts = dict(Counter(frame["source"]))
    result.filter_counts.append({"step": "loaded", "kept": len(frame), "dropped": 0,
                                 "sources": dict(result.source_counts)})

    chain = _Chain(frame, result)
    chain.step("exact_duplicate", ~chain.frame.duplicated(["source", "text"]))
    chain.frame = _assign_clusters(chain.frame, settings, seed)

    capped = False

    def cap() -> None:
        nonlocal capped
        capped = True
        if max_candidates is not None and len(chain.frame) > max_candidates:
            chain.step("scale_cap", stratified_cap(chain.frame["cluster"].tolist(), max_candidates, seed=seed))

    for name in settings.filters:
        if name in LM_STEPS and not capped:
            cap()
        texts = chain.frame["text"].tolist()
        if name == "has_question_mark":
            chain.step(name, has_question_mark(texts))
        elif name == "min_words":
            chain.step(name, min_words(texts, settings.min_words))
        elif name == "dedup":
            d = settings.dedup
            dup_of = near_duplicates(texts, threshold=float(d.threshold), analyzer=d.analyzer,
                                     ngram_range=(int(d.ngram_min), int(d.ngram_max)))
            chain.step(name, [j is None for j in dup_of],
                       [f"near-duplicate of: {texts[j]}" if j is not None else "" for j in dup_of])
        elif name == "lm_controversial":
            _controversy(chain, caller)
    if not capped:
        cap()

    final = chain.frame
    qs = [Question(question_id=stable_id("q", s, t), text=t, source=s, cluster=c)
          for t, c, s in zip(final["text"], final["cluster"], final["source"], strict=True)]
    result.questions = split_by_cluster(qs, held_out_share=settings.held_out_share, seed=seed)
    result.clusters = _cluster_table(result.questions)
    if plot_dir is not None:
        result.plots.append(plot_clusters(result.questions, Path(plot_dir) / CLUSTER_PLOT, top=settings.plot_top))
    return result


def _cluster_table(questions: list[Question]) -> list[dict[str, Any]]:
    total: Counter[str] = Counter(q.cluster for q in questions)
    held: Counter[str] = Counter(q.cluster for q in questions if q.split == "held_out")
    return [{"cluster": c, "questions": total[c], "train": total[c] - held[c], "held_out": held[c]}
            for c in sorted(total, key=lambda c: (-total[c], c))]
