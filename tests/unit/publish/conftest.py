from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.unit.publish.fake_hub import FakeHub

TOKEN = "hf_PersonaGenTestTokenDoNotLeak0123456789"
TOKEN_ENV = "PERSONA_GEN_TEST_HF_TOKEN"


def make_tables() -> dict[str, dict[str, pd.DataFrame]]:
    """Small hand-made tables with the pipeline's configs and column shapes."""
    feedback = pd.DataFrame({
        "persona_id": ["p1", "p1", "p2", "p2", "p3"],
        "persona": ["age: 34\nsex: Female", "age: 34\nsex: Female", "age: 61\nsex: Male", "age: 61\nsex: Male",
                    "age: 19\nsex: Female"],
        "instruction": ["Should cities ban cars?", "Is tipping fair?", "Should cities ban cars?",
                        "Is tipping fair?", "Should voting be mandatory?"],
        "original": ["Maybe.", "It depends.", "Maybe.", "It depends.", "Some say yes."],
        "critique": ["Too vague for me.", "I care about workers.", "I drive daily.", "I tip well.", "I vote."],
        "data": ["Yes, for downtown.", "Tipping should go.", "No, rural people need cars.", "Keep it.", "Yes."],
        "question type": ["train", "test", "train", "test", "train"],
        "seen": [True, False, True, True, False],
        "failures": ["[]", "[]", json.dumps([{"kind": "parse", "stage": "feedback"}]), "[]", "[]"],
    })
    return {
        "feedback": {split: g for split, g in feedback.groupby("question type", sort=True)},
        "personas": {"train": pd.DataFrame({"persona_id": ["p1", "p2", "p3"], "age": ["34", "61", "19"],
                                            "persona": ["age: 34", "age: 61", "age: 19"]})},
        "questions": {"train": pd.DataFrame({"question_id": ["q1", "q2", "q3"],
                                             "text": ["Should cities ban cars?", "Is tipping fair?",
                                                      "Should voting be mandatory?"]})},
        "judgments": {"train": pd.DataFrame({"feedback_id": ["f1", "f1", "f2", "f2"],
                                             "variant": ["direct"] * 4,
                                             "order": ["original_first", "revision_first"] * 2,
                                             "choice": ["second", "first", "first", "first"],
                                             "preferred": ["revision", "revision", "original", "revision"]})},
        "bench": {"test": pd.DataFrame({"mode": ["persona", "no_persona"], "accuracy": [0.62, 0.5],
                                        "std": [0.03, 0.02]})},
        "persona_rejections": {"train": pd.DataFrame({"persona_id": ["p9"], "reason": ["age_vs_job"],
                                                      "offending_fields": [["age", "job"]],
                                                      "message": ["a 12 year old surgeon"], "raw": ["{}"]})},
    }


def make_context() -> dict[str, Any]:
    """The keys pipeline.run passes to publish_folder, with recognisable values."""
    return {
        "seed": 7, "config_hash": "cfg0123456789abc",
        "signature_hashes": {"JudgeInVoice": "sigjudge1234", "WritePersonaDetails": "sigwrite5678"},
        "generator_model": "openai/gen-model-x", "judge_model": "openai/judge-model-y", "embedded_model": False,
        "census": {"num_personas": 3, "source": "ACS PUMS (NIST extract)", "year": 2019, "states": "MA, NY"},
        "enrich": {"candidates": 4, "rejected": 1, "drop_rate": 0.25, "by_reason": {"age_vs_job": 1}},
        "filter_counts": [{"step": "loaded", "kept": 120, "dropped": 0},
                          {"step": "has_question_mark", "kept": 97, "dropped": 23}],
        "min_words": 5, "judge_variants": "direct, cot",
        "judge_scorecard": [{"variant": "direct", "pairs": 2, "order_consistency": 0.5, "first_position_rate": 0.75,
                             "revision_preferred": 0.75, "abstentions": 0}],
        "agreement": {"raters": ["cot", "direct"], "kappa": 0.3333, "n": 4},
        "stage_stats": {"enrich": {"lm_calls": 8, "cache_hits": 2, "failures": 1,
                                   "failures_by_kind": {"parse": 1}}},
        "fidelity": {"max_tvd_1way": 0.0123, "worst_1way": "AGEP", "plot": "plots/population_vs_census.png",
                     "sample_size": 2000},
        "bench_scores": {"method": "persona-prompt", "modes": {"persona": {"accuracy": 0.62, "std": 0.03, "n": 40}}},
    }


@pytest.fixture(autouse=True)
def no_saved_hub_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No HF_TOKEN and no saved login from the machine running the tests; returns where a login would be saved."""
    import huggingface_hub.constants

    path = tmp_path / "hf_home" / "token"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(path.parent / "stored_tokens"))
    return path


@pytest.fixture
def tables() -> dict[str, dict[str, pd.DataFrame]]:
    return make_tables()


@pytest.fixture
def context() -> dict[str, Any]:
    return make_context()


@pytest.fixture
def plots(tmp_path: Path) -> list[Path]:
    src = tmp_path / "plots_src"
    src.mkdir()
    paths = []
    for name in ("population_vs_census.png", "kappa_histogram.png", "pass_at_k.png"):
        (src / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
        paths.append(src / name)
    return paths


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    """A recording fake Hub on 127.0.0.1, with huggingface_hub's offline switch (set by tests/conftest.py) off."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as server:
        yield server


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


def hub_cfg(hub: FakeHub, **overrides: Any) -> dict[str, Any]:
    return {"mode": "hub", "repo_id": "me/persona-data", "token_env": TOKEN_ENV, "endpoint": hub.url,
            "rows_per_shard": 2, **overrides}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())
