"""The OpenAI-compatible engines' pure parts: request bodies, error mapping, secrets, proxies, bad config.

Their HTTP behaviour against a real loopback server is in tests/integration/test_openai_compatible.py and
tests/integration/test_chaos.py.
"""

from __future__ import annotations

import pytest
from dspy import lm15
from dspy.lm15 import Config, Message, Request

from persona_gen.core.errors import ConfigError
from persona_gen.core.http_engine import (
    AsyncOpenAICompatibleEngine,
    OpenAICompatibleEngine,
    _error_message,
    _http_error,
)

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _request(response_format=None, **config):
    return Request(model="m", messages=(Message.user("hello"),), system="be brief",
                   config=Config(response_format=response_format, **config))


@pytest.mark.parametrize("engine_cls", [OpenAICompatibleEngine, AsyncOpenAICompatibleEngine])
def test_body_per_structured_output(engine_cls):
    fmt = {"type": "json_schema", "schema": SCHEMA}
    schema = engine_cls("http://127.0.0.1:9/v1", "m", structured_output="json_schema")
    body = schema.body(_request(fmt, temperature=0.0, max_tokens=7, seed=3, stop=("END",)))
    assert body == {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                               {"role": "user", "content": "hello"}],
                    "temperature": 0.0, "max_tokens": 7, "seed": 3, "stop": ["END"],
                    "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "outputs", "schema": SCHEMA, "strict": True}}}
    json_mode = engine_cls("http://127.0.0.1:9/v1", "m", structured_output="json_object")
    assert json_mode.body(_request(fmt))["response_format"] == {"type": "json_object"}
    assert json_mode.body(_request({"type": "json_object"}))["response_format"] == {"type": "json_object"}
    text = engine_cls("http://127.0.0.1:9/v1", "m", structured_output="text")
    assert "response_format" not in text.body(_request(fmt))
    # What DSPy's JSONAdapter is told it may send.
    assert schema.supports_response_schema and not json_mode.supports_response_schema
    assert "response_format" in json_mode.supported_params and "response_format" not in text.supported_params


@pytest.mark.parametrize(("status", "message", "cls"), [
    (401, "bad key", lm15.AuthError),
    (403, "forbidden", lm15.AuthError),
    (429, "slow down", lm15.RateLimitError),
    (408, "took too long", lm15.TimeoutError),
    (504, "gateway timeout", lm15.TimeoutError),
    (500, "boom", lm15.ServerError),
    (503, "overloaded", lm15.ServerError),
    (400, "maximum context length is 2048 tokens", lm15.ContextLengthError),
    (400, "bad field", lm15.InvalidRequestError),
    (404, "no such model", lm15.InvalidRequestError),
    (418, "teapot", lm15.ProviderError),
])
def test_http_status_maps_to_the_dspy_error_dspy_retries_or_reports(status, message, cls):
    error = _http_error(status, message, 2.0)
    assert type(error) is cls
    assert error.status == status and message in str(error)


def test_retry_after_reaches_dspys_backoff():
    assert _http_error(429, "x", 3.0).retry_after == 3.0


def test_error_message_reads_openai_and_plain_bodies():
    assert _error_message(b'{"error": {"message": "model not found", "type": "x"}}') == "model not found"
    assert _error_message(b'{"error": "plain"}') == "plain"
    assert _error_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert _error_message(b"") == "(empty body)"


@pytest.mark.parametrize("engine_cls", [OpenAICompatibleEngine, AsyncOpenAICompatibleEngine])
def test_api_key_is_only_in_the_authorization_header(engine_cls):
    key = "sk-never-print-me-123"
    engine = engine_cls("http://127.0.0.1:9/v1", "m", api_key=key)
    assert key not in repr(engine) and key not in str(engine)
    assert engine._headers["Authorization"] == f"Bearer {key}"
    assert "Authorization" not in engine_cls("http://127.0.0.1:9/v1", "m")._headers


def test_malformed_answer_is_a_retryable_server_error():
    engine = OpenAICompatibleEngine("http://127.0.0.1:9/v1", "m")
    with pytest.raises(lm15.ServerError, match="malformed chat completion"):
        engine._answer(200, None, b"<html>not json</html>")
    with pytest.raises(lm15.ServerError):
        engine._answer(200, None, b'{"choices": []}')
    ok = engine._answer(200, None, b'{"choices": [{"message": {"content": "{}"}, "finish_reason": "length"}], '
                                   b'"usage": {"prompt_tokens": 3, "completion_tokens": 1}}')
    assert ok.finish_reason == "length" and ok.usage.input_tokens == 3


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"structured_output": "grammar"}, "structured_output"),
    ({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
    ({"base_url": "ftp://host/v1"}, "base_url"),
    ({"http_client": "requests"}, "http_client"),
])
def test_bad_connection_settings_raise_one_clear_error(kwargs, field):
    args = {"base_url": "http://127.0.0.1:9/v1", **kwargs}
    with pytest.raises(ConfigError, match=field) as info:
        OpenAICompatibleEngine(args.pop("base_url"), "m", **args)
    assert "must be" in str(info.value) and "but got" in str(info.value) and "conf/model" in str(info.value)


def test_proxy_from_the_environment_is_resolved_once(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert OpenAICompatibleEngine("http://10.1.2.3:8000/v1", "m").proxy is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert OpenAICompatibleEngine("http://10.1.2.3:8000/v1", "m").proxy == "http://proxy.internal:3128"
    assert AsyncOpenAICompatibleEngine("http://10.1.2.3:8000/v1", "m").proxy == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "10.1.2.3")
    assert OpenAICompatibleEngine("http://10.1.2.3:8000/v1", "m").proxy is None


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_server_fails_the_endpoint_check_in_seconds():
    import time

    from persona_gen.core.errors import ConfigError
    from persona_gen.core.http_engine import check_endpoint

    url = f"http://127.0.0.1:{_closed_port()}/v1"
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"LM server http://127\.0\.0\.1:\d+/v1 must be reachable .*but got "
                                          r"'.*(refused|Connect).*models\.generator\.base_url, role generator.*start "
                                          r"the server"):
        check_endpoint(url, role="generator", timeout_s=60)
    assert time.perf_counter() - start < 5


def test_endpoint_check_passes_a_live_server(stub_server):
    from persona_gen.core.http_engine import check_endpoint

    server = stub_server()
    check_endpoint(server.base_url, role="judge", api_key="sk-test", api_key_env="KEY")
    assert server.authorization["Bearer sk-test"] == 1


@pytest.fixture
def auth_server():
    """A loopback server that answers every request with HTTP 401, as a server wanting a key does."""
    from tests.fixtures.deny_server import deny_server

    with deny_server() as url:
        yield url


def test_401_names_the_unset_api_key_variable(auth_server):
    from persona_gen.core.errors import ConfigError
    from persona_gen.core.http_engine import check_endpoint

    with pytest.raises(ConfigError, match=r"must be to accept this run's key, but got 'HTTP 401: Invalid API key'.*"
                                          r"\$MY_UNSET_KEY, which is unset or empty: export MY_UNSET_KEY="):
        check_endpoint(auth_server, role="generator", api_key="", api_key_env="MY_UNSET_KEY")


def test_401_during_a_call_names_the_variable_not_the_key(auth_server):
    from dspy import lm15

    from persona_gen.core.http_engine import OpenAICompatibleEngine

    engine = OpenAICompatibleEngine(auth_server, "m", api_key="sk-secret-value-123", api_key_env="MY_KEY")
    with pytest.raises(lm15.AuthError) as info:
        engine._answer(401, None, b'{"error": {"message": "Invalid API key"}}')
    assert "$MY_KEY" in str(info.value) and "sk-secret-value-123" not in str(info.value)
