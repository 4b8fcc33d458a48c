"""Labeled items as DSPy examples, the seeded train/dev split, and the metric: agreement with the human majority."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from persona_gen.annotate.records import LabeledItem
from persona_gen.core.errors import ConfigError, format_error

__all__ = ["INPUTS", "Feedbacks", "agreement_metric", "gepa_metric", "split_items", "to_examples"]

INPUTS = ("persona", "question", "first_answer", "second_answer")
_FIRST = {"original_first": "original", "revision_first": "revision"}


def split_items(items: Sequence[LabeledItem], *, dev_fraction: float, seed: int) -> tuple[list[LabeledItem],
                                                                                          list[LabeledItem]]:
    """Seeded split by item (both orders of an item, and all its ratings, fall on one side).

    Items without a human majority are left out of both sides: nothing to agree with.
    """
    usable = sorted((i for i in items if i.majority is not None), key=lambda i: i.feedback_id)
    if not 0 < dev_fraction < 1:
        raise ConfigError(format_error("optimize.dev_fraction", expected="in (0, 1)", got=dev_fraction,
                                       where="conf/optimize/default.yaml", fix="use e.g. 0.3"))
    n_dev = round(len(usable) * dev_fraction)
    if len(usable) < 2 or n_dev < 1 or n_dev >= len(usable):
        raise ConfigError(format_error(
            "labeled items with a human majority", expected="enough for a train and a dev split (>= 1 each)",
            got=f"{len(usable)} items, dev_fraction={dev_fraction}", where="optimize.labeled_items",
            fix="label more items, or change optimize.dev_fraction"))
    order = np.random.default_rng(seed).permutation(len(usable))
    dev = sorted(order[:n_dev].tolist())
    dev_set = set(dev)
    return [usable[i] for i in range(len(usable)) if i not in dev_set], [usable[i] for i in dev]


class Feedbacks:
    """What people said about each presented pair, for GEPA's reflective feedback; keyed by the example's inputs."""

    def __init__(self) -> None:
        self._by_inputs: dict[tuple[str, ...], str] = {}

    def add(self, example: Any, text: str) -> None:
        self._by_inputs[tuple(str(example[k]) for k in INPUTS)] = text

    def get(self, example: Any) -> str:
        return self._by_inputs.get(tuple(str(example[k]) for k in INPUTS), "")


def _gold(majority: str, order: str) -> str:
    if majority == "tie":
        return "tie"
    return "first" if _FIRST[order] == majority else "second"


def to_examples(items: Sequence[LabeledItem], feedbacks: Feedbacks | None = None) -> list[Any]:
    """Each item in both orders as a ``dspy.Example`` (inputs of ``JudgeInVoice``; label ``preferred``).

    Only signature fields go into an example: demos chosen from it are saved with the program, and
    raters' justifications stay out of that file (GEPA reads them through ``feedbacks`` instead).
    """
    import dspy

    out = []
    for item in items:
        if item.majority is None:
            continue
        for order in ("original_first", "revision_first"):
            first, second = (item.original, item.revision) if order == "original_first" else \
                (item.revision, item.original)
            ex = dspy.Example(persona=item.persona, question=item.question, first_answer=first, second_answer=second,
                              preferred=_gold(item.majority, order)).with_inputs(*INPUTS)
            if feedbacks is not None:
                votes = ", ".join(f"{r.preferred}" for r in item.ratings)
                reasons = " | ".join(r.justification for r in item.ratings if r.justification)[:1500]
                feedbacks.add(ex, f"The people who role-played this persona preferred the {ex.preferred} answer "
                                  f"(here the {'original' if order == 'original_first' else 'revised'} answer is "
                                  f"first; votes: {votes}). Their reasons: {reasons or 'none given'}")
            out.append(ex)
    return out


def agreement_metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> float:
    """1.0 when the judge picks what the human majority picked in this presentation order, else 0.0."""
    return float(str(getattr(pred, "preferred", "")) == str(gold.preferred))


def gepa_metric(feedbacks: Feedbacks) -> Any:
    """``agreement_metric`` with GEPA's textual feedback: what people preferred and why."""
    import dspy

    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        score = agreement_metric(gold, pred)
        said = getattr(pred, "preferred", None)
        verdict = "You agreed with them." if score else f"You answered {said!r} instead."
        return dspy.Prediction(score=score, feedback=f"{feedbacks.get(gold)} {verdict}".strip())

    return metric
