"""The two worked examples of docs/pipeline.md run from a user config dir, through the CLI, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "pipelines"
FAKE = ["experiment=fake_smoke", "sampler.fidelity_sample_size=0"]


def _cli(tmp: Path, name: str, args: list[str]) -> Path:
    out = tmp / name
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(tmp / "cache"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    # From another folder: the user module is imported from the config dir, not from the current folder.
    proc = subprocess.run([sys.executable, "-m", "persona_gen", *args, *FAKE, f"hydra.run.dir={out}"], cwd=tmp,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "dataset"


def _table(dataset: Path, config: str) -> pd.DataFrame:
    files = sorted((dataset / "data" / config).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values(
        "feedback_id", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def preset(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("preset")
    return _cli(tmp, "preset", [])


def test_example_second_critique_adds_a_feedback_column_and_moves_nothing_else(tmp_path, preset):
    folder = EXAMPLES / "second_critique"
    dataset = _cli(tmp_path, "run", ["--config-dir", str(folder), "pipeline=second_critique"])
    feedback, base = _table(dataset, "feedback"), _table(preset, "feedback")
    assert list(feedback.columns) == [*list(base.columns[:-2]), "second_critique", "failures", "failure_count"]
    complete = feedback["data"] != ""
    assert complete.any()
    assert feedback.loc[complete, "second_critique"].str.startswith("EVALUATION: ").all()
    # Adding a step moved no other column: same personas, pairs, answers, critiques and revisions.
    pd.testing.assert_frame_equal(feedback[base.columns], base)
    card = (dataset / "README.md").read_text()
    assert "`second_critique` | pair | CritiqueRevision:" in card
    assert "`CritiqueRevision`=" in card


def test_example_rubric_judge_publishes_its_own_table(tmp_path, preset):
    folder = EXAMPLES / "rubric_judge"
    dataset = _cli(tmp_path, "run", ["--config-dir", str(folder), "pipeline=rubric_judge"])
    scores, feedback = _table(dataset, "rubric_scores"), _table(preset, "feedback")
    assert len(scores) == len(feedback)
    assert list(scores["feedback_id"]) == list(feedback["feedback_id"])
    assert str(scores["score"].dtype) == "int64"
    assert scores["score"].between(1, 5).all()
    assert (scores["rationale"] != "").all()
    assert (scores["answer"] == feedback["data"]).all()
    card = (dataset / "README.md").read_text()
    assert "- config_name: rubric_scores" in card and "pointwise rubric scores" in card
    assert _table(dataset, "feedback").equals(feedback)


def test_example_cfg_job_shows_the_declared_steps(tmp_path):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.run([sys.executable, "-m", "persona_gen", "--config-dir", str(EXAMPLES / "rubric_judge"),
                           "pipeline=rubric_judge", "--cfg", "job"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for step in ("census:", "enrich:", "questions:", "answer:", "critique:", "revision:", "judge:", "rubric:"):
        assert f"\n    {step}" in text
    assert "signature: rubric_signatures.ScoreAgainstRubric" in text
