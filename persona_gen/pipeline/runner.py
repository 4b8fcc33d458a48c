"""``run(cfg)``: the declared steps of ``cfg.pipeline``, from census to a Hub-ready folder.

The step graph is built and checked whole (``Pipeline.from_config``) before any file is read or any LM is called.
Run-scope and question-scope steps run once (every shard runs them, through the cache); persona- and pair-scope
steps run per chunk of personas, whose finished parts make resume and sharding work. Each step's seed derives
from its name; every LM call goes through the one cache, so an interrupted run resumes where it stopped and a warm
rerun makes no LM call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from persona_gen.core import progress
from persona_gen.core.cache import canonical_json
from persona_gen.core.calls import CallStats
from persona_gen.core.config import validate
from persona_gen.core.errors import PersonaGenError, PublishError, format_error
from persona_gen.core.io import atomic_write_bytes, atomic_write_text, to_json
from persona_gen.core.lm import build_lm, check_endpoints, signature_hash
from persona_gen.core.parts import (
    check_parts,
    part_status,
    parts_not_found,
    read_part_stats,
    retry_wanted,
    write_part_marker,
)
from persona_gen.core.records import Persona, RunInfo
from persona_gen.core.runtime import Runtime, full_collections_paused
from persona_gen.core.steps import ENTITIES, Ref, Row, RowResult, Step, StepContext
from persona_gen.pipeline.graph import Pipeline, TableSpec

__all__ = ["PrepareResult", "RunResult", "ShardResult", "check", "config_hash", "merge", "parts_dir_for", "prepare",
           "prepare_once", "publish_parts", "run", "run_key"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    output_dir: Path
    dataset_dir: Path
    card_path: Path
    manifest_path: Path
    plots: list[Path]
    content_hash: str
    lm_calls: int
    manifest: dict[str, Any]

    def summary_lines(self) -> list[str]:
        lines = [f"dataset:  {self.dataset_dir}", f"card:     {self.card_path}"]
        lines += [f"plot:     {p}" for p in self.plots]
        lines += [f"manifest: {self.manifest_path}", f"content hash: {self.content_hash}  (LM calls: {self.lm_calls})"]
        return lines


# Keys that do not change what a run makes: where files live, how it is split or published, other tasks.
_NOT_CONTENT = ("paths", "shard", "publish", "task", "cache", "bench", "optimize", "annotate", "hydra", "plan")


def config_hash(cfg: DictConfig) -> str:
    """Hash of what determines the data; unresolved, so machine paths and env values do not enter it."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    for key in _NOT_CONTENT:
        plain.pop(key, None)
    return hashlib.sha256(canonical_json(plain).encode()).hexdigest()[:16]


def _check_failure_rate(stats: dict[str, CallStats], limit: float, parts: Path | None = None) -> None:
    from persona_gen.core.parts import failure_files

    for stage, s in stats.items():
        total = s.calls + s.cache_hits
        if total and s.failures / total > limit:
            raise PersonaGenError(format_error(
                f"failure rate of stage {stage!r}", expected=f"<= max_failure_rate={limit}",
                got=f"{s.failures}/{total}", where=failure_files(stage, parts),
                fix="use a stronger model, or raise max_failure_rate to publish anyway; a rerun retries recorded "
                    "failures (cache.retry_failures) once the server is healthy"))


@dataclass
class Prepared:
    """What every shard computes in full (cached): the run steps' outputs and the question-scope results."""

    cfg: DictConfig
    pipeline: Pipeline
    out_dir: Path
    runtime: Runtime
    outputs: dict[str, dict[str, Any]]
    personas: list[Persona]
    pairs: list[Any]
    question_results: dict[str, dict[str, RowResult]]
    global_info: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    plots: list[tuple[str, Path]]
    stats: dict[str, CallStats] = field(default_factory=dict)
    pairs_of: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_pairs()

    def index_pairs(self) -> None:
        """``pairs_of``: each persona's pairs, from ``pairs``."""
        self.pairs_of = {}
        for a in self.pairs:
            self.pairs_of.setdefault(a.persona_id, []).append(a)


def _entity_value(ref: Ref, row: Row, runtime: Runtime, texts: dict[str, tuple[Any, str]]) -> Any:
    # Only the field asked for is computed. A persona's text is read at each of its rows' steps, so it is
    # rendered once: ``texts`` keeps persona id -> (the persona, its text).
    source, name = ref.source, ref.field
    if source == "model":
        return runtime.client(name).model_id
    if source == "persona":
        p = row.persona
        if name == "text":
            kept = texts.get(p.persona_id)
            if kept is None or kept[0] is not p:
                kept = texts[p.persona_id] = (p, p.render())
            return kept[1]
        if name == "summary":
            return p.summary()
        return {"id": p.persona_id, "source_record_id": p.source_record_id}[name]
    if source == "question":
        q = row.question
        return {"id": q.question_id, "text": q.text, "cluster": q.cluster, "source": q.source,
                "split": q.split}[name]
    a = row.pair
    return a.feedback_id if name == "id" else {"question_type": a.question_type, "seen": a.seen}[name]


class _Results:
    """Per-step results a row scope can read: run outputs, question results (global), persona/pair results (chunk)."""

    def __init__(self, prep: Prepared, local: dict[str, dict[str, RowResult]]) -> None:
        self.prep = prep
        self.local = local
        self.texts: dict[str, tuple[Any, str]] = {}

    @property
    def pipeline(self) -> Pipeline:
        return self.prep.pipeline

    def row_result(self, step: Step, row: Row) -> RowResult | None:
        scope = step.scope
        if scope == "question":
            key = row.question.question_id if row.question else None
        elif scope == "persona":
            key = row.persona.persona_id if row.persona else None
        else:
            key = row.pair.feedback_id if row.pair else None
        table = self.prep.question_results.get(step.name) if scope == "question" else self.local.get(step.name)
        return None if table is None else table.get(key)

    def value(self, ref: Ref, row: Row) -> tuple[bool, Any]:
        """(available, value) of a reference for a row; unavailable when the step failed or skipped the row."""
        if ref.source in ENTITIES or ref.source == "model":
            return True, _entity_value(ref, row, self.prep.runtime, self.texts)
        step = self.prep.pipeline.steps[ref.source]
        if step.scope == "run":
            return True, self.prep.outputs[step.name][ref.field]
        res = self.row_result(step, row)
        if res is None or not res.ok:
            return False, None
        return True, res.outputs.get(ref.field)


def _run_row_step(step: Step, rows: list[Row], results: _Results, ctx: StepContext) -> dict[str, RowResult]:
    """Resolve each row's inputs and run the step on the rows whose inputs all exist."""
    if step.max_rows_per_persona is not None:
        seen: Counter[str] = Counter()
        kept = []
        for row in rows:
            if seen[row.persona.persona_id] < step.max_rows_per_persona:
                seen[row.persona.persona_id] += 1
                kept.append(row)
        rows = kept
    ready = []
    for row in rows:
        inputs = {}
        for name, ref in step.inputs.items():
            ok, value = results.value(ref, row)
            if not ok:
                break
            inputs[name] = value
        else:
            ready.append(Row(row.key, inputs, row.persona, row.question, row.pair))
    return step.run_rows(ctx, ready) if ready else {}


def _prepare(cfg: DictConfig, pipeline: Pipeline, *, question_steps: bool = True) -> Prepared:
    """The run-scope steps one after another (and, with ``question_steps``, the question-scope ones as batches):
    the barrier execution's run-once work."""
    prep = _new_prepared(cfg, pipeline)
    ctx = StepContext(cfg=cfg, runtime=prep.runtime, out_dir=prep.out_dir, stats=prep.stats)
    for step in pipeline.run_steps():
        prep.outputs[step.name] = dict(step.run_once(ctx, run_inputs(prep, step.inputs)))
    prep.personas = list(prep.outputs[pipeline.personas.source][pipeline.personas.field])
    prep.pairs = list(prep.outputs[pipeline.pairs.source][pipeline.pairs.field])
    prep.index_pairs()
    # Question-scope steps run on every question used, in the order the pairs first use them.
    questions = list({a.question.question_id: a.question for a in prep.pairs}.values())
    question_rows = [Row(q.question_id, {}, question=q) for q in questions]
    results = _Results(prep, {})
    for step in pipeline.row_steps("question") if question_steps else ():
        prep.question_results[step.name] = _run_row_step(step, question_rows, results, ctx)
    _complete(prep)
    return prep


def run_inputs(prep: Prepared, refs: dict[str, Ref]) -> dict[str, Any]:
    """A run-scope step's inputs: model ids and the (done) run steps' outputs the references name."""
    return {name: (prep.runtime.client(ref.field).model_id if ref.source == "model"
                   else prep.outputs[ref.source][ref.field]) for name, ref in refs.items()}


def _new_prepared(cfg: DictConfig, pipeline: Pipeline) -> Prepared:
    """An empty run-once state: the run steps' outputs, personas and pairs are filled in as the steps finish."""
    return Prepared(cfg, pipeline, Path(cfg.paths.output_dir), Runtime(cfg), {}, [], [], {}, {}, {}, [], {})


def _complete(prep: Prepared, *, plots: bool = True) -> None:
    """Once every run-scope step is done: the steps' card facts, plots (unless ``plots`` is False: then
    ``_draw_plots`` later) and tables, and the run's info."""
    cfg, pipeline, outputs, runtime = prep.cfg, prep.pipeline, prep.outputs, prep.runtime
    info: dict[str, Any] = {}
    if plots:
        _draw_plots(prep)
    for step in pipeline.run_steps():
        if hasattr(step, "info"):
            _merge_info(info, step.info(outputs[step.name]))
        if hasattr(step, "frame"):
            for table in pipeline.tables.values():
                if table.source is not None and table.source.source == step.name:
                    frame = step.frame(table.source.field, outputs[step.name][table.source.field])
                    if frame is not None:
                        prep.tables[table.name] = frame
    for step in pipeline.row_steps("question", "persona", "pair"):
        if hasattr(step, "info"):
            _merge_info(info, step.info(None))
    generator, judge = runtime.client("generator"), runtime.client("judge")
    prep.global_info = {
        "seed": int(cfg.seed), "config_hash": config_hash(cfg),
        "generator": generator.identity, "judge": judge.identity,
        "generator_model": generator.model_id, "judge_model": judge.model_id,
        "embedded_model": any(cfg.models[r].kind == "smollm2" for r in pipeline.roles()),
        **info,
        "num_personas": len(prep.personas), "chunk_personas": _chunk_size(cfg),
        "steps": [{"step": name, "what": pipeline.steps[name].describe(), "scope": pipeline.steps[name].scope,
                   "by": pipeline.steps[name].made_by(runtime)} for name in pipeline.order],
        "inputs": pipeline.credits(),
    }


def _draw_plots(prep: Prepared) -> None:
    for step in prep.pipeline.run_steps():
        if hasattr(step, "plots"):
            prep.plots += step.plots(prep.outputs[step.name])


def _stream_all(cfg: DictConfig, pipeline: Pipeline, parts: Path, *, chunks: bool,
                planned: dict[str, int] | None = None) -> tuple[Prepared, int, dict[str, Any]]:
    """Streaming execution from the first step: the run-scope steps on threads, the personas' rows as they arrive;
    with ``chunks`` every persona chunk is made and written (one unsharded run), else only the run-once work.
    Returns the run-once state, the LM calls made and the endpoints' report."""
    from persona_gen.pipeline.stream import stream

    prep = _new_prepared(cfg, pipeline)

    def prepared(p: Prepared) -> None:
        _complete(p, plots=False)
        _write_global_tables(p, parts)

    made, endpoints = stream(prep, parts, None if chunks else [], **_chunk_streaming(cfg, pipeline, parts),
                             global_stats=prep.stats, run_once=True, prepared=prepared, planned=planned)
    # Drawn once the LM calls are done: matplotlib holds the interpreter (and so every endpoint's next call).
    _draw_plots(prep)
    _write_global_plots(prep, parts)
    return prep, made, endpoints


def _chunk_streaming(cfg: DictConfig, pipeline: Pipeline, parts: Path) -> dict[str, Any]:
    """How a stream makes persona chunks: its writer (into ``parts``), the chunks open at once, their size."""

    def write(chunk: Any, results: Any) -> None:
        _write_chunk(pipeline, parts, chunk.index, chunk.persona_rows, chunk.pair_rows, results, chunk.stats)

    return {"write_chunk": write, "chunks_in_flight": int(cfg.scale.get("chunks_in_flight", 3) or 3),
            "chunk_size": _chunk_size(cfg)}


def _merge_info(info: dict[str, Any], more: dict[str, Any]) -> None:
    """Steps' card and manifest facts; a mapping two steps contribute to (``census``) is merged, not replaced."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(info.get(key), dict):
            info[key] = {**info[key], **value}
        else:
            info[key] = value


def _chunk_size(cfg: DictConfig) -> int:
    return int(cfg.scale.get("chunk_personas", 32) or 32)


def _chunks(num_personas: int, size: int) -> list[tuple[int, int, int]]:
    return [(i, lo, min(lo + size, num_personas)) for i, lo in enumerate(range(0, num_personas, size))]


def _shard_of(chunks: list[tuple[int, int, int]], index: int, count: int) -> list[tuple[int, int, int]]:
    """Contiguous ranges of persona chunks: shard ``index`` of ``count``."""
    per, extra = divmod(len(chunks), count)
    lo = index * per + min(index, extra)
    return chunks[lo: lo + per + (1 if index < extra else 0)]


def run_key(cfg: DictConfig) -> str:
    """What determines a run's rows: the config hash and both models' identities (weights revision included)."""
    idents = [build_lm(cfg.models[role], role=role).identity for role in ("generator", "judge")]
    return hashlib.sha256(canonical_json([config_hash(cfg), idents]).encode()).hexdigest()[:20]


def parts_dir_for(cfg: DictConfig) -> Path:
    """Where finished persona chunks go: ``shard.parts_dir`` if set, else beside the cache, keyed by ``run_key``.

    Parts are results like cache entries: a rerun, a resumed run and every shard of one config find the chunks
    already finished and skip them. With the cache disabled they stay in the run's own directory.
    """
    shard = cfg.get("shard") or {}
    if shard.get("parts_dir"):
        return Path(shard["parts_dir"])
    if not cfg.cache.get("enabled", True):
        return Path(cfg.paths.output_dir) / "parts"
    return Path(cfg.cache.dir) / "parts" / run_key(cfg)


def _check_parts_dir(cfg: DictConfig, parts: Path) -> None:
    """Refuse a parts dir that holds another config's chunks: they would be skipped as done and mixed in."""
    info_path = parts / "global" / "info.json"
    if not info_path.exists():
        return
    info = json.loads(info_path.read_text())
    mine = json.loads(json.dumps({"config_hash": config_hash(cfg), **{
        role: build_lm(cfg.models[role], role=role).identity for role in ("generator", "judge")}}, default=str))
    theirs = {key: info.get(key) for key in mine}
    if theirs != mine:
        differ = [key for key in mine if theirs[key] != mine[key]]
        raise PersonaGenError(format_error(
            f"shard.parts_dir {parts}", expected="empty, or holding the parts of this config and these models",
            got=f"parts made with another {' and '.join(differ)} ({info_path})", where="shard.parts_dir",
            fix="use a fresh folder for each config, or leave shard.parts_dir unset (the default is keyed by both)"))


def _write_frame(path: Path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), sink,
                   compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes(), error=PublishError)


def _run_chunk(prep: Prepared, index: int, lo: int, hi: int, parts: Path) -> int:
    """Barrier execution of one chunk: each persona/pair step over all its rows, in order, then the parts.

    Returns the LM calls made (0 when an earlier run or another shard already finished the chunk).
    """
    if chunk_done(prep, parts, index):
        return 0  # done (checksums match) by an earlier, interrupted run or by another shard
    personas = prep.personas[lo:hi]
    stats: dict[str, CallStats] = {}
    ctx = StepContext(cfg=prep.cfg, runtime=prep.runtime, out_dir=prep.out_dir, stats=stats)
    persona_rows = [Row(p.persona_id, {}, persona=p) for p in personas]
    pair_rows = [Row(a.feedback_id, {}, persona=p, question=a.question, pair=a)
                 for p in personas for a in prep.pairs_of.get(p.persona_id, [])]
    local: dict[str, dict[str, RowResult]] = {}
    results = _Results(prep, local)
    for step in prep.pipeline.row_steps("persona", "pair"):
        local[step.name] = _run_row_step(step, persona_rows if step.scope == "persona" else pair_rows, results, ctx)
    _write_chunk(prep.pipeline, parts, index, persona_rows, pair_rows, results, stats)
    return sum(s.calls for s in stats.values())


def _planned_calls(pipeline: Pipeline, prep: Prepared, lo: int, hi: int) -> int:
    """Answers the persona- and pair-scope steps of personas [lo, hi) ask for, if no input fails."""
    from persona_gen.pipeline.stream import calls_per_row

    return sum(step_rows(step, prep, lo, hi) * sum(calls_per_row(step).values())
               for step in pipeline.row_steps("persona", "pair"))


def step_rows(step: Step, prep: Prepared, lo: int, hi: int) -> int:
    """Rows a persona- or pair-scope step runs on for personas [lo, hi) (the first ``max_rows_per_persona``
    pairs of each persona)."""
    personas = prep.personas[lo:hi]
    if step.scope == "persona":
        return len(personas)
    limit = step.max_rows_per_persona
    per = (len(prep.pairs_of.get(p.persona_id, [])) for p in personas)
    return sum(n if limit is None else min(n, limit) for n in per)


def chunk_tables(pipeline: Pipeline) -> list[str]:
    """The tables each chunk writes a part of: row tables and records of persona/pair steps."""
    return [t.name for t in pipeline.tables.values() if t.rows in ("persona", "pair") or (
        t.source is not None and pipeline.steps[t.source.source].scope in ("persona", "pair"))]


def chunk_done(prep: Prepared, parts: Path, index: int) -> bool:
    """Whether chunk ``index`` is finished and intact (its marker's checksums match), and needs no retry."""
    clients = [prep.runtime.client(role) for role in prep.pipeline.roles()]
    return part_status(parts, index, retry_failures=retry_wanted(prep.runtime.cache, *clients)) is None


def _write_chunk(pipeline: Pipeline, parts: Path, index: int, persona_rows: list[Row], pair_rows: list[Row],
                 results: Any, stats: dict[str, CallStats]) -> None:
    """A finished chunk's tables as parts; the marker (stats and checksums), written last, marks it complete."""
    name = f"part-{index:06d}"
    for table in pipeline.tables.values():
        if table.rows in ("persona", "pair"):
            rows = persona_rows if table.rows == "persona" else pair_rows
            _write_frame(parts / table.name / f"{name}.parquet", _rows_frame(table, rows, results))
        elif table.source is not None and pipeline.steps[table.source.source].scope in ("persona", "pair"):
            step = pipeline.steps[table.source.source]
            recs = []
            for row in persona_rows if step.scope == "persona" else pair_rows:
                res = results.row_result(step, row)
                recs += list(res.records) if res is not None else []
            _write_frame(parts / table.name / f"{name}.parquet", step.records_frame(recs))
    write_part_marker(parts, index, {k: v.as_dict() for k, v in sorted(stats.items())}, chunk_tables(pipeline))


def _rows_frame(table: TableSpec, rows: list[Row], results: _Results) -> pd.DataFrame:
    """One row per entity: each column's reference ("" where its step failed or skipped the row), then failures."""
    pipeline = results.pipeline
    types = {col: _ref_type(ref, pipeline) for col, ref in table.columns}
    out = []
    for row in rows:
        record: dict[str, Any] = {}
        for col, ref in table.columns:
            ok, value = results.value(ref, row)
            record[col] = _cell(value) if ok else ("" if types[col] is str else None)
        if table.failures:
            failures = []
            for step_name in table.failures:
                res = results.row_result(results.pipeline.steps[step_name], row)
                if res is not None and res.failure is not None:
                    failures.append(res.failure.model_dump(mode="json"))
            record["failures"] = json.dumps(failures, sort_keys=True, ensure_ascii=False)
            record["failure_count"] = len(failures)
        out.append(record)
    columns = [c for c, _ in table.columns] + (["failures", "failure_count"] if table.failures else [])
    frame = pd.DataFrame(out, columns=columns)
    for col, kind in types.items():
        # Nullable dtypes: a failed row's null must not turn an integer column into floats, nor differ by chunk.
        if kind is int:
            frame[col] = frame[col].astype("Int64")
        elif kind is float:
            frame[col] = frame[col].astype("Float64")
        elif kind is bool and frame[col].isna().any():
            frame[col] = frame[col].astype("boolean")
    return frame


def _ref_type(ref: Ref, pipeline: Pipeline) -> Any:
    if ref.source == "pair" and ref.field == "seen":
        return bool
    if ref.source in ENTITIES or ref.source == "model":
        return str
    return pipeline.steps[ref.source].output_type(ref.field)


def _cell(value: Any) -> Any:
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


_Task = TypeVar("_Task", bound=Callable[[DictConfig], Any])


def _no_partial_output(task: _Task) -> _Task:
    """On failure, remove what ``task`` added to the run dir; Hydra's ``.hydra/`` and log, and what was there before,
    stay.

    The fidelity report and plots land in the run dir before the dataset is published; a run that fails later
    must not leave them looking like a half-finished result. The dataset folder is swapped in only when
    complete (``publish_folder``), so it is kept: after a failed upload it is what a rerun uploads.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        out_dir = Path(cfg.paths.output_dir)
        before = set(out_dir.iterdir()) if out_dir.is_dir() else set()
        try:
            return task(cfg)
        except BaseException:
            # The manifest is written before the upload: after a failed upload it describes the folder to retry.
            added = (set(out_dir.iterdir()) if out_dir.is_dir() else set()) - before - {out_dir / "dataset",
                                                                                         out_dir / "manifest.json"}
            for path in added:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise

    return cast(_Task, wrapper)


def check(cfg: DictConfig) -> Pipeline:
    """Everything that can be checked before any work: the config's values and the whole step graph."""
    validate(cfg)
    return Pipeline.from_config(cfg)


@_no_partial_output
def run(cfg: DictConfig) -> RunResult | ShardResult:
    """Run every stage; with ``shard.count`` > 1 only this shard's persona chunks, to be merged later."""
    # No full garbage collection during the run (from the steps, the stream and publishing, which keep what they
    # make): see persona_gen.core.runtime.full_collections_paused.
    with full_collections_paused():
        return _run(cfg)


def _run(cfg: DictConfig) -> RunResult | ShardResult:
    from persona_gen.publish.hub import check_publish_config
    pipeline = check(cfg)
    shard = cfg.get("shard") or {}
    index, count = int(shard.get("index", 0)), int(shard.get("count", 1))
    if count == 1:
        check_publish_config(cfg.publish, models=cfg.models)  # a missing repo id or token must not wait for the LM
    parts = parts_dir_for(cfg)
    _check_parts_dir(cfg, parts)
    check_endpoints({role: cfg.models[role] for role in pipeline.roles()})  # a dead server fails in seconds
    streaming = str(cfg.get("execution", "stream")) == "stream"
    planned = _plan_progress(cfg)
    endpoints: dict[str, Any] = {}
    if count == 1 and streaming:
        # One stream from the first step: no step waits for a step it does not read.
        prep, lm_calls, endpoints = _stream_all(cfg, pipeline, parts, chunks=True, planned=planned)
        _write_info(prep, parts)
        prep.runtime.close()
        return publish_parts(cfg, parts, lm_calls=lm_calls, endpoints=endpoints)
    if count > 1:
        # Global work once, whatever the number of shards: the first takes the lock, the others read its result.
        prep, _ = prepare_once(cfg, pipeline, parts)
    else:
        prep = _prepare(cfg, pipeline, question_steps=not streaming)
        _write_global_tables(prep, parts)
    mine = _shard_of(_chunks(len(prep.personas), _chunk_size(cfg)), index, count)
    lm_calls = sum(v.calls for v in prep.stats.values())
    if streaming:
        from persona_gen.pipeline.stream import stream

        made, endpoints = stream(prep, parts, mine, **_chunk_streaming(cfg, pipeline, parts),
                                 global_stats=prep.stats)
        lm_calls += made
    else:
        all_chunks = _chunks(len(prep.personas), _chunk_size(cfg))
        reporter = progress.current()  # the overall bar's total: answers so far + what the chunks will ask
        reporter.plan(reporter.answered + sum(_planned_calls(pipeline, prep, lo, hi) for _, lo, hi in mine))
        for chunk in mine:
            reporter.set_context(f"chunk {chunk[0] + 1}/{len(all_chunks)}")
            lm_calls += _run_chunk(prep, *chunk, parts)
        reporter.set_context("")
    if count == 1:
        # Written once the run-once work (run- and question-scope steps) is complete.
        _write_info(prep, parts)
    prep.runtime.close()
    if count > 1:
        return ShardResult(index, count, parts, [c[0] for c in mine], lm_calls)
    return publish_parts(cfg, parts, lm_calls=lm_calls, endpoints=endpoints)


def _plan_progress(cfg: DictConfig) -> dict[str, int]:
    """Give the overall progress bar its total before the first step: the calls task=plan expects (no LM call).
    Returns the estimate per stage; the streaming runner refines it once the run-once steps know the real counts."""
    try:
        from persona_gen.pipeline.plan import plan_run

        by_stage = {str(k): int(v) for k, v in plan_run(cfg).calls_by_stage().items()}
    except Exception:  # an estimate only: never a reason to stop a run
        log.debug("no plan for the progress bar", exc_info=True)
        return {}
    progress.current().plan(sum(by_stage.values()))
    return by_stage


def _write_global_tables(prep: Prepared, parts: Path) -> None:
    for name, frame in prep.tables.items():
        _write_frame(parts / "global" / f"{name}.parquet", frame)
    _write_global_plots(prep, parts)


def _write_global_plots(prep: Prepared, parts: Path) -> None:
    for name, plot in prep.plots:
        atomic_write_bytes(parts / "global" / "plots" / name, plot.read_bytes(), error=PublishError)


def _write_info(prep: Prepared, parts: Path) -> None:
    info = RunInfo(**{**prep.global_info, "global_stats": {k: v.as_dict() for k, v in sorted(prep.stats.items())}})
    atomic_write_text(parts / "global" / "info.json", to_json(info.model_dump(mode="json")), error=PublishError)


def read_info(parts: Path) -> dict[str, Any]:
    """``global/info.json`` checked against its record (``RunInfo``), as the dict the card context reads."""
    return RunInfo.model_validate(json.loads((parts / "global" / "info.json").read_text())).model_dump(mode="json")


def prepare_once(cfg: DictConfig, pipeline: Pipeline, parts: Path) -> tuple[Prepared, bool]:
    """The run-once work (run- and question-scope steps), made once per parts dir (``persona_gen.pipeline.once``):
    returns it, and whether this process made it (else it was read from ``global/state.json``)."""
    from persona_gen.pipeline.once import load_state, once, write_state

    streaming = str(cfg.get("execution", "stream")) == "stream"

    def make() -> Prepared:
        if streaming:
            prep, _, _ = _stream_all(cfg, pipeline, parts, chunks=False)
        else:
            prep = _prepare(cfg, pipeline)
            _write_global_tables(prep, parts)
        _write_info(prep, parts)
        write_state(prep, parts)  # last: its presence says the run-once work is complete
        return prep

    def load() -> Prepared:
        state = load_state(parts)
        outputs: dict[str, dict[str, Any]] = {}
        for ref, value in state["run_refs"].items():
            step, _, name = ref.partition(".")
            outputs.setdefault(step, {})[name] = value
        info = read_info(parts)
        return Prepared(cfg, pipeline, Path(cfg.paths.output_dir), Runtime(cfg), outputs, state["personas"],
                        state["pairs"], state["question_results"], info, {}, [], {})

    return once(parts, make, load)


def prepare(cfg: DictConfig) -> PrepareResult:
    """``task=prepare``: the run-once work of a config in ``shard.parts_dir``, before the shards start."""
    pipeline = check(cfg)
    parts = parts_dir_for(cfg)
    _check_parts_dir(cfg, parts)
    check_endpoints({role: cfg.models[role] for role in pipeline.roles()})
    prep, made = prepare_once(cfg, pipeline, parts)
    prep.runtime.close()
    return PrepareResult(parts, made, sum(v.calls for v in prep.stats.values()), len(prep.personas), len(prep.pairs))


@dataclass
class PrepareResult:
    parts_dir: Path
    made: bool
    lm_calls: int
    personas: int
    pairs: int

    def summary_lines(self) -> list[str]:
        what = "made" if self.made else "already there"
        return [f"run-once work {what}: {self.personas} personas, {self.pairs} pairs, LM calls: {self.lm_calls}",
                f"parts dir: {self.parts_dir}",
                "next: the shards (persona-gen shard.index=<i> shard.count=<n> with the same parts dir and "
                "content overrides), then persona-gen task=merge"]


@dataclass
class ShardResult:
    index: int
    count: int
    parts_dir: Path
    chunks: list[int]
    lm_calls: int = 0

    def summary_lines(self) -> list[str]:
        return [f"shard {self.index} of {self.count}: persona chunks {self.chunks} written to {self.parts_dir} "
                f"(LM calls: {self.lm_calls})",
                f"merge with: persona-gen task=merge shard.count={self.count} shard.parts_dir={self.parts_dir}"]


@_no_partial_output
def merge(cfg: DictConfig) -> RunResult:
    """``task=merge``: publish the dataset from the parts all shards wrote (same bytes as one unsharded run)."""
    from persona_gen.publish.hub import check_publish_config

    check(cfg)
    check_publish_config(cfg.publish, models=cfg.models)
    return publish_parts(cfg, parts_dir_for(cfg))


def publish_parts(cfg: DictConfig, parts: Path, *, lm_calls: int = 0,
                  endpoints: dict[str, Any] | None = None) -> RunResult:
    """Publish the dataset from finished parts; ``lm_calls`` is what this process spent making them."""
    from persona_gen.publish.hub import publish_folder, retry_command, upload_published
    from persona_gen.publish.reproduce import reproduction_files
    info_path = parts / "global" / "info.json"
    if not info_path.exists():
        raise parts_not_found(parts, config_hash(cfg))
    info = read_info(parts)
    chunks = _chunks(int(info["num_personas"]), int(info["chunk_personas"]))
    missing = [i for i, _, _ in chunks if not (parts / "stats" / f"part-{i:06d}.json").exists()]
    if missing:
        raise PersonaGenError(format_error(
            "persona chunks", expected=f"all {len(chunks)} present", got=f"missing {missing[:10]}",
            where=str(parts), fix="rerun the shards that wrote them (finished chunks are skipped)"))
    count = int((cfg.get("shard") or {}).get("count", 1))
    check_parts(parts, [i for i, _, _ in chunks], shard_count=count, shard_of={
        c[0]: k for k in range(count) for c in _shard_of(chunks, k, count)})
    stats = {k: CallStats.from_dict(v) for k, v in info["global_stats"].items()}
    for i, _, _ in chunks:
        for k, v in read_part_stats(parts, i).items():
            stats.setdefault(k, CallStats()).merge(CallStats.from_dict(v))
    _check_failure_rate(stats, float(cfg.max_failure_rate), parts)
    pipeline = Pipeline.from_config(cfg)
    out_dir = Path(cfg.paths.output_dir)
    plots = [parts / "global" / "plots" / p.name for p in sorted((parts / "global" / "plots").glob("*.png"))] \
        if (parts / "global" / "plots").is_dir() else []
    tables: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, int]] = {}
    failed_rows = 0
    judge_context: dict[str, Any] = {}
    derived: dict[str, str] = {}
    for table in pipeline.tables.values():
        files = [parts / table.name / f"part-{i:06d}.parquet" for i, _, _ in chunks]
        if table.derived_from is not None:
            derived[table.name] = table.derived_from
            continue
        if table.rows is not None:
            split_col = next((c for c, ref in table.columns if ref == table.split), None)
            counts: Counter[str] = Counter()
            for path in files:
                cols = [c for c in (split_col, "failure_count" if table.failures else None) if c]
                frame = pd.read_parquet(path, columns=cols) if cols else pd.read_parquet(path)
                if table.failures:
                    failed_rows += int((frame["failure_count"] > 0).sum()) if table.name == "feedback" else 0
                if split_col:
                    counts.update({str(k): int(v) for k, v in frame[split_col].value_counts().items()})
                else:
                    counts["train"] += len(frame)
            splits = _split_order(counts)
            tables[table.name] = {split: _split_frames(files, split_col, split) for split in splits}
            rows[table.name] = {split: counts[split] for split in splits}
            continue
        step = pipeline.steps[table.source.source]
        if step.scope == "run":
            path = parts / "global" / f"{table.name}.parquet"
            if not path.exists():
                continue  # the step made nothing to publish (no extra candidate generator configured)
            frame = pd.read_parquet(path)
        else:
            frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
            if hasattr(step, "merge_frame"):
                frame = step.merge_frame(frame)
            if hasattr(step, "card_context"):
                judge_context = step.card_context(frame, out_dir / "plots")
                plots += judge_context.pop("plots", [])
        tables[table.name] = {"train": frame}
        rows[table.name] = {"train": len(frame)}
    for name, base in derived.items():
        fmt = TABLE_FORMATS[pipeline.tables[name].format]
        base_table = pipeline.tables[base]
        split_col = next((c for c, ref in base_table.columns if ref == base_table.split), None)
        files = [parts / base / f"part-{i:06d}.parquet" for i, _, _ in chunks]
        tables[name] = {split: fmt(_split_frames(files, split_col, split)) for split in tables.get(base, {})}
    sig_hashes = {name: signature_hash(sig) for name, sig in pipeline.signatures().items()}
    context = {
        **{k: info[k] for k in ("seed", "config_hash", "generator_model", "judge_model", "embedded_model", "census",
                                "enrich", "filter_counts", "min_words", "fidelity") if k in info},
        "signature_hashes": sig_hashes, "judge_variants": ", ".join(info.get("judge_variants") or []),
        "judge_scorecard": judge_context.get("scorecard", []),
        "agreement": judge_context.get("agreement") or "not computed",
        "steps": info["steps"], "inputs": [{"name": n, "license": lic} for n, lic in info["inputs"]],
        "config_descriptions": {t.name: t.description for t in pipeline.tables.values() if t.description},
        # Answers per stage, not calls vs cache hits: a warm rerun must render the same card byte for byte.
        "stage_stats": {k: {"answers": v.calls + v.cache_hits, "failures": v.failures,
                            "failures_by_kind": dict(sorted(v.by_kind.items())) or "none"}
                        for k, v in sorted(stats.items())},
    }
    bench_dir = cfg.publish.get("bench_dir")
    if bench_dir:
        bench_dir = Path(bench_dir) / "bench" if (Path(bench_dir) / "bench").is_dir() else Path(bench_dir)
        if not (bench_dir / "scores.json").is_file():
            raise PersonaGenError(format_error("publish.bench_dir", expected="a folder with scores.json (task=bench)",
                                               got=str(bench_dir), where="conf/publish/",
                                               fix="run persona-gen task=bench first, or set publish.bench_dir=null"))
        context["bench_scores"] = json.loads((bench_dir / "scores.json").read_text())
        if (bench_dir / "rows.parquet").is_file():
            tables["bench"] = {"train": pd.read_parquet(bench_dir / "rows.parquet")}
        plots += sorted(bench_dir.glob("*.png"))
    published = publish_folder(tables, out_dir / "dataset", context=context, plots=plots, publish_cfg=cfg.publish,
                               extra_files=reproduction_files(cfg), upload=False)
    for name in derived:
        rows[name] = {k: v.rows for k, v in published.splits.get(name, {}).items() if v.rows}
    if "bench" in tables:
        rows["bench"] = {"train": len(tables["bench"]["train"])}
    manifest = {
        "seed": info["seed"], "config_hash": info["config_hash"], "content_hash": published.content_hash,
        "rows": rows, "lm_calls": lm_calls, "lm_calls_to_make_parts": sum(s.calls for s in stats.values()),
        "stages": {k: v.as_dict() for k, v in sorted(stats.items())},
        "failures": {k: v.failures for k, v in sorted(stats.items())},
        # Recorded failures this run called again (cache.retry_failures), and those it served from the cache.
        "failures_retried": sum(v.retried for v in stats.values()),
        "failures_from_cache": sum(v.failures_from_cache for v in stats.values()),
        "feedback_rows_with_failures": failed_rows, "enrich": info.get("enrich"),
        **({"dpo_rows_left_out": sum(rows.get("feedback", {}).values()) - sum(rows["dpo"].values())}
           if "dpo" in rows else {}),
        **({"upload_command": retry_command(published.folder, cfg.publish)} if published.pending_upload else {}),
        "question_filters": info.get("filter_counts"), "judge_scorecard": judge_context.get("scorecard", []),
        "judge_agreement": judge_context.get("agreement", {}), "steps": info["steps"],
        "models": {"generator": info["generator"], "judge": info["judge"]},
        "signature_hashes": sig_hashes, "fidelity": info.get("fidelity"), "parts_dir": str(parts),
        "population": (info.get("census") or {}).get("population"),
        "psychodemographics": (info.get("census") or {}).get("psychodemographics"),
        "dataset_dir": str(published.folder), "uploaded": published.uploaded,
        # What each model endpoint sustained in this process (streaming execution): calls/s, in flight, retries.
        "endpoints": endpoints or {},
        **progress.current().manifest_fields(),  # timings and package versions (persona_gen.core.progress)
    }
    manifest_path = out_dir / "manifest.json"
    atomic_write_text(manifest_path, to_json(manifest))
    if published.pending_upload:  # the manifest first: after a failed upload it says what to retry
        published = upload_published(published, cfg.publish)
        manifest["uploaded"] = published.uploaded
        atomic_write_text(manifest_path, to_json(manifest))
    published_plots = [published.folder / "plots" / p.name for p in plots]
    return RunResult(out_dir, published.folder, published.card_path, manifest_path, published_plots,
                     published.content_hash, lm_calls, manifest)


_KNOWN_SPLITS = ("train", "test", "validation")


def _dpo(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    from persona_gen.publish.dpo import dpo_batches

    return dpo_batches(batches)


# Formats of derived tables (`{of: <table>, format: <name>}`): each maps the base table's batches of one split.
TABLE_FORMATS: dict[str, Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]] = {"dpo": _dpo}


def _split_order(counts: Counter[str]) -> list[str]:
    known = [s for s in _KNOWN_SPLITS if counts.get(s)]
    return known + sorted(s for s in counts if s not in _KNOWN_SPLITS and counts[s])


def _split_frames(files: list[Path], split_col: str | None, split: str) -> Iterator[pd.DataFrame]:
    """One split of a row table, streamed part by part (bounded memory at paper scale)."""
    for path in files:
        frame = pd.read_parquet(path)
        yield frame[frame[split_col] == split].reset_index(drop=True) if split_col else frame
