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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache

__all__ = ["CACHE_ERRORS", "KEY_VERSION", "CallCache", "KeyMaker", "cache_key", "canonical_json", "check_cache_dir",
           "sha256_hex"]

KEY_VERSION = 2

log = logging.getLogger(__name__)


def canonical_json(obj: Any) -> str:
    """Sorted-key, compact JSON: one byte string for one value."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def cache_key(*, stage: str, signature: dict[str, Any], model: dict[str, Any], inputs: dict[str, Any],
              sample_index: int = 0, program_hash: str = "") -> str:
    """sha256 of the canonical JSON of everything that determines an LM answer: ``{"inputs", "model",
    "program", "sample", "signature", "stage", "v"}``."""
    return KeyMaker(stage=stage, signature=signature, model=model, program_hash=program_hash)(inputs, sample_index)


class KeyMaker:
    """``cache_key`` for one stage, module identity and model, with those parts serialized once.

    The canonical JSON of a dict is its sorted keys' JSON joined, so the text around a call's inputs and sample
    index is the same for every call of a module: written once here, it leaves one ``canonical_json`` of the
    inputs per call (the signature identity, a few kB, was serialized again for every call)."""

    __slots__ = ("_head", "_tail")

    def __init__(self, *, stage: str, signature: dict[str, Any], model: dict[str, Any], program_hash: str = ""):
        self._head = f',"model":{canonical_json(model)},"program":{canonical_json(program_hash)},"sample":'
        self._tail = f',"signature":{canonical_json(signature)},"stage":{canonical_json(stage)},"v":{KEY_VERSION}}}'

    def __call__(self, inputs: dict[str, Any], sample_index: int = 0) -> str:
        text = f'{{"inputs":{canonical_json(inputs)}{self._head}{canonical_json(sample_index)}{self._tail}'
        return sha256_hex(text.encode())


# hashlib lets go of the interpreter lock for data of 2,048 bytes or more. The thread that schedules every call
# then waits to get it back until a busy thread yields it, up to the switch interval (5 ms): measured, a 6 kB key
# took 4 ms of that thread's time beside two busy threads, against 10 us in pieces below the threshold.
_GIL_FREE_HASH = 2047


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``, fed in pieces small enough that the calling thread keeps the lock."""
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), _GIL_FREE_HASH):
        digest.update(view[start:start + _GIL_FREE_HASH])
    return digest.hexdigest()


# Any of these from the cache is the cache's fault, never the run's: it is set aside and the run goes on.
CACHE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, diskcache.Timeout)


def _set_aside_files(directory: Path) -> Path:
    db = directory / diskcache.core.DBNAME
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except FileNotFoundError:
            pass  # absent, or another process set it aside first
    return db


def _diskcache(directory: Path, size_limit: int) -> diskcache.Cache:
    # Nothing is evicted and nothing expires, so no set needs diskcache's cull (one more SELECT per set, and with
    # it a release of the interpreter lock by the thread that stores every answer).
    return diskcache.Cache(str(directory), size_limit=size_limit, eviction_policy="none", cull_limit=0)


def _open(directory: Path, size_limit: int) -> diskcache.Cache | None:
    """Open the diskcache; a database that is not one (torn write, disk fault) is set aside and started anew.

    A cache that cannot be opened at all (a locked or read-only file) gives ``None``: the run goes on uncached.
    """
    try:
        return _diskcache(directory, size_limit)
    except sqlite3.OperationalError as exc:
        log.warning("cache: cannot open %s (%s); this run goes on without a cache (answers are recomputed)",
                    directory, exc)
        return None
    except sqlite3.DatabaseError as exc:
        db = _set_aside_files(directory)
        log.warning("cache: %s is corrupt (%s); moved to %s.corrupt, starting an empty cache (answers are recomputed)",
                    db, exc, db.name)
    try:
        return _diskcache(directory, size_limit)
    except CACHE_ERRORS as exc:
        log.warning("cache: cannot open a fresh cache in %s (%s); this run goes on without a cache", directory, exc)
        return None


def check_cache_dir(directory: str | Path) -> None:
    """Refuse a cache folder that cannot be written (read-only, below a file) before any work, in one line."""
    from persona_gen.core.errors import ConfigError, format_error

    path = Path(str(directory))
    probe_dir = path
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    problem = None
    if probe_dir.exists() and not probe_dir.is_dir():
        problem = f"{probe_dir} is a file"
    elif not os.access(probe_dir, os.W_OK | os.X_OK):
        problem = f"{probe_dir} is not writable (read-only folder or file system)"
    elif path.is_dir() and (path / diskcache.core.DBNAME).exists() and not os.access(path / diskcache.core.DBNAME,
                                                                                      os.W_OK):
        problem = f"{path / diskcache.core.DBNAME} is read-only"
    if problem:
        raise ConfigError(format_error(
            f"cache.dir {path}", expected="a folder this user can write", got=problem,
            where="cache.dir (PERSONA_GEN_CACHE_DIR or paths.cache_dir)",
            fix="make it writable, point PERSONA_GEN_CACHE_DIR at a writable folder, or run with cache=disabled"))


class CallCache:
    """A thread- and process-safe store of LM results, with hit/miss counters for the manifest.

    Any SQLite error, at open or at any later read, write or COMMIT, sets the cache aside with one warning: a
    corrupt database is moved to ``cache.db.corrupt`` and a fresh one started, a locked or full one is left alone
    and the rest of the run goes uncached. The cache only saves work; it never ends a run.

    ``retry_failures``: how many later runs call again an answer that was recorded as a failure (a parse failure,
    such as an HTTP 200 with a broken body); 0 makes recorded failures final.
    """

    def __init__(self, directory: str | Path | None, *, enabled: bool = True, size_limit_gb: float = 8.0,
                 retry_failures: int = 2) -> None:
        self.enabled = enabled and directory is not None
        self.directory = Path(str(directory)) if directory is not None else None
        self._size_limit = int(size_limit_gb * 2**30)
        self._cache = _open(Path(str(directory)), self._size_limit) if self.enabled else None
        self._lock = threading.Lock()
        self.retry_failures = max(0, int(retry_failures))
        self.hits = 0
        self.misses = 0
        self.corrupt = 0
        self.set_aside = 0

    @classmethod
    def from_cfg(cls, cfg: Any) -> CallCache:
        """The cache of the ``cache`` config group (``enabled``, ``dir``, ``size_limit_gb``, ``retry_failures``)."""
        return cls(cfg.dir, enabled=bool(cfg.enabled), size_limit_gb=float(cfg.size_limit_gb),
                   retry_failures=int(cfg.get("retry_failures", 2)))

    def _set_aside(self, exc: BaseException, during: str, cache: Any = None) -> None:
        """Stop using the database after an SQLite error: a corrupt one is moved away and started anew.

        ``cache``: the handle the failing operation used; if it was set aside already (a COMMIT of a transaction
        whose database failed earlier), the fresh cache is left alone.
        """
        if cache is not None and cache is not self._cache:
            return
        cache, self._cache = self._cache, None
        with self._lock:
            self.corrupt += 1
            self.set_aside += 1
        if cache is None:
            return
        try:
            cache.close()
        except CACHE_ERRORS:
            pass
        corrupt = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
        if corrupt and self.directory is not None:
            db = _set_aside_files(self.directory)
            log.warning("cache: %s failed during %s (%s); moved it to %s.corrupt and started an empty cache "
                        "(answers are recomputed)", db, during, exc, db.name)
            self._cache = _open(self.directory, self._size_limit)
        else:
            log.warning("cache: %s failed during %s (%s); the rest of this run goes on without a cache "
                        "(answers are recomputed, nothing is lost)", self.directory, during,
                        f"{type(exc).__name__}: {exc}")

    def get(self, key: str) -> dict[str, Any] | None:
        value = None
        if self._cache is not None:
            handle = self._cache
            try:
                value = handle.get(key, default=None)
            except CACHE_ERRORS as exc:
                self._set_aside(exc, "a read", handle)
            except Exception:
                # An entry that does not unpickle: treat it as absent; it is recomputed and overwritten.
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
            handle = self._cache
            try:
                handle.set(key, value)
            except CACHE_ERRORS as exc:
                # The cache only saves work: a store that fails (corrupt pages, a locked file) must not end the run.
                self._set_aside(exc, "a write", handle)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the gets and sets of one thread into one SQLite transaction (a no-op with the cache off).
        Entries become visible to other processes when it ends; a crash inside loses only its own sets. An SQLite
        error at BEGIN or COMMIT (a corrupt page is often found only there) sets the cache aside."""
        if self._cache is None:
            yield
            return
        handle = self._cache
        cm = handle.transact()
        try:
            cm.__enter__()
        except CACHE_ERRORS as exc:
            self._set_aside(exc, "BEGIN", handle)
            yield
            return
        try:
            yield
        except BaseException as exc:
            try:
                cm.__exit__(type(exc), exc, exc.__traceback__)
            except CACHE_ERRORS as err:
                self._set_aside(err, "ROLLBACK", handle)
            except BaseException as err:
                if err is not exc:
                    raise
            raise
        try:
            cm.__exit__(None, None, None)
        except CACHE_ERRORS as exc:
            self._set_aside(exc, "COMMIT", handle)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "corrupt": self.corrupt}

    def close(self) -> None:
        if self._cache is not None:
            try:
                self._cache.close()
            except CACHE_ERRORS as exc:
                log.warning("cache: closing %s failed (%s); nothing is lost", self.directory, exc)
