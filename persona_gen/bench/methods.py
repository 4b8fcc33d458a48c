"""The methods PERSONA Bench scores, and its persona-voiced critic, as DSPy modules.

A method is any DSPy module called as ``method(persona=..., question=...)`` that returns a prediction with
an ``answer``. The paper's four modes ship here; ``bench.method=package.module:Class`` plugs in any other
(instantiated with no arguments). ``Caller`` passes ``config={"seed": ...}`` to every module so distinct
samples (pass@k) get distinct seeds; a plugged-in module that takes no ``config`` gets the seed through
its LM instead.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import dspy

from persona_gen.core.errors import ConfigError, LMOutputError, format_error
from persona_gen.signatures import (
    AnswerForPersona,
    AnswerFromPersonaSummary,
    AnswerQuestion,
    CritiqueBenchAnswer,
    SummarizePersona,
)

__all__ = [
    "BenchCritic",
    "NoPersonaAnswerer",
    "PersonaAnswerer",
    "PluggedMethod",
    "SummaryAnswerer",
    "build_method",
    "load_method",
]


def _config(config: dict[str, Any] | None) -> dict[str, Any]:
    return {"config": config} if config else {}


class NoPersonaAnswerer(dspy.Module):
    """``baseline``: answers the question alone; every persona gets the same answer."""

    # The bench calls it with the question only, so one answer per question is shared by all personas.
    uses_persona = False

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(AnswerQuestion)

    def forward(self, question: str, persona: str | None = None, config: dict[str, Any] | None = None) -> Any:
        return self.predict(question=question, **_config(config))

    async def aforward(self, question: str, persona: str | None = None, config: dict[str, Any] | None = None) -> Any:
        return await self.predict.acall(question=question, **_config(config))


class PersonaAnswerer(dspy.Module):
    """``output_only`` (answer directly) or ``chain_of_thought`` (reason, then answer), persona in the prompt."""

    def __init__(self, reasoning: bool = False) -> None:
        super().__init__()
        self.predict = dspy.ChainOfThought(AnswerForPersona) if reasoning else dspy.Predict(AnswerForPersona)

    def forward(self, persona: str, question: str, config: dict[str, Any] | None = None) -> Any:
        return self.predict(persona=persona, question=question, **_config(config))

    async def aforward(self, persona: str, question: str, config: dict[str, Any] | None = None) -> Any:
        return await self.predict.acall(persona=persona, question=question, **_config(config))


class SummaryAnswerer(dspy.Module):
    """``demographic_summary``: the model first writes a summary of the persona, then answers from it alone."""

    def __init__(self) -> None:
        super().__init__()
        self.summarize = dspy.Predict(SummarizePersona)
        self.respond = dspy.Predict(AnswerFromPersonaSummary)

    def forward(self, persona: str, question: str, config: dict[str, Any] | None = None) -> Any:
        summary = self.summarize(persona=persona, **_config(config)).summary
        answer = self.respond(persona_summary=summary, question=question, **_config(config)).answer
        return dspy.Prediction(summary=summary, answer=answer)

    async def aforward(self, persona: str, question: str, config: dict[str, Any] | None = None) -> Any:
        summary = (await self.summarize.acall(persona=persona, **_config(config))).summary
        answer = (await self.respond.acall(persona_summary=summary, question=question, **_config(config))).answer
        return dspy.Prediction(summary=summary, answer=answer)


class PluggedMethod(dspy.Module):
    """Adapts a user module to the bench: keyword call, ``config`` seeds, an ``answer`` output."""

    def __init__(self, method: Any, path: str) -> None:
        super().__init__()
        self.method = method
        self.path = path
        target = method.forward if hasattr(method, "forward") else method
        params: list[inspect.Parameter]
        try:
            params = list(inspect.signature(target).parameters.values())
        except (TypeError, ValueError):
            params = []
        self._takes_config = any(p.name == "config" or p.kind is p.VAR_KEYWORD for p in params)

    def forward(self, persona: str, question: str, config: dict[str, Any] | None = None) -> Any:
        if self._takes_config or not config:
            out = self.method(persona=persona, question=question, **_config(config))
        else:
            with dspy.context(lm=dspy.settings.lm.copy(**config)):
                out = self.method(persona=persona, question=question)
        if isinstance(out, str):
            return dspy.Prediction(answer=out)
        if isinstance(out, dict):
            out = dspy.Prediction(**out)
        answer = getattr(out, "answer", None) if hasattr(out, "keys") else None
        if not isinstance(answer, str):
            raise LMOutputError(format_error(
                f"the output of {self.path}", expected="a dspy.Prediction with a str 'answer' (or a str)",
                got=type(out).__name__ if answer is None else f"answer of type {type(answer).__name__}",
                where="bench.method", fix="return dspy.Prediction(answer=...) from forward()"))
        return out


class BenchCritic(dspy.Module):
    """The persona-voiced critic: personalization and helpfulness verdicts, then ``needs_revision``."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(CritiqueBenchAnswer)

    def forward(self, persona: str, question: str, answer: str, config: dict[str, Any] | None = None) -> Any:
        return self.predict(persona=persona, question=question, answer=answer, **_config(config))


def load_method(path: str) -> Any:
    """Import ``package.module:Class`` (or ``package.module.Class``) and instantiate it with no arguments.

    Raises:
        ConfigError: When the path does not import, names nothing, or the class needs arguments.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    fix = "use 'package.module:Class' with the package importable (on PYTHONPATH)"
    if not module_name or not attr:
        raise ConfigError(format_error("bench.method", expected="an import path 'package.module:Class'", got=path,
                                       where="command line or conf/bench/", fix=fix))
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(format_error("bench.method", expected="an importable 'package.module:Class'", got=path,
                                       where="command line or conf/bench/", fix=f"{fix} ({exc})")) from None
    try:
        instance = target()
    except TypeError as exc:
        raise ConfigError(format_error(f"bench.method {path}", expected="a class instantiable with no arguments",
                                       got=str(exc), where="command line or conf/bench/",
                                       fix="give every __init__ argument a default")) from None
    if not callable(instance):
        raise ConfigError(format_error(f"bench.method {path}", expected="a callable DSPy module",
                                       got=type(instance).__name__, where="command line or conf/bench/",
                                       fix="subclass dspy.Module and define forward(persona, question)"))
    return instance


def build_method(mode: str, method_path: str | None = None) -> dspy.Module:
    """The module of one bench mode; ``custom`` loads ``method_path``."""
    if mode == "baseline":
        return NoPersonaAnswerer()
    if mode in ("output_only", "chain_of_thought"):
        return PersonaAnswerer(reasoning=mode == "chain_of_thought")
    if mode == "demographic_summary":
        return SummaryAnswerer()
    if mode == "custom" and method_path:
        return PluggedMethod(load_method(method_path), method_path)
    raise ConfigError(format_error(
        "bench.mode", expected="one of ['baseline', 'output_only', 'chain_of_thought', 'demographic_summary', "
        "'custom'] ('custom' with bench.method set)", got=mode, where="command line or conf/bench/",
        fix="pick one of those, e.g. bench.mode=output_only"))
