from __future__ import annotations

import json
import logging

import dspy
from omegaconf import OmegaConf

from persona_gen.core import progress
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.core.records import Failure
from persona_gen.signatures import JudgeInVoice


def _client(concurrency=1):
    return build_lm(OmegaConf.create({"kind": "fake", "name": "fake-v1", "temperature": 0.0, "max_tokens": 64,
                                      "concurrency": concurrency}))


def _inputs(n):
    return [{"persona": f"age: {i}", "question": "q?", "first_answer": "a", "second_answer": "b"} for i in range(n)]


def test_progress_step_line_counts_calls_hits_failures_retries(caplog):
    rep = progress.RunReporter(bars=False)
    rep.step_started("judge", 3)
    rep.call_done("judge", cached=False)
    rep.call_done("judge", cached=True)
    rep.call_done("judge", cached=False, failure=Failure(stage="judge", kind="parse", message="bad", raw="{"))
    with caplog.at_level(logging.INFO, logger="persona_gen"):
        rep.step_finished("judge", retries=2)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step judge")]
    assert line.startswith("step judge: 2 calls, 1 cache hits, 1 failures (parse: 1), 2 retries, ")
    assert line.endswith(" s")


def test_progress_failures_jsonl_holds_step_ids_kind_message_raw(tmp_path):
    with progress.reporting(tmp_path, bars=False) as rep:
        client = _client()
        client.engine.fail_when = lambda prompt: "age: 3" in prompt
        Caller(client, CallCache(tmp_path / "cache")).map("judge", dspy.Predict(JudgeInVoice), _inputs(5),
                                                          ids=[{"persona_id": f"p{i}"} for i in range(5)])
    path = rep.write_failures()
    assert path == tmp_path / "failures.jsonl"
    [row] = [json.loads(line) for line in path.read_text().splitlines()]
    assert row["step"] == "judge" and row["kind"] == "parse"
    assert row["ids"]["persona_id"] == "p3" and row["ids"]["index"] == 3
    assert "not json" in row["raw"] and row["message"]
    summary = rep.summary_lines()
    assert "failures: 1 (parse: 1; by step judge: 1)" in summary
    assert f"raw answers: {path}" in summary


def test_progress_no_failures_writes_no_file(tmp_path):
    with progress.reporting(tmp_path, bars=False) as rep:
        Caller(_client(), CallCache(tmp_path / "cache")).map("judge", dspy.Predict(JudgeInVoice), _inputs(2))
    assert rep.write_failures() is None
    assert not (tmp_path / "failures.jsonl").exists()
    assert rep.summary_lines()[-1] == "failures: 0"


def test_progress_warm_rerun_counts_cache_hits(tmp_path):
    cache = CallCache(tmp_path / "cache")
    Caller(_client(), cache).map("judge", dspy.Predict(JudgeInVoice), _inputs(4))
    with progress.reporting(tmp_path, bars=False) as rep:
        Caller(_client(), cache).map("judge", dspy.Predict(JudgeInVoice), _inputs(4))
    step = rep.steps["judge"]
    assert (step.calls, step.cache_hits) == (0, 4)


def test_progress_bars_end_at_full_even_when_the_plan_was_high(tmp_path):
    with progress.reporting(tmp_path, bars=True) as rep:
        rep.plan(100)
        Caller(_client(), CallCache(tmp_path / "cache")).map("judge", dspy.Predict(JudgeInVoice), _inputs(3))
        overall = rep._overall
        assert overall.total == 100 and overall.n == 3
    assert overall.total == overall.n == 3


def test_progress_retries_are_requests_beyond_one_per_call(tmp_path):
    client = _client()

    client.engine.requests = 0
    original = client.engine.complete

    def complete(request):  # every call is sent twice: one retry each
        client.engine.requests += 2
        return original(request)

    client.engine.complete = complete
    with progress.reporting(tmp_path, bars=False) as rep:
        Caller(client, CallCache(tmp_path / "cache")).map("judge", dspy.Predict(JudgeInVoice), _inputs(3))
    assert rep.steps["judge"].retries == 3


def test_progress_manifest_fields_have_timings_and_versions(tmp_path):
    with progress.reporting(tmp_path, bars=False) as rep:
        Caller(_client(), CallCache(tmp_path / "cache")).map("judge", dspy.Predict(JudgeInVoice), _inputs(2))
    fields = rep.manifest_fields()
    assert fields["timings"]["steps"]["judge"]["calls"] == 2
    assert fields["timings"]["total_s"] >= fields["timings"]["steps"]["judge"]["seconds"] >= 0
    assert {"python", "persona_gen", "dspy", "hydra-core"} <= set(fields["versions"])
