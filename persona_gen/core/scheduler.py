"""Every model endpoint busy: LM calls of all steps and rows, sent the moment they are asked for.

``Scheduler.submit(call, done)`` looks the call up in the cache (on the scheduling thread, like ``Caller.map``), and
a miss joins its endpoint's queue. Each endpoint (a model role's client) keeps up to ``limit`` calls in flight on
its own workers, whatever step or chunk they come from, so the generator and the judge work at the same time and
nothing drains at a step or chunk boundary. ``Scheduler.run(until)`` turns answers into stored results and
callbacks until ``until()`` holds.

Adaptive concurrency per endpoint (AIMD, like NeMo DataDesigner's): ``models.<role>.concurrency`` is the ceiling;
a rate limit (HTTP 429), an overloaded server (5xx) or a timeout multiplies the limit by 0.75 and the call is
*deferred*, not retried in place: it leaves its slot and is sent again after ``Retry-After`` (or a backoff),
up to ``models.<role>.num_retries`` times, then it is a recorded failure. Every 25 successes raise the limit by
one. What each endpoint sustained (calls, calls/s, in flight, retries, limit) goes to the manifest.

Run-scope steps (enrichment, the question filter, ...) run on threads of their own while the scheduler runs:
their ``ScheduledCaller`` hands each call to the scheduling thread (``Scheduler.post``), so their calls share the
endpoints' slots with the rows' calls instead of opening a pool of their own.

On an engine that gates its exchange (``persona_gen.core.wire``: the OpenAI-compatible engine), an endpoint also
prepares calls ahead: up to ``concurrency`` waiting calls have their requests built on workers that then wait at a
gate, holding no slot, and a freed slot opens the best one's gate, in the queue's own order. The engine says when a
good answer is in, before DSPy parses it, and the slot is refilled then. A call of a step whose answers unlock no
call on its own endpoint (the judge, the revision: ``submit(hand_on=True)``) hands its slot on itself, on its
worker, to the best prepared call; the others' slots are refilled by the scheduling thread, after the answers
that came before them were handled (so a critique's revision can take the next slot).

The scheduling thread handles every call twice (asking, answering), so it is kept cheap: answers are stored in one
cache transaction per ``COMMIT_EVERY_S`` (50 ms: a kill loses at most that much of stored answers, besides the
calls in flight), cache keys are hashed without letting go of the interpreter lock (``cache.sha256_hex``), and an
endpoint's workers take their calls from one queue (``_Workers``), with no future per call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from persona_gen.core import progress
from persona_gen.core.calls import Caller, CallResult, CallStats
from persona_gen.core.steps import Call
from persona_gen.core.wire import WireAbortedError, gated

__all__ = ["Endpoint", "RunAbortedError", "ScheduledCaller", "Scheduler"]

log = logging.getLogger(__name__)

DECREASE = 0.75
# Tiers of waiting calls (Scheduler.submit): deferred retries, a step's first streamed item, run-scope steps, rows.
RETRY_TIER, FIRST_TIER, RUN_TIER, ROW_TIER = 3, 2, 1, 0
INCREASE_EVERY = 25
BACKOFF_S = 2.0
MAX_BACKOFF_S = 30.0
# How long closing an endpoint waits for the calls in flight on its event loop (and for its session to close).
CLOSE_WAIT_S = 60.0
# Answers are stored in one cache transaction for up to this long (a COMMIT per batch of one or two answers cost the
# coordinator much of its time with a fast engine). The wait for the next answer ends when the interval does, so
# the transaction is committed on time even while nothing comes: a killed run loses at most this much of stored
# answers besides the calls in flight, and other processes see an answer this soon.
COMMIT_EVERY_S = 0.05
# DSPy's projections of the transient errors worth sending again (lm15 error classes project to these).
_RETRYABLE = ("LMRateLimitError", "LMServerError", "LMTimeoutError", "LMTransportError", "RateLimitError",
              "ServerError", "TimeoutError", "TransportError")
_THROTTLE = ("LMRateLimitError", "RateLimitError", "LMTimeoutError", "TimeoutError")


# Where a waiting call is (_Pending.state): queued; staged (its request prepared on a worker that waits at its
# gate, holding no slot); sent (holding a slot); freed (its good answer is in and its slot refilled, its outcome
# not handled yet); finished.
QUEUED, STAGED, SENT, FREED, FINISHED = range(5)
# An endpoint's answer came in (put on the done queue by the worker, before DSPy parses it): its slot is free.
_ANSWERED = object()


@dataclass
class _Pending:
    call: Call
    key: str
    done: Callable[[CallResult, str], None]
    stats: dict[str, CallStats]
    attempt: int = 0
    # A recorded failure of an earlier run called again (cache.retry_failures): its attempts so far.
    prior_attempts: int = 0
    state: int = QUEUED
    gate: _Gate | None = None
    # Its slot may go to the best staged call the moment its answer is in (Scheduler._hand_on).
    hand_on: bool = False


class _Gate:
    """One attempt's gate on a wire-gated endpoint (``persona_gen.core.wire``): the worker builds the request,
    then waits in ``wait`` until the scheduling thread opens the gate (a slot is free); ``answered`` tells the
    scheduling thread that the answer is in."""

    __slots__ = ("_aborted", "_lock", "_on_answer")

    def __init__(self, on_answer: Callable[[], None], *, open_: bool) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._on_answer = on_answer
        if not open_:
            self._lock.acquire()

    def open(self) -> None:
        self._lock.release()

    def abort(self) -> None:
        self._aborted = True
        self._lock.release()

    def wait(self) -> None:
        with self._lock:
            pass
        if self._aborted:
            raise WireAbortedError("the run stopped before this call was sent")

    def answered(self) -> None:
        self._on_answer()


class _Workers:
    """The threads that make an endpoint's calls: each takes a job from one queue, runs it and hands its outcome
    on. Lighter than a ``ThreadPoolExecutor`` (no future, lock and callback per call), which at 0 ms latency cost
    the scheduling thread ~10 us of every call; a thread is started when the calls in flight outnumber them."""

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None]] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def run(self, job: Callable[[], Any], then: Callable[[Any], None], in_flight: int) -> None:
        """``then(job())`` on a worker; ``in_flight``: the endpoint's calls in flight, this one included."""
        if len(self.threads) < min(in_flight, self.size):
            thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.jobs.put((job, then))

    def _work(self) -> None:
        while (item := self.jobs.get()) is not None:
            job, then = item
            try:
                out = job()
            except BaseException as exc:  # handed on, to be raised on the scheduling thread (as a future would)
                out = exc
            then(out)

    def shutdown(self) -> None:
        """Let the jobs in hand end, then stop the threads."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.threads.clear()


@dataclass
class Endpoint:
    """One model role's client: its workers, its adaptive in-flight limit, its queue and what it sustained."""

    role: str
    caller: Caller
    ceiling: int
    max_retries: int
    limit: float = 0.0
    in_flight: int = 0
    # Calls waiting for a slot, served by (tier, rank, priority), then in the order asked (see Scheduler.submit).
    queue: list[tuple[tuple[int, int, int], int, _Pending]] = field(default_factory=list)
    # The calls staged ahead (their requests prepared, waiting at their gates), in the same order as the queue.
    staged: list[tuple[tuple[int, int, int], int, _Pending]] = field(default_factory=list)
    n_staged: int = 0
    # Calls handed to a worker or the loop whose outcome is not handled yet (staged, in flight, or freed early).
    unsettled: int = 0
    deferred: list[tuple[float, int, _Pending]] = field(default_factory=list)
    # Guards the queue, the staged calls, the calls in flight and the calls' states: a worker whose answer is in
    # hands its slot to the best staged call itself (Scheduler._hand_on), besides the scheduling thread.
    lock: threading.Lock = field(default_factory=threading.Lock)
    successes_since_change: int = 0
    # What the manifest reports.
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    max_in_flight: int = 0
    min_limit: float = 0.0
    first_sent: float | None = None
    last_done: float | None = None
    busy_s: float = 0.0
    _busy_since: float | None = None

    def __post_init__(self) -> None:
        self.limit = float(self.ceiling)
        self.min_limit = self.limit
        client = self.caller.client
        self.loop: asyncio.AbstractEventLoop | None = None
        self.futures: set[Future[Any]] = set()  # calls in flight on the loop
        # Calls prepared ahead: on an engine that gates its exchange (wire.on_the_wire), up to the ceiling.
        self.ahead, self.gated = 0, False
        if client.io == "asyncio" and client.async_engine is not None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name=f"lm-{self.role}", daemon=True).start()
            self.pool: _Workers | None = None
        else:
            self.gated = bool(getattr(client.engine, "wire_gated", False))
            self.ahead = self.ceiling if self.gated else 0
            self.pool = _Workers(self.ceiling + self.ahead, f"lm-{self.role}")

    def report(self) -> dict[str, Any]:
        window = (self.last_done - self.first_sent) if self.first_sent and self.last_done else 0.0
        return {"calls": self.calls, "retries": self.retries, "throttled": self.throttled,
                "calls_per_s": round(self.calls / window, 3) if window > 0 else None,
                "mean_in_flight": round(self.busy_s / window, 3) if window > 0 else None,
                "max_in_flight": self.max_in_flight, "concurrency_ceiling": self.ceiling,
                "lowest_limit": int(self.min_limit), "final_limit": int(self.limit),
                "retries_per_call": round(self.retries / self.calls, 4) if self.calls else 0.0}

    def _account(self, now: float, delta: int) -> None:
        # busy_s integrates calls-in-flight over time: mean in flight = busy_s / window.
        if self._busy_since is not None:
            self.busy_s += self.in_flight * (now - self._busy_since)
        self._busy_since = now
        self.in_flight += delta
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def close(self) -> None:
        with self.lock:
            staged, self.staged, self.n_staged = self.staged, [], 0
            for _, _, pending in staged:  # prepared calls never sent: their workers stop waiting
                if pending.state == STAGED and pending.gate is not None:
                    pending.state = FINISHED
                    pending.gate.abort()
        if self.pool is not None:
            self.pool.shutdown()
        if self.loop is not None and self.loop.is_running():
            # As the thread pool does: the calls in flight end first (none is left half-sent), then the engine's
            # session is closed on its loop, then the loop stops.
            concurrent.futures.wait([f for f in self.futures if not f.done()], timeout=CLOSE_WAIT_S)
            aclose = getattr(self.caller.client.async_engine, "aclose", None)
            if aclose is not None:
                try:
                    asyncio.run_coroutine_threadsafe(aclose(), self.loop).result(timeout=CLOSE_WAIT_S)
                except Exception:  # closing is best effort: the process may be on its way out
                    log.debug("closing the %s endpoint's session failed", self.role, exc_info=True)
            self.loop.call_soon_threadsafe(self.loop.stop)


def _retryable(exc: BaseException | None) -> tuple[bool, bool, float | None]:
    """(retry it, throttle the endpoint, Retry-After seconds) for an exception of one attempt."""
    if exc is None:
        return False, False, None
    names = {c.__name__ for c in type(exc).__mro__}
    retry = bool(names & set(_RETRYABLE))
    throttle = bool(names & set(_THROTTLE)) or getattr(exc, "status", None) in (429, 503)
    after = getattr(exc, "retry_after", None)
    return retry, throttle, float(after) if isinstance(after, int | float) and after > 0 else None


def _best_staged(ep: Endpoint) -> _Pending | None:
    """Pop and return the best staged call if it goes before every queued one (the staged calls and the queue are
    one order), else ``None``. Under ``ep.lock``."""
    staged, waiting = ep.staged, ep.queue
    while staged and staged[0][2].state != STAGED:  # finished before its gate opened (building its request failed)
        heapq.heappop(staged)
    if staged and (not waiting or staged[0][:2] < waiting[0][:2]):
        ep.n_staged -= 1
        return heapq.heappop(staged)[2]
    return None


class Scheduler:
    """One scheduling thread (the caller's) over an endpoint per model role."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.endpoints: dict[str, Endpoint] = {}
        # Finished calls (endpoint, pending, outcome: see _finish) and work posted from other threads (None, fn, None).
        self._done: queue.SimpleQueue[tuple[Any, Any, Any]] = queue.SimpleQueue()
        self._local: deque[tuple[Callable[[CallResult, str], None], CallResult, str]] = deque()
        self._identities: dict[int, Any] = {}
        self._seq = itertools.count()
        self._restore: list[tuple[Any, int]] = []
        self.retries_by_stage: dict[str, int] = {}
        # Threads that may still post work (run-scope steps): while any runs, an idle scheduler waits for them.
        self.outside = 0
        # Set when the run stops (done, an error, Ctrl-C): callers waiting on other threads give up.
        self.aborted = threading.Event()

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the scheduling thread (from any thread): how other threads submit calls or report."""
        self._done.put((None, fn, None))

    def endpoint(self, role: str) -> Endpoint:
        if role not in self.endpoints:
            client = self.runtime.client(role)
            caller = Caller(client, self.runtime.cache, progress=False)
            # Retries are the scheduler's (deferred, not in place): DSPy sends each attempt once.
            retries = int(getattr(client.lm, "num_retries", 0) or 0)
            self._restore.append((client.lm, retries))
            client.lm.num_retries = 0
            self.endpoints[role] = Endpoint(role, caller, max(1, int(client.concurrency)), retries)
        return self.endpoints[role]

    def _identity(self, caller: Caller, module: Any) -> Any:
        ident = self._identities.get(id(module))
        if ident is None:
            ident = self._identities[id(module)] = (module, caller.module_identity(module))
        return ident[1]

    # -- asking -------------------------------------------------------------------------------------------------

    def submit(self, call: Call, done: Callable[[CallResult, str], None], stats: dict[str, CallStats], *,
               priority: int = 0, rank: int = 0, tier: int = 0, hand_on: bool = False) -> None:
        """Answer ``call`` from the cache at once, or queue it on its endpoint; ``done(result, cache key)`` runs on
        this thread. Waiting calls are sent by higher ``tier`` first (deferred retries above all; the runner puts
        run-scope steps above rows, the first persona above those), then lower ``rank`` (the runner's persona
        index: earlier personas' rows finish first, so the judge gets work early and steadily), then higher
        ``priority`` (the runner gives later steps more: a row that has begun is finished first)."""
        ep = self.endpoint(call.role)
        caller = ep.caller
        key = caller.key_for(call.stage, call.module, dict(call.inputs), call.sample_index,
                             self._identity(caller, call.module))
        prior: dict[str, int] = {}
        hit = caller._cached(key, prior)
        if hit is not None:
            stats.setdefault(call.stage, CallStats()).add(hit)
            self._local.append((done, hit, key))
            return
        item = ((-tier, rank, -priority), next(self._seq),
                _Pending(call, key, done, stats, prior_attempts=prior.get(key, 0), hand_on=hand_on))
        with ep.lock:
            heapq.heappush(ep.queue, item)

    def _send(self, ep: Endpoint, pending: _Pending) -> None:
        """Put ``pending`` on the wire now: open the gate of a staged call, or hand the call to a worker."""
        now = time.monotonic()
        ep.first_sent = ep.first_sent or now
        ep._account(now, +1)
        if pending.state == STAGED:  # popped by _best_staged
            assert pending.gate is not None
            pending.state = SENT
            pending.gate.open()
            return
        pending.state = SENT
        call, caller = pending.call, ep.caller
        if ep.loop is not None:
            ep.unsettled += 1
            future: Future[Any] = asyncio.run_coroutine_threadsafe(
                caller.attempt_async(call.stage, call.module, dict(call.inputs), pending.key), ep.loop)
            ep.futures.add(future)
            future.add_done_callback(ep.futures.discard)
            future.add_done_callback(lambda f, ep=ep, p=pending: self._done.put((ep, p, f)))
        else:
            self._dispatch(ep, pending, open_=True)

    def _dispatch(self, ep: Endpoint, pending: _Pending, *, open_: bool) -> None:
        """Run ``pending``'s attempt on one of ``ep``'s workers, behind a gate (open, or opened by ``_send``) on a
        wire-gated endpoint."""
        assert ep.pool is not None
        ep.unsettled += 1
        call, caller = pending.call, ep.caller
        then = lambda out, ep=ep, p=pending: self._done.put((ep, p, out))  # noqa: E731 (one per call, kept short)
        if not ep.gated:  # an in-process engine (the fake, the embedded model): no gate, nothing more per call
            ep.pool.run(lambda: caller.attempt(call.stage, call.module, dict(call.inputs), pending.key), then,
                        ep.in_flight)
            return
        gate = pending.gate = _Gate(lambda ep=ep, p=pending: self._hand_on(ep, p), open_=open_)

        def job() -> Any:
            with gated(gate):
                return caller.attempt(call.stage, call.module, dict(call.inputs), pending.key)

        ep.pool.run(job, then, ep.in_flight + ep.n_staged)

    def _stage(self, ep: Endpoint, item: tuple[tuple[int, int, int], int, _Pending]) -> None:
        """Prepare a waiting call's request on a worker, to be sent the moment a slot frees (``_send``)."""
        pending = item[2]
        pending.state = STAGED
        heapq.heappush(ep.staged, item)
        ep.n_staged += 1
        self._dispatch(ep, pending, open_=False)

    def _pump(self, now: float) -> int:
        """Send waiting calls into free slots and stage the next ones; returns how many were sent on endpoints that
        stage (wire-gated ones)."""
        sent = 0
        for ep in self.endpoints.values():
            with ep.lock:
                while ep.deferred and ep.deferred[0][0] <= now:  # a deferred retry goes before every waiting call
                    heapq.heappush(ep.queue, ((-RETRY_TIER, 0, 0), next(self._seq), heapq.heappop(ep.deferred)[2]))
                limit = max(1, int(ep.limit))
                waiting = ep.queue
                if not ep.ahead:  # nothing is staged on an endpoint that does not gate its exchange
                    while waiting and ep.in_flight < limit:
                        self._send(ep, heapq.heappop(waiting)[2])
                    continue
                while ep.in_flight < limit:
                    staged = _best_staged(ep)
                    if staged is not None:
                        self._send(ep, staged)
                    elif waiting:
                        self._send(ep, heapq.heappop(waiting)[2])
                    else:
                        break
                    sent += 1
                while ep.n_staged < ep.ahead and waiting:
                    self._stage(ep, heapq.heappop(waiting))
        return sent

    def _hand_on(self, ep: Endpoint, pending: _Pending) -> _Pending | None:
        """On a worker, the moment ``pending``'s good answer is in: its slot goes at once to the best staged call, if
        that is the best waiting one (the scheduling thread then only stages the next); the scheduling thread learns
        of the answer either way (``_ANSWERED``), and frees the slot if it was not handed on. Returns the call sent."""
        handed = None
        with ep.lock:
            if pending.hand_on and pending.state == SENT and ep.in_flight <= max(1, int(ep.limit)):
                handed = _best_staged(ep)
                if handed is not None:
                    pending.state = FREED  # its slot is handed's now: in flight stays as it is
                    handed.state = SENT
        if handed is not None:
            assert handed.gate is not None
            handed.gate.open()
        self._done.put((ep, pending, _ANSWERED))
        time.sleep(0)  # let the opened worker (or the scheduling thread) have the interpreter before DSPy's parsing
        return handed

    # -- answers ------------------------------------------------------------------------------------------------

    def _finish(self, ep: Endpoint, pending: _Pending, outcome: Any, now: float) -> None:
        """One answered call; ``outcome``: the attempt's (result, exception), or the future of one on an event
        loop, or what a worker raised (raised here)."""
        with ep.lock:
            ep.unsettled -= 1
            if pending.state == SENT:
                ep._account(now, -1)
            elif pending.state == STAGED:  # it failed before its gate opened (building the request): it held no slot
                ep.n_staged -= 1
            pending.state, pending.gate = FINISHED, None
        ep.last_done = now
        if isinstance(outcome, Future):
            outcome = outcome.result()
        if isinstance(outcome, BaseException):
            raise outcome
        result, exc = outcome
        retry, throttle, after = _retryable(exc)
        if throttle:
            ep.throttled += 1
            ep.limit = max(1.0, ep.limit * DECREASE)
            ep.min_limit = min(ep.min_limit, ep.limit)
            ep.successes_since_change = 0
        if retry and pending.attempt < ep.max_retries:
            pending.state = QUEUED
            pending.attempt += 1
            ep.retries += 1
            stage = pending.call.stage
            self.retries_by_stage[stage] = self.retries_by_stage.get(stage, 0) + 1
            delay = after if after is not None else min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (pending.attempt - 1))
            heapq.heappush(ep.deferred, (now + delay, next(self._seq), pending))
            return
        if exc is None and result.failure is None:
            ep.successes_since_change += 1
            if ep.successes_since_change >= INCREASE_EVERY:
                ep.successes_since_change = 0
                ep.limit = min(float(ep.ceiling), ep.limit + 1)
        ep.calls += 1
        ep.caller._store(pending.key, result, pending.prior_attempts)
        if pending.prior_attempts:
            result = dataclasses.replace(result, retried=True)
        pending.stats.setdefault(pending.call.stage, CallStats()).add(result)
        pending.done(result, pending.key)

    def run(self, poll: Callable[[], bool]) -> None:
        """Send, receive and call back until ``poll()`` (the caller's work between batches) says the run is done.

        Ctrl-C (or any error) waits for the calls in flight only; queued calls are dropped.
        """
        txn: contextlib.AbstractContextManager[None] | None = None  # the open cache transaction
        since = 0.0

        def commit() -> None:
            nonlocal txn
            if txn is not None:
                cm, txn = txn, None
                cm.__exit__(None, None, None)

        try:
            while True:
                while self._local:
                    done, result, key = self._local.popleft()
                    done(result, key)
                if poll():
                    return
                if self._local:
                    continue
                now = time.monotonic()
                self._pump(now)
                waits = [ep.deferred[0][0] - now for ep in self.endpoints.values() if ep.deferred]
                if not any(ep.unsettled for ep in self.endpoints.values()) and not self.outside:
                    commit()
                    if not waits:
                        raise RuntimeError("scheduler stalled: nothing in flight, queued or deferred, and the run "
                                           "is not complete")
                    time.sleep(max(0.0, min(waits)))
                    continue
                timeout = max(0.01, min(waits)) if waits else None
                if txn is not None:  # wait no longer than the open transaction may stay open
                    timeout = max(0.0, min(timeout if timeout is not None else COMMIT_EVERY_S,
                                           since + COMMIT_EVERY_S - now))
                try:
                    batch = [self._done.get(timeout=timeout)]
                except queue.Empty:
                    commit()
                    continue
                while True:
                    try:
                        batch.append(self._done.get_nowait())
                    except queue.Empty:
                        break
                now = time.monotonic()
                if txn is None:
                    txn, since = self.runtime.cache.transaction(), now
                    txn.__enter__()
                # The slots of calls answered without an error are refilled from the calls already waiting (or
                # staged) before the answers are handled (stored, called back): with 16 answers arriving together,
                # the last one's slot would otherwise wait for the other 15 to be handled first, every round. A
                # wire-gated engine says so before DSPy parses the answer (_ANSWERED). (An error may lower the
                # endpoint's limit first: its slot is freed when it is handled.)
                for ep, pending, outcome in batch:
                    if ep is not None and (outcome is _ANSWERED or (type(outcome) is tuple and outcome[1] is None)):
                        with ep.lock:
                            if pending.state == SENT:
                                pending.state = FREED
                                ep._account(now, -1)
                if self._pump(now):
                    time.sleep(0)  # the (prepared) calls just sent go on the wire before the answers are handled
                for ep, pending, outcome in batch:
                    if ep is None:
                        pending()  # work posted from another thread
                    elif outcome is not _ANSWERED:
                        self._finish(ep, pending, outcome, now)
                self._pump(now)
                if time.monotonic() - since >= COMMIT_EVERY_S:  # (a batch that wrote a chunk took a while)
                    commit()
        except BaseException:
            with contextlib.suppress(Exception):
                commit()  # the answers stored so far are whole entries: kept
            self.close()
            raise
        finally:
            commit()

    def report(self) -> dict[str, Any]:
        return {role: ep.report() for role, ep in sorted(self.endpoints.items())}

    def close(self) -> None:
        self.aborted.set()
        for ep in self.endpoints.values():
            ep.close()
        self.endpoints.clear()
        for lm, retries in self._restore:
            lm.num_retries = retries
        self._restore.clear()


class RunAbortedError(RuntimeError):
    """The run stopped (an error elsewhere, Ctrl-C) while a run-scope step waited for its LM calls."""


class ScheduledCaller(Caller):
    """A ``Caller`` for a step running on a thread of its own: its calls go through the scheduler's endpoints.

    ``map`` blocks its thread until every answer is in (results in input order, stats and progress as
    ``Caller.map``); ``submit`` returns a future per call, for steps that send the next call as soon as one
    answer is in (enrichment checks each persona the moment it is written). Served at ``priority`` in the
    run-scope tier.
    """

    def __init__(self, scheduler: Scheduler, role: str, client: Any, cache: Any, *,
                 stats: dict[str, CallStats] | None = None, priority: int = 0) -> None:
        super().__init__(client, cache, stats=stats)
        self.scheduler = scheduler
        self.role = role
        self.priority = priority

    def submit(self, stage: str, module: Any, inputs: dict[str, Any], *, sample_index: int = 0,
               on_done: Callable[[CallResult, str], None] | None = None, first: bool = False,
               report: bool = False) -> Future[CallResult]:
        """The call's future; ``on_done(result, cache key)`` (if any) runs on the scheduling thread first. Stats are
        the caller's; with ``report`` the answer counts on the stage's bar (``reporting``).

        ``first``: the call makes the step's first streamed item (the first persona), which every row waits for
        beside the other run steps' outputs: it goes before everything but retries.
        """
        future: Future[CallResult] = Future()
        call = Call(stage, module, inputs, self.role, sample_index)
        tier = FIRST_TIER if first else RUN_TIER

        def done(result: CallResult, key: str) -> None:
            if report:
                progress.current().call_done(stage, cached=result.cached, failure=result.failure,
                                             ids={"cache_key": key[:16]})
            if on_done is not None:
                on_done(result, key)
            future.set_result(result)

        self.scheduler.post(lambda: self.scheduler.submit(call, done, self.stats, priority=self.priority,
                                                          tier=tier))
        return future

    @contextlib.contextmanager
    def reporting(self, stage: str, total: int, *, desc: str | None = None) -> Iterator[None]:
        """A stage's bar and log line (as ``map`` has) around calls sent with ``submit(report=True)``."""
        reporter = progress.current()
        reporter.step_started(stage, total, label=desc)
        retries_before = self.scheduler.retries_by_stage.get(stage, 0)
        try:
            yield
        finally:
            reporter.step_finished(stage, retries=self.scheduler.retries_by_stage.get(stage, 0) - retries_before)

    def wait(self, futures: list[Future[CallResult]]) -> list[CallResult]:
        """The futures' results, in order; raises ``RunAbortedError`` if the run stops first."""
        out = []
        for future in futures:
            while True:
                try:
                    out.append(future.result(timeout=0.5))
                    break
                except concurrent.futures.TimeoutError:  # the builtin TimeoutError from Python 3.11 on; not in 3.10
                    if self.scheduler.aborted.is_set():
                        raise RunAbortedError("the run stopped while this step waited for its LM calls") from None
        return out

    def wait_any(self, futures: list[Future[CallResult]]) -> set[Future[CallResult]]:
        """The futures that are done once at least one is; raises ``RunAbortedError`` if the run stops first."""
        while True:
            done, _ = concurrent.futures.wait(futures, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
            if done:
                return done
            if self.scheduler.aborted.is_set():
                raise RunAbortedError("the run stopped while this step waited for its LM calls")

    def map(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], *, sample_index: int = 0,
            desc: str | None = None, ids: Sequence[dict[str, Any]] | None = None) -> list[CallResult]:
        if not inputs:
            return []
        reporter = progress.current()

        def report(i: int, result: CallResult, key: str) -> None:
            reporter.call_done(stage, cached=result.cached, failure=result.failure,
                               ids={"index": i, "cache_key": key[:16], **(ids[i] if ids else {})})

        with self.reporting(stage, len(inputs), desc=desc):
            futures = [self.submit(stage, module, dict(item), sample_index=sample_index,
                                   on_done=lambda r, k, i=i: report(i, r, k)) for i, item in enumerate(inputs)]
            return self.wait(futures)
