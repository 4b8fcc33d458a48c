"""LM question generation: value-laden questions for each topic, so a user with no prompt set gets a testbed.

One ``DraftQuestions`` call per topic asks for ``per_cluster`` questions; the schema caps the list at that
many items and each item's length, so a small grammar-constrained model cannot loop. What comes back is
trimmed to ``per_cluster`` and stripped, and then goes through the same filter chain as
loaded prompts: an item that is not a question is dropped there, with its count, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
import pandas as pd

from persona_gen.core.calls import Caller
from persona_gen.core.records import Failure
from persona_gen.signatures.questions import draft_questions_signature

__all__ = ["Drafts", "QuestionDrafter", "draft_questions"]


class QuestionDrafter(dspy.Module):
    """Writes up to ``max_items`` value-laden questions on a topic."""

    def __init__(self, max_items: int) -> None:
        super().__init__()
        self.predict = dspy.Predict(draft_questions_signature(max_items))

    def forward(self, topic: str, count: int, **kwargs: Any) -> dspy.Prediction:
        return self.predict(topic=topic, count=count, **kwargs)

    async def aforward(self, topic: str, count: int, **kwargs: Any) -> dspy.Prediction:
        return await self.predict.acall(topic=topic, count=count, **kwargs)


@dataclass
class Drafts:
    """Generated rows (columns text, cluster, source) and the failed calls, one per failed topic."""

    frame: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    failed_topics: list[str] = field(default_factory=list)


def draft_questions(topics: Sequence[str], *, caller: Caller, per_cluster: int) -> Drafts:
    """``per_cluster`` questions for each topic; cluster = the topic, source = ``generated:<model>``."""
    source = f"generated:{caller.client.model_id}"
    module = QuestionDrafter(per_cluster)
    results = caller.map("questions", module, [{"topic": t, "count": per_cluster} for t in topics],
                         desc="questions: generate")
    rows: list[dict[str, str]] = []
    drafts = Drafts(frame=pd.DataFrame(columns=["text", "cluster", "source"]))
    for topic, res in zip(topics, results, strict=True):
        if not res.ok:
            drafts.failures.append(res.failure)  # type: ignore[arg-type]
            drafts.failed_topics.append(topic)
            continue
        items = ((res.outputs or {}).get("drafts") or {}).get("questions") or []
        # Repeats and non-questions stay: the filter chain drops and counts them like any loaded prompt.
        for item in items[:per_cluster]:
            text = " ".join(str(item).split())
            if text:
                rows.append({"text": text, "cluster": topic, "source": source})
    drafts.frame = pd.DataFrame(rows, columns=["text", "cluster", "source"])
    return drafts
