"""A run against a flaky server reports itself: retries counted, every failed call in failures.jsonl, the end
summary names the kinds and where the raw answers are, and the log file holds all of it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.fixtures.stub_server import StubServer

pytestmark = pytest.mark.integration


def test_cli_flaky_server_run_reports_retries_and_every_failure(tmp_path):
    with StubServer(chaos_rate=0.4, chaos_kinds=("500", "malformed")) as server:
        env = {**os.environ, "PERSONA_GEN_BASE_URL": server.base_url, "PERSONA_GEN_MODEL": "stub-model",
               "PERSONA_GEN_API_KEY": "sk-report-test", "PERSONA_GEN_CACHE_DIR": str(tmp_path / "cache")}
        env.pop("HYDRA_FULL_ERROR", None)
        proc = subprocess.run(
            [sys.executable, "-m", "persona_gen", "models=openai_compatible", "scale=tiny",
             "models.generator.num_retries=1", "models.judge.num_retries=1", "max_failure_rate=1.0",
             "hydra.run.dir=run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        seen = server.snapshot()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "generator: openai_compatible:stub-model / judge: openai_compatible:stub-model" in out
    calls, _, retries = map(int, re.search(r"LM calls: (\d+), cache hits: (\d+), retries: (\d+)", out).groups())
    # Every request beyond one per call is a retry (a check of the endpoints before the run may add a few more).
    assert 0 < retries <= seen["requests"] - calls <= retries + 4
    step_retries = [int(n) for n in re.findall(r"^.*step .*, (\d+) retries, [\d.]+ s$", out, re.M)]
    assert sum(step_retries) == retries

    failed = int(re.search(r"^.*failures: (\d+) \(", out, re.M).group(1))
    rows = [json.loads(line) for line in (tmp_path / "run" / "failures.jsonl").read_text().splitlines()]
    assert failed == len(rows) > 0
    for row in rows:
        assert {"step", "ids", "kind", "message", "raw"} <= set(row) and row["message"]
        assert "cache_key" in row["ids"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert sum(manifest["failures"].values()) == failed
    assert f"raw answers: {tmp_path / 'run' / 'failures.jsonl'}" in out
    kinds = re.search(r"failures: \d+ \((.*?);", out).group(1)
    assert kinds == ", ".join(f"{k}: {n}" for k, n in sorted(
        {k: sum(r["kind"] == k for r in rows) for k in {r["kind"] for r in rows}}.items()))
    log_text = (tmp_path / "run" / "cli.log").read_text()
    assert "sk-report-test" not in log_text + out + proc.stderr
    for line in ("LM calls:", "failures: ", "raw answers:", "step judge"):
        assert line in log_text
