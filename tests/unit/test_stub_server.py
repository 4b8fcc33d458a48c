"""The loopback stub's request timings, its snapshot over HTTP, and its answers to DataDesigner-style prompts."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.fixtures.stub_server import StubServer, busy_intervals, busy_window, overlap


def _chat(server: StubServer, prompt: str, **body: object) -> dict:
    req = urllib.request.Request(f"{server.base_url}/chat/completions", method="POST",
                                 data=json.dumps({"model": "stub-model", "messages": [
                                     {"role": "user", "content": prompt}], **body}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def test_busy_intervals_merges_overlapping_requests():
    assert busy_intervals([(0, 2, 200), (1, 3, 200), (5, 6, 200)]) == [(0, 3), (5, 6)]


def test_busy_window_spans_first_arrival_to_last_answer():
    assert busy_window([(1.0, 2.0, 200)], [(0.5, 1.5, 200), (3.0, 4.5, 200)]) == pytest.approx(4.0)
    assert busy_window([]) == 0.0


def test_overlap_counts_only_time_both_are_busy():
    a = [(0, 2, 200), (4, 6, 200)]
    b = [(1, 5, 200)]
    assert overlap(a, b) == pytest.approx(2.0)  # [1, 2] and [4, 5]
    assert overlap(a, [(2.5, 3.5, 200)]) == 0.0


def test_stub_records_arrival_and_finish_of_each_request():
    with StubServer(latency_ms=50) as server:
        before = time.time()
        _chat(server, "hello")
        snap = server.snapshot()
    (arrived, finished, status), = snap["timings"]
    assert before <= arrived < finished <= time.time()
    assert finished - arrived >= 0.045
    assert status == 200
    assert snap["window_s"] == pytest.approx(finished - arrived)


def test_stub_snapshot_and_reset_over_http():
    with StubServer() as server:
        _chat(server, "hello")
        root = server.base_url.removesuffix("/v1")
        assert _get(f"{root}/stub/snapshot")["requests"] == 1
        assert "timings" not in _get(f"{root}/stub/snapshot?timings=0")
        urllib.request.urlopen(urllib.request.Request(f"{root}/stub/reset", data=b"", method="POST"), timeout=30)
        assert _get(f"{root}/stub/snapshot")["timings"] == []


def test_stub_answers_plain_text_to_a_plain_prompt():
    with StubServer() as server:
        content = _chat(server, "Answer this question: is it fine to rent?")["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert content.strip()


def test_stub_answers_a_schema_given_in_response_schema_tags():
    schema = {"type": "object", "properties": {"preference": {"enum": ["A", "B"]}}, "required": ["preference"]}
    prompt = f"Which is better?\n\n<response_schema>\n{json.dumps(schema)}\n</response_schema>"
    with StubServer() as server:
        content = _chat(server, prompt)["choices"][0]["message"]["content"]
    assert json.loads(content)["preference"] in ("A", "B")
