"""Cached, concurrent, failure-recording execution of DSPy modules.

Every LM call of every stage goes through ``Caller.map``: the cache is read first (a warm rerun makes no
LM call), misses run with at most ``models.<role>.concurrency`` in flight (on a thread pool, or with
``models.<role>.io=asyncio`` on an event loop through the LM's async engine), and a call that fails
(unparseable answer, server error after retries) becomes a recorded ``Failure`` with the raw text:
the row is kept, counted, and never dropped silently.

A failure is never made permanent by the cache: transport errors are not stored, and a stored answer that failed
(a parse failure, e.g. an HTTP 200 with a broken body) is called again by up to ``cache.retry_failures`` later runs
(on by default; ``CallCache.retry_failures``), except for in-process LMs whose answer is a pure function of the
request (``LMClient.deterministic``: the embedded model, the fake), where a retry would only repeat it. The
manifest counts both: ``failures_retried`` (recorded failures called again) and ``failures_from_cache`` (recorded
failures served as they were).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from persona_gen.core import progress
from persona_gen.core.adapter import JSONAdapter
from persona_gen.core.cache import CallCache, KeyMaker, canonical_json
from persona_gen.core.lm import LMClient, signature_identity
from persona_gen.core.records import Failure

__all__ = ["CallResult", "CallStats", "Caller", "program_hash"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallResult:
    outputs: dict[str, Any] | None
    failure: Failure | None = None
    cached: bool = False
    # A recorded failure that this run called again (whatever the new answer is).
    retried: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None and self.outputs is not None


@dataclass
class CallStats:
    """Per-stage counters for the manifest."""

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    # Recorded failures (from the cache) that were called again, and those served from the cache as they were.
    retried: int = 0
    failures_from_cache: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: CallResult) -> None:
        with self._lock:
            if result.cached:
                self.cache_hits += 1
            else:
                self.calls += 1
            if result.retried:
                self.retried += 1
            if result.failure is not None:
                self.failures += 1
                self.by_kind[result.failure.kind] = self.by_kind.get(result.failure.kind, 0) + 1
                if result.cached:
                    self.failures_from_cache += 1

    def merge(self, other: CallStats) -> None:
        """Add another stage's counters (parts of several chunks or shards) to these."""
        with self._lock:
            self.calls += other.calls
            self.cache_hits += other.cache_hits
            self.failures += other.failures
            self.retried += other.retried
            self.failures_from_cache += other.failures_from_cache
            for kind, n in other.by_kind.items():
                self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallStats:
        """The inverse of ``as_dict`` (older dicts without the retry counters read them as 0)."""
        return cls(int(d["lm_calls"]), int(d["cache_hits"]), int(d["failures"]), dict(d.get("failures_by_kind") or {}),
                   int(d.get("failures_retried", 0)), int(d.get("failures_from_cache", 0)))

    def as_dict(self) -> dict[str, Any]:
        return {"lm_calls": self.calls, "cache_hits": self.cache_hits, "failures": self.failures,
                "failures_by_kind": dict(sorted(self.by_kind.items())),
                "failures_retried": self.retried, "failures_from_cache": self.failures_from_cache}


def program_hash(module: Any) -> str:
    """Hash of a module's learnable state (demos, instructions): changes when an optimizer compiles it."""
    try:
        state = module.dump_state()
    except Exception:
        return ""
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _requests(client: LMClient) -> int | None:
    """Requests the client's engines have sent so far (None when they do not count them)."""
    counts = [getattr(e, "requests", None) for e in (client.engine, client.async_engine) if e is not None]
    counts = [c for c in counts if isinstance(c, int)]
    return sum(counts) if counts else None


def _sample_seed(key: str) -> int:
    return int(key[:8], 16)


class Caller:
    """Run one DSPy module over many inputs through the cache, concurrently, recording failures."""

    def __init__(self, client: LMClient, cache: CallCache, *, stats: dict[str, CallStats] | None = None,
                 progress: bool = True) -> None:
        self.client = client
        self.cache = cache
        self.stats = stats if stats is not None else {}
        self.progress = progress
        self._stats_lock = threading.Lock()
        # (stage, module identity, model identity) -> (those objects, their KeyMaker): a module's key text is
        # serialized once, not once per call. The objects are kept so that their ids are not reused.
        self._key_makers: dict[tuple[str, int, str, int], tuple[Any, Any, KeyMaker]] = {}
        # One adapter for all calls: it keeps each signature's system message and response format.
        self.adapter = JSONAdapter()
        # Calls run with DSPy's history off: DSPy would keep the last 10,000 prompts and answers twice (globally
        # and per LM), which costs memory and, through the garbage collector, CPU on every later call. The
        # record of a call is its row, its cache entry, or its Failure with the raw answer.

    def _stage_stats(self, stage: str) -> CallStats:
        with self._stats_lock:
            return self.stats.setdefault(stage, CallStats())

    @staticmethod
    def module_identity(module: Any) -> tuple[dict[str, Any], str]:
        """The prompt-shaping part of a module: every predictor's signature (ChainOfThought adds a reasoning
        field) and the hash of its learnable state. Computed once per ``map``, not once per call."""
        predictors = module.named_predictors() if hasattr(module, "named_predictors") else []
        ident = {"module": type(module).__name__,
                 "predictors": {name: signature_identity(p.signature) for name, p in predictors}}
        return ident, program_hash(module)

    def key_for(self, stage: str, module: Any, inputs: dict[str, Any], sample_index: int = 0,
                identity: tuple[dict[str, Any], str] | None = None) -> str:
        ident, phash = identity or self.module_identity(module)
        model = self.client.identity
        slot = (stage, id(ident), phash, id(model))
        entry = self._key_makers.get(slot)
        if entry is None or entry[0] is not ident or entry[1] is not model:
            if len(self._key_makers) >= 256:  # a long-lived caller (an optimizer's loop) keeps the recent ones
                self._key_makers.clear()
            entry = self._key_makers[slot] = (ident, model, KeyMaker(stage=stage, signature=ident, model=model,
                                                                     program_hash=phash))
        return entry[2](_plain(inputs), sample_index)

    def _retries_failures(self) -> bool:
        """Whether recorded failures may be called again: a retry budget, and an LM whose answers can change."""
        return self.cache.retry_failures > 0 and not getattr(self.client, "deterministic", False)

    def _cached(self, key: str, prior: dict[str, int] | None = None) -> CallResult | None:
        """The stored result of ``key``; None for a miss, and for a recorded failure this run retries (then
        ``prior[key]`` is how many attempts it had)."""
        hit = self.cache.get(key)
        if hit is None:
            return None
        failure = Failure(**hit["failure"]) if hit.get("failure") else None
        if failure is not None and prior is not None and self._retries_failures():
            attempts = int(hit.get("attempts") or 1)
            if attempts <= self.cache.retry_failures:
                prior[key] = attempts
                return None
        return CallResult(hit["outputs"], failure, cached=True)

    def _run(self, stage: str, module: Any, inputs: dict[str, Any], key: str) -> CallResult:
        """One LM call; any exception becomes a recorded failure with the raw answer when there is one."""
        import dspy

        try:
            with dspy.context(lm=self.client.lm, adapter=self.adapter, disable_history=True):
                pred = module(**inputs, config={"seed": _sample_seed(key)})
            return CallResult({k: _plain(v) for k, v in pred.items()})
        except Exception as exc:
            return self._failure(stage, exc)

    async def _arun(self, stage: str, module: Any, inputs: dict[str, Any], key: str) -> CallResult:
        """``_run`` on the event loop, through the module's ``acall`` and the LM's async engine."""
        import dspy

        try:
            with dspy.context(lm=self.client.lm, adapter=self.adapter, disable_history=True):
                pred = await module.acall(**inputs, config={"seed": _sample_seed(key)})
            return CallResult({k: _plain(v) for k, v in pred.items()})
        except Exception as exc:
            return self._failure(stage, exc)

    def attempt(self, stage: str, module: Any, inputs: dict[str, Any], key: str) -> tuple[CallResult, Exception | None]:
        """One attempt of one call, for a scheduler that retries itself: the result and the exception, if any."""
        import dspy

        try:
            with dspy.context(lm=self.client.lm, adapter=self.adapter, disable_history=True):
                pred = module(**inputs, config={"seed": _sample_seed(key)})
            return CallResult({k: _plain(v) for k, v in pred.items()}), None
        except Exception as exc:
            return self._failure(stage, exc), exc

    async def attempt_async(self, stage: str, module: Any, inputs: dict[str, Any],
                            key: str) -> tuple[CallResult, Exception | None]:
        """``attempt`` on an event loop, through the module's ``acall`` and the LM's async engine."""
        import dspy

        try:
            with dspy.context(lm=self.client.lm, adapter=self.adapter, disable_history=True):
                pred = await module.acall(**inputs, config={"seed": _sample_seed(key)})
            return CallResult({k: _plain(v) for k, v in pred.items()}), None
        except Exception as exc:
            return self._failure(stage, exc), exc

    def _failure(self, stage: str, exc: Exception) -> CallResult:
        raw = getattr(exc, "lm_response", None)
        kind = "parse" if type(exc).__name__ == "AdapterParseError" else "lm_error"
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        if kind == "parse":
            message = message.rstrip(" .")
            # DSPy's first line alone says neither what was asked for nor what came back.
            signature = getattr(exc, "signature", None)
            expected = list(getattr(signature, "output_fields", {}) or {})
            message += f"; expected fields {expected}" if expected else ""
            message += f"; raw answer {raw[:200]!r}" if isinstance(raw, str) else ""
        log.debug("LM call failed in %s: %s", stage, message)
        return CallResult(None, Failure(stage=stage, kind=kind, message=f"{type(exc).__name__}: {message}",
                                        raw=raw if isinstance(raw, str) else None))

    def uses_event_loop(self, module: Any) -> bool:
        """Whether ``map`` runs this module's calls on an event loop: ``models.<role>.io=asyncio``, the LM has an
        async engine, the module has ``aforward`` (Predict, ChainOfThought and persona_gen's modules do), and no
        loop is running in this thread already. Otherwise calls run on a thread pool."""
        if self.client.io != "asyncio" or self.client.async_engine is None:
            return False
        if not callable(getattr(module, "aforward", None)):
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False

    async def _amap(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], keys: list[str],
                    misses: Iterator[int], done: Callable[[int, CallResult], None]) -> None:
        # ``concurrency`` workers draw cache misses from one iterator (its cache reads run on this loop's thread,
        # between awaits): no semaphore, one task per worker.
        workers = self.client.concurrency
        # DSPy prepares each request and prices each answer in ``asyncio.to_thread``: with the default executor
        # (min(32, cores + 4) threads) those hops queue behind each other at high concurrency.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))

        async def worker() -> None:
            for i in misses:
                done(i, await self._arun(stage, module, inputs[i], keys[i]))

        try:
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            aclose = getattr(self.client.async_engine, "aclose", None)
            if aclose is not None:
                await aclose()

    def _threaded(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], keys: list[str],
                  misses: Iterator[int], done: Callable[[int, CallResult], None]) -> None:
        # Exactly ``concurrency`` calls in flight: each answer that comes back is stored, then the next miss is
        # looked up and sent. Finished calls reach this thread through a queue, in the order they finish.
        finished: queue.SimpleQueue[tuple[int, Future[CallResult]]] = queue.SimpleQueue()
        pool = ThreadPoolExecutor(max_workers=self.client.concurrency)
        in_flight = 0

        def send(i: int) -> None:
            nonlocal in_flight
            future = pool.submit(self._run, stage, module, inputs[i], keys[i])
            future.add_done_callback(lambda f, i=i: finished.put((i, f)))
            in_flight += 1

        try:
            for i in itertools.islice(misses, self.client.concurrency):
                send(i)
            while in_flight:
                # Everything that finished since the last turn is stored in one cache transaction and replaced
                # by as many new calls: this thread takes the GIL back once per batch, not once per SQLite
                # statement (each releases it, and 64 busy workers make every re-take wait).
                batch = [finished.get()]
                while True:
                    try:
                        batch.append(finished.get_nowait())
                    except queue.Empty:
                        break
                in_flight -= len(batch)
                with self.cache.transaction():
                    for i, future in batch:
                        done(i, future.result())
                    for nxt in itertools.islice(misses, len(batch)):
                        send(nxt)
        finally:
            # On Ctrl-C (or an error here) wait for the calls in flight only; nothing else was sent.
            pool.shutdown(wait=True, cancel_futures=True)

    def _store(self, key: str, result: CallResult, attempts: int = 0) -> None:
        # Failures are cached too only when they are answers (parse); transport errors are retried next run.
        # A stored failure counts its attempts, so later runs retry it a bounded number of times.
        if result.failure is None:
            self.cache.set(key, {"outputs": result.outputs, "failure": None})
        elif result.failure.kind == "parse":
            self.cache.set(key, {"outputs": result.outputs, "failure": result.failure.model_dump(),
                                 "attempts": attempts + 1})

    def map(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], *, sample_index: int = 0,
            desc: str | None = None, ids: Sequence[dict[str, Any]] | None = None) -> list[CallResult]:
        """Results in input order; at most ``client.concurrency`` calls in flight.

        The cache is read and written on the calling thread (one SQLite user, no lock contention between
        workers), interleaved with the calls: the first call goes out after the first cache miss, not after
        every input has been looked up. Only LM calls run concurrently: on a thread pool, or on an event loop
        with ``models.<role>.io=asyncio`` (``uses_event_loop``). Answers are stored as they arrive (on threads,
        each batch that finished together in one transaction), so a killed run loses at most the calls in
        flight and the batch being stored. ``ids`` (one dict per input, e.g. ``{"persona_id": ...}``) name the
        input of a failed call in ``failures.jsonl``.
        """
        identity = self.module_identity(module)
        keys: list[str] = [""] * len(inputs)
        results: list[CallResult | None] = [None] * len(inputs)
        # Bars, the step's log line and kept failures: the run's reporter (persona_gen.core.progress).
        reporter = progress.current()
        reporter.step_started(stage, len(inputs), label=desc, show=self.progress)
        requests_before = _requests(self.client)
        sent = 0

        def report(i: int, result: CallResult) -> None:
            reporter.call_done(stage, cached=result.cached, failure=result.failure,
                               ids={"index": i, "cache_key": keys[i][:16], **(ids[i] if ids else {})})
        prior: dict[str, int] = {}  # recorded failures this run calls again -> their attempts so far

        def misses() -> Iterator[int]:
            for i, item in enumerate(inputs):
                keys[i] = self.key_for(stage, module, item, sample_index, identity)
                results[i] = self._cached(keys[i], prior)
                if results[i] is None:
                    yield i
                else:
                    report(i, results[i])

        def done(i: int, result: CallResult) -> None:
            nonlocal sent
            attempts = prior.get(keys[i], 0)
            self._store(keys[i], result, attempts)
            if attempts:
                result = dataclasses.replace(result, retried=True)
            results[i] = result
            sent += 1
            report(i, result)

        todo = misses()
        try:
            if self.client.concurrency <= 1 or len(inputs) <= 1:
                for i in todo:
                    done(i, self._run(stage, module, inputs[i], keys[i]))
            elif self.uses_event_loop(module):
                asyncio.run(self._amap(stage, module, inputs, keys, todo, done))
            else:
                self._threaded(stage, module, inputs, keys, todo, done)
        finally:
            # Retries: requests the engine sent beyond one per call (DSPy retries inside a call).
            retries = _requests(self.client) - requests_before - sent if requests_before is not None else 0
            reporter.step_finished(stage, retries=max(0, retries))
            stats = self._stage_stats(stage)
            for result in results:
                if result is not None:
                    stats.add(result)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # cannot happen unless a path above lost a call; never hand back a short list
            raise RuntimeError(f"Caller.map lost {len(missing)} of {len(inputs)} results in stage {stage!r}")
        return [r for r in results if r is not None]
