"""The scheduler's cache writes: answers are grouped into transactions, and none stays uncommitted while it waits."""

from __future__ import annotations

import threading
import time

import dspy

from persona_gen.core import scheduler as scheduler_mod
from persona_gen.core.cache import CallCache
from persona_gen.core.scheduler import Scheduler
from persona_gen.core.steps import Call
from persona_gen.signatures import JudgeInVoice
from persona_gen.testing import fake_client


class _Runtime:
    def __init__(self, cache: CallCache, client) -> None:
        self.cache = cache
        self._client = client

    def client(self, role: str):
        return self._client


def _inputs(i: int) -> dict[str, str]:
    return {"persona": f"age: {i}", "question": "q?", "first_answer": "a", "second_answer": "b"}


def test_an_answer_is_committed_while_the_scheduler_waits_for_a_slow_one(tmp_path):
    release = threading.Event()

    def slow(prompt, schema):
        if "age: 1\n" in prompt:
            release.wait(30)
        return None

    cache = CallCache(tmp_path)
    sched = Scheduler(_Runtime(cache, fake_client(rules=[slow], concurrency=2)))
    module = dspy.Predict(JudgeInVoice)
    keys: dict[int, str] = {}
    for i in (0, 1):
        sched.submit(Call("judge", module, _inputs(i), "generator"),
                     lambda result, key, i=i: keys.__setitem__(i, key), {})
    runner = threading.Thread(target=sched.run, args=(lambda: len(keys) == 2,), daemon=True)
    runner.start()
    try:
        # Another process's view of the cache (a connection of its own): the fast answer shows up although the
        # slow one is still out, within the commit interval.
        other = CallCache(tmp_path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (0 in keys and other.get(keys[0]) is not None):
            time.sleep(0.01)
        assert 0 in keys and other.get(keys[0]) is not None
        assert 1 not in keys
    finally:
        release.set()
        runner.join(30)
    assert not runner.is_alive() and other.get(keys[1]) is not None


def test_answers_that_keep_coming_share_transactions(tmp_path, monkeypatch):
    commits = []
    cache = CallCache(tmp_path)
    real = cache.transaction

    def counted():
        commits.append(1)
        return real()

    monkeypatch.setattr(cache, "transaction", counted)
    monkeypatch.setattr(scheduler_mod, "COMMIT_EVERY_S", 60.0)
    sched = Scheduler(_Runtime(cache, fake_client(concurrency=1)))
    module = dspy.Predict(JudgeInVoice)
    done: list[str] = []
    n = 40

    def chain(i: int) -> None:  # each answer asks for the next call: a steady stream of single answers
        sched.submit(Call("judge", module, _inputs(i), "generator"),
                     lambda result, key: (done.append(key), i + 1 < n and chain(i + 1)), {})

    chain(0)
    sched.run(lambda: len(done) == n)
    assert len(done) == n
    fresh = CallCache(tmp_path)
    assert all(fresh.get(k) is not None for k in done)  # all stored and committed at the end
    # One answer at a time, each the moment the one before was stored, well within the interval: one transaction
    # (a COMMIT per answer before).
    assert len(commits) <= 2, len(commits)
