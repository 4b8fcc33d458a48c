"""The questions stage: prompt sources, LM question generation, filter chain, topic clusters, splits."""

from persona_gen.questions.clusters import cluster_texts, plot_clusters
from persona_gen.questions.config import QuestionsSettings, SourceSpec
from persona_gen.questions.filters import near_duplicates, normalize_text
from persona_gen.questions.generate import QuestionDrafter, draft_questions
from persona_gen.questions.sources import load_anthropic_values, load_file, load_prism_examples, load_sources
from persona_gen.questions.stage import ControversyClassifier, QuestionsResult, run_questions, split_by_cluster

__all__ = [
    "ControversyClassifier",
    "QuestionDrafter",
    "QuestionsResult",
    "QuestionsSettings",
    "SourceSpec",
    "cluster_texts",
    "draft_questions",
    "load_anthropic_values",
    "load_file",
    "load_prism_examples",
    "load_sources",
    "near_duplicates",
    "normalize_text",
    "plot_clusters",
    "run_questions",
    "split_by_cluster",
]
