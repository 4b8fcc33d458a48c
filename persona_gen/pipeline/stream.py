"""Rows stream through the steps: a row's next step starts as soon as its inputs exist.

Every (step, row) of the question-, persona- and pair-scope steps is a task. A task waits for the results its
references name (the row's answer, its critique, ...); the moment the last one arrives it asks for its LM calls,
which join the endpoint of their model role (``persona_gen.core.scheduler``): the generator answers critiques of
one chunk while the judge judges another, and no step waits for a whole step or chunk to finish. A task whose
inputs failed is skipped (the failure is recorded once, where it happened).

Chunks of personas are admitted a few at a time (``scale.chunks_in_flight``) to bound memory; a chunk whose tasks
are all done is written at once (its parts, then its stats file, which marks it complete) and forgotten. The
rows, their order and their values are those of the barrier execution: same cache keys, same bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_gen.core import progress
from persona_gen.core.calls import CallResult, CallStats
from persona_gen.core.scheduler import Scheduler
from persona_gen.core.steps import Row, RowResult, Step, StepContext
from persona_gen.pipeline.runner import _Results, chunk_done, step_rows

__all__ = ["SKIPPED", "calls_per_row", "stream"]

# A row a step did not run on, because an input failed or it is past max_rows_per_persona: no failure of its own.
SKIPPED = RowResult(None, None)


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
    persona_rows: list[Row]
    pair_rows: list[Row]
    stats: dict[str, CallStats] = field(default_factory=dict)
    remaining: int = 0


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
    if step.scope == "question":
        return row.question.question_id
    if step.scope == "persona":
        return row.persona.persona_id
    return row.pair.feedback_id


class _Stream:
    def __init__(self, prep: Any, parts: Path, chunks: list[tuple[int, int, int]], *, write_chunk: Callable,
                 chunks_in_flight: int, global_stats: dict[str, CallStats]) -> None:
        self.prep = prep
        self.pipeline = prep.pipeline
        self.parts = parts
        self.write_chunk = write_chunk
        self.scheduler = Scheduler(prep.runtime)
        self.ctx = StepContext(cfg=prep.cfg, runtime=prep.runtime, out_dir=prep.out_dir, stats=global_stats)
        self.global_stats = global_stats
        self.question_steps = self.pipeline.row_steps("question")
        self.chunk_steps = self.pipeline.row_steps("persona", "pair")
        # Later steps first on every endpoint: a row that has begun is finished before new rows start, so the
        # judge gets work while the generator still critiques (a FIFO queue sent every critique before any revision).
        self.priority = {s.name: i for i, s in enumerate(self.pipeline.row_steps("question", "persona", "pair"))}
        self.local: dict[str, dict[str, RowResult]] = {s.name: {} for s in self.chunk_steps}
        # What a row's references read (entities, run outputs, question and chunk results): the runner's resolver
        # over the same tables; the chunk writer reads it too.
        self.results = _Results(prep, self.local)
        self.waiters: dict[tuple[str, str], list[_Task]] = {}
        self.ready: deque[_Task] = deque()
        self.todo = deque(c for c in chunks if not chunk_done(prep, parts, c[0]))
        self.open_chunks: list[_Chunk] = []
        self.chunks_in_flight = max(1, chunks_in_flight)
        self.questions_left = 0
        self.lm_calls = 0
        # The reporter's plan: every call of every task, if no input fails (a skipped row asks for none).
        questions = len({a.question.question_id for a in prep.pairs})
        self.planned: dict[str, int] = {}
        for step in self.question_steps:
            done = len(prep.question_results.get(step.name, {}))  # read from the shared run-once state
            for stage, n in calls_per_row(step).items():
                self.planned[stage] = self.planned.get(stage, 0) + n * (questions - done)
        for _, lo, hi in self.todo:
            for step in self.chunk_steps:
                rows = step_rows(step, prep, lo, hi)
                for stage, n in calls_per_row(step).items():
                    self.planned[stage] = self.planned.get(stage, 0) + n * rows
        self.reporter = progress.current()
        self.labels: dict[str, str] = {}
        for step in self.pipeline.row_steps("question", "persona", "pair"):
            for call in step.calls(Row("plan", {name: "" for name in step.inputs})) or ():
                self.labels.setdefault(call.stage, call.desc or call.stage)

    # -- results --------------------------------------------------------------------------------------------------

    def result(self, step: Step, key: str) -> RowResult | None:
        if step.scope == "question":
            return self.prep.question_results[step.name].get(key)
        return self.local[step.name].get(key)

    def _set(self, task: _Task, result: RowResult) -> None:
        step, key = task.step, task.row.key
        if step.scope == "question":
            self.prep.question_results[step.name][key] = result
            self.questions_left -= 1
        else:
            self.local[step.name][key] = result
        for waiter in self.waiters.pop((step.name, key), ()):
            waiter.waiting -= 1
            if waiter.waiting == 0:
                self.ready.append(waiter)
        chunk = task.chunk
        if chunk is not None:
            chunk.remaining -= 1
            if chunk.remaining == 0:
                self._close(chunk)

    # -- tasks ----------------------------------------------------------------------------------------------------

    def _deps(self, step: Step) -> list[Step]:
        names = [r.source for r in step.inputs.values() if r.source in self.pipeline.steps] + list(step.after)
        return [self.pipeline.steps[n] for n in dict.fromkeys(names) if self.pipeline.steps[n].scope != "run"]

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

        ids = {"persona_id": row.persona.persona_id if row.persona else None,
               "question_id": row.question.question_id if row.question else None,
               "pair_id": row.pair.feedback_id if row.pair else None}

        def done(i: int, result: CallResult, key: str) -> None:
            answers[i] = result
            self.reporter.call_done(calls[i].stage, cached=result.cached, failure=result.failure,
                                    ids={"index": i, "cache_key": key[:16], **ids})
            if not result.cached:
                self.lm_calls += 1
            left[0] -= 1
            if left[0] == 0:
                self._set(task, step.finish(self.ctx, row, answers))

        for i, call in enumerate(calls):
            self.scheduler.submit(call, lambda res, key, i=i: done(i, res, key), stats,
                                  priority=self.priority.get(step.name, 0))

    # -- chunks ---------------------------------------------------------------------------------------------------

    def _admit(self) -> None:
        while self.todo and len(self.open_chunks) < self.chunks_in_flight:
            index, lo, hi = self.todo.popleft()
            personas = self.prep.personas[lo:hi]
            persona_rows = [Row(p.persona_id, {}, persona=p) for p in personas]
            pair_rows = [Row(a.feedback_id, {}, persona=p, question=a.question, pair=a)
                         for p in personas for a in self.prep.pairs_of.get(p.persona_id, [])]
            chunk = _Chunk(index, lo, hi, persona_rows, pair_rows)
            self.open_chunks.append(chunk)
            tasks: list[tuple[Step, Row, list[Step]]] = []
            skipped: list[tuple[Step, Row]] = []
            for step in self.chunk_steps:
                deps = self._deps(step)
                if step.scope == "persona":
                    tasks += [(step, r, deps) for r in persona_rows]
                    continue
                per_persona: dict[str, int] = {}
                for r in pair_rows:
                    n = per_persona[r.persona.persona_id] = per_persona.get(r.persona.persona_id, 0) + 1
                    if step.max_rows_per_persona is not None and n > step.max_rows_per_persona:
                        skipped.append((step, r))
                    else:
                        tasks.append((step, r, deps))
            chunk.remaining = len(tasks) + len(skipped)
            if chunk.remaining == 0:
                self._close(chunk)
                continue
            for step, r in skipped:
                self._set(_Task(step, r, chunk, []), SKIPPED)
            for step, r, deps in tasks:
                self._add(step, r, chunk, deps)

    def _close(self, chunk: _Chunk) -> None:
        self.open_chunks.remove(chunk)
        self.write_chunk(chunk, self.results)
        for rows, scope in ((chunk.persona_rows, "persona"), (chunk.pair_rows, "pair")):
            for step in self.chunk_steps:
                if step.scope == scope:
                    for r in rows:
                        self.local[step.name].pop(r.key, None)

    # -- the loop -------------------------------------------------------------------------------------------------

    def _poll(self) -> bool:
        self._admit()
        while self.ready:
            self._start(self.ready.popleft())
            if not self.ready:
                self._admit()
        return not self.todo and not self.open_chunks and self.questions_left == 0 and not self.ready

    def run(self) -> None:
        questions = list({a.question.question_id: a.question for a in self.prep.pairs}.values())
        for step in self.question_steps:
            self.prep.question_results.setdefault(step.name, {})
        deps = {s.name: self._deps(s) for s in self.question_steps}
        # Question-scope results read from the shared run-once state are not made again.
        todo = {s.name: [q for q in questions if q.question_id not in self.prep.question_results[s.name]]
                for s in self.question_steps}
        self.questions_left = sum(len(qs) for qs in todo.values())
        self.reporter.plan(self.reporter.answered + sum(self.planned.values()))
        for stage, total in self.planned.items():
            self.reporter.step_started(stage, total, label=str(self.labels.get(stage, stage)))
        for step in self.question_steps:
            for q in todo[step.name]:
                self._add(step, Row(q.question_id, {}, question=q), None, deps[step.name])
        try:
            self.scheduler.run(self._poll)
        finally:
            self.report = self.scheduler.report()
            self.scheduler.close()
            for stage in self.planned:
                self.reporter.step_finished(stage, retries=self.scheduler.retries_by_stage.get(stage, 0))


def stream(prep: Any, parts: Path, chunks: list[tuple[int, int, int]], *, write_chunk: Callable,
           chunks_in_flight: int, global_stats: dict[str, CallStats]) -> tuple[int, dict[str, Any]]:
    """Run the row steps of ``chunks`` (and every question-scope step); returns (LM calls made, endpoint report)."""
    runner = _Stream(prep, parts, chunks, write_chunk=write_chunk, chunks_in_flight=chunks_in_flight,
                     global_stats=global_stats)
    runner.run()
    return runner.lm_calls, runner.report
