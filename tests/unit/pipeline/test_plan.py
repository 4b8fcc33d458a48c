"""task=plan: the planned LM calls equal what a real run on the fake LM makes; no LM call, no census load."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.core.steps import Step
from persona_gen.pipeline import run
from persona_gen.pipeline.plan import plan_run, run_plan
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke", "sampler.fidelity_sample_size=2000"]


def _actual(manifest: dict) -> dict[str, int]:
    """LM answers per stage the run asked for (made or from the cache)."""
    answers = {k: v["lm_calls"] + v["cache_hits"] for k, v in manifest["stages"].items()}
    return {k: n for k, n in answers.items() if n}


def _measured(manifest: dict, dataset: Path) -> dict[str, int]:
    """The sizes a run found that the config alone can only estimate, read from its manifest and data."""
    enrich = manifest["enrich"]
    reasons = enrich["by_reason"] if isinstance(enrich["by_reason"], dict) else {}
    rules = sum(n for r, n in reasons.items() if r.startswith("rule:"))
    filters = manifest["question_filters"]
    before_lm = next(filters[i - 1]["kept"] for i, f in enumerate(filters) if f["step"] == "lm_controversial")
    feedback = pd.concat([pd.read_parquet(p) for p in sorted((dataset / "data" / "feedback").glob("*.parquet"))])
    return {"enrich.candidates": enrich["candidates"] - rules,
            "enrich.written": enrich["candidates"] - rules - reasons.get("lm_failure", 0),
            "questions.candidates": before_lm, "questions.kept": sum(manifest["rows"]["questions"].values()),
            "questions.used": feedback["question_id"].nunique()}


SCALES = {"tiny": ["scale=tiny"], "demo": ["scale=demo"],
          # questions drafted by the LM (one DraftQuestions call per topic) before the controversy filter
          "tiny-generated": ["scale=tiny", "stage/questions=generated"]}


@pytest.fixture(scope="module", params=sorted(SCALES))
def fake_run(request, tmp_path_factory):
    """A real run on the fake LM at one scale: (overrides, manifest, dataset dir)."""
    root = tmp_path_factory.mktemp(f"plan-{request.param}")
    overrides = [*FAKE, *SCALES[request.param]]
    result = run(compose_run(root / "run", root / "cache", overrides))
    return overrides, result.manifest, result.dataset_dir


def test_plan_with_measured_sizes_equals_the_calls_of_a_real_run(fake_run, tmp_path):
    overrides, manifest, dataset = fake_run
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", overrides),
                    known=_measured(manifest, dataset))
    assert plan.calls_by_stage() == _actual(manifest)
    assert all(row["exact"] for row in plan.steps)


def test_plan_from_the_config_alone_is_exact_where_it_says_so(fake_run, tmp_path):
    overrides, manifest, _ = fake_run
    # The fake LM rejects no persona: with a drop rate of 0 the enrichment count is exact too.
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", [*overrides, "plan.enrich_drop_rate=0"]))
    actual = _actual(manifest)
    planned = plan.calls_by_stage()
    assert set(planned) == set(actual)
    exact = {row["stage"] for row in plan.steps if row["exact"]} - {r["stage"] for r in plan.steps if not r["exact"]}
    assert {"critique", "revision", "judge_direct", "judge_chain_of_thought"} <= exact
    for stage in exact:
        assert planned[stage] == actual[stage], stage
    for stage in set(planned) - exact:  # estimates: the answers per question used, and what hangs on LM verdicts
        assert abs(planned[stage] - actual[stage]) <= max(2, 0.3 * actual[stage]), (stage, planned, actual)
    assert planned["enrich"] == actual["enrich"] == int(manifest["rows"]["personas"]["train"])


def test_plan_makes_no_lm_call_and_loads_no_census(tmp_path, monkeypatch):
    import persona_gen.census
    import persona_gen.core.lm

    def refuse(*args, **kwargs):
        raise AssertionError("task=plan must not build an LM client or load the census")

    monkeypatch.setattr(persona_gen.core.lm, "build_lm", refuse)
    monkeypatch.setattr(persona_gen.census, "load_source", refuse)
    monkeypatch.setattr(persona_gen.census, "sample_personas", refuse)
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", [*FAKE, "scale=demo"]))
    assert plan.calls_by_stage()["critique"] == 4 * 4  # demo: 4 personas x (2 train + 1 seen + 1 unseen)


def test_plan_task_prints_the_table_and_writes_plan_json(tmp_path):
    cfg = compose_run(tmp_path / "plan", tmp_path / "cache", [*FAKE, "scale=tiny", "plan.latency_s=2",
                                                                   "plan.latencies_s=[0.5]"])
    result = run_plan(cfg)
    saved = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert result.path == tmp_path / "plan" / "plan.json"
    assert [r["stage"] for r in saved["steps"]] == [r["stage"] for r in result.plan.steps]
    assert sorted(saved["wall_s"]) == ["0.5", "2"]
    text = "\n".join(result.summary_lines())
    for row in saved["steps"]:
        assert row["step"] in text and row["signature"] in text
    assert "busy at 2 s/call" in text and "wall, streaming" in text


def test_plan_wall_time_is_calls_times_latency_over_concurrency(tmp_path):
    overrides = [*FAKE, "scale=demo", "models.generator.concurrency=3", "models.judge.concurrency=5",
                 "plan.latency_s=0.5", "plan.latencies_s=[]"]
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", overrides))
    gen, judge = plan.roles["generator"], plan.roles["judge"]
    assert gen["calls"] == sum(r["calls"] for r in plan.steps if r["role"] == "generator")
    assert plan.wall_s["0.5"]["busy_generator"] == pytest.approx(gen["calls"] * 0.5 / 3)
    assert plan.wall_s["0.5"]["busy_judge"] == pytest.approx(judge["calls"] * 0.5 / 5)
    assert plan.wall_s["0.5"]["streaming"] == max(plan.wall_s["0.5"]["busy_generator"],
                                                  plan.wall_s["0.5"]["busy_judge"])
    # Waves of at most `concurrency` calls, one step after another: never faster than every endpoint kept full.
    assert plan.wall_s["0.5"]["barrier"] >= plan.wall_s["0.5"]["streaming"]
    # Both roles call the same fake model: queued on one endpoint their busy times add up.
    assert plan.wall_s["0.5"]["streaming_one_queue_per_endpoint"] == pytest.approx(
        plan.wall_s["0.5"]["busy_generator"] + plan.wall_s["0.5"]["busy_judge"])
    apart = plan_run(compose_run(tmp_path / "plan2", tmp_path / "cache", [*overrides, "models.judge.name=other"]))
    assert apart.wall_s["0.5"]["streaming_one_queue_per_endpoint"] == apart.wall_s["0.5"]["streaming"]


def test_plan_prompt_tokens_are_those_of_the_rendered_prompt(fake_caller):
    """The planned prompt is the very text a call sends (the fake LM sees its messages joined by newlines)."""
    import dspy

    from persona_gen.core.planning import prompt_chars
    from persona_gen.signatures import CritiqueInVoice

    seen: list[str] = []

    def capture(prompt, schema):
        seen.append(prompt)

    caller = fake_caller(rules=[capture])
    inputs = {"persona": "age: 41\nsex: Female", "question": "Should I move for work?", "answer": "Maybe; it depends."}

    [result] = caller.map("critique", dspy.Predict(CritiqueInVoice), [inputs])
    assert result.ok and len(seen) == 1
    # system + user message, joined with one newline by the fake engine
    assert len(seen[0]) == prompt_chars(CritiqueInVoice, inputs) + 1


def test_plan_typical_words_lengthen_the_prompts_that_read_them(tmp_path):
    base = [*FAKE, "scale=tiny"]
    short = plan_run(compose_run(tmp_path / "a", tmp_path / "cache", base))
    longer = plan_run(compose_run(tmp_path / "b", tmp_path / "cache", [*base, "+plan.typical_words.answer=400"]))
    per_call = {r["stage"]: r["prompt_tokens_per_call"] for r in short.steps}
    per_call_long = {r["stage"]: r["prompt_tokens_per_call"] for r in longer.steps}
    assert per_call_long["critique"] > per_call["critique"] + 200  # it reads the answer
    assert per_call_long["questions"] == per_call["questions"]  # it does not


@pytest.mark.parametrize(("override", "key"), [("plan.latency_s=0", "plan.latency_s"),
                                                ("plan.enrich_drop_rate=1", "plan.enrich_drop_rate"),
                                                ("plan.controversial_share=0", "plan.controversial_share"),
                                                ("+plan.typical_words.answer=-3", "plan.typical_words"),
                                                ("+plan.speed=3", "plan.speed")])
def test_plan_rejects_a_bad_setting_in_one_line(tmp_path, override, key):
    cfg = compose_run(tmp_path / "plan", tmp_path / "cache", [*FAKE, "scale=tiny", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        plan_run(cfg)
    assert "\n" not in str(info.value)


class Unplanned(Step):
    """A user's step that calls a model in run_rows but declares no planned_calls."""

    needs_role = True
    outputs = ("score",)

    def required_inputs(self) -> tuple[str, ...]:
        return ("answer",)


def test_plan_names_a_step_that_calls_a_model_without_planning_its_calls(tmp_path):
    overrides = [*FAKE, "scale=tiny", f"+pipeline.steps.mine._target_={__name__}.Unplanned",
                 "+pipeline.steps.mine.role=judge", "+pipeline.steps.mine.inputs.answer=revision.revision"]
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", overrides))
    [row] = [r for r in plan.steps if r["step"] == "mine"]
    assert row["calls"] == 0 and not row["exact"] and "Unplanned plans no calls" in row["note"]
    assert plan.roles["judge"]["exact"] is False  # the judge's total misses them
    assert "Unplanned plans no calls" in "\n".join(plan.summary_lines())


def test_plan_of_shards_pays_the_global_steps_once_then_the_largest_shard(tmp_path):
    overrides = [*FAKE, "scale=demo", "scale.chunk_personas=1", "shard.count=3", "plan.latency_s=1",
                 "plan.latencies_s=[]", "models.judge.name=other"]
    plan = plan_run(compose_run(tmp_path / "plan", tmp_path / "cache", overrides))
    sharded = plan.config["sharded"]
    assert (sharded["chunks"], sharded["largest_shard_personas"]) == (4, 2)  # 4 personas over 3 shards: 2, 1, 1
    conc = {r: v["concurrency"] for r, v in plan.roles.items()}
    calls = {(r["role"], r["scope"] in ("run", "question")): 0 for r in plan.steps}
    for r in plan.steps:
        calls[(r["role"], r["scope"] in ("run", "question"))] += r["calls"]
    wall = sharded["wall_s"]["1"]
    assert wall["global"] == pytest.approx(max(calls.get((r, True), 0) / conc[r] for r in conc))
    assert wall["largest_shard"] == pytest.approx(max(calls.get((r, False), 0) / 2 / conc[r] for r in conc))
    assert wall["total"] == pytest.approx(wall["global"] + wall["largest_shard"])
    assert wall["total"] < plan.wall_s["1"]["streaming"] + wall["global"]
    assert "shard.count=3" in "\n".join(plan.summary_lines())
