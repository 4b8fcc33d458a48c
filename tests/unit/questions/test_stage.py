from __future__ import annotations

import itertools

import pandas as pd
import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.questions.filters import near_duplicates
from persona_gen.questions.sources import load_prism_examples
from persona_gen.questions.stage import CLUSTER_PLOT, run_questions
from tests.helpers import compose_run

from .fakes import controversy_rule, drafts_rule, stage_cfg
from .test_filters import GROUPS

CHAIN = ["loaded", "exact_duplicate", "has_question_mark", "min_words", "dedup", "lm_controversial"]


def _run(caller, cfg=None, seed=0, max_candidates=None, **kw):
    return run_questions(cfg=cfg if cfg is not None else stage_cfg(), caller=caller, seed=seed,
                         max_candidates=max_candidates, **kw)


def _file_cfg(tmp_path, texts, topics=None, **overrides):
    path = tmp_path / "prompts.csv"
    frame = pd.DataFrame({"prompt": texts, **({"topic": topics} if topics is not None else {})})
    frame.to_csv(path, index=False)
    source = {"kind": "file", "path": str(path), "text_column": "prompt", "name": "mine",
              **({"cluster_column": "topic"} if topics is not None else {})}
    return stage_cfg(source=source, **overrides)


def test_run_questions_reports_each_filter_on_prism_examples(make_caller):
    result = _run(make_caller([controversy_rule("weather")]))
    counts = result.filter_counts
    assert [c["step"] for c in counts] == CHAIN
    assert counts[0]["kept"] == 115 and counts[0]["sources"] == {"prism_examples": 115}
    for before, after in itertools.pairwise(counts):
        assert after["kept"] + after["dropped"] == before["kept"]
    assert counts[0]["kept"] == counts[-1]["kept"] + sum(c["dropped"] for c in counts)
    assert len(result.questions) == counts[-1]["kept"]
    assert len(result.rejected) == sum(c["dropped"] for c in counts)


def test_run_questions_applies_the_paper_rules_on_prism_examples(make_caller):
    result = _run(make_caller([controversy_rule("weather")]))
    dropped = {c["step"]: c["dropped"] for c in result.filter_counts}
    assert (dropped["has_question_mark"], dropped["min_words"]) == (45, 3)
    assert all("?" in q.text and len(q.text.split()) >= 5 for q in result.questions)


def test_run_questions_runs_filters_in_the_configured_order(make_caller):
    result = _run(make_caller(), stage_cfg(filters=["min_words", "has_question_mark"]))
    assert [c["step"] for c in result.filter_counts] == ["loaded", "exact_duplicate", "min_words", "has_question_mark"]


def test_run_questions_lm_filter_drops_questions_judged_not_controversial(make_caller):
    result = _run(make_caller([controversy_rule("weather")]))
    rejected = [r for r in result.rejected if r["step"] == "lm_controversial"]
    assert rejected and all("weather" in r["text"] and r["detail"] == "flagged" for r in rejected)
    assert not any("weather" in q.text for q in result.questions)


def test_run_questions_keeps_a_question_whose_verdict_failed_and_records_it(make_caller):
    caller = make_caller(fail_when=lambda prompt: "Star wars" in prompt.rsplit("[[ ## question ## ]]", 1)[-1])
    result = _run(caller, stage_cfg(filters=["lm_controversial"]))
    assert any(q.text.startswith("Star wars") for q in result.questions)
    assert [f.kind for f in result.failures] == ["parse"]


def test_run_questions_generated_questions_pass_the_same_filters(make_caller):
    items = {"religion": ["Is prayer good for children, in your view?", "Tell me about prayer", "Why pray?"]}
    cfg = stage_cfg(source=[], generate={"enabled": True, "per_cluster": 3, "topics": ["religion", "guns"]})
    result = _run(make_caller([drafts_rule(items)]), cfg)
    assert result.filter_counts[0]["sources"] == {"generated:fake:fake-v1": 6}
    by_step = {r["text"]: r["step"] for r in result.rejected}
    assert by_step["Tell me about prayer"] == "has_question_mark"
    assert by_step["Why pray?"] == "min_words"
    assert {q.cluster for q in result.questions} == {"religion", "guns"}
    assert all(q.source == "generated:fake:fake-v1" for q in result.questions)


def test_run_questions_generates_for_the_source_clusters_when_no_topics_are_given(make_caller, tmp_path):
    cfg = _file_cfg(tmp_path, ["Should we ban cars in city centres?", "Is it wrong to eat meat every day?"],
                    ["transport", "food"], generate={"enabled": True, "per_cluster": 2})
    result = _run(make_caller(), cfg)
    generated = {q.cluster for q in result.questions if q.source.startswith("generated:")}
    assert generated == {"transport", "food"}


def test_run_questions_does_not_generate_for_a_catch_all_cluster(make_caller, tmp_path):
    cfg = _file_cfg(tmp_path, ["Should we ban cars in city centres?", "Hello there"], ["transport", "Outliers"],
                    generate={"enabled": True, "per_cluster": 1})
    result = _run(make_caller(), cfg)
    assert {q.cluster for q in result.questions if q.source.startswith("generated:")} == {"transport"}


def test_run_questions_generation_without_topics_or_clusters_raises_config_error(make_caller, tmp_path):
    cfg = _file_cfg(tmp_path, ["Should we ban cars in city centres?"], generate={"enabled": True})
    with pytest.raises(ConfigError, match=r"generate\.topics must be a non-empty list when no source has clusters"):
        _run(make_caller(), cfg)


def test_run_questions_records_a_failed_generation_call(make_caller):
    cfg = stage_cfg(source=[], generate={"enabled": True, "per_cluster": 2, "topics": ["religion", "guns"]})
    result = _run(make_caller(fail_when=lambda p: "[[ ## topic ## ]]\nguns" in p), cfg)
    assert [f.kind for f in result.failures] == ["parse"]
    assert {q.cluster for q in result.questions} == {"religion"}


def test_run_questions_leaves_no_near_duplicates_at_the_threshold(make_caller, tmp_path):
    texts = [t for g in itertools.zip_longest(*GROUPS) for t in g if t is not None]
    cfg = _file_cfg(tmp_path, texts, filters=["dedup"], dedup={"threshold": 0.7})
    kept = [q.text for q in _run(make_caller(), cfg).questions]
    assert sorted(kept) == sorted(g[0] for g in GROUPS)
    assert near_duplicates(kept, threshold=0.7) == [None] * len(kept)


def test_run_questions_drops_exact_repeats_of_a_source(make_caller, tmp_path):
    cfg = _file_cfg(tmp_path, ["Is meat murder, really?"] * 3, filters=[])
    result = _run(make_caller(), cfg)
    assert [q.text for q in result.questions] == ["Is meat murder, really?"]
    assert result.filter_counts[1] == {"step": "exact_duplicate", "kept": 1, "dropped": 2}


def test_run_questions_keeps_source_clusters_by_default(make_caller):
    result = _run(make_caller())
    assert {q.cluster for q in result.questions} <= set(load_prism_examples()["cluster"])


def test_run_questions_clusters_prompts_without_source_clusters(make_caller, tmp_path):
    texts = ["Should abortion be legal for every woman?", "Is abortion murder of an unborn child?",
             "Should guns be banned in cities?", "Is owning guns a basic right?"]
    cfg = _file_cfg(tmp_path, texts, filters=[], clusters={"num_clusters": 2})
    clusters = [q.cluster for q in _run(make_caller(), cfg).questions]
    assert clusters[0] == clusters[1] != clusters[2] == clusters[3]
    assert "abortion" in clusters[0] and "guns" in clusters[2]


def test_run_questions_reclusters_source_clusters_when_asked(make_caller):
    cfg = stage_cfg(filters=["has_question_mark"], clusters={"keep_source": False, "num_clusters": 4})
    result = _run(make_caller(), cfg)
    assert len({q.cluster for q in result.questions}) == 4
    assert not {q.cluster for q in result.questions} & set(load_prism_examples()["cluster"])


def test_run_questions_returns_the_cluster_plot(make_caller, tmp_path):
    result = _run(make_caller(), plot_dir=tmp_path / "plots")
    assert result.plots == [tmp_path / "plots" / CLUSTER_PLOT]
    assert result.plots[0].read_bytes()[:4] == b"\x89PNG"


def test_run_questions_draws_no_plot_without_a_plot_dir(make_caller):
    assert _run(make_caller()).plots == []


def test_run_questions_is_deterministic_for_a_seed(make_caller):
    a = _run(make_caller(), seed=5, max_candidates=30)
    b = _run(make_caller(), seed=5, max_candidates=30)
    assert [(q.question_id, q.cluster, q.split) for q in a.questions] == \
        [(q.question_id, q.cluster, q.split) for q in b.questions]


def test_run_questions_caps_candidates_just_before_the_lm_step(make_caller):
    caller = make_caller()
    result = _run(caller, max_candidates=10)
    steps = [c["step"] for c in result.filter_counts]
    assert steps.index("scale_cap") == steps.index("lm_controversial") - 1
    assert caller.client.engine.calls == 10


def test_run_questions_puts_every_cluster_of_two_or_more_in_both_splits(make_caller):
    result = _run(make_caller())
    for row in result.clusters:
        if row["questions"] >= 2:
            assert row["train"] >= 1 and row["held_out"] >= 1, row


def test_run_questions_generated_option_builds_a_testbed_without_prompts(make_caller, tmp_path):
    cfg = compose_run(tmp_path / "out", tmp_path / "cache", ["stage/questions=generated"])
    result = _run(make_caller(), cfg.stage.questions, max_candidates=24)
    assert result.questions and all(q.source.startswith("generated:") for q in result.questions)
    assert {"train", "held_out"} == {q.split for q in result.questions}
