"""The methods PERSONA Bench scores, and its persona-voiced critic, as DSPy modules.

A method is any DSPy module called as ``method(persona=..., question=...)`` that returns a prediction with
an ``answer``. The paper's four modes ship here; ``bench.method=path/to/file.py:Class`` or
``bench.method=package.module:Class`` (importable from the current folder) plugs in any other (instantiated
with no arguments, called through ``__call__``, its scores labelled with the class's name). ``Caller`` passes
``config={"seed": ...}`` to every module so distinct samples (pass@k) get distinct seeds; a plugged-in module
that takes no ``config`` gets the seed through its LM instead.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
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
        # Results are labelled with the class's name, not 'custom'.
        self.label = type(method).__name__
        # The signature is read from the class: touching ``method.forward`` on an instance makes DSPy warn that
        # forward() is called directly. The method itself is always called through ``__call__``.
        cls = type(method)
        target = getattr(cls, "forward", None) or next(
            (c.__dict__["__call__"] for c in cls.__mro__ if "__call__" in c.__dict__), None)
        params: list[inspect.Parameter]
        try:
            params = list(inspect.signature(target).parameters.values()) if target is not None else []
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


def load_method(path: str, *, root: str | Path | None = None) -> Any:
    """Import a method and instantiate it with no arguments.

    ``path`` is ``path/to/file.py:Class`` (a file, relative to ``root``, the folder persona-gen was started in),
    or ``package.module:Class`` / ``package.module.Class``: importable as installed, or from ``root`` (no
    ``PYTHONPATH=.`` needed).

    Raises:
        ConfigError: When the path does not import, names nothing, or the class needs arguments.
    """
    module_name, sep, attr = path.rpartition(":") if ".py:" in path else path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    fix = "use 'path/to/file.py:Class' or 'package.module:Class' importable from the folder you run persona-gen in"
    if not module_name or not attr:
        raise ConfigError(format_error("bench.method", expected="'path/to/file.py:Class' or 'package.module:Class'",
                                       got=path, where="command line or conf/bench/", fix=fix))
    try:
        target: Any = _import(module_name, Path(root) if root is not None else Path.cwd())
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, OSError, SyntaxError) as exc:
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


def _import(module_name: str, root: Path) -> Any:
    """A module by file path (``x/y.py``) or by name, the name found installed or under ``root``."""
    if module_name.endswith(".py"):
        file = (root / module_name).resolve()
        if not file.is_file():
            raise ImportError(f"no file {file}")
        name = f"persona_gen_bench_method_{hashlib.sha256(str(file).encode()).hexdigest()[:12]}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        if exc.name != top or not ((root / f"{top}.py").is_file() or (root / top).is_dir()):
            raise
    # The module sits in the folder persona-gen was started in: import it from there, as `python -m` would.
    sys.path.insert(0, str(root))
    return importlib.import_module(module_name)


def build_method(mode: str, method_path: str | None = None, *, root: str | Path | None = None) -> dspy.Module:
    """The module of one bench mode; ``custom`` loads ``method_path`` (relative to ``root``)."""
    if mode == "baseline":
        return NoPersonaAnswerer()
    if mode in ("output_only", "chain_of_thought"):
        return PersonaAnswerer(reasoning=mode == "chain_of_thought")
    if mode == "demographic_summary":
        return SummaryAnswerer()
    if mode == "custom" and method_path:
        return PluggedMethod(load_method(method_path, root=root), method_path)
    raise ConfigError(format_error(
        "bench.mode", expected="one of ['baseline', 'output_only', 'chain_of_thought', 'demographic_summary', "
        "'custom'] ('custom' with bench.method set)", got=mode, where="command line or conf/bench/",
        fix="pick one of those, e.g. bench.mode=output_only"))
