"""Settings of the questions stage, read from ``cfg.stage.questions`` and checked once.

The group stays free-form in Hydra (``source`` may be a name, a mapping or a list of them, which a
structured config cannot type), so ``QuestionsSettings.from_cfg`` is where its keys are checked: every
problem raises one ``ConfigError`` in the house format (what, expected, got, where, how to fix).

Keys (see ``conf/stage/questions/prism.yaml`` for a commented example)::

    source:            a source or a list of sources (below); [] with generate.enabled for a generated testbed
    filters:           the filter chain, in order: has_question_mark, min_words, dedup, lm_controversial
    min_words:         the min_words step keeps questions with at least this many words
    dedup:             {threshold, analyzer, ngram_min, ngram_max}: TF-IDF cosine near-duplicate removal
    clusters:          {keep_source, method, num_clusters, label_terms}: topic clusters
    generate:          {enabled, per_cluster, topics}: LM-written questions per topic
    held_out_share:    share of each cluster held out (the paper: 868 of 3,868)
    plot_top:          clusters shown in the cluster bar chart

A source is a shipped name (``prism_examples``, ``anthropic_values``) or a mapping
``{kind: prism_examples | anthropic_values | file, path, text_column, cluster_column, name, template,
first_person_template, limit}``; ``file`` needs ``path`` and ``text_column``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from persona_gen.core import config as schema
from persona_gen.core.errors import ConfigError, format_error

__all__ = [
    "FILTER_STEPS",
    "SOURCE_KINDS",
    "ClusterSettings",
    "DedupSettings",
    "GenerateSettings",
    "QuestionsSettings",
    "SourceSpec",
]

WHERE = "conf/stage/questions/*.yaml or a stage.questions.* override"
SOURCE_KINDS = ("prism_examples", "anthropic_values", "file")
# The defaults are the config schema's (persona_gen.core.config), written once.
FILTER_STEPS = tuple(schema.QuestionsConfig().filters)
CLUSTER_METHODS = ("kmeans", "agglomerative")
DEDUP_ANALYZERS = ("char_wb", "char", "word")
_SOURCE_KEYS = {"kind", "path", "text_column", "cluster_column", "name", "template", "first_person_template",
                "limit"}


def _fail(key: str, expected: str, got: object, fix: str) -> ConfigError:
    return ConfigError(format_error(f"stage.questions.{key}", expected=expected, got=got, where=WHERE, fix=fix))


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


@dataclass(frozen=True)
class SourceSpec:
    """One prompt source. ``key`` names it in error messages, e.g. ``source[1]``."""

    kind: str
    key: str = "source"
    path: str | None = None
    text_column: str | None = None
    cluster_column: str | None = None
    name: str | None = None
    template: str | None = None
    first_person_template: str | None = None
    limit: int | None = None

    @property
    def label(self) -> str:
        """The ``Question.source`` of its rows."""
        if self.name:
            return self.name
        if self.kind == "file" and self.path:
            from pathlib import Path

            return f"file:{Path(self.path).name}"
        return self.kind

    @classmethod
    def parse(cls, raw: Any, key: str) -> SourceSpec:
        raw = _plain(raw)
        if isinstance(raw, str):
            raw = {"kind": raw}
        if not isinstance(raw, Mapping):
            raise _fail(key, "a source name or a mapping {kind: ..., ...}", raw,
                        f"use one of {list(SOURCE_KINDS)} or {{kind: file, path: ..., text_column: ...}}")
        unknown = sorted(set(raw) - _SOURCE_KEYS)
        if unknown:
            raise _fail(f"{key}.{unknown[0]}", f"one of the source keys {sorted(_SOURCE_KEYS)}", unknown[0],
                        "remove or rename it")
        kind = raw.get("kind")
        if kind not in SOURCE_KINDS:
            raise _fail(f"{key}.kind", f"one of {list(SOURCE_KINDS)}", kind,
                        "use a shipped source or kind: file with a path and a text_column")
        if kind == "file":
            if not raw.get("path"):
                raise _fail(f"{key}.path", "a CSV, TSV, JSON, JSONL or parquet file", raw.get("path") or "nothing",
                            f"set {key}.path")
            if not raw.get("text_column"):
                raise _fail(f"{key}.text_column", "the name of the column holding the prompt text",
                            raw.get("text_column") or "nothing", f"set {key}.text_column")
        limit = raw.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise _fail(f"{key}.limit", ">= 1 or null", limit, "raise it or remove it")
        for tkey in ("template", "first_person_template"):
            if raw.get(tkey) is not None and "{statement}" not in str(raw[tkey]):
                raise _fail(f"{key}.{tkey}", "a text with a {statement} placeholder", raw[tkey],
                            "e.g. 'Do you agree that {statement}?'")
        texts = {k: (None if raw.get(k) is None else str(raw[k])) for k in _SOURCE_KEYS - {"kind", "limit"}}
        return cls(kind=kind, key=key, limit=limit, **texts)


@dataclass(frozen=True)
class DedupSettings:
    """Near-duplicate removal: TF-IDF over normalized text, cosine >= threshold is a duplicate."""

    threshold: float = schema.DedupConfig.threshold
    analyzer: str = schema.DedupConfig.analyzer
    ngram_min: int = schema.DedupConfig.ngram_min
    ngram_max: int = schema.DedupConfig.ngram_max


@dataclass(frozen=True)
class ClusterSettings:
    """Topic clusters: keep the source's clusters where it has them, cluster the rest."""

    keep_source: bool = schema.ClustersConfig.keep_source
    method: str = schema.ClustersConfig.method
    num_clusters: int | None = schema.ClustersConfig.num_clusters
    label_terms: int = schema.ClustersConfig.label_terms


@dataclass(frozen=True)
class GenerateSettings:
    """LM question generation: ``per_cluster`` questions for each topic."""

    enabled: bool = schema.GenerateConfig.enabled
    per_cluster: int = schema.GenerateConfig.per_cluster
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionsSettings:
    sources: tuple[SourceSpec, ...] = ()
    filters: tuple[str, ...] = FILTER_STEPS
    min_words: int = schema.QuestionsConfig.min_words
    dedup: DedupSettings = field(default_factory=DedupSettings)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    held_out_share: float = schema.QuestionsConfig.held_out_share
    plot_top: int = schema.QuestionsConfig.plot_top

    @classmethod
    def from_cfg(cls, cfg: Any) -> QuestionsSettings:
        """Read and check ``cfg.stage.questions`` (a DictConfig or a plain mapping)."""
        raw = _plain(cfg) or {}
        if not isinstance(raw, Mapping):
            raise _fail("", "a mapping", raw, "pick a file of conf/stage/questions/")
        known = {"source", "filters", "min_words", "dedup", "clusters", "generate", "held_out_share", "plot_top"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise _fail(unknown[0], f"one of {sorted(known)}", unknown[0], "remove or rename it")

        source = raw.get("source", "prism_examples")
        items = [] if source is None else list(source) if isinstance(source, Sequence) and not isinstance(
            source, str) else [source]
        sources = tuple(SourceSpec.parse(s, f"source[{i}]" if len(items) > 1 else "source")
                        for i, s in enumerate(items))

        filters = raw.get("filters", list(FILTER_STEPS))
        if isinstance(filters, str) or not isinstance(filters, Sequence):
            raise _fail("filters", f"a list of steps from {list(FILTER_STEPS)}", filters,
                        "e.g. filters: [has_question_mark, min_words, dedup, lm_controversial]")
        for i, name in enumerate(filters):
            if name not in FILTER_STEPS:
                raise _fail(f"filters[{i}]", f"one of {list(FILTER_STEPS)}", name, "fix the step's name")
        if len(set(filters)) != len(filters):
            raise _fail("filters", "a list without repeated steps", list(filters), "name each step once")

        min_words = raw.get("min_words", 5)
        if not isinstance(min_words, int) or min_words < 0:
            raise _fail("min_words", ">= 0", min_words, "use e.g. 5 as in the paper")

        dedup = DedupSettings(**_section(raw, "dedup", DedupSettings))
        if not 0.0 < float(dedup.threshold) <= 1.0:
            raise _fail("dedup.threshold", "in (0, 1]", dedup.threshold, "use e.g. 0.9; 1.0 drops only exact copies")
        if dedup.analyzer not in DEDUP_ANALYZERS:
            raise _fail("dedup.analyzer", f"one of {list(DEDUP_ANALYZERS)}", dedup.analyzer, "use char_wb")
        if not 1 <= dedup.ngram_min <= dedup.ngram_max:
            raise _fail("dedup.ngram_min / ngram_max", "1 <= ngram_min <= ngram_max",
                        (dedup.ngram_min, dedup.ngram_max), "use e.g. 3 and 5 for characters, 1 and 2 for words")

        clusters = ClusterSettings(**_section(raw, "clusters", ClusterSettings))
        if clusters.method not in CLUSTER_METHODS:
            raise _fail("clusters.method", f"one of {list(CLUSTER_METHODS)}", clusters.method, "use kmeans")
        if clusters.num_clusters is not None and clusters.num_clusters < 1:
            raise _fail("clusters.num_clusters", ">= 1 or null (a heuristic)", clusters.num_clusters,
                        "raise it or set null")
        if clusters.label_terms < 1:
            raise _fail("clusters.label_terms", ">= 1", clusters.label_terms, "use e.g. 3")

        gen_raw = _section(raw, "generate", GenerateSettings)
        topics = gen_raw.pop("topics", ()) or ()
        if isinstance(topics, str) or not all(isinstance(t, str) and t.strip() for t in topics):
            raise _fail("generate.topics", "a list of non-empty topic names", topics,
                        "e.g. generate.topics: [religion, immigration]")
        generate = GenerateSettings(**gen_raw, topics=tuple(t.strip() for t in topics))
        from persona_gen.signatures.questions import DRAFT_MAX_ITEMS

        if not 1 <= generate.per_cluster <= DRAFT_MAX_ITEMS:
            raise _fail("generate.per_cluster", f"in [1, {DRAFT_MAX_ITEMS}] (the cap in DraftQuestions' schema)",
                        generate.per_cluster, "lower it; for more questions add topics")
        if not sources and not generate.enabled:
            raise _fail("source", "at least one source, or generate.enabled: true", source,
                        "add a source or use stage/questions=generated")

        held_out_share = float(raw.get("held_out_share", 0.225))
        if not 0.0 <= held_out_share < 1.0:
            raise _fail("held_out_share", "in [0, 1)", held_out_share, "use e.g. 0.225 (868 of 3,868 in the paper)")
        plot_top = raw.get("plot_top", 20)
        if not isinstance(plot_top, int) or plot_top < 1:
            raise _fail("plot_top", ">= 1", plot_top, "use e.g. 20")
        return cls(sources=sources, filters=tuple(filters), min_words=min_words, dedup=dedup, clusters=clusters,
                   generate=generate, held_out_share=held_out_share, plot_top=plot_top)


def _section(raw: Mapping[str, Any], key: str, schema: type) -> dict[str, Any]:
    section = raw.get(key) or {}
    if not isinstance(section, Mapping):
        raise _fail(key, "a mapping", section, f"see {schema.__name__} in persona_gen/questions/config.py")
    known = {f.name for f in fields(schema)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", f"one of {sorted(known)}", unknown[0], "remove or rename it")
    return dict(section)
