"""Rows stream through the steps: a row's next step starts as soon as its inputs exist.

Every (step, row) of the question-, persona- and pair-scope steps is a task. A task waits for the results its
references name (the row's answer, its critique, ...); the moment the last one arrives it asks for its LM calls,
which join the endpoint of their model role (``persona_gen.core.scheduler``): the generator answers critiques of
one chunk while the judge judges another, and no step waits for a whole step or chunk to finish. A task whose
inputs failed is skipped (the failure is recorded once, where it happened).

Run-scope steps run here too, each on a thread of its own the moment the run steps it reads are done: the census
draw beside the question filter, the fidelity report beside the rows. Their LM calls join the same endpoints
(``ScheduledCaller``), served before the rows' (everything downstream waits for them). The personas stream out
of enrichment (``StepContext.emit``): once a persona's place is final and the questions are known, its pairs are
drawn (the pairs step's ``persona_part``) and its rows start, while other candidates are still being checked.

Chunks of personas are admitted a few at a time (``scale.chunks_in_flight``) to bound memory; a chunk whose tasks
are all done is written at once (its parts, then its stats file, which marks it complete) and forgotten. The
rows, their order and their values are those of the barrier execution: same cache keys, same bytes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_gen.core import progress
from persona_gen.core.calls import CallResult, CallStats
from persona_gen.core.runtime import full_collections_paused
from persona_gen.core.scheduler import FIRST_TIER, ROW_TIER, ScheduledCaller, Scheduler
from persona_gen.core.steps import Row, RowResult, Step, StepContext
from persona_gen.pipeline.runner import _chunks, _Results, chunk_done, run_inputs, step_rows

__all__ = ["SKIPPED", "calls_per_row", "stream"]

# A row a step did not run on, because an input failed or it is past max_rows_per_persona: no failure of its own.
SKIPPED = RowResult(None, None)
# A done run-scope step, as a dependency of a row.
_RUN_DONE = RowResult({})
# How long a stopped run waits for its run-scope steps' threads to end.
JOIN_S = 2.0


@dataclass(eq=False)
class _Task:
    step: Step
    row: Row
    chunk: _Chunk | None
    deps: list[tuple[Step, str]]
    waiting: int = 0


@dataclass(eq=False)
class _Chunk:
    index: int
    lo: int
    hi: int
    persona_rows: list[Row] = field(default_factory=list)
    pair_rows: list[Row] = field(default_factory=list)
    stats: dict[str, CallStats] = field(default_factory=dict)
    remaining: int = 0
    # The next persona (index) whose rows this chunk has not added yet: rows are added as personas arrive.
    next: int = 0


def calls_per_row(step: Step) -> dict[str, int]:
    """The LM calls one row of ``step`` asks for, by stage (a batch-only step counts one)."""
    calls = step.calls(Row("plan", {name: "" for name in step.inputs}))
    if calls is None:
        return {step.name: 1}
    out: dict[str, int] = {}
    for call in calls:
        out[call.stage] = out.get(call.stage, 0) + 1
    return out


def _dep_key(step: Step, row: Row) -> str:
    if step.scope == "run":
        return "*"
    if step.scope == "question":
        return row.question.question_id
    if step.scope == "persona":
        return row.persona.persona_id
    return row.pair.feedback_id


class _StepRuntime:
    """The runtime a run-scope step sees on its thread: the same clients and cache, callers through the scheduler."""

    def __init__(self, runtime: Any, scheduler: Scheduler, priority: int) -> None:
        self._runtime, self._scheduler, self._priority = runtime, scheduler, priority

    def caller(self, role: str, *, stats: dict[str, CallStats] | None = None, model_cfg: Any = None) -> Any:
        client = self._runtime.client(role, model_cfg)
        return ScheduledCaller(self._scheduler, role, client, self._runtime.cache, stats=stats,
                               priority=self._priority)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


class _Stream:
    def __init__(self, prep: Any, parts: Path, chunks: list[tuple[int, int, int]] | None, *, write_chunk: Callable,
                 chunks_in_flight: int, global_stats: dict[str, CallStats], chunk_size: int = 32,
                 run_once: bool = False, prepared: Callable[[Any], None] | None = None,
                 planned: dict[str, int] | None = None) -> None:
        self.prep = prep
        self.pipeline = prep.pipeline
        self.parts = parts
        self.write_chunk = write_chunk
        self.prepared = prepared
        self.scheduler = Scheduler(prep.runtime)
        self.ctx = StepContext(cfg=prep.cfg, runtime=prep.runtime, out_dir=prep.out_dir, stats=global_stats)
        self.global_stats = global_stats
        self.question_steps = self.pipeline.row_steps("question")
        self.chunk_steps = self.pipeline.row_steps("persona", "pair")
        row_steps = self.pipeline.row_steps("question", "persona", "pair")
        # Later steps first on every endpoint: a row that has begun is finished before new rows start, so the
        # judge gets work while the generator still critiques (a FIFO queue sent every critique before any revision).
        # Waiting calls (Scheduler.submit): run-scope steps above rows (every row waits for them), the first
        # persona's calls above those; rows by persona (earlier personas first: the judge gets work early and
        # steadily), then later steps first (a row that has begun is finished before new rows start).
        self.priority = {s.name: i for i, s in enumerate(row_steps)}
        run_steps = self.pipeline.run_steps()
        self.priority.update({s.name: i for i, s in enumerate(run_steps)})
        # A step whose answers unlock no call on its own endpoint (the judge, the revision) may hand its slot on the
        # moment its answer is in (Scheduler.submit's hand_on). The others' slots are refilled by the scheduling
        # thread, after the answers before them were handled: a critique handing its slot on before its revision
        # was queued swung the generator's rounds between all critiques and all revisions (bench/RESULTS.md [10]).
        self.hand_on = {s.name: not self.pipeline.feeds_own_role(s.name) for s in row_steps}
        self.rank: dict[str, int] = {}  # persona id, or question id -> the persona index its rows are served by
        self.local: dict[str, dict[str, RowResult]] = {s.name: {} for s in self.chunk_steps}
        # What a row's references read (entities, run outputs, question and chunk results): the runner's resolver
        # over the same tables; the chunk writer reads it too.
        self.results = _Results(prep, self.local)
        self.waiters: dict[tuple[str, str], list[_Task]] = {}
        self.ready: deque[_Task] = deque()
        # Run-scope steps to make here (none when the run-once work is done: made before, or read by a shard).
        self.run_todo = {s.name: s for s in run_steps} if run_once else {}
        self.run_running: set[str] = set()
        self.threads: list[threading.Thread] = []
        self.personas_step = self.pipeline.personas.source
        self.pairs_step = self.pipeline.steps[self.pipeline.pairs.source]
        self.personas_total: int | None = None if self.personas_step in self.run_todo else len(prep.personas)
        self.paired = 0  # personas (a prefix of prep.personas) whose pairs are known
        self.streamed_pairs: list[Any] = []  # pairs drawn persona by persona (checked against the step's output)
        self.questions_seen: set[str] = set()
        self.explicit = chunks is not None
        self.todo = deque(c for c in chunks or () if not chunk_done(prep, parts, c[0]))
        self.chunk_size = max(1, int(chunk_size))
        self.next_chunk = 0
        self.open_chunks: list[_Chunk] = []
        self.chunks_in_flight = max(1, chunks_in_flight)
        self.questions_left = 0
        self.finalized = not self.run_todo
        self.reporter = progress.current()
        self.row_answers = 0
        # The reporter's per-stage plan: every call of every row task, if no input fails (a skipped row asks for
        # none); from the run-once work when it is done, else the estimate given (task=plan's).
        self.labels: dict[str, str] = {}
        for step in row_steps:
            for call in step.calls(Row("plan", {name: "" for name in step.inputs})) or ():
                self.labels.setdefault(call.stage, call.desc or call.stage)
        self.planned: dict[str, int] = ({k: v for k, v in (planned or {}).items() if k in self.labels}
                                        if self.run_todo else self._exact_plan())

    def _exact_plan(self) -> dict[str, int]:
        prep = self.prep
        questions = len({a.question.question_id for a in prep.pairs})
        planned: dict[str, int] = {}
        for step in self.question_steps:
            done = len(prep.question_results.get(step.name, {}))  # read from the shared run-once state
            for stage, n in calls_per_row(step).items():
                planned[stage] = planned.get(stage, 0) + n * (questions - done)
        chunks = list(self.todo) if self.explicit else [
            c for c in _chunks(len(prep.personas), self.chunk_size) if not chunk_done(prep, self.parts, c[0])]
        for _, lo, hi in chunks:
            for step in self.chunk_steps:
                rows = step_rows(step, prep, lo, hi)
                for stage, n in calls_per_row(step).items():
                    planned[stage] = planned.get(stage, 0) + n * rows
        return planned

    # -- results --------------------------------------------------------------------------------------------------

    def result(self, step: Step, key: str) -> RowResult | None:
        if step.scope == "run":
            return _RUN_DONE if step.name in self.prep.outputs else None
        if step.scope == "question":
            return self.prep.question_results[step.name].get(key)
        return self.local[step.name].get(key)

    def _release(self, name: str, key: str) -> None:
        for waiter in self.waiters.pop((name, key), ()):
            waiter.waiting -= 1
            if waiter.waiting == 0:
                self.ready.append(waiter)

    def _set(self, task: _Task, result: RowResult) -> None:
        step, key = task.step, task.row.key
        if step.scope == "question":
            self.prep.question_results[step.name][key] = result
            self.questions_left -= 1
        else:
            self.local[step.name][key] = result
        self._release(step.name, key)
        chunk = task.chunk
        if chunk is not None:
            chunk.remaining -= 1
            self._maybe_close(chunk)

    # -- run-scope steps, on threads of their own -----------------------------------------------------------------

    def _run_deps(self, step: Step) -> list[str]:
        return [d.name for d in self._deps(step) if d.scope == "run"]

    def _start_run_steps(self) -> None:
        for name, step in list(self.run_todo.items()):
            if name in self.run_running or any(d not in self.prep.outputs for d in self._run_deps(step)):
                continue
            self._start_run(step)

    def _start_run(self, step: Step) -> None:
        runtime = self.prep.runtime
        inputs = run_inputs(self.prep, step.inputs)
        post = self.scheduler.post

        def emit(output: str, index: int, item: Any) -> None:
            post(lambda: self._emitted(step, output, index, item))

        ctx = StepContext(cfg=self.prep.cfg, runtime=_StepRuntime(runtime, self.scheduler, self.priority[step.name]),
                          out_dir=self.prep.out_dir, stats=self.global_stats, emit=emit)
        self.run_running.add(step.name)
        self._on_thread(step.name, lambda: dict(step.run_once(ctx, inputs)), lambda out: self._run_done(step, out))

    def _run_done(self, step: Step, out: dict[str, Any]) -> None:
        self.run_running.discard(step.name)
        del self.run_todo[step.name]
        self.prep.outputs[step.name] = out
        if step.name == self.personas_step:
            personas = list(out[self.pipeline.personas.field])
            if personas[: len(self.prep.personas)] != self.prep.personas:
                raise RuntimeError(f"step {step.name!r}: the personas it emitted differ from the ones it returned")
            for persona in personas[len(self.prep.personas):]:  # a step that emits nothing: all of them now
                self.prep.personas.append(persona)
            self.personas_total = len(personas)
        if step is self.pairs_step:
            pairs = list(out[self.pipeline.pairs.field])
            if self.streamed_pairs and pairs[: len(self.streamed_pairs)] != self.streamed_pairs:
                raise RuntimeError(f"step {step.name!r}: the pairs drawn persona by persona differ from its output")
            self.prep.pairs = pairs
        self._release(step.name, "*")
        self._offer_pairs()
        for chunk in list(self.open_chunks):
            self._maybe_close(chunk)
        if not self.run_todo:
            self._finalize()
        self._start_run_steps()

    def _emitted(self, step: Step, output: str, index: int, item: Any) -> None:
        if f"{step.name}.{output}" != str(self.pipeline.personas):
            return  # nothing streams on other outputs yet: they are read when the step is done
        if index != len(self.prep.personas):
            raise RuntimeError(f"step {step.name!r} emitted persona {index} after {len(self.prep.personas)}")
        self.prep.personas.append(item)
        self._offer_pairs()

    def _offer_pairs(self) -> None:
        """Draw the pairs of the personas that arrived, as soon as the pairs step's other inputs are done."""
        prep, step = self.prep, self.pairs_step
        new = prep.personas[self.paired:]
        if not new:
            return
        if step.name in prep.outputs:
            known = {p.persona_id for p in new}
            for a in prep.pairs:
                if a.persona_id in known:
                    prep.pairs_of.setdefault(a.persona_id, []).append(a)
        else:
            part = getattr(step, "persona_part", None)
            others = {name: ref for name, ref in step.inputs.items() if ref != self.pipeline.personas}
            if part is None or any(r.source in self.pipeline.steps and r.source not in prep.outputs
                                   for r in others.values()):
                return  # the pairs come with the step's output
            inputs = run_inputs(prep, others)
            for persona in new:
                pairs = list(part(self.ctx, inputs, persona)[self.pipeline.pairs.field])
                prep.pairs_of[persona.persona_id] = pairs
                self.streamed_pairs += pairs
        self._paired(new)
        for chunk in self.open_chunks:
            self._fill(chunk)

    def _paired(self, personas: list[Any]) -> None:
        """These personas (the next ones) have their pairs: their questions' tasks, served with their rank."""
        for index, persona in enumerate(personas, start=self.paired):
            self.rank[persona.persona_id] = index
            self._new_questions(self.prep.pairs_of.get(persona.persona_id, []), index)
        self.paired += len(personas)

    def _finalize(self) -> None:
        """Every run-scope step is done: the run-once work is complete. Its card facts, plots and global tables
        (``prepared``) are made on a thread, beside the rows."""
        # The overall bar's total, now exact: what is answered, plus what the rows still ask for.
        exact = self._exact_plan()
        self.reporter.plan(self.reporter.answered + max(0, sum(exact.values()) - self.row_answers))
        if self.prepared is None:
            self.finalized = True
            return
        self._on_thread("prepared", lambda: self.prepared(self.prep), lambda _: setattr(self, "finalized", True))

    def _on_thread(self, name: str, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """``work()`` on a thread of its own; ``then(result)`` on the scheduling thread (an error stops the run)."""
        post = self.scheduler.post

        def target() -> None:
            try:
                out = work()
            except BaseException as exc:  # raised on the scheduling thread: the run stops with it
                error = exc

                def fail() -> None:
                    raise error
                post(fail)
                return

            def finish() -> None:
                self.scheduler.outside -= 1
                then(out)
            post(finish)

        self.scheduler.outside += 1
        thread = threading.Thread(target=target, name=f"step-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    # -- tasks ----------------------------------------------------------------------------------------------------

    def _deps(self, step: Step) -> list[Step]:
        names = [r.source for r in step.inputs.values() if r.source in self.pipeline.steps] + list(step.after)
        return [self.pipeline.steps[n] for n in dict.fromkeys(names)]

    def _add(self, step: Step, row: Row, chunk: _Chunk | None, deps: list[Step]) -> None:
        task = _Task(step, row, chunk, [(d, _dep_key(d, row)) for d in deps])
        for dep, key in task.deps:
            if self.result(dep, key) is None:
                task.waiting += 1
                self.waiters.setdefault((dep.name, key), []).append(task)
        if task.waiting == 0:
            self.ready.append(task)

    def _start(self, task: _Task) -> None:
        step, row = task.step, task.row
        if any(not (self.result(dep, key) or SKIPPED).ok for dep, key in task.deps):
            self._set(task, SKIPPED)
            return
        inputs = {}
        for name, ref in step.inputs.items():
            _, inputs[name] = self.results.value(ref, row)
        row = Row(row.key, inputs, row.persona, row.question, row.pair)
        stats = task.chunk.stats if task.chunk is not None else self.global_stats
        calls = step.calls(row)
        if calls is None:  # a step that runs batches only: a batch of one row
            ctx = StepContext(cfg=self.ctx.cfg, runtime=self.ctx.runtime, out_dir=self.ctx.out_dir, stats=stats)
            self._set(task, step.run_rows(ctx, [row]).get(row.key, SKIPPED))
            return
        if not calls:
            self._set(task, step.finish(self.ctx, row, []))
            return
        answers: list[CallResult | None] = [None] * len(calls)
        left = [len(calls)]

        def done(i: int, result: CallResult, key: str) -> None:
            answers[i] = result
            ids = None
            if result.failure is not None:  # what names the failed call in failures.jsonl
                ids = {"index": i, "cache_key": key[:16],
                       "persona_id": row.persona.persona_id if row.persona else None,
                       "question_id": row.question.question_id if row.question else None,
                       "pair_id": row.pair.feedback_id if row.pair else None}
            self.reporter.call_done(calls[i].stage, cached=result.cached, failure=result.failure, ids=ids)
            self.row_answers += 1
            left[0] -= 1
            if left[0] == 0:
                self._set(task, step.finish(self.ctx, row, answers))

        rank = self.rank.get(row.persona.persona_id if row.persona else row.question.question_id, 0)
        # The first persona's rows go with its enrichment, first of all: the judge can start no sooner.
        tier = FIRST_TIER if rank == 0 else ROW_TIER
        for i, call in enumerate(calls):
            self.scheduler.submit(call, lambda res, key, i=i: done(i, res, key), stats,
                                  priority=self.priority.get(step.name, 0), rank=rank, tier=tier,
                                  hand_on=self.hand_on.get(step.name, False))

    def _new_questions(self, pairs: list[Any], rank: int = 0) -> None:
        """Question-scope tasks for the questions these pairs use first (each question once), served with the
        rows of persona ``rank``."""
        for a in pairs:
            q = a.question
            if q.question_id in self.questions_seen:
                continue
            self.questions_seen.add(q.question_id)
            self.rank[q.question_id] = rank
            for step in self.question_steps:
                if q.question_id in self.prep.question_results[step.name]:
                    continue  # read from the shared run-once state
                self.questions_left += 1
                self._add(step, Row(q.question_id, {}, question=q), None, self._deps(step))

    # -- chunks ---------------------------------------------------------------------------------------------------

    def _next_spec(self) -> tuple[int, int, int] | None:
        """The next chunk to open, once its first persona's pairs are known."""
        if self.explicit:
            if self.todo and self.todo[0][1] < self.paired:
                return self.todo.popleft()
            return None
        while True:
            index = self.next_chunk
            lo = index * self.chunk_size
            if lo >= self.paired or (self.personas_total is not None and lo >= self.personas_total):
                return None
            self.next_chunk += 1
            hi = lo + self.chunk_size
            if self.personas_total is not None:
                hi = min(hi, self.personas_total)
            if not chunk_done(self.prep, self.parts, index):
                return index, lo, hi

    def _admit(self) -> None:
        while len(self.open_chunks) < self.chunks_in_flight:
            spec = self._next_spec()
            if spec is None:
                return
            index, lo, hi = spec
            chunk = _Chunk(index, lo, hi, next=lo)
            self.open_chunks.append(chunk)
            self._fill(chunk)

    def _fill(self, chunk: _Chunk) -> None:
        """Add the tasks of the chunk's personas whose pairs are known."""
        tasks: list[tuple[Step, Row, list[Step]]] = []
        skipped: list[tuple[Step, Row]] = []
        while chunk.next < min(chunk.hi, self.paired):
            persona = self.prep.personas[chunk.next]
            chunk.next += 1
            persona_rows = [Row(persona.persona_id, {}, persona=persona)]
            pair_rows = [Row(a.feedback_id, {}, persona=persona, question=a.question, pair=a)
                         for a in self.prep.pairs_of.get(persona.persona_id, [])]
            chunk.persona_rows += persona_rows
            chunk.pair_rows += pair_rows
            for step in self.chunk_steps:
                deps = self._deps(step)
                if step.scope == "persona":
                    tasks += [(step, r, deps) for r in persona_rows]
                    continue
                limit = step.max_rows_per_persona
                for n, r in enumerate(pair_rows, start=1):
                    if limit is not None and n > limit:
                        skipped.append((step, r))
                    else:
                        tasks.append((step, r, deps))
        chunk.remaining += len(tasks) + len(skipped)
        for step, r in skipped:
            self._set(_Task(step, r, chunk, []), SKIPPED)
        for step, r, deps in tasks:
            self._add(step, r, chunk, deps)
        self._maybe_close(chunk)

    def _maybe_close(self, chunk: _Chunk) -> None:
        if self.personas_total is not None:
            chunk.hi = min(chunk.hi, self.personas_total)
        if chunk.remaining == 0 and chunk.next >= chunk.hi and chunk in self.open_chunks:
            self._close(chunk)

    def _close(self, chunk: _Chunk) -> None:
        self.open_chunks.remove(chunk)
        self.write_chunk(chunk, self.results)
        for rows, scope in ((chunk.persona_rows, "persona"), (chunk.pair_rows, "pair")):
            for step in self.chunk_steps:
                if step.scope == scope:
                    for r in rows:
                        self.local[step.name].pop(r.key, None)

    # -- the loop -------------------------------------------------------------------------------------------------

    def _chunks_left(self) -> bool:
        if self.explicit:
            return bool(self.todo)
        return self.personas_total is None or self.next_chunk * self.chunk_size < self.personas_total

    def _poll(self) -> bool:
        self._admit()
        while self.ready:
            self._start(self.ready.popleft())
            if not self.ready:
                self._admit()
        return (self.finalized and not self._chunks_left() and not self.open_chunks and self.questions_left == 0
                and not self.ready)

    def run(self) -> None:
        for step in self.question_steps:
            self.prep.question_results.setdefault(step.name, {})
        self.reporter.plan(self.reporter.answered + sum(self.planned.values()))
        for stage, total in self.planned.items():
            self.reporter.step_started(stage, total, label=str(self.labels.get(stage, stage)))
        try:
            # No full garbage collection while the stream runs (they held the endpoints 0.1-0.4 s at a time).
            with full_collections_paused():
                self._start_run_steps()
                if not self.run_todo:  # the run-once work was read (shards): every persona and pair is known
                    self._paired(self.prep.personas)
                self.scheduler.run(self._poll)
        finally:
            self.report = self.scheduler.report()
            self.scheduler.close()
            # After an error or Ctrl-C: steps waiting for answers give up at once (RunAbortedError); give one still
            # computing a moment to end, so it does not write into a run dir that is being cleaned up.
            deadline = time.monotonic() + JOIN_S
            for thread in self.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            for stage in self.planned:
                self.reporter.step_finished(stage, retries=self.scheduler.retries_by_stage.get(stage, 0))
        if not self.explicit and self.personas_total is not None:
            # Every chunk is written: a persona that arrived must have been a chunk's (same count as the barrier).
            assert self.next_chunk * self.chunk_size >= self.personas_total


def stream(prep: Any, parts: Path, chunks: list[tuple[int, int, int]] | None, *, write_chunk: Callable,
           chunks_in_flight: int, global_stats: dict[str, CallStats], chunk_size: int = 32, run_once: bool = False,
           prepared: Callable[[Any], None] | None = None,
           planned: dict[str, int] | None = None) -> tuple[int, dict[str, Any]]:
    """Run every question-scope step and the row steps of ``chunks`` (None: every chunk of ``chunk_size`` personas,
    opened as its personas arrive); with ``run_once`` the run-scope steps too (``prep`` starts empty), and
    ``prepared(prep)`` once they are all done. Returns (LM calls made, endpoint report)."""
    runner = _Stream(prep, parts, chunks, write_chunk=write_chunk, chunks_in_flight=chunks_in_flight,
                     global_stats=global_stats, chunk_size=chunk_size, run_once=run_once, prepared=prepared,
                     planned=planned)
    runner.run()
    return sum(int(r.get("calls") or 0) for r in runner.report.values()), runner.report
