from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from persona_gen.core.calls import Caller
from persona_gen.testing import fake_caller


@pytest.fixture
def make_caller(tmp_path):
    """A factory of Callers on the fake LM, with rules (the first match answers) and a failure predicate."""
    made = []

    def make(rules: Sequence[Callable] = (), fail_when: Callable[[str], bool] | None = None) -> Caller:
        caller = fake_caller(tmp_path / f"cache{len(made)}", rules=rules, fail_when=fail_when, concurrency=1)
        made.append(caller)
        return caller

    yield make
    for caller in made:
        caller.cache.close()
