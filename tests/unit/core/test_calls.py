from __future__ import annotations

import dspy
import pytest
from omegaconf import OmegaConf

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.signatures import JudgeInVoice
from persona_gen.testing import FakeEngine


def _client(concurrency=4):
    return build_lm(OmegaConf.create({"kind": "fake", "name": "fake-v1", "temperature": 0.0, "max_tokens": 64,
                                      "concurrency": concurrency}))


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
