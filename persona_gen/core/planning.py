"""What a run will cost before it runs: the LM calls each step plans to make and a typical prompt of each.

A step's ``planned_calls(plan)`` (``persona_gen.core.steps.Step``) returns ``PlannedCall`` s: how many calls of
which module under which stats key and model role, with typical inputs to render one prompt from. Counts come
from the config alone (``PlanContext``: rows per scope, assumptions where a count depends on LM answers); no
census is loaded and no LM is called. ``prompt_chars`` renders a prompt exactly as a call would
(``persona_gen.core.adapter.JSONAdapter``, DSPy's JSON adapter) and ``completion_chars`` the JSON of a typical
answer; tokens are estimated from characters (about 4 per token for English text and JSON).
"""

from __future__ import annotations

import collections.abc
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from persona_gen.core.records import LM_KEYS, PERSONA_KEYS

__all__ = [
    "DEFAULT_TYPICAL_WORDS",
    "PlanContext",
    "PlannedCall",
    "completion_chars",
    "filler",
    "module_signature",
    "prompt_chars",
    "tokens",
    "typical_outputs",
    "typical_persona",
    "typical_value",
]

# Words of a typical value, by field name; `default` for every other text field. The outputs' numbers are guesses
# for a capable instruction-tuned model; `plan.typical_words` overrides them from a pilot run.
DEFAULT_TYPICAL_WORDS: dict[str, int] = {
    "question": 18, "answer": 120, "revision": 120, "evaluation": 60, "suggestions": 60, "reasoning": 80,
    "reason": 20, "persona_field": 3, "persona_detail": 30, "default": 40,
}
# Common English words (mean length ~5 letters): filler text whose characters per token are like real prose.
_FILLER = ("people", "should", "think", "about", "their", "family", "work", "and", "what", "matters", "most", "when",
           "they", "choose", "between", "options", "that", "shape", "daily", "life", "in", "the", "community")


def filler(words: int) -> str:
    """``words`` words of plain prose-like text (a stand-in for a value of that length)."""
    return " ".join(_FILLER[i % len(_FILLER)] for i in range(max(0, int(words))))


@dataclass(frozen=True)
class PlannedCall:
    """Calls one step will make of one module: ``calls`` prompts like the one rendered from ``inputs``.

    ``stage`` is the stats key the calls are counted under (``manifest["stages"]``), ``role`` the model role
    (a key of ``models``, or ``candidate:<name>`` with ``model_cfg``). ``exact`` is False where the count depends on
    LM answers (rejected personas, prompts judged not controversial, which questions the pairs draw): then it is
    an estimate from ``plan.*`` assumptions, said in ``note``. ``batches`` are the calls of each barrier of the
    barrier execution (one ``Caller.map``): one entry per persona chunk for row steps.
    """

    stage: str
    role: str
    calls: int
    module: Any
    inputs: Mapping[str, Any]
    exact: bool = True
    note: str = ""
    model_cfg: Any = None
    batches: tuple[int, ...] | None = None
    # What the table calls it; default: the rendered signature's name.
    label: str = ""


@dataclass
class PlanContext:
    """What a step's ``planned_calls`` may read: the config, rows per scope, measured sizes, assumptions.

    Attributes:
        cfg: the run config.
        rows: rows per scope (``question``: questions the pairs use; ``persona``; ``pair``).
        rows_per_persona: pairs of each persona (``max_rows_per_persona`` limits count from these).
        exact_scopes: scopes whose row count is known from the config alone (not an estimate).
        chunk_personas: personas per chunk (persona and pair steps run chunk by chunk).
        known: sizes measured elsewhere (a pilot run) that replace estimates, e.g. ``enrich.candidates``.
        assume: the ``plan`` config node (``enrich_drop_rate``, ``controversial_share``, ``typical_words``).
        typical: a typical value of a reference (``persona.text``, ``answer.answer``, ...).
    """

    cfg: Any
    rows: dict[str, int]
    rows_per_persona: int
    exact_scopes: set[str] = field(default_factory=lambda: {"persona", "pair"})
    chunk_personas: int = 32
    known: Mapping[str, int] = field(default_factory=dict)
    assume: Mapping[str, Any] = field(default_factory=dict)
    typical: Callable[[Any], Any] = lambda ref: filler(DEFAULT_TYPICAL_WORDS["default"])

    def words(self, name: str) -> int:
        table = {**DEFAULT_TYPICAL_WORDS, **dict(self.assume.get("typical_words") or {})}
        return int(table.get(name, table["default"]))

    def assumption(self, key: str, default: float) -> float:
        value = self.assume.get(key)
        return float(default if value is None else value)

    def measured(self, key: str, estimate: float) -> tuple[int, bool]:
        """(``known[key]``, True) when measured, else (the rounded ``estimate``, False)."""
        if key in self.known:
            return int(self.known[key]), True
        return round(estimate), False

    def scope_rows(self, step: Any) -> int:
        """Rows a row step runs on: its scope's rows, or the first ``max_rows_per_persona`` pairs of each persona."""
        if step.scope == "pair" and step.max_rows_per_persona is not None:
            personas = self.rows.get("persona", 0)
            return personas * min(self.rows_per_persona, max(0, int(step.max_rows_per_persona)))
        return int(self.rows.get(step.scope, 1 if step.scope == "run" else 0))

    def exact(self, scope: str) -> bool:
        return scope == "run" or scope in self.exact_scopes

    def batches(self, step: Any, calls_per_row: int = 1) -> tuple[int, ...]:
        """Calls per barrier of the barrier execution: question steps once; persona and pair steps per chunk."""
        total = self.scope_rows(step) * calls_per_row
        if step.scope in ("run", "question"):
            return (total,)
        personas = self.rows.get("persona", 0)
        if not personas:
            return ()
        per_persona = total / personas
        sizes = [min(self.chunk_personas, personas - lo) for lo in range(0, personas, self.chunk_personas)]
        return tuple(round(n * per_persona) for n in sizes)

    def inputs_for(self, step: Any) -> dict[str, Any]:
        """A typical value of each of the step's inputs."""
        return {name: self.typical(ref) for name, ref in step.inputs.items()}

    def question_text(self) -> str:
        return filler(self.words("question")) + "?"

    def persona_text(self, keys: tuple[str, ...] = PERSONA_KEYS) -> str:
        return typical_persona(keys, field_words=self.words("persona_field"), detail_words=self.words("persona_detail"))


def typical_persona(keys: tuple[str, ...] = PERSONA_KEYS, *, field_words: int = 3, detail_words: int = 30) -> str:
    """The ``key: value`` text of a persona of typical length: short census and survey values, LM-written details."""
    return "\n".join(f"{k}: {filler(detail_words if k in LM_KEYS else field_words)}" for k in keys)


def module_signature(module: Any) -> type:
    """The signature a module's call renders: a signature class itself, else the module's first predictor's."""
    import dspy

    if isinstance(module, type) and issubclass(module, dspy.Signature):
        return module
    predictors = module.predictors()
    if not predictors:
        raise TypeError(f"{type(module).__name__} has no predictor to plan")
    return predictors[0].signature


def typical_value(annotation: Any, name: str, words: Callable[[str], int]) -> Any:
    """A value of ``annotation`` of typical size: text of ``words(name)`` words, three list items, a Literal's
    first option, a pydantic model's fields filled the same way."""
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    if origin is typing.Annotated:
        return typical_value(args[0], name, words)
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        item = args[0] if args else str
        return [typical_value(item, name, lambda n: max(1, words(n) // 3)) for _ in range(3)]
    if origin in (dict, collections.abc.Mapping):
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return typical_value(options[0], name, words) if options else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {key: typical_value(f.annotation, key, words) for key, f in annotation.model_fields.items()}
    if annotation is bool:
        return True
    if annotation is int:
        return 3
    if annotation is float:
        return 0.5
    return filler(words(name))


def typical_outputs(signature: type, words: Callable[[str], int]) -> dict[str, Any]:
    """A typical answer of ``signature``: each output field filled by ``typical_value``."""
    return {name: typical_value(f.annotation, name, words) for name, f in signature.output_fields.items()}


def prompt_chars(module: Any, inputs: Mapping[str, Any]) -> int:
    """Characters of the messages one call of ``module`` sends for ``inputs`` (system + user, JSON adapter)."""
    from persona_gen.core.adapter import JSONAdapter

    signature = module_signature(module)
    messages = JSONAdapter().format(signature, demos=[], inputs=dict(inputs))
    return sum(len(str(m.get("content") or "")) for m in messages)


def completion_chars(module: Any, words: Callable[[str], int]) -> int:
    """Characters of a typical answer: the JSON object the adapter asks for, with typical values."""
    signature = module_signature(module)
    return len(json.dumps(typical_outputs(signature, words), ensure_ascii=False))


def tokens(chars: float, chars_per_token: float) -> int:
    return math.ceil(chars / chars_per_token) if chars else 0
