"""The whole pipeline against a loopback OpenAI-compatible server: it completes, and the API key is a secret."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from persona_gen.pipeline import run
from tests.helpers import compose_run

pytestmark = pytest.mark.integration

OVERRIDES = ["model@models.generator=openai_compatible", "model@models.judge=openai_compatible", "scale=tiny",
             "sampler.fidelity_sample_size=2000"]


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    from tests.fixtures.stub_server import StubServer

    api_key = f"sk-persona-gen-test-{secrets.token_hex(12)}"
    root = tmp_path_factory.mktemp("openai_compatible")
    with StubServer(model="stub-model") as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PERSONA_GEN_BASE_URL", server.base_url)
        mp.setenv("PERSONA_GEN_MODEL", "stub-model")
        mp.setenv("PERSONA_GEN_API_KEY", api_key)
        result = run(compose_run(root / "run", root / "cache", OVERRIDES))
        yield root, result, server, api_key


def test_openai_compatible_pipeline_completes(served_run):
    _, result, server, _ = served_run
    assert (result.dataset_dir / "data/feedback/train-00000-of-00001.parquet").is_file()
    assert result.card_path.is_file()
    assert result.lm_calls > 0
    assert server.requests >= result.lm_calls
    assert server.status_counts[200] >= result.lm_calls


def test_openai_compatible_stub_answers_all_parse(served_run):
    # The stub answers every signature's schema; a failure here means a signature gained a constraint the stub
    # (tests/fixtures/stub_server.py: fake_value + _fit) does not satisfy yet.
    _, result, _, _ = served_run
    failures = {stage: s["failures_by_kind"] for stage, s in result.manifest["stages"].items() if s["failures"]}
    assert failures == {}


def test_openai_compatible_records_the_server_model(served_run):
    _, result, _, _ = served_run
    models = result.manifest["models"]
    assert models["generator"]["kind"] == "openai_compatible"
    assert models["generator"]["name"] == "stub-model"


def test_openai_compatible_api_key_reaches_server_in_authorization_header(served_run):
    _, _, server, api_key = served_run
    assert set(server.authorization) == {f"Bearer {api_key}"}


def test_openai_compatible_api_key_is_in_no_file_of_run_or_cache(served_run):
    root, _, _, api_key = served_run
    files = _files(root / "run", root / "cache")
    assert len(files) > 5
    leaks = [str(p) for p in files if api_key.encode() in p.read_bytes()]
    assert leaks == []


def test_stub_answers_the_requested_json_schema_and_lists_models(stub_server):
    server = stub_server(model="stub-model")
    schema = {"type": "object", "properties": {"preferred": {"enum": ["first", "second", "tie"]},
                                               "score": {"type": "integer"}}, "required": ["preferred", "score"]}
    body = {"model": "stub-model", "messages": [{"role": "user", "content": "pick one"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        models = client.get("/models").json()
        first = client.post("/chat/completions", json=body).json()
        again = client.post("/chat/completions", json=body).json()
    assert [m["id"] for m in models["data"]] == ["stub-model"]
    value = json.loads(first["choices"][0]["message"]["content"])
    assert value["preferred"] in ("first", "second", "tie") and isinstance(value["score"], int)
    assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]


def test_stub_reads_output_fields_from_a_json_adapter_prompt():
    import dspy

    from persona_gen.signatures import JudgeInVoice
    from tests.fixtures.stub_server import output_schema_from_prompt

    messages = dspy.JSONAdapter().format(JudgeInVoice, demos=[], inputs={
        "persona": "age: 30", "question": "q?", "first_answer": "a", "second_answer": "b"})
    schema = output_schema_from_prompt("\n".join(m["content"] for m in messages))
    assert schema["properties"] == {"preferred": {"enum": ["first", "second", "tie"]}}


def _engine_call(engine_cls, base_url: str, **kwargs):
    """One call through an engine (sync or async): its Response, or the exception it raised."""
    import asyncio

    from dspy.lm15 import Message, Request

    request = Request(model="stub-model", messages=(Message.user("Say hi."),))
    engine = engine_cls(base_url, "stub-model", **kwargs)
    try:
        if engine_cls.__name__.startswith("Async"):
            async def go():
                try:
                    return await engine.complete(request)
                finally:
                    await engine.aclose()

            return asyncio.run(go())
        return engine.complete(request)
    except Exception as exc:  # the test looks at which one
        return exc


ENGINES = ["OpenAICompatibleEngine", "AsyncOpenAICompatibleEngine"]


@pytest.mark.parametrize("name", ENGINES)
def test_engine_answers_and_sends_the_key_only_in_its_header(stub_server, name):
    from persona_gen.core import http_engine

    server = stub_server(model="stub-model")
    answer = _engine_call(getattr(http_engine, name), server.base_url, api_key="sk-engine-test")
    assert not isinstance(answer, Exception), answer
    assert answer.finish_reason == "stop" and answer.usage.input_tokens > 0
    assert server.authorization["Bearer sk-engine-test"] == 1


@pytest.mark.parametrize("name", ENGINES)
def test_engine_errors_over_the_wire(stub_server, name):
    # What DSPy retries (rate limit, server error, timeout, unreachable) arrives as the matching dspy.lm15 error.
    import socket

    from dspy import lm15

    from persona_gen.core import http_engine

    cls = getattr(http_engine, name)
    rate = _engine_call(cls, stub_server(chaos_rate=1.0, chaos_kinds=("429",)).base_url)
    assert isinstance(rate, lm15.RateLimitError) and rate.retry_after == 0.0
    boom = _engine_call(cls, stub_server(chaos_rate=1.0, chaos_kinds=("500",)).base_url)
    assert isinstance(boom, lm15.ServerError) and boom.status == 500
    held = _engine_call(cls, stub_server(chaos_rate=1.0, chaos_kinds=("timeout",), hang_s=3).base_url, timeout_s=0.5)
    assert isinstance(held, lm15.TimeoutError), held
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    refused = _engine_call(cls, f"http://127.0.0.1:{port}/v1")
    assert isinstance(refused, lm15.TransportError) and "cannot reach" in str(refused), refused
