"""The one cache of persona_gen: LM call results in diskcache, keyed by content.

DSPy's own memory and disk caches are disabled (see ``persona_gen.core.lm``), so this cache is the
only truth: a warm rerun makes no LM call and yields byte-identical output.

What enters the key, and what is left out on purpose:

| in the key                                   | left out (does not change the answer)        |
|----------------------------------------------|----------------------------------------------|
| KEY_VERSION                                  | api keys (secrets never enter keys or logs)  |
| stage name                                   | base_url / endpoint                          |
| signature name, instructions, field specs    | timeouts, retries                            |
| model kind, name, revision (weights sha256)  | concurrency                                  |
| decoding params: temperature, max_tokens,    | cache dir, output dir                        |
|   top_p, structured output mode              |                                              |
| the input record (all input fields)          |                                              |
| sample index (distinct samples, same input)  |                                              |
| compiled program hash (optimized judges)     |                                              |
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import diskcache

__all__ = ["KEY_VERSION", "CallCache", "cache_key", "canonical_json"]

KEY_VERSION = 2

log = logging.getLogger(__name__)


def canonical_json(obj: Any) -> str:
    """Sorted-key, compact JSON: one byte string for one value."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def cache_key(*, stage: str, signature: dict[str, Any], model: dict[str, Any], inputs: dict[str, Any],
              sample_index: int = 0, program_hash: str = "") -> str:
    """sha256 of the canonical JSON of everything that determines an LM answer."""
    payload = {
        "v": KEY_VERSION,
        "stage": stage,
        "signature": signature,
        "model": model,
        "inputs": inputs,
        "sample": sample_index,
        "program": program_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _open(directory: Path, size_limit: int) -> diskcache.Cache:
    """Open the diskcache; a database that is not one (torn write, disk fault) is set aside and started anew."""
    try:
        return diskcache.Cache(str(directory), size_limit=size_limit, eviction_policy="none")
    except sqlite3.DatabaseError as exc:
        db = directory / diskcache.core.DBNAME
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except FileNotFoundError:
                pass  # absent, or another process set it aside first
        log.warning("cache: %s is corrupt (%s); moved to %s.corrupt, starting an empty cache (answers are recomputed)",
                    db, exc, db.name)
        return diskcache.Cache(str(directory), size_limit=size_limit, eviction_policy="none")


class CallCache:
    """A thread- and process-safe store of LM results, with hit/miss counters for the manifest."""

    def __init__(self, directory: str | Path | None, *, enabled: bool = True, size_limit_gb: float = 8.0) -> None:
        self.enabled = enabled and directory is not None
        self._cache = _open(Path(str(directory)), int(size_limit_gb * 2**30)) if self.enabled else None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def get(self, key: str) -> dict[str, Any] | None:
        if self._cache is None:
            with self._lock:
                self.misses += 1
            return None
        try:
            value = self._cache.get(key, default=None)
        except Exception:
            value = None
            with self._lock:
                self.corrupt += 1
        if value is not None and not (isinstance(value, dict) and "outputs" in value):
            # An entry of a foreign shape is treated as corrupt: recompute and overwrite it.
            value = None
            with self._lock:
                self.corrupt += 1
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
        return value

    def set(self, key: str, value: dict[str, Any]) -> None:
        if self._cache is not None:
            try:
                self._cache.set(key, value)
            except sqlite3.DatabaseError as exc:
                # The cache only saves work: a store that fails (corrupt pages, a locked file) must not end the run.
                with self._lock:
                    self.corrupt += 1
                log.warning("cache: could not store an entry in %s (%s); it will be recomputed next run",
                            self._cache.directory, exc)

    def transaction(self) -> AbstractContextManager[Any]:
        """Group the gets and sets of one thread into one SQLite transaction (a no-op with the cache off).
        Entries become visible to other processes when it ends; a crash inside loses only its own sets."""
        if self._cache is None:
            return nullcontext()
        return self._cache.transact()

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "corrupt": self.corrupt}

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
