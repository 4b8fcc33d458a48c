from __future__ import annotations

import pytest

from persona_gen.bench.data import load_bench_data, select_pairs
from persona_gen.bench.evaluate import (
    accuracy_summary,
    intersectionality,
    leave_one_out,
    pass_at_k_summary,
    render_without,
    score_pairs,
)
from persona_gen.bench.methods import BenchCritic, build_method
from persona_gen.bench.records import BenchRow
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError
from persona_gen.core.records import Failure
from tests.unit.bench._data import write_dataset
from tests.unit.bench.conftest import critic_rule


def _row(persona="p-0", question="q-1", needs_revision=False, failure=None, mode="output_only", sample=0):
    return BenchRow(analysis="eval", mode=mode, persona_id=persona, question_id=question, sample_index=sample,
                    needs_revision=None if failure else needs_revision, generator_model="g", judge_model="j",
                    failure=failure)


@pytest.fixture
def data(tmp_path):
    return load_bench_data(write_dataset(tmp_path / "dataset"))


def test_accuracy_summary_counts_failures_apart_from_scores():
    critic_failure = Failure(stage="bench_critic", kind="parse", message="bad json")
    answer_failure = Failure(stage="bench_answer_output_only", kind="lm_error", message="timeout")
    rows = [_row(needs_revision=False), _row(needs_revision=True), _row(needs_revision=False),
            _row(failure=critic_failure), _row(failure=answer_failure)]
    summary = accuracy_summary(rows, n_boot=200)
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert 0 < summary["std"] < 0.5
    assert (summary["n_items"], summary["n_scored"]) == (5, 3)
    assert summary["failures"] == {"answer": 1, "critic": 1}


def test_accuracy_summary_with_nothing_scored_has_no_accuracy():
    summary = accuracy_summary([_row(failure=Failure(stage="bench_critic", kind="parse", message="x"))])
    assert (summary["accuracy"], summary["std"], summary["n_scored"]) == (None, None, 0)


def test_pass_at_k_summary_curve_is_in_range_and_rises():
    rows = [_row(question=f"q-{q}", sample=s, needs_revision=(s + q) % 3 != 0) for q in range(4) for s in range(6)]
    curve = pass_at_k_summary(rows, max_k=6)["curve"]
    values = [p["pass_at_k"] for p in curve]
    assert [p["k"] for p in curve] == list(range(1, 7))
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)


def test_pass_at_k_summary_leaves_failed_samples_out_of_n():
    failure = Failure(stage="bench_critic", kind="parse", message="x")
    rows = [_row(sample=0, needs_revision=False), _row(sample=1, failure=failure), _row(sample=2, needs_revision=True)]
    summary = pass_at_k_summary(rows, max_k=3)
    assert [p["k"] for p in summary["curve"]] == [1, 2]
    assert summary["curve"][0]["pass_at_k"] == pytest.approx(0.5)
    assert summary["failures"]["critic"] == 1


def test_render_without_drops_exactly_one_attribute(data):
    text = render_without(data.personas[0], "religion")
    assert "religion:" not in text
    assert len(text.splitlines()) == len(data.personas[0].attributes) - 1


def test_leave_one_out_ranks_the_decisive_attribute_first(tmp_path, fake_client, data):
    judge = fake_client()
    # The critic is satisfied exactly when it can see a liberal ideology: only 'ideology' matters.
    judge.engine.rules.insert(0, critic_rule(lambda user: "ideology: Liberal" not in user))
    cache = CallCache(tmp_path / "cache")
    gen_caller, judge_caller = Caller(fake_client(), cache, progress=False), Caller(judge, cache, progress=False)
    pairs = select_pairs(data.personas, data.questions)
    rows = score_pairs(pairs, build_method("output_only"), mode="output_only", generator=gen_caller,
                       judge=judge_caller, critic=BenchCritic(), stage="bench_answer_output_only")
    lookup = {(p.persona.persona_id, p.question.question_id): p for p in pairs}
    table, loo_rows = leave_one_out(rows, lookup, attributes=["sex", "ideology", "religion"], judge=judge_caller,
                                    critic=BenchCritic())
    assert table["attribute"].tolist()[0] == "ideology"
    assert table.set_index("attribute")["kappa"].to_dict() == {"ideology": 0.0, "religion": 1.0, "sex": 1.0}
    assert table.set_index("attribute").loc["ideology", "accuracy_without"] == 0.0
    assert len(loo_rows) == 3 * len(rows)
    assert {r.dropped_attribute for r in loo_rows} == {"sex", "ideology", "religion"}


def test_intersectionality_scores_each_filter_subgroup(data):
    personas = {p.persona_id: p for p in data.personas}
    rows = [_row(persona="p-0", question="a", needs_revision=False), _row(persona="p-0", question="b",
                                                                          needs_revision=True),
            _row(persona="p-1", question="a", needs_revision=False), _row(persona="p-2", question="a",
                                                                          needs_revision=True)]
    result = intersectionality(rows, personas, filters={
        "older_women": {"sex": "Female", "age": {"op": ">=", "value": 65}},
        "women": {"sex": ["Female"]},
        "nobody": {"age": {"op": ">", "value": 200}},
    }, breakdown_by=["sex"], n_boot=100)["output_only"]
    assert (result["filters"]["older_women"]["n"], result["filters"]["older_women"]["accuracy"]) == (2, 0.5)
    assert (result["filters"]["women"]["n"], result["filters"]["women"]["accuracy"]) == (3, pytest.approx(1 / 3))
    assert (result["filters"]["nobody"]["n"], result["filters"]["nobody"]["accuracy"]) == (0, None)
    by_sex = {g["value"]: g for g in result["breakdown"]["sex"]}
    assert (by_sex["Male"]["n"], by_sex["Male"]["accuracy"]) == (1, 1.0)
    assert all(0 <= g["ci_low"] <= g["accuracy"] <= g["ci_high"] <= 1 for g in by_sex.values())


def test_intersectionality_rejects_a_filter_on_an_unknown_attribute(data):
    personas = {p.persona_id: p for p in data.personas}
    with pytest.raises(ConfigError, match=r"bench\.intersectionality\.filters\.odd must be conditions on persona "
                                          r"attributes, but got 'shoe size'"):
        intersectionality([_row()], personas, filters={"odd": {"shoe size": "10"}})


def test_leave_one_out_without_scored_items_returns_an_empty_table(tmp_path, fake_client):
    failure = Failure(stage="bench_critic", kind="parse", message="x")
    caller = Caller(fake_client(), CallCache(tmp_path / "cache"), progress=False)
    table, loo_rows = leave_one_out([_row(failure=failure)], {}, attributes=["sex"], judge=caller,
                                    critic=BenchCritic())
    assert table.empty and loo_rows == []
