"""Cached, concurrent, failure-recording execution of DSPy modules.

Every LM call of every stage goes through ``Caller.map``: the cache is read first (a warm rerun makes no
LM call), misses run on a bounded thread pool (``models.<role>.concurrency``), and a call that fails
(unparseable answer, server error after retries) becomes a recorded ``Failure`` with the raw text:
the row is kept, counted, and never dropped silently.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from tqdm.auto import tqdm

from persona_gen.core.cache import CallCache, cache_key, canonical_json
from persona_gen.core.lm import LMClient, signature_identity
from persona_gen.core.records import Failure

__all__ = ["CallResult", "CallStats", "Caller", "program_hash"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallResult:
    outputs: dict[str, Any] | None
    failure: Failure | None = None
    cached: bool = False

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: CallResult) -> None:
        with self._lock:
            if result.cached:
                self.cache_hits += 1
            else:
                self.calls += 1
            if result.failure is not None:
                self.failures += 1
                self.by_kind[result.failure.kind] = self.by_kind.get(result.failure.kind, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"lm_calls": self.calls, "cache_hits": self.cache_hits, "failures": self.failures,
                "failures_by_kind": dict(sorted(self.by_kind.items()))}


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
        return cache_key(stage=stage, signature=ident, model=self.client.identity, inputs=_plain(inputs),
                         sample_index=sample_index, program_hash=phash)

    def call(self, stage: str, module: Any, inputs: dict[str, Any], sample_index: int = 0,
             identity: tuple[dict[str, Any], str] | None = None) -> CallResult:
        import dspy

        key = self.key_for(stage, module, inputs, sample_index, identity)
        hit = self.cache.get(key)
        if hit is not None:
            failure = Failure(**hit["failure"]) if hit.get("failure") else None
            result = CallResult(hit["outputs"], failure, cached=True)
            self._stage_stats(stage).add(result)
            return result
        try:
            with dspy.context(lm=self.client.lm, adapter=dspy.JSONAdapter()):
                pred = module(**inputs, config={"seed": _sample_seed(key)})
            outputs = {k: _plain(v) for k, v in pred.items()}
            result = CallResult(outputs)
        except Exception as exc:
            raw = getattr(exc, "lm_response", None)
            kind = "parse" if type(exc).__name__ == "AdapterParseError" else "lm_error"
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            result = CallResult(None, Failure(stage=stage, kind=kind, message=f"{type(exc).__name__}: {message}",
                                              raw=raw if isinstance(raw, str) else None))
            log.debug("LM call failed in %s: %s", stage, message)
        # Failures are cached too only when they are answers (parse); transport errors are retried next run.
        if result.failure is None or result.failure.kind == "parse":
            self.cache.set(key, {"outputs": result.outputs,
                                 "failure": result.failure.model_dump() if result.failure else None})
        self._stage_stats(stage).add(result)
        return result

    def map(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], *, sample_index: int = 0,
            desc: str | None = None) -> list[CallResult]:
        """Results in input order; at most ``client.concurrency`` calls in flight."""
        bar = tqdm(total=len(inputs), desc=desc or stage, disable=not self.progress or not inputs, leave=False,
                   unit="call")
        identity = self.module_identity(module)
        failed = [0]
        lock = threading.Lock()

        def one(item: dict[str, Any]) -> CallResult:
            res = self.call(stage, module, item, sample_index, identity)
            with lock:
                if res.failure is not None:
                    failed[0] += 1
                    bar.set_postfix(failures=failed[0], refresh=False)
                bar.update(1)
            return res

        try:
            if self.client.concurrency <= 1 or len(inputs) <= 1:
                return [one(i) for i in inputs]
            with ThreadPoolExecutor(max_workers=self.client.concurrency) as pool:
                return list(pool.map(one, inputs))
        finally:
            bar.close()
