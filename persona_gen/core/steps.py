"""Declared steps: the vocabulary every pipeline config is written in.

A pipeline (``conf/pipeline/*.yaml``) is a mapping of named steps. Each step names its class (``_target_``), the
model role it calls, its scope (how often it runs) and its ``inputs``, written as references ``<source>.<field>``
to the row's entities (``persona``, ``question``, ``pair``) or to earlier steps' outputs. The runner orders the
steps from those references; what a step makes is reached by the same references from the published tables.

Scopes, coarse to fine:

- ``run``: once per run (census draw, enrichment, questions, pairing);
- ``question``: once per question used in the run (the no-persona answer);
- ``persona``: once per persona;
- ``pair``: once per persona-question pair (critique, revision, judgments).

A step reads outputs of its own or a coarser scope only. A row whose referenced inputs failed (or were skipped
because theirs failed) is skipped by the step: the failure is recorded once, where it happened.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Failure

__all__ = [
    "ENTITIES",
    "SCOPES",
    "Call",
    "LMStep",
    "Ref",
    "Row",
    "RowResult",
    "Step",
    "StepContext",
    "import_object",
    "step_seed",
]

SCOPES = ("run", "question", "persona", "pair")
# How fine a scope is: a step may read outputs of scopes <= its own.
SCOPE_RANK = {"run": 0, "question": 1, "persona": 1, "pair": 2}
# Fields of the row entities that references may name (beside step outputs).
ENTITIES: dict[str, dict[str, str]] = {
    "persona": {"id": "persona", "text": "persona", "summary": "persona", "source_record_id": "persona"},
    "question": {"id": "question", "text": "question", "cluster": "question", "source": "question",
                 "split": "question"},
    "pair": {"id": "pair", "question_type": "pair", "seen": "pair"},
}
ENTITY_SCOPE = {"persona": "persona", "question": "question", "pair": "pair"}
_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_ ]*)$")
WHERE = "pipeline (conf/pipeline/)"


@dataclass(frozen=True)
class Ref:
    """A reference ``<source>.<field>``: an entity field (``persona.text``) or a step output (``answer.answer``)."""

    source: str
    field: str

    @classmethod
    def parse(cls, text: Any, *, where: str) -> Ref:
        match = _REF.match(str(text).strip()) if isinstance(text, str) else None
        if not match:
            raise ConfigError(format_error(where, expected="a reference '<step or entity>.<field>', e.g. answer.answer",
                                           got=text, where=WHERE, fix="write the step's name, a dot and its output"))
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"{self.source}.{self.field}"


def step_seed(seed: int, name: str, sub: str = "") -> int:
    """A step's seed from the run seed and the step's *name* (not its position): adding a step moves no other."""
    digest = hashlib.sha256(f"{int(seed)}:{name}:{sub}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def import_object(path: str, *, where: str, search: Sequence[str | Path] = ()) -> Any:
    """``pkg.mod.Name`` or ``pkg.mod:Name``; the current folder and ``search`` folders are importable too."""
    text = str(path).strip()
    module_name, sep, attr = text.partition(":")
    if not sep:
        module_name, _, attr = text.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(format_error(where, expected="an import path 'package.module.Name'", got=text, where=WHERE,
                                       fix="name the module and the class, e.g. my_project.signatures.MySignature"))
    for folder in [Path.cwd(), *map(Path, search)]:
        if str(folder) not in sys.path and folder.is_dir():
            sys.path.append(str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(format_error(where, expected="an importable module", got=f"{text} ({exc})", where=WHERE,
                                       fix="check the spelling, or put the module beside your config dir or in the "
                                           "current folder")) from None
    if not hasattr(module, attr):
        names = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
        raise ConfigError(format_error(where, expected=f"a name defined in module {module_name}", got=attr,
                                       where=WHERE, fix=f"check the spelling; {module_name} defines {names}"))
    return getattr(module, attr)


@dataclass(frozen=True)
class RowResult:
    """What one step made for one row: its outputs, or the failure that stopped it."""

    outputs: Mapping[str, Any] | None
    failure: Failure | None = None
    # Extra failures that do not stop the row (a length check's verdict on a revision that exists).
    notes: tuple[Failure, ...] = ()
    # Records a step adds to a table of its own (a pairwise judge: one per order and variant).
    records: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failure is None and self.outputs is not None


@dataclass(frozen=True)
class Call:
    """One LM call a step asks for: counted and cached under ``stage``, sent to the model of ``role``."""

    stage: str
    module: Any
    inputs: Mapping[str, Any]
    role: str
    sample_index: int = 0
    desc: str = ""


@dataclass(frozen=True)
class Row:
    """One row a step runs on: its key, its resolved inputs and its entities (None above the row's scope)."""

    key: str
    inputs: Mapping[str, Any]
    persona: Any = None
    question: Any = None
    pair: Any = None


@dataclass
class StepContext:
    """What a running step may use: the run config, its seeds, the runtime (cache + LM callers), the run dir."""

    cfg: Any
    runtime: Any
    out_dir: Path
    stats: dict[str, Any] = field(default_factory=dict)
    # Streaming execution: ``emit(output, index, item)`` hands the runner one item of a list output (the personas)
    # as soon as it is final, before the step returns; None when nothing listens (barrier execution).
    emit: Callable[[str, int, Any], None] | None = None


class Step:
    """Base of every declared step. Subclasses set ``outputs`` (or compute them in ``output_fields``).

    A step's config keys: ``_target_`` (this class), ``scope``, ``role`` (a key of ``models``), ``inputs``
    (input name -> reference), ``settings`` (a dotted path into the run config whose node the step reads, or a
    mapping), ``after`` (steps to wait for without reading them), ``max_rows_per_persona`` (pair steps: the first
    N pairs of each persona only) and, per class, the keys in ``extra_keys``.
    """

    default_scope: ClassVar[str] = "pair"
    # Roles of LM steps; None: the step calls no model.
    needs_role: ClassVar[bool] = False
    outputs: ClassVar[tuple[str, ...]] = ()
    extra_keys: ClassVar[tuple[str, ...]] = ()
    # One line for the card's "How it was made" table.
    what: ClassVar[str] = ""

    def __init__(self, name: str, spec: Mapping[str, Any], cfg: Any, *, search: Sequence[str | Path] = ()) -> None:
        self.name = name
        self.spec = dict(spec)
        self.cfg = cfg
        self.search = tuple(search)
        self.scope = str(self.spec.get("scope") or self.default_scope)
        self.role = self.spec.get("role")
        raw_inputs = self.spec.get("inputs") or {}
        if not isinstance(raw_inputs, Mapping):
            raise self.error("inputs", "a mapping of input name -> reference", raw_inputs,
                             "write inputs as {name: step.field}")
        self.inputs: dict[str, Ref] = {str(k): Ref.parse(v, where=f"pipeline.steps.{name}.inputs.{k}")
                                       for k, v in raw_inputs.items()}
        self.after: tuple[str, ...] = tuple(str(s) for s in self.spec.get("after") or ())
        # Pair steps: only the first N pairs of each persona (in pairing order, failed ones counted) run.
        limit = self.spec.get("max_rows_per_persona")
        self.max_rows_per_persona: int | None = None if limit is None else int(limit)

    # -- declared shape -----------------------------------------------------------------------------------------

    def error(self, key: str, expected: str, got: Any, fix: str) -> ConfigError:
        return ConfigError(format_error(f"pipeline.steps.{self.name}.{key}", expected=expected, got=got, where=WHERE,
                                        fix=fix))

    @property
    def settings(self) -> Any:
        """The step's settings: a config node named by ``settings`` (e.g. ``stage.judge``), or an inline mapping."""
        from omegaconf import OmegaConf

        value = self.spec.get("settings")
        if value is None:
            return OmegaConf.create({})
        if isinstance(value, str):
            node = OmegaConf.select(self.cfg, value)
            if node is None:
                raise self.error("settings", "a config path that exists", value, "e.g. settings: stage.judge")
            return node
        return value

    def output_fields(self) -> tuple[str, ...]:
        """Every name ``<step>.<name>`` can reference: declared outputs plus ``model`` (the role's model id)."""
        return (*self.outputs, "model")

    def required_inputs(self) -> tuple[str, ...]:
        """Input names the step needs fed."""
        return ()

    def output_type(self, name: str) -> Any:
        """The Python type of an output (``str`` unless a step says otherwise): a failed row's column gets "" for
        text and null for other types."""
        return str

    def optional_inputs(self) -> tuple[str, ...]:
        return ()

    def signatures(self) -> list[type]:
        """The DSPy signatures this step calls (their hashes go to the card and manifest)."""
        return []

    def credits(self) -> list[tuple[str, str]]:
        """(input data, license) pairs this step reads, for the card."""
        return []

    def describe(self) -> str:
        return self.what or (self.__doc__ or "").strip().splitlines()[0]

    def stats_keys(self) -> tuple[str, ...]:
        """The stage names this step's calls are counted (and cached) under."""
        return (self.name,) if self.needs_role else ()

    def check(self) -> None:
        """Validate settings before any work (no I/O, no LM call). Raise ConfigError."""

    def seed(self, sub: str = "") -> int:
        """This step's seed (``sub`` names a second stream), from the run seed and the step's name."""
        return step_seed(int(self.cfg.seed), self.name, sub)

    def made_by(self, runtime: Any) -> str:
        """The card's "made by" cell: the role's model id, or what the step is when it calls no model."""
        return runtime.client(self.role).model_id if self.role else "rules (no LM)"

    def planned_calls(self, plan: Any) -> list[Any]:
        """The LM calls this step will make (``persona_gen.core.planning.PlannedCall`` s), from the config alone
        (``plan``: a ``PlanContext``); ``task=plan`` sums them. A step that calls no model plans none."""
        return []

    # -- execution ----------------------------------------------------------------------------------------------

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Run-scope steps: the outputs, from the resolved inputs."""
        raise NotImplementedError(f"{type(self).__name__} has no run-scope execution")

    def calls(self, row: Row) -> list[Call] | None:
        """The LM calls one row needs (``[]``: none), or None for a step that only runs whole batches
        (``run_rows``). The streaming runner sends each call the moment its row's inputs exist."""
        return None

    def finish(self, ctx: StepContext, row: Row, results: Sequence[Any]) -> RowResult:
        """The row's result from the answers to its ``calls`` (``CallResult``s, in the order asked)."""
        raise NotImplementedError(f"{type(self).__name__} declares calls() but no finish()")

    def run_rows(self, ctx: StepContext, rows: Sequence[Row]) -> dict[str, RowResult]:
        """Row-scope steps: a RowResult per row key. By default through ``calls``/``finish``, one ``Caller.map``
        per (stage, module): a step of your own may override this instead (it then runs per row when streamed)."""
        planned = [(row, self.calls(row)) for row in rows]
        if any(calls is None for _, calls in planned):
            raise NotImplementedError(f"{type(self).__name__} implements neither calls() nor run_rows()")
        groups: dict[tuple[str, int], list[tuple[int, int, Call]]] = {}
        for i, (_, calls) in enumerate(planned):
            for j, call in enumerate(calls or ()):
                groups.setdefault((call.stage, id(call.module)), []).append((i, j, call))
        answers: dict[tuple[int, int], Any] = {}
        for members in groups.values():
            first = members[0][2]
            caller = ctx.runtime.caller(first.role, stats=ctx.stats)
            results = caller.map(first.stage, first.module, [dict(c.inputs) for _, _, c in members],
                                 sample_index=first.sample_index, desc=first.desc or first.stage)
            for (i, j, _), res in zip(members, results, strict=True):
                answers[(i, j)] = res
        return {row.key: self.finish(ctx, row, [answers[(i, j)] for j in range(len(calls or ()))])
                for i, (row, calls) in enumerate(planned)}


def _signature_of(spec: Mapping[str, Any], step: Step) -> type:
    import dspy

    path = spec.get("signature")
    if not path:
        raise step.error("signature", "an import path of a dspy.Signature", path,
                         "e.g. signature: persona_gen.signatures.AnswerQuestion")
    sig = import_object(str(path), where=f"pipeline.steps.{step.name}.signature", search=step.search)
    if not (isinstance(sig, type) and issubclass(sig, dspy.Signature)):
        raise step.error("signature", "a dspy.Signature subclass", path, "point it at a class deriving dspy.Signature")
    return sig


class LMStep(Step):
    """One LM call per row through a DSPy signature (``dspy.Predict``, or ``module: chain_of_thought``).

    Extra keys: ``signature`` (import path), ``module`` (``predict`` | ``chain_of_thought``), ``derive`` (named
    strings formatted from the outputs, e.g. ``text: "EVALUATION: {critique[evaluation]}"``), ``desc`` (the
    progress label).
    """

    needs_role = True
    extra_keys = ("signature", "module", "derive", "desc")
    MODULES = ("predict", "chain_of_thought")

    def __init__(self, name: str, spec: Mapping[str, Any], cfg: Any, *, search: Sequence[str | Path] = ()) -> None:
        super().__init__(name, spec, cfg, search=search)
        self.signature = _signature_of(self.spec, self)
        self.module_kind = str(self.spec.get("module") or "predict")
        if self.module_kind not in self.MODULES:
            raise self.error("module", f"one of {list(self.MODULES)}", self.module_kind, "use predict")
        derive = self.spec.get("derive") or {}
        if not isinstance(derive, Mapping):
            raise self.error("derive", "a mapping of name -> format string", derive, "e.g. text: '{answer}'")
        self.derive = {str(k): str(v) for k, v in derive.items()}

    def output_fields(self) -> tuple[str, ...]:
        extra = ("reasoning",) if self.module_kind == "chain_of_thought" else ()
        return (*self.signature.output_fields, *extra, *self.derive, "model")

    def required_inputs(self) -> tuple[str, ...]:
        return tuple(self.signature.input_fields)

    def output_type(self, name: str) -> Any:
        import typing

        field = self.signature.output_fields.get(name)
        if field is None:
            return str
        annotation = field.annotation
        if typing.get_origin(annotation) is typing.Literal:
            values = typing.get_args(annotation)
            return type(values[0]) if values and all(type(v) is type(values[0]) for v in values) else object
        return annotation if isinstance(annotation, type) else object

    def signatures(self) -> list[type]:
        return [self.signature]

    def describe(self) -> str:
        doc = (self.signature.__doc__ or "").strip().split("\n\n")[0]
        return f"{self.signature.__name__}: " + " ".join(doc.split())

    def check(self) -> None:
        out = {name: _probe_for(f.annotation) for name, f in self.signature.output_fields.items()}
        for key, template in self.derive.items():
            try:
                template.format_map(_Probe(out))
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                raise self.error(f"derive.{key}", "a format string over the signature's outputs "
                                 f"{list(out)}", template, f"fix the field name ({exc})") from None

    def module(self) -> Any:
        """The step's DSPy module, made once (its identity keys the cache)."""
        if getattr(self, "_module", None) is None:
            import dspy

            self._module = (dspy.Predict(self.signature) if self.module_kind == "predict"
                            else dspy.ChainOfThought(self.signature))
        return self._module

    def planned_calls(self, plan: Any) -> list[Any]:
        """One call per row of the step's scope (the first ``max_rows_per_persona`` pairs of each persona)."""
        from persona_gen.core.planning import PlannedCall

        label = self.signature.__name__ + ("" if self.module_kind == "predict" else f" ({self.module_kind})")
        return [PlannedCall(self.name, str(self.role), plan.scope_rows(self), self.module(), plan.inputs_for(self),
                            exact=plan.exact(self.scope), batches=plan.batches(self), label=label,
                            note="" if plan.exact(self.scope) else f"one per {self.scope} used (estimated)")]

    def calls(self, row: Row) -> list[Call]:
        return [Call(self.name, self.module(), row.inputs, str(self.role), desc=str(self.spec.get("desc") or ""))]

    def finish(self, ctx: StepContext, row: Row, results: Sequence[Any]) -> RowResult:
        (res,) = results
        if not res.ok:
            return RowResult(None, res.failure)
        values = dict(res.outputs)
        for name, template in self.derive.items():
            values[name] = template.format_map(values)
        values["model"] = ctx.runtime.client(self.role).model_id
        return RowResult(values)


class _Probe(dict):
    """Format-map stand-in whose values accept any item or attribute: checks field names only."""

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return dict.__getitem__(self, key)


def _probe_for(annotation: Any) -> Any:
    """A stand-in of an output's value: a pydantic model's fields must exist; anything else accepts all."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _Probe({name: _probe_for(f.annotation) for name, f in annotation.model_fields.items()})
    return _Anything()


class _Anything:
    def __getitem__(self, key: Any) -> _Anything:
        return self

    def __getattr__(self, key: str) -> _Anything:
        return self

    def __format__(self, spec: str) -> str:
        return ""
