"""Streamed enrichment (streaming execution): the same calls, personas and rejections as the rounds, whatever
order the answers come back in, and each persona handed on as soon as its place is final."""

from __future__ import annotations

import contextlib
import random
from concurrent.futures import Future

import pytest

from persona_gen.core.calls import Caller
from persona_gen.core.records import Persona
from persona_gen.enrich.stage import run_enrich
from persona_gen.testing import FakeEngine
from tests.unit.enrich.conftest import adult_candidates, fake_caller

SEED = 11
CONSISTENCY_PROMPT = "Decide whether one real person"  # first words of CheckPersonaConsistency's instructions


@pytest.fixture(scope="module")
def candidates():
    return adult_candidates(12, SEED)


def _engine() -> FakeEngine:
    # "Zzyzx": the details do not parse (rejected); "Qwert": the verdict does not parse (kept, failure recorded);
    # "contradiction" (the fake LM's own rule): the verdict says inconsistent (rejected, replaced).
    def fails(prompt: str) -> bool:
        if CONSISTENCY_PROMPT in prompt:
            return "Qwert" in prompt
        return "Zzyzx" in prompt.rsplit("[[ ## persona ## ]]")[-1]

    return FakeEngine(fail_when=fails)


def _caller(path) -> Caller:
    return fake_caller(path, _engine())


class ShuffledCaller:
    """``submit`` / ``wait_any`` over a real caller, answering one pending call at a time in a random order (as a
    scheduler with many calls in flight may); records what was asked."""

    def __init__(self, caller: Caller, rng: random.Random) -> None:
        self.inner, self.client, self.stats, self.rng = caller, caller.client, caller.stats, rng
        self.waiting: dict[Future, tuple[str, object, dict]] = {}
        self.asked: list[tuple[str, bool]] = []

    def submit(self, stage, module, inputs, *, first=False, report=False):
        future: Future = Future()
        self.waiting[future] = (stage, module, inputs)
        self.asked.append((stage, first))
        return future

    def wait_any(self, futures):
        future = self.rng.choice([f for f in futures if f in self.waiting])
        stage, module, inputs = self.waiting.pop(future)
        future.set_result(self.inner.map(stage, module, [inputs])[0])
        return {future}

    @contextlib.contextmanager
    def reporting(self, stage, total, *, desc=None):
        yield


def _poison(cands):
    """Four of the first six rejected four ways, and a replacement rejected too; one verdict unreadable."""
    def with_(i, **attrs):
        cands[i] = cands[i].model_copy(update={"attributes": {**cands[i].attributes, **attrs}})

    cands = list(cands)
    with_(0, ancestry="Qwert")
    with_(1, ancestry="contradiction")
    with_(2, citizenship="Not a citizen of the U.S.", **{"place of birth": "Vermont/VT"})  # the rules reject it
    with_(3, ancestry="Zzyzx")
    with_(6, ancestry="contradiction")  # the first replacement: rejected as well
    return cands


@pytest.mark.parametrize("order_seed", range(6))
def test_streamed_enrichment_equals_the_rounds_in_any_answer_order(tmp_path, candidates, cfg, order_seed):
    cands = _poison(candidates)
    rounds_caller = _caller(tmp_path / "rounds")
    rounds = run_enrich(cands, num_personas=6, cfg=cfg, caller=rounds_caller, seed=SEED)
    streamed_caller = ShuffledCaller(_caller(tmp_path / "streamed"), random.Random(order_seed))
    emitted: list[tuple[int, Persona]] = []
    streamed = run_enrich(cands, num_personas=6, cfg=cfg, caller=streamed_caller, seed=SEED,
                          emit=lambda i, p: emitted.append((i, p)))
    assert [p.model_dump() for p in streamed.personas] == [p.model_dump() for p in rounds.personas]
    assert [r.model_dump() for r in streamed.rejections] == [r.model_dump() for r in rounds.rejections]
    assert streamed.candidates_used == rounds.candidates_used == 10
    assert {r.reason for r in rounds.rejections} == {"inconsistent", "rule:birthplace_citizenship", "lm_failure"}
    assert [(f.stage, f.kind) for f in rounds.personas[0].failures] == [("consistency", "parse")]
    # Each persona once, in order, as the list the step returns; the same calls and failures counted.
    assert [i for i, _ in emitted] == list(range(6)) and [p for _, p in emitted] == streamed.personas
    stats = {k: (v.calls, v.failures, dict(v.by_kind)) for k, v in streamed_caller.stats.items()}
    assert stats == {k: (v.calls, v.failures, dict(v.by_kind)) for k, v in rounds_caller.stats.items()}
    # The first candidate's calls are marked first (they go before the other run-scope calls), no other's.
    assert streamed_caller.asked[0] == ("enrich", True)
    assert [stage for stage, first in streamed_caller.asked if first] == ["enrich", "consistency"]


def test_a_plain_caller_runs_the_rounds_even_with_a_listener(tmp_path, candidates, cfg):
    emitted = []
    result = run_enrich(candidates[:3], num_personas=3, cfg=cfg, caller=_caller(tmp_path), seed=SEED,
                        emit=lambda i, p: emitted.append(i))
    assert len(result.personas) == 3 and emitted == []  # no submit: the barrier execution's rounds, nothing streams
