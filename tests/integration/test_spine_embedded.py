"""The spine on the real embedded model (SmolLM2-135M through llama.cpp), through the real CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("embedded")
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cwd / "cache")}
    proc = subprocess.run([sys.executable, "-m", "persona_gen", "scale=tiny", "sampler.fidelity_sample_size=5000",
                           "hydra.run.dir=run1"], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_embedded_cli_prints_where_outputs_are(embedded_run):
    cwd, proc = embedded_run
    paths = dict(re.findall(r"^(dataset|card|manifest):\s+(\S+)$", proc.stdout, re.M))
    assert set(paths) == {"dataset", "card", "manifest"}
    for p in paths.values():
        assert (cwd / p).exists() or Path(p).exists()


def test_embedded_every_row_has_value_or_recorded_failure(embedded_run):
    cwd, _ = embedded_run
    data = cwd / "run1" / "dataset" / "data"
    fb = pd.concat([pd.read_parquet(p) for p in sorted((data / "feedback").glob("*.parquet"))])
    assert len(fb) == 2 * 2  # tiny: 2 personas x (1 train + 1 unseen test)
    for _, row in fb.iterrows():
        failures = list(row["failures"])  # a list of {stage, kind, message, raw} structs
        assert (row["original"] and row["critique"] and row["data"]) or failures
    judg = pd.read_parquet(next((data / "judgments").glob("*.parquet")))
    assert set(judg["order"]) <= {"original_first", "revision_first"}
    assert ((judg["choice"] != "abstain") | judg["failure"].notna()).all()


def test_embedded_warm_rerun_makes_no_lm_call_and_same_hash(embedded_run):
    cwd, _ = embedded_run
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cwd / "cache")}
    proc = subprocess.run([sys.executable, "-m", "persona_gen", "scale=tiny", "sampler.fidelity_sample_size=5000",
                           "hydra.run.dir=run2"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m1 = json.loads((cwd / "run1" / "manifest.json").read_text())
    m2 = json.loads((cwd / "run2" / "manifest.json").read_text())
    assert m2["lm_calls"] == 0
    assert m1["content_hash"] == m2["content_hash"]
