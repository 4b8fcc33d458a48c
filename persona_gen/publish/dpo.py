"""The ``dpo`` config: feedback rows in TRL's conversational preference format, ready for ``DPOTrainer``.

Each usable feedback row becomes::

    prompt   = [{"role": "system", "content": <personalization instruction with the persona>},
                {"role": "user", "content": <the question>}]
    chosen   = [{"role": "assistant", "content": <the revision (feedback `data`)>}]
    rejected = [{"role": "assistant", "content": <the no-persona answer (feedback `original`)>}]

plus ``persona_id``, ``question_id``, ``question type``, ``seen`` and ``feedback_id`` to join back. A row whose
feedback recorded a failure (or lacks either answer) is left out: the card counts them.

The system message follows the persona-aware instruction PERSONA gives the model that writes the revision
(answer for this person, personalize subtly, never name their attributes; ``persona_gen.signatures``'
``ReviseForPersona`` and ``AnswerForPersona``), followed by the persona in the released ``key: value`` form. The
paper does not print a system prompt verbatim, so this wording is persona_gen's, written to match it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd

from persona_gen.core.errors import PublishError, format_error

__all__ = ["DPO_COLUMNS", "PERSONALIZATION_INSTRUCTION", "dpo_batches", "dpo_frame", "failed_rows",
           "personalization_instruction"]

PERSONALIZATION_INSTRUCTION = (
    "You are a helpful assistant. Answer the question of the person described below. Personalize subtly: fit "
    "the answer to their circumstances, values and way of life, but never name or mention any of their "
    "attributes.\n\nThe person:\n{persona}"
)
DPO_COLUMNS = ("prompt", "chosen", "rejected", "persona_id", "question_id", "question type", "seen", "feedback_id")
_REQUIRED = ("persona", "instruction", "original", "data")


def personalization_instruction(persona: str, template: str = PERSONALIZATION_INSTRUCTION) -> str:
    """The system message for one persona: ``template`` with ``{persona}`` filled by its ``key: value`` text."""
    return template.format(persona=str(persona).strip())


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _has_failures(value: Any) -> bool:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return len(value) > 0


def failed_rows(feedback: pd.DataFrame) -> pd.Series:
    """True for each feedback row left out of ``dpo``: a recorded failure, or an empty original or revision."""
    if "failure_count" in feedback.columns:
        failed = feedback["failure_count"].fillna(0).astype(int) > 0
    elif "failures" in feedback.columns:
        failed = feedback["failures"].map(_has_failures).astype(bool)
    else:
        failed = pd.Series(False, index=feedback.index)
    empty = feedback["original"].map(_text).str.strip().eq("") | feedback["data"].map(_text).str.strip().eq("")
    return failed | empty


def dpo_frame(feedback: pd.DataFrame, personalization: str | Callable[[str], str] = PERSONALIZATION_INSTRUCTION
              ) -> pd.DataFrame:
    """Feedback rows (the ``feedback`` config's columns) as TRL conversational preference rows.

    Args:
        feedback: rows with ``persona``, ``instruction``, ``original``, ``data`` and, where present,
            ``persona_id``, ``question_id``, ``question type``, ``seen``, ``feedback_id``, ``failure_count`` or
            ``failures``.
        personalization: the system-message template (``{persona}`` is replaced) or a function persona -> message.

    Returns:
        One row per usable feedback row, columns :data:`DPO_COLUMNS`, in the feedback's order.

    Raises:
        PublishError: a required column is missing.
    """
    missing = [c for c in _REQUIRED if c not in feedback.columns]
    if missing:
        raise PublishError(format_error(
            "feedback columns for the dpo config", expected=f"{list(_REQUIRED)}", got=f"{missing} missing",
            where="dpo_frame", fix="pass the feedback config's rows (persona, instruction, original, data)"))
    system = personalization if callable(personalization) else \
        (lambda persona: personalization_instruction(persona, personalization))
    kept = feedback[~failed_rows(feedback)].reset_index(drop=True)
    out = pd.DataFrame({
        "prompt": [[{"role": "system", "content": system(_text(p))}, {"role": "user", "content": _text(q)}]
                   for p, q in zip(kept["persona"], kept["instruction"], strict=True)],
        "chosen": [[{"role": "assistant", "content": _text(v)}] for v in kept["data"]],
        "rejected": [[{"role": "assistant", "content": _text(v)}] for v in kept["original"]],
    })
    for column in DPO_COLUMNS[3:]:
        if column in kept.columns:
            out[column] = kept[column].to_numpy()
        elif column == "seen":
            out[column] = pd.Series([False] * len(kept), dtype=bool)
        else:
            out[column] = pd.Series([""] * len(kept), dtype=object)
    return out


def dpo_batches(batches: Iterable[pd.DataFrame],
                personalization: str | Callable[[str], str] = PERSONALIZATION_INSTRUCTION) -> Iterator[pd.DataFrame]:
    """:func:`dpo_frame` over a stream of feedback batches (a split that never sits in memory at once)."""
    for batch in batches:
        yield dpo_frame(batch, personalization)
