"""The one object a run's steps share: the call cache and the LM client of each model role."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import LMClient, build_lm

__all__ = ["NO_FULL_COLLECTION", "Runtime", "full_collections_paused"]

# The oldest generation's gc threshold while a run goes on: young collections between two full ones, never reached.
NO_FULL_COLLECTION = 10**9
_paused = [0]  # depth of full_collections_paused (only the outermost one acts)
_paused_lock = threading.Lock()


@contextlib.contextmanager
def full_collections_paused() -> Iterator[None]:
    """No full run of the cyclic garbage collector inside (young collections, which free each call's own cycles,
    go on); the objects made before are set aside from it. Both undone at the end of the outermost one.

    A full collection walks every object and stops every thread. A run keeps its results, which grow the oldest
    generation, so one ran every ~5 s of a stream, each longer than the last (0.25-0.4 s at 400 personas, 7% of
    the run), none finding anything, while the endpoints waited for the calls it held up.
    """
    with _paused_lock:
        outer = _paused[0] == 0
        _paused[0] += 1
        if outer:
            thresholds = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], NO_FULL_COLLECTION))
    try:
        yield
    finally:
        with _paused_lock:
            _paused[0] -= 1
            if outer:
                gc.set_threshold(*thresholds)
                gc.unfreeze()


class Runtime:
    """Cache + LM clients by role (``models.<role>``), built once each, on first use.

    Roles are the keys of ``models`` (``generator``, ``judge`` or any the user adds); ``extra`` holds clients a step
    builds from a config of its own (candidate generators).
    """

    def __init__(self, cfg: Any, *, cache: CallCache | None = None) -> None:
        self.cfg = cfg
        self.cache = cache if cache is not None else CallCache.from_cfg(cfg.cache)
        self._clients: dict[str, LMClient] = {}
        self._lock = threading.Lock()

    def client(self, role: str, model_cfg: Any = None) -> LMClient:
        with self._lock:
            if role not in self._clients:
                if model_cfg is None:
                    models = self.cfg.models
                    if role not in models:
                        raise ConfigError(format_error("model role", expected=f"one of {sorted(models)}", got=role,
                                                       where="pipeline step 'role'", fix="add it under models:"))
                    model_cfg = models[role]
                self._clients[role] = build_lm(model_cfg, role=role)
            return self._clients[role]

    def caller(self, role: str, *, stats: dict[str, CallStats] | None = None, model_cfg: Any = None) -> Caller:
        return Caller(self.client(role, model_cfg), self.cache, stats=stats)

    def close(self) -> None:
        self.cache.close()
