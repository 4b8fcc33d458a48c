"""The questions stage's LM steps (generation, controversy filter) on the real embedded SmolLM2 model."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.questions.stage import run_questions

pytestmark = pytest.mark.integration

QUESTIONS = ["Is it morally acceptable to eat meat?", "Should abortion be legal in every country?",
             "What is the capital city of France?"]
TOPICS = ["religion", "gun ownership", "raising children"]


def test_questions_embedded_model_answers_parse_or_are_recorded_failures(tmp_path):
    client = build_lm(OmegaConf.create({"kind": "smollm2", "name": "SmolLM2-135M-Instruct-Q4_1", "temperature": 0.0,
                                        "max_tokens": 128, "concurrency": 1, "context_size": 2048}))
    # One llama.cpp thread: on a busy 2-core box two threads spin-wait on each other and a 30-token answer
    # takes 10-100 s instead of < 1 s (measured). Takes effect only if no earlier test loaded the shared model.
    client.engine.threads = 1
    caller = Caller(client, CallCache(tmp_path / "cache"), progress=False)
    path = tmp_path / "prompts.csv"
    pd.DataFrame({"prompt": QUESTIONS}).to_csv(path, index=False)
    cfg = OmegaConf.create({
        "source": {"kind": "file", "path": str(path), "text_column": "prompt", "name": "mine"},
        "filters": ["has_question_mark", "min_words", "lm_controversial"],
        "generate": {"enabled": True, "per_cluster": 1, "topics": TOPICS},
    })
    result = run_questions(cfg=cfg, caller=caller, seed=0, max_candidates=None, plot_dir=tmp_path / "plots")

    stats = caller.stats["questions"]
    counts = {c["step"]: c for c in result.filter_counts}
    judged = counts["lm_controversial"]["kept"] + counts["lm_controversial"]["dropped"]
    # One call per topic and one per question that reached the LM filter: each parsed or is a recorded failure.
    assert stats.calls == len(TOPICS) + judged
    assert stats.failures == len(result.failures)
    assert all(f.stage == "questions" and f.kind in {"parse", "lm_error"} for f in result.failures)
    assert counts["loaded"]["sources"]["mine"] == 3
    assert counts["loaded"]["kept"] == result.filter_counts[-1]["kept"] + sum(c["dropped"] for c in counts.values())
    assert all(q.text.strip() and q.cluster for q in result.questions)
    assert result.plots[0].is_file()
