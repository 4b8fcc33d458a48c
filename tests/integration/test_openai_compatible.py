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
    """One call through an engine (sync or async): its Response, or the exception it raised. ``engine_cls`` may be
    ``(cls, http_client)`` for the sync engine."""
    import asyncio

    from dspy.lm15 import Message, Request

    if isinstance(engine_cls, tuple):
        engine_cls, client = engine_cls
        kwargs["http_client"] = client
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
        try:
            return engine.complete(request)
        finally:
            engine.close()
    except Exception as exc:  # the test looks at which one
        return exc


# The sync engine with each HTTP client, and the async one.
ENGINES = ["OpenAICompatibleEngine:curl", "OpenAICompatibleEngine:urllib3", "AsyncOpenAICompatibleEngine"]


def _engine(name: str):
    from persona_gen.core import http_engine

    cls_name, _, client = name.partition(":")
    cls = getattr(http_engine, cls_name)
    return (cls, client) if client else cls


@pytest.mark.parametrize("name", ENGINES)
def test_engine_answers_and_sends_the_key_only_in_its_header(stub_server, name):
    server = stub_server(model="stub-model")
    answer = _engine_call(_engine(name), server.base_url, api_key="sk-engine-test")
    assert not isinstance(answer, Exception), answer
    assert answer.finish_reason == "stop" and answer.usage.input_tokens > 0
    assert server.authorization["Bearer sk-engine-test"] == 1


@pytest.mark.parametrize("name", ENGINES)
def test_engine_errors_over_the_wire(stub_server, name):
    # What DSPy retries (rate limit, server error, timeout, unreachable) arrives as the matching dspy.lm15 error.
    import socket

    from dspy import lm15

    cls = _engine(name)
    rate = _engine_call(cls, stub_server(chaos_rate=1.0, chaos_kinds=("429",)).base_url)
    # The stub says Retry-After: 0; libcurl reads 0 as no Retry-After (DSPy's own backoff then, the same for the
    # scheduler: test_engine_reads_retry_after).
    assert isinstance(rate, lm15.RateLimitError) and rate.retry_after in (0.0, None)
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


@pytest.mark.parametrize("client", ["curl", "urllib3"])
def test_sync_engine_answers_many_threads_over_kept_alive_connections(stub_server, client):
    # 8 threads x 10 calls: every answer is the one for its own request, and each thread's connection is reused.
    import json
    from concurrent.futures import ThreadPoolExecutor

    from dspy.lm15 import Config, Message, Request

    from persona_gen.core.http_engine import OpenAICompatibleEngine

    server = stub_server(model="stub-model")
    engine = OpenAICompatibleEngine(server.base_url, "stub-model", http_client=client, concurrency=8,
                                    structured_output="json_schema")

    def ask(i: int) -> tuple[int, str]:
        fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {"n": {"const": i}},
                                                  "required": ["n"]}}
        request = Request(model="stub-model", messages=(Message.user(f"question {i}"),),
                          config=Config(response_format=fmt))
        return i, engine.complete(request).message.parts[0].text

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(80)))
    finally:
        engine.close()
    assert [json.loads(text)["n"] for _, text in answers] == list(range(80))
    seen = server.snapshot(timings=False)
    assert engine.requests == 80 and seen["requests"] == 80
    # Kept alive: one connection per thread (curl) or per pooled connection (urllib3), not one per call.
    assert 1 <= seen["connections"] <= 8


@pytest.mark.parametrize("client", ["curl", "urllib3"])
def test_sync_engine_goes_through_the_proxy_the_environment_names(stub_server, monkeypatch, client):
    # The stub stands in for the proxy: the engine's base URL is a closed port, so only the proxy can answer.
    import socket

    from dspy import lm15

    from persona_gen.core.http_engine import OpenAICompatibleEngine

    proxy = stub_server(model="stub-model")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
    answer = _engine_call((OpenAICompatibleEngine, client), f"http://127.0.0.1:{port}/v1")
    assert not isinstance(answer, Exception), answer
    assert proxy.snapshot(timings=False)["requests"] == 1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    refused = _engine_call((OpenAICompatibleEngine, client), f"http://127.0.0.1:{port}/v1")
    assert isinstance(refused, lm15.TransportError), refused
    assert proxy.snapshot(timings=False)["requests"] == 1


@pytest.fixture
def tls_server(tmp_path):
    """A loopback https server with a self-signed certificate for 127.0.0.1, answering a chat completion;
    yields (base_url, certificate file)."""
    import json
    import shutil
    import ssl
    import subprocess

    from tests.fixtures.deny_server import canned_server

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed (it makes the test's certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    body = json.dumps({"model": "tls-model", "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with canned_server(200, body, tls=context) as url:
        yield url, cert


@pytest.mark.parametrize("client", ["curl", "urllib3"])
def test_sync_engine_verifies_https_against_the_cas_python_trusts(tls_server, monkeypatch, client):
    # A self-signed server is refused, and accepted once SSL_CERT_FILE names its certificate (as Python's ssl,
    # urllib3 and aiohttp honour it).
    from dspy import lm15

    from persona_gen.core.http_engine import OpenAICompatibleEngine

    url, cert = tls_server
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    refused = _engine_call((OpenAICompatibleEngine, client), url)
    assert isinstance(refused, lm15.TransportError) and "cannot reach" in str(refused), refused
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    answer = _engine_call((OpenAICompatibleEngine, client), url)
    assert not isinstance(answer, Exception), answer
    assert answer.model == "tls-model"


@pytest.fixture
def retry_after_server():
    """A loopback server answering every POST with HTTP 429 and ``Retry-After: 7``."""
    from tests.fixtures.deny_server import canned_server

    with canned_server(429, b'{"error": {"message": "slow down"}}', headers={"Retry-After": "7"}) as url:
        yield url


@pytest.mark.parametrize("name", ENGINES)
def test_engine_reads_retry_after(retry_after_server, name):
    from dspy import lm15

    rate = _engine_call(_engine(name), retry_after_server)
    assert isinstance(rate, lm15.RateLimitError) and rate.retry_after == 7.0 and "slow down" in str(rate)
