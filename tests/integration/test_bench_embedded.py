"""PERSONA Bench on the embedded SmolLM2: 1 persona x 1 held-out question x 1 mode, end to end."""

from __future__ import annotations

import json
import time

import pytest

from persona_gen.bench.task import run_bench
from tests.unit.bench._data import PEOPLE, compose_bench, write_dataset

pytestmark = pytest.mark.integration


def test_bench_embedded_smollm2_scores_or_records_a_failure(tmp_path):
    pytest.importorskip("llama_cpp")
    dataset = write_dataset(tmp_path / "dataset", people=PEOPLE[:1],
                            questions=[("q-held-1", "Should I move closer to my aging parents?", "held_out")])
    # A 135M model may well write an answer the critic cannot parse; that is a recorded failure, not a crash.
    # 128 new tokens per call keep the two calls well inside the time budget on a shared 2-core runner.
    cfg = compose_bench(tmp_path, ["bench.mode=output_only", "bench.analyses=[eval]", "bench.num_personas=1",
                                   "bench.questions_per_persona=1", "max_failure_rate=1.0",
                                   "models.generator.max_tokens=128", "models.judge.max_tokens=128"],
                        dataset=dataset, models=["model@models.generator=smollm2", "model@models.judge=smollm2"])
    start = time.monotonic()
    result = run_bench(cfg)
    elapsed = time.monotonic() - start
    assert elapsed < 90, f"bench on SmolLM2 took {elapsed:.0f}s"
    [row] = result.rows
    assert (row.failure is None and isinstance(row.needs_revision, bool) and row.answer) or \
        (row.failure is not None and row.failure.message)
    summary = json.loads(result.scores_path.read_text())["modes"]["output_only"]
    assert summary["n_items"] == 1
    assert summary["n_scored"] + summary["failures"]["answer"] + summary["failures"]["critic"] == 1
    assert result.scores["models"]["generator"]["kind"] == "smollm2"
