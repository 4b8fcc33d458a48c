"""Persona-voiced pairwise judging: every pair in both orders, direct and chain-of-thought variants.

Ties and abstentions (failed calls) are data. Order consistency and position bias come from the two
orders; the judge's model, signature hash and compiled-program hash are on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dspy

from persona_gen.core.calls import Caller, program_hash
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import signature_hash
from persona_gen.core.records import Feedback, Judgment, stable_id
from persona_gen.signatures import JudgeInVoice

__all__ = ["PersonaJudge", "run_judge"]

VARIANTS = ("direct", "chain_of_thought")


class PersonaJudge(dspy.Module):
    """Picks the answer the persona would prefer; ``variant`` chooses Predict or ChainOfThought."""

    def __init__(self, variant: str = "direct") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(format_error("stage.judge.variants entry", expected=f"one of {list(VARIANTS)}",
                                           got=variant, where="conf/stage/judge/ or a stage.judge.variants override",
                                           fix="e.g. stage.judge.variants=[direct,chain_of_thought]"))
        self.variant = variant
        self.predict = dspy.Predict(JudgeInVoice) if variant == "direct" else dspy.ChainOfThought(JudgeInVoice)

    def forward(self, **kwargs: Any) -> dspy.Prediction:
        return self.predict(**kwargs)

    async def aforward(self, **kwargs: Any) -> dspy.Prediction:
        return await self.predict.acall(**kwargs)


def preferred_of(choice: str, order: str) -> str:
    if choice in ("tie", "abstain"):
        return choice
    original_first = order == "original_first"
    return "original" if (choice == "first") == original_first else "revision"


def run_judge(rows: Sequence[Feedback], *, cfg: Any, caller: Caller,
              judges: dict[str, PersonaJudge] | None = None) -> list[Judgment]:
    """Judge each complete feedback row in both orders with every configured variant."""
    judged = [r for r in rows if r.original and r.data]
    out: list[Judgment] = []
    for variant in cfg.variants:
        judge = (judges or {}).get(variant) or PersonaJudge(variant)
        sig = JudgeInVoice
        items, keys = [], []
        for r in judged:
            for order in ("original_first", "revision_first"):
                first, second = (r.original, r.data) if order == "original_first" else (r.data, r.original)
                items.append({"persona": r.persona, "question": r.instruction, "first_answer": first,
                              "second_answer": second})
                keys.append((r, order))
        results = caller.map(f"judge_{variant}", judge, items, desc=f"judge: {variant}")
        phash, shash = program_hash(judge), signature_hash(sig)
        for (r, order), res in zip(keys, results, strict=True):
            choice = str(res.outputs["preferred"]) if res.ok else "abstain"
            out.append(Judgment(
                judgment_id=stable_id("j", r.feedback_id, variant, order), feedback_id=r.feedback_id,
                persona_id=r.persona_id, question_id=r.question_id, variant=variant, order=order, choice=choice,
                preferred=preferred_of(choice, order),
                reasoning=str(res.outputs.get("reasoning", "")) if res.ok else "",
                judge_model=caller.client.model_id, signature_hash=shash, program_hash=phash, failure=res.failure))
    return out
