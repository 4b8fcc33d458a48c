"""SIGTERM (Slurm, Kubernetes, ``timeout``) and SIGINT (Ctrl-C) in the middle of a run.

The CLI runs against a loopback stub server with latency, so the signal lands while LM calls are in flight (the
stub counts the requests, so the test knows the run is mid-way). Each must end in one line on stderr, a clean run
dir (Hydra's ``.hydra/`` and log only, no temporary file anywhere), and a resumable state: the same command again
gives the same bytes as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.stub_server import StubServer
from tests.integration.test_bad_input import _assert_no_partial_output, _is_progress

pytestmark = pytest.mark.integration

ARGS = ["models.generator=openai_compatible", "models.judge=openai_compatible", "scale=tiny",
        "sampler.fidelity_sample_size=2000", "models.generator.concurrency=1", "models.judge.concurrency=1"]


def _env(server: StubServer, cache: Path) -> dict[str, str]:
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cache), "PERSONA_GEN_BASE_URL": server.base_url,
           "PERSONA_GEN_MODEL": "stub-model", "PERSONA_GEN_API_KEY": "sk-signal-test-0123456789", "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _run(cwd: Path, env: dict[str, str], run_dir: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "persona_gen", *ARGS, f"hydra.run.dir={run_dir}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server():
    # 150 ms per answer: a tiny run takes ~40 calls, so a signal after 8 requests lands mid-run.
    with StubServer(latency_ms=150) as s:
        yield s


@pytest.fixture(scope="module")
def clean(server, tmp_path_factory) -> dict:
    """The manifest of a run that was never interrupted."""
    root = tmp_path_factory.mktemp("clean")
    proc = _run(root / "cwd", _env(server, root / "cache"), "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "cwd" / "run" / "manifest.json").read_text())


@pytest.mark.parametrize(("sig", "flight"), [
    (signal.SIGTERM, []), (signal.SIGINT, []),
    # Calls in flight on a thread pool and on an event loop when the signal lands.
    (signal.SIGTERM, ["models.generator.concurrency=4", "models.judge.concurrency=4"]),
    (signal.SIGINT, ["models.generator.concurrency=4", "models.judge.concurrency=4", "models.generator.io=asyncio",
                     "models.judge.io=asyncio"]),
], ids=["SIGTERM", "SIGINT", "SIGTERM-threads", "SIGINT-asyncio"])
def test_signal_mid_run_is_one_line_a_clean_run_dir_and_resumes_to_the_same_bytes(sig, flight, server, clean,
                                                                                   tmp_path):
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    env = _env(server, cache)
    server.reset_counts()
    proc = subprocess.Popen([sys.executable, "-m", "persona_gen", *ARGS, *flight, "hydra.run.dir=run"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while server.snapshot()["requests"] < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal could land mid-run"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-3000:])
    assert "Traceback" not in out + err, err[-3000:]
    lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not _is_progress(ln)]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"persona-gen: interrupted by {sig.name}: ") and "resumes" in lines[0], lines[0]
    _assert_no_partial_output(tmp_path, cwd)
    assert (cache / "cache.db").is_file()  # the answers so far are kept for the rerun

    again = _run(cwd, env, "run")
    assert again.returncode == 0, again.stderr[-3000:]
    manifest = json.loads((cwd / "run" / "manifest.json").read_text())
    assert manifest["content_hash"] == clean["content_hash"]
    assert manifest["lm_calls"] < clean["lm_calls"]  # resumed: what the first try finished came from the cache
    secret = env["PERSONA_GEN_API_KEY"].encode()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
