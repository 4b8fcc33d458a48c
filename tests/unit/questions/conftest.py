from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from omegaconf import OmegaConf

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm


@pytest.fixture
def make_caller(tmp_path):
    """A factory of Callers on the fake LM, with rules (the first match answers) and a failure predicate."""
    made = []

    def make(rules: Sequence[Callable] = (), fail_when: Callable[[str], bool] | None = None) -> Caller:
        client = build_lm(OmegaConf.create({"kind": "fake", "name": "fake-v1", "temperature": 0.0,
                                            "max_tokens": 64, "concurrency": 1}))
        client.engine.rules[:0] = list(rules)
        client.engine.fail_when = fail_when
        caller = Caller(client, CallCache(tmp_path / f"cache{len(made)}"), progress=False)
        made.append(caller)
        return caller

    yield make
    for caller in made:
        caller.cache.close()
