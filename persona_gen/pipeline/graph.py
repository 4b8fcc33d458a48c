"""The step graph of a run: parsed from ``cfg.pipeline`` and checked whole before any work.

``Pipeline.from_config(cfg)`` imports every step class and signature, checks every reference (steps, entities,
fields, scopes), finds cycles, checks that every signature input is fed and nothing unknown is, checks each
step's own settings and every published table; each problem is one ``ConfigError`` line in the house format.
No file is read (beyond imports) and no LM is called.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.steps import ENTITIES, ENTITY_SCOPE, SCOPE_RANK, SCOPES, WHERE, Ref, Step, import_object

__all__ = ["Pipeline", "TableSpec"]

BASE_KEYS = ("_target_", "scope", "role", "inputs", "settings", "after", "max_rows_per_persona")
TABLE_KEYS = {"from": ("from", "description"), "rows": ("rows", "split", "columns", "failures", "description"),
              "of": ("of", "format", "description")}
PIPELINE_KEYS = ("personas", "pairs", "steps", "tables")


def _fail(key: str, expected: str, got: Any, fix: str) -> ConfigError:
    return ConfigError(format_error(key, expected=expected, got=got, where=WHERE, fix=fix))


def _close(name: str, options: list[str]) -> str:
    import difflib

    near = difflib.get_close_matches(name, options, n=1)
    return f"did you mean {near[0]!r}?" if near else f"known: {sorted(options)}"


@dataclass(frozen=True)
class TableSpec:
    """One published table: a run step's output (``source``), or rows of a scope built from ``columns``."""

    name: str
    source: Ref | None = None
    rows: str | None = None
    split: Ref | None = None
    columns: tuple[tuple[str, Ref], ...] = ()
    failures: tuple[str, ...] = ()
    description: str = ""
    # A table derived from another one (`of`), in a format of persona_gen.pipeline.runner.TABLE_FORMATS.
    derived_from: str | None = None
    format: str = ""


@dataclass
class Pipeline:
    """Steps in run order, the entity sources and the published tables."""

    steps: dict[str, Step]
    order: list[str]
    personas: Ref
    pairs: Ref
    tables: dict[str, TableSpec] = field(default_factory=dict)

    # -- building -----------------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Pipeline:
        node = cfg.get("pipeline")
        if node is None:
            raise _fail("pipeline", "a pipeline config (conf/pipeline/)", None, "add `pipeline: persona` to defaults")
        spec = OmegaConf.to_container(node, resolve=True)
        if not isinstance(spec, dict):
            raise _fail("pipeline", "a mapping with steps and tables", type(spec).__name__, "see docs/pipeline.md")
        for key in spec:
            if key not in PIPELINE_KEYS:
                raise _fail(f"pipeline.{key}", f"one of {list(PIPELINE_KEYS)}", key,
                            _close(str(key), list(PIPELINE_KEYS)))
        search = _config_dirs(cfg)
        raw_steps = spec.get("steps") or {}
        if not isinstance(raw_steps, dict) or not raw_steps:
            raise _fail("pipeline.steps", "a non-empty mapping of step name -> step", raw_steps, "see docs/pipeline.md")
        steps: dict[str, Step] = {}
        for name, step_spec in raw_steps.items():
            steps[str(name)] = _build_step(str(name), step_spec, cfg, search)
        pipeline = cls(steps=steps, order=[], personas=Ref.parse(spec.get("personas", "enrich.personas"),
                                                                  where="pipeline.personas"),
                       pairs=Ref.parse(spec.get("pairs", "assign.pairs"), where="pipeline.pairs"))
        pipeline.order = pipeline._check_references()
        pipeline.tables = pipeline._parse_tables(spec.get("tables") or {})
        for step in steps.values():
            step.check()
        return pipeline

    def _source_scope(self, ref: Ref, *, where: str) -> str:
        """The scope a reference lives at; raises for an unknown step, entity or field."""
        if ref.source == "model":
            return "run"
        if ref.source in ENTITIES:
            fields = ENTITIES[ref.source]
            if ref.field not in fields:
                raise _fail(where, f"a field of {ref.source}: {sorted(fields)}", str(ref),
                            _close(ref.field, list(fields)))
            return ENTITY_SCOPE[ref.source]
        if ref.source not in self.steps:
            raise _fail(where, "a reference to a declared step or an entity (persona, question, pair, model)", str(ref),
                        _close(ref.source, [*self.steps, *ENTITIES, "model"]))
        step = self.steps[ref.source]
        outputs = step.output_fields()
        if ref.field not in outputs:
            raise _fail(where, f"an output of step {ref.source!r}: {list(outputs)}", str(ref),
                        _close(ref.field, list(outputs)))
        return step.scope

    @staticmethod
    def _readable(source_scope: str, scope: str) -> bool:
        if source_scope == "run" or source_scope == scope:
            return True
        return scope == "pair" and source_scope in ("persona", "question")

    def _check_ref(self, ref: Ref, scope: str, *, where: str, models: Any) -> None:
        source_scope = self._source_scope(ref, where=where)
        if ref.source == "model" and ref.field not in models:
            raise _fail(where, f"model.<role> with a role of models: {sorted(models)}", str(ref),
                        _close(ref.field, list(models)))
        if not self._readable(source_scope, scope):
            raise _fail(where, f"a reference readable at scope {scope!r} (run, the same scope, or persona/question "
                        "from a pair)", f"{ref} (scope {source_scope!r})",
                        f"give the step scope {'pair' if scope != 'run' else source_scope!r}, or read a coarser output")

    def _check_references(self) -> list[str]:
        models = self.steps[next(iter(self.steps))].cfg.models
        graph: dict[str, set[str]] = {}
        for name, step in self.steps.items():
            deps = set()
            for key, ref in step.inputs.items():
                where = f"pipeline.steps.{name}.inputs.{key}"
                self._check_ref(ref, step.scope, where=where, models=models)
                if ref.source in self.steps:
                    deps.add(ref.source)
            for other in step.after:
                if other not in self.steps:
                    raise _fail(f"pipeline.steps.{name}.after", "names of declared steps", other,
                                _close(other, list(self.steps)))
                deps.add(other)
            if step.scope != "run":
                deps |= {self.personas.source, self.pairs.source} & set(self.steps)
            if name in deps:
                raise _fail(f"pipeline.steps.{name}.inputs", "references to other steps", f"{name} reads itself",
                            "a step cannot read its own output")
            graph[name] = deps
            need, optional = set(step.required_inputs()), set(step.optional_inputs())
            missing = [k for k in step.required_inputs() if k not in step.inputs]
            if missing:
                raise _fail(f"pipeline.steps.{name}.inputs", f"every input of {_what(step)} fed: {sorted(need)}",
                            f"no input for {missing}", f"add e.g. {missing[0]}: <step>.<field> under inputs")
            unknown = [k for k in step.inputs if k not in need | optional]
            if unknown:
                raise _fail(f"pipeline.steps.{name}.inputs.{unknown[0]}", f"an input of {_what(step)}: {sorted(need)}",
                            unknown[0], _close(unknown[0], sorted(need | optional)))
        for entity in (self.personas, self.pairs):
            if entity.source not in self.steps or self.steps[entity.source].scope != "run":
                raise _fail("pipeline.personas / pipeline.pairs", "an output of a run-scope step", str(entity),
                            "point them at e.g. enrich.personas and assign.pairs")
            self._source_scope(entity, where="pipeline.personas / pipeline.pairs")
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise _fail("pipeline.steps", "steps whose references form no cycle", cycle,
                        "break the cycle: a step can only read steps that do not read it") from None
        # Stable: run steps first, then question/persona, then pair; within a rank, the declared order when free.
        rank = {n: i for i, n in enumerate(self.steps)}
        del order
        return _stable_topo(graph, key=lambda n: (SCOPE_RANK[self.steps[n].scope], rank[n]))

    def _parse_tables(self, raw: Mapping[str, Any]) -> dict[str, TableSpec]:
        if not isinstance(raw, Mapping) or not raw:
            raise _fail("pipeline.tables", "a non-empty mapping of table name -> table", raw, "declare e.g. feedback")
        models = next(iter(self.steps.values())).cfg.models
        tables = {}
        for name, spec in raw.items():
            where = f"pipeline.tables.{name}"
            kinds = [k for k in TABLE_KEYS if isinstance(spec, Mapping) and k in spec]
            if len(kinds) != 1:
                raise _fail(where, "a mapping with one of `from: <step>.<output>`, `rows: <scope>` + columns or "
                            "`of: <table>` + format", spec, "see docs/pipeline.md")
            kind = kinds[0]
            for key in spec:
                if key not in TABLE_KEYS[kind]:
                    allowed = list(TABLE_KEYS[kind])
                    raise _fail(f"{where}.{key}", f"one of {allowed}", key, _close(str(key), allowed))
            if kind == "of":
                from persona_gen.pipeline.runner import TABLE_FORMATS

                base, fmt = str(spec["of"]), str(spec.get("format") or "")
                if base not in raw or base == name or "rows" not in raw[base]:
                    raise _fail(f"{where}.of", "the name of a `rows:` table declared here", base,
                                _close(base, [t for t in raw if "rows" in raw[t]]))
                if fmt not in TABLE_FORMATS:
                    raise _fail(f"{where}.format", f"one of {sorted(TABLE_FORMATS)}", fmt or None,
                                "e.g. format: dpo")
                tables[str(name)] = TableSpec(str(name), derived_from=base, format=fmt,
                                              description=str(spec.get("description") or ""))
                continue
            if kind == "from":
                ref = Ref.parse(spec["from"], where=f"{where}.from")
                scope = self._source_scope(ref, where=f"{where}.from")
                step = self.steps.get(ref.source)
                if step is None or not (hasattr(step, "frame") or hasattr(step, "records_frame")):
                    raise _fail(f"{where}.from", "an output of a step that publishes tables (from:)", str(ref),
                                "use rows: + columns: for row outputs of LM steps")
                if scope != "run" and not hasattr(step, "records_frame"):
                    raise _fail(f"{where}.from", "a run-scope output or a step's records", str(ref), "use rows:")
                tables[str(name)] = TableSpec(str(name), source=ref, description=str(spec.get("description") or ""))
                continue
            rows = str(spec["rows"])
            if rows not in SCOPES or rows == "run":
                raise _fail(f"{where}.rows", "one of question, persona, pair", rows, "e.g. rows: pair")
            columns = spec.get("columns") or {}
            if not isinstance(columns, Mapping) or not columns:
                raise _fail(f"{where}.columns", "a mapping of column name -> reference", columns,
                            "e.g. columns: {persona: persona.text}")
            cols = []
            for col, text in columns.items():
                ref = Ref.parse(text, where=f"{where}.columns.{col}")
                self._check_ref(ref, rows, where=f"{where}.columns.{col}", models=models)
                cols.append((str(col), ref))
            split = None
            if spec.get("split"):
                split = Ref.parse(spec["split"], where=f"{where}.split")
                self._check_ref(split, rows, where=f"{where}.split", models=models)
            failures = tuple(str(s) for s in spec.get("failures") or ())
            for s in failures:
                if s not in self.steps:
                    raise _fail(f"{where}.failures", "names of declared steps", s, _close(s, list(self.steps)))
            if split is not None and split not in [ref for _, ref in cols]:
                raise _fail(f"{where}.split", "a reference that is also one of the table's columns", str(split),
                            f"add a column for it, e.g. split: {cols[0][1]}")
            tables[str(name)] = TableSpec(str(name), rows=rows, split=split, columns=tuple(cols), failures=failures,
                                          description=str(spec.get("description") or ""))
        return tables

    # -- what the card and manifest say -------------------------------------------------------------------------

    def signatures(self) -> dict[str, type]:
        out: dict[str, type] = {}
        for name in self.order:
            for sig in self.steps[name].signatures():
                out.setdefault(sig.__name__, sig)
        return out

    def stats_keys(self) -> list[str]:
        return [key for name in self.order for key in self.steps[name].stats_keys()]

    def credits(self) -> list[tuple[str, str]]:
        out: dict[tuple[str, str], None] = {}
        for name in self.order:
            for credit in self.steps[name].credits():
                out[credit] = None
        return list(out)

    def roles(self) -> list[str]:
        return list(dict.fromkeys(s.role for s in self.steps.values() if s.role))

    def run_steps(self) -> list[Step]:
        return [self.steps[n] for n in self.order if self.steps[n].scope == "run"]

    def row_steps(self, *scopes: str) -> list[Step]:
        return [self.steps[n] for n in self.order if self.steps[n].scope in scopes]

    def feeds_own_role(self, name: str) -> bool:
        """Whether a step that reads ``name`` (directly or through other steps) calls the same model role: its
        answers can unlock more calls on its own endpoint."""
        role = self.steps[name].role
        if not role:
            return False
        readers: dict[str, set[str]] = {n: set() for n in self.steps}
        entities = {self.personas.source, self.pairs.source}
        for n, step in self.steps.items():
            sources = {ref.source for ref in step.inputs.values()} | set(step.after)
            if step.scope != "run":  # rows read their persona and pair
                sources |= entities
            for source in sources & set(readers):
                readers[source].add(n)
        seen, todo = set(), [name]
        while todo:
            for reader in readers[todo.pop()] - seen:
                seen.add(reader)
                todo.append(reader)
        return any(self.steps[n].role == role for n in seen)


def _what(step: Step) -> str:
    sig = getattr(step, "signature", None)
    return f"signature {sig.__name__}" if sig is not None else f"step class {type(step).__name__}"


def _stable_topo(graph: dict[str, set[str]], *, key: Any) -> list[str]:
    """Kahn's algorithm, always taking the ready step with the smallest ``key``: a deterministic run order."""
    import heapq

    indegree = {n: len(deps) for n, deps in graph.items()}
    users: dict[str, list[str]] = {n: [] for n in graph}
    for n, deps in graph.items():
        for d in deps:
            users[d].append(n)
    ready = [(key(n), n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for u in users[n]:
            indegree[u] -= 1
            if indegree[u] == 0:
                heapq.heappush(ready, (key(u), u))
    return out


def _config_dirs(cfg: DictConfig) -> list[Path]:
    """Folders a user's step classes and signatures may be imported from: each ``--config-dir`` of the run."""
    from hydra.core.hydra_config import HydraConfig

    dirs = []
    try:
        sources = HydraConfig.get().runtime.config_sources
    except ValueError:  # composed outside @hydra.main (tests, the Python API): cwd only
        sources = []
    for src in sources:
        if src.get("provider") == "command-line" and str(src.get("schema")) == "file":
            dirs.append(Path(str(src.get("path"))))
    return dirs


def _build_step(name: str, spec: Any, cfg: DictConfig, search: list[Path]) -> Step:
    where = f"pipeline.steps.{name}"
    if name in ENTITIES or name == "model" or not name.isidentifier():
        raise _fail(where, "a step name that is an identifier and not persona, question, pair or model", name,
                    "rename the step")
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise _fail(f"{where}._target_", "a step class, e.g. persona_gen.core.steps.LMStep", None,
                    "add _target_: <import path of a Step class>")
    cls = import_object(str(spec["_target_"]), where=f"{where}._target_", search=search)
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise _fail(f"{where}._target_", "a subclass of persona_gen.core.steps.Step", spec["_target_"],
                    "point it at a Step class (LMStep for one LM call per row)")
    for key in spec:
        if key not in BASE_KEYS and key not in cls.extra_keys:
            allowed = [*BASE_KEYS, *cls.extra_keys]
            raise _fail(f"{where}.{key}", f"a key of {cls.__name__}: {allowed}", key, _close(str(key), allowed))
    scope = spec.get("scope") or cls.default_scope
    if scope not in SCOPES:
        raise _fail(f"{where}.scope", f"one of {list(SCOPES)}", scope, _close(str(scope), list(SCOPES)))
    step = cls(name, spec, cfg, search=search)
    if cls.needs_role:
        if not step.role:
            raise _fail(f"{where}.role", f"a model role, one of {sorted(cfg.models)}", None, "add role: generator")
        if step.role not in cfg.models:
            raise _fail(f"{where}.role", f"a role defined under models: {sorted(cfg.models)}", step.role,
                        f"define models.{step.role} or use one of them")
    elif step.role:
        raise _fail(f"{where}.role", f"no role ({cls.__name__} calls no model)", step.role, "remove role")
    if step.max_rows_per_persona is not None and (step.scope != "pair" or step.max_rows_per_persona < 0):
        raise _fail(f"{where}.max_rows_per_persona", "a number >= 0 on a pair-scope step",
                    step.max_rows_per_persona, "remove it or use scope: pair")
    return step
