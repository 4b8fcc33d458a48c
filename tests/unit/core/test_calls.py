from __future__ import annotations

import dspy
import pytest
from omegaconf import OmegaConf

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.signatures import JudgeInVoice
from persona_gen.testing import FakeEngine, fake_client


def _client(concurrency=4):
    return fake_client(concurrency=concurrency)


def _inputs(n):
    return [{"persona": f"age: {i}", "question": "q?", "first_answer": "a", "second_answer": "b"} for i in range(n)]


def test_caller_warm_cache_makes_no_lm_call(tmp_path):
    client = _client()
    caller = Caller(client, CallCache(tmp_path), progress=False)
    first = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    calls = client.engine.calls
    second = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    assert client.engine.calls == calls == 5
    assert [r.outputs for r in first] == [r.outputs for r in second]
    assert all(r.cached for r in second)


def test_caller_results_keep_input_order_under_threads(tmp_path):
    serial = Caller(_client(1), CallCache(tmp_path / "a"), progress=False).map(
        "judge", dspy.Predict(JudgeInVoice), _inputs(16))
    threaded = Caller(_client(8), CallCache(tmp_path / "b"), progress=False).map(
        "judge", dspy.Predict(JudgeInVoice), _inputs(16))
    assert [r.outputs for r in serial] == [r.outputs for r in threaded]


def test_caller_records_bad_answer_as_failure_with_raw_text(tmp_path):
    client = _client(1)
    client.engine.fail_when = lambda prompt: "age: 3" in prompt
    caller = Caller(client, CallCache(tmp_path), progress=False)
    results = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1
    assert failed[0].failure.kind == "parse"
    assert "not json" in (failed[0].failure.raw or "")
    assert caller.stats["judge"].failures == 1


def test_fake_engine_is_deterministic_across_instances():
    a, b = FakeEngine(), FakeEngine()
    lm_a = dspy.LM("local/a", engine=a, cache=False)
    lm_b = dspy.LM("local/a", engine=b, cache=False)
    with dspy.context(lm=lm_a, adapter=dspy.JSONAdapter()):
        ra = dspy.Predict(JudgeInVoice)(**_inputs(1)[0])
    with dspy.context(lm=lm_b, adapter=dspy.JSONAdapter()):
        rb = dspy.Predict(JudgeInVoice)(**_inputs(1)[0])
    assert ra.preferred == rb.preferred


def test_build_lm_rejects_unknown_kind():
    from persona_gen.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"models\.generator\.kind"):
        build_lm(OmegaConf.create({"kind": "gpt9", "name": "x", "temperature": 0.0, "max_tokens": 1,
                                   "concurrency": 1}))


def _io_client(io, concurrency=8):
    return fake_client(concurrency=concurrency, io=io)


def test_asyncio_io_gives_the_same_results_as_threads(tmp_path):
    threads = Caller(_io_client("threads"), CallCache(tmp_path / "t"), progress=False)
    loop = Caller(_io_client("asyncio"), CallCache(tmp_path / "a"), progress=False)
    module = dspy.Predict(JudgeInVoice)
    assert not threads.uses_event_loop(module) and loop.uses_event_loop(module)
    a = threads.map("judge", module, _inputs(24))
    b = loop.map("judge", module, _inputs(24))
    assert [r.outputs for r in a] == [r.outputs for r in b]
    assert loop.client.engine.calls == 24
    assert loop.stats["judge"].calls == 24


def test_asyncio_io_reads_the_cache_and_records_failures(tmp_path):
    client = _io_client("asyncio")
    client.engine.fail_when = lambda prompt: "age: 2" in prompt
    caller = Caller(client, CallCache(tmp_path), progress=False)
    first = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(6))
    assert [r.ok for r in first] == [True, True, False, True, True, True]
    assert first[2].failure.kind == "parse" and "not json" in first[2].failure.raw
    second = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(6))
    assert client.engine.calls == 6  # the parse failure is an answer: cached with the rest
    assert all(r.cached for r in second)
    assert [r.outputs for r in first] == [r.outputs for r in second]


def test_module_without_aforward_runs_on_threads_under_asyncio_io(tmp_path):
    class SyncOnly(dspy.Module):
        def __init__(self):
            super().__init__()
            self.predict = dspy.Predict(JudgeInVoice)

        def forward(self, **kwargs):
            return self.predict(**kwargs)

    caller = Caller(_io_client("asyncio"), CallCache(tmp_path), progress=False)
    assert not caller.uses_event_loop(SyncOnly())
    results = caller.map("judge", SyncOnly(), _inputs(5))
    assert all(r.ok for r in results)


def test_no_event_loop_inside_a_running_loop(tmp_path):
    import asyncio

    caller = Caller(_io_client("asyncio"), CallCache(tmp_path), progress=False)

    async def inside():
        return caller.uses_event_loop(dspy.Predict(JudgeInVoice))

    assert asyncio.run(inside()) is False


@pytest.mark.parametrize("io", ["threads", "asyncio"])
def test_cache_is_read_and_written_on_the_calling_thread_only(tmp_path, io):
    import threading

    seen = set()

    class Recording(CallCache):
        def get(self, key):
            seen.add(threading.get_ident())
            return super().get(key)

        def set(self, key, value):
            seen.add(threading.get_ident())
            super().set(key, value)

    caller = Caller(_io_client(io), Recording(tmp_path), progress=False)
    results = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(20))
    assert all(r.ok for r in results)
    assert seen == {threading.get_ident()}


def test_config_rejects_an_unknown_io_mode(tmp_path):
    from persona_gen.core.config import validate
    from persona_gen.core.errors import ConfigError
    from tests.helpers import compose_run

    validate(compose_run(tmp_path / "out", tmp_path / "cache", ["models.judge.io=asyncio"]))
    with pytest.raises(ConfigError, match=r"models\.judge\.io"):
        validate(compose_run(tmp_path / "out", tmp_path / "cache", ["models.judge.io=processes"]))


@pytest.mark.parametrize("io", ["threads", "asyncio"])
def test_calls_leave_no_dspy_history(tmp_path, io):
    # DSPy would keep 10,000 prompts and answers (globally and per LM): memory and GC time at scale.
    from dspy.clients.base_lm import GLOBAL_HISTORY

    before = len(GLOBAL_HISTORY)
    client = _io_client(io)
    results = Caller(client, CallCache(tmp_path), progress=False).map("judge", dspy.Predict(JudgeInVoice),
                                                                     _inputs(10))
    assert all(r.ok for r in results) and client.engine.calls == 10
    assert len(GLOBAL_HISTORY) == before
    assert client.lm.history == []


def _server_like(concurrency=1):
    """The fake LM standing in for a server: its answers may change between runs, so recorded failures retry."""
    import dataclasses

    return dataclasses.replace(_client(concurrency), deterministic=False)


def test_recorded_parse_failure_is_retried_on_a_rerun_and_counted(tmp_path):
    client = _server_like()
    client.engine.fail_when = lambda prompt: "age: 3" in prompt  # a server fault: HTTP 200, broken body
    first = Caller(client, CallCache(tmp_path), progress=False)
    assert sum(not r.ok for r in first.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))) == 1
    client.engine.fail_when = None  # the server is healthy again
    calls = client.engine.calls
    again = Caller(client, CallCache(tmp_path), progress=False)
    results = again.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    assert all(r.ok for r in results)
    assert client.engine.calls == calls + 1  # only the failed one is called again
    stats = again.stats["judge"].as_dict()
    assert (stats["failures_retried"], stats["failures_from_cache"], stats["failures"]) == (1, 0, 0)


def test_recorded_failure_retries_are_bounded_by_retry_failures(tmp_path):
    client = _server_like()
    client.engine.fail_when = lambda prompt: "age: 3" in prompt  # a failure that persists
    calls = []
    for _ in range(4):
        before = client.engine.calls
        caller = Caller(client, CallCache(tmp_path, retry_failures=2), progress=False)
        caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
        calls.append(client.engine.calls - before)
    assert calls == [5, 1, 1, 0]  # the first run, two retries, then the failure is final
    assert caller.stats["judge"].failures_from_cache == 1 and caller.stats["judge"].retried == 0


def test_retry_failures_zero_makes_recorded_failures_final(tmp_path):
    client = _server_like()
    client.engine.fail_when = lambda prompt: "age: 3" in prompt
    Caller(client, CallCache(tmp_path, retry_failures=0), progress=False).map(
        "judge", dspy.Predict(JudgeInVoice), _inputs(5))
    client.engine.fail_when = None
    calls = client.engine.calls
    caller = Caller(client, CallCache(tmp_path, retry_failures=0), progress=False)
    results = caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    assert client.engine.calls == calls and sum(not r.ok for r in results) == 1


def test_deterministic_lm_failures_are_not_retried(tmp_path):
    client = _client(1)  # the fake is in-process: a retry would only repeat the same answer
    client.engine.fail_when = lambda prompt: "age: 3" in prompt
    Caller(client, CallCache(tmp_path), progress=False).map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    calls = client.engine.calls
    caller = Caller(client, CallCache(tmp_path), progress=False)
    caller.map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    assert client.engine.calls == calls
    assert caller.stats["judge"].failures_from_cache == 1


def test_parse_failure_message_names_expected_fields_and_raw_answer(tmp_path):
    client = _client(1)
    client.engine.fail_when = lambda prompt: "age: 3" in prompt
    results = Caller(client, CallCache(tmp_path), progress=False).map("judge", dspy.Predict(JudgeInVoice), _inputs(5))
    message = next(r.failure.message for r in results if not r.ok)
    assert "expected fields ['preferred']" in message
    assert "raw answer 'this is not json" in message


def test_call_stats_round_trip_and_merge():
    from persona_gen.core.calls import CallStats

    a = CallStats(3, 2, 1, {"parse": 1}, 1, 0)
    b = CallStats.from_dict(a.as_dict())
    b.merge(CallStats.from_dict({"lm_calls": 1, "cache_hits": 0, "failures": 0, "failures_by_kind": {}}))
    assert b.as_dict() == {"lm_calls": 4, "cache_hits": 2, "failures": 1, "failures_by_kind": {"parse": 1},
                           "failures_retried": 1, "failures_from_cache": 0}
