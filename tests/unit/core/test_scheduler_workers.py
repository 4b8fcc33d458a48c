"""An endpoint's worker threads: no more than its ceiling, every call answered, a crash raised where it is run."""

from __future__ import annotations

import threading

import dspy
import pytest

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.scheduler import Scheduler, _Workers
from persona_gen.core.steps import Call
from persona_gen.signatures import JudgeInVoice
from persona_gen.testing import fake_client
from tests.unit.core.test_scheduler_cache import _inputs, _Runtime


def test_workers_stay_within_the_ceiling_and_answer_every_call(tmp_path):
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=3)))
    module = dspy.Predict(JudgeInVoice)
    keys: list[str] = []
    for i in range(40):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: keys.append(k), {})
    ep = sched.endpoint("generator")
    sched.run(lambda: len(keys) == 40)
    assert len(set(keys)) == 40
    assert 1 <= len(ep.pool.threads) <= 3 and ep.max_in_flight <= 3
    sched.close()
    assert not any(t.is_alive() for t in ep.pool.threads)


def test_a_crash_in_a_worker_is_raised_by_the_scheduler(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("the attempt itself broke")

    monkeypatch.setattr(Caller, "attempt", broken)
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=2)))
    sched.submit(Call("judge", dspy.Predict(JudgeInVoice), _inputs(0), "generator"), lambda r, k: None, {})
    with pytest.raises(RuntimeError, match="the attempt itself broke"):
        sched.run(lambda: False)


def test_shutdown_lets_the_jobs_in_hand_end():
    workers = _Workers(2, "t")
    release, out = threading.Event(), []
    workers.run(lambda: release.wait(5) and "late", out.append, in_flight=1)
    threading.Timer(0.2, release.set).start()
    workers.shutdown()
    assert out == ["late"] and not workers.threads


def test_a_freed_slot_is_refilled_before_its_answer_is_handled(tmp_path):
    # One slot: when the first answer is handled (stored, called back), the next waiting call is in flight already,
    # so the slot does not wait for the bookkeeping; the last answer finds nothing left to send.
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=1)))
    module = dspy.Predict(JudgeInVoice)
    ep = sched.endpoint("generator")
    seen: list[int] = []
    for i in range(3):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: seen.append(ep.in_flight), {})
    sched.run(lambda: len(seen) == 3)
    sched.close()
    assert seen == [1, 1, 0]
    assert ep.max_in_flight == 1 and ep.calls == 3
