"""The one object a run's steps share: the call cache and the LM client of each model role."""

from __future__ import annotations

import threading
from typing import Any

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import LMClient, build_lm

__all__ = ["Runtime"]


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
