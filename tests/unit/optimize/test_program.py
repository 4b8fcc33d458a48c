from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from persona_gen.core.calls import program_hash
from persona_gen.core.errors import ConfigError
from persona_gen.judge.stage import PersonaJudge
from persona_gen.optimize import load_judges, optimize_judges, save_judges
from persona_gen.optimize.config import OptimizeConfig
from persona_gen.optimize.task import run_optimize
from persona_gen.testing import fake_caller
from tests.unit.annotate.synthetic import compose, demo_rule, make_items


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compiled")
    caller = fake_caller(tmp / "cache", rules=[demo_rule], concurrency=1)
    cfg = OmegaConf.create({"max_bootstrapped_demos": 2, "max_labeled_demos": 3, "max_rounds": 1})
    return optimize_judges(make_items(20), caller=caller, variants=["direct", "chain_of_thought"],
                           optimizer="bootstrap_few_shot", optimizer_cfg=cfg, n_boot=100)


def test_load_judges_restores_each_variant_with_its_program_hash(compiled, tmp_path):
    path = save_judges(tmp_path / "judge_program.json", compiled.judges)
    loaded = load_judges(path)
    assert sorted(loaded) == ["chain_of_thought", "direct"]
    for variant, judge in loaded.items():
        assert isinstance(judge, PersonaJudge)
        assert program_hash(judge) == program_hash(compiled.judges[variant]) != program_hash(PersonaJudge(variant))


def test_loaded_judge_keys_the_cache_like_the_compiled_one(compiled, tmp_path):
    loaded = load_judges(save_judges(tmp_path / "judge_program.json", compiled.judges))
    caller = fake_caller(None, concurrency=1)
    inputs = {"persona": "age: 1", "question": "q?", "first_answer": "a", "second_answer": "b"}
    key = caller.key_for("judge_direct", loaded["direct"], inputs)
    assert key == caller.key_for("judge_direct", compiled.judges["direct"], inputs)
    assert key != caller.key_for("judge_direct", PersonaJudge("direct"), inputs)


def test_load_judges_rejects_an_edited_program(compiled, tmp_path):
    path = save_judges(tmp_path / "judge_program.json", compiled.judges)
    doc = json.loads(path.read_text())
    doc["programs"]["direct"]["state"]["predict"]["demos"].pop()
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"program_hash of variant direct must be the saved .*re-run task=optimize"):
        load_judges(path)


def test_load_judges_rejects_a_program_for_another_signature(compiled, tmp_path):
    path = save_judges(tmp_path / "judge_program.json", compiled.judges)
    doc = json.loads(path.read_text())
    doc["signature_hash"] = "0" * 16
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"judge signature hash must be the current JudgeInVoice's"):
        load_judges(path)


def test_load_judges_rejects_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"judge program file must be an existing file.*task=optimize"):
        load_judges(tmp_path / "nope.json")


def test_optimize_config_selects_the_optimizer(tmp_path):
    from persona_gen.annotate.config import checked_group

    cfg = compose(tmp_path / "out", tmp_path / "cache", ["optimize.optimizer=gepa", "optimize.gepa.auto=null",
                                                         "optimize.gepa.max_metric_calls=10"])
    opt = checked_group(cfg, "optimize", OptimizeConfig)
    assert (opt.optimizer, opt[opt.optimizer].max_metric_calls) == ("gepa", 10)


def test_run_optimize_writes_a_loadable_program_and_a_report(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(i.model_dump_json() + "\n" for i in make_items(20)))
    cfg = compose(tmp_path / "out", tmp_path / "cache", [f"optimize.labeled_items={items}",
                                                         "optimize.variants=[direct]", "optimize.n_boot=100",
                                                         "optimize.bootstrap_few_shot.max_labeled_demos=2"])
    result = run_optimize(cfg)
    report = json.loads(result.report_path.read_text())
    after = report["variants"]["direct"]["dev"]["after"]
    assert {"kappa", "ci_low", "ci_high", "n_pairs"} <= set(after)
    assert program_hash(load_judges(result.program_path)["direct"]) == report["variants"]["direct"][
        "program_hash_after"]
    assert any("stage.judge.program_path=" in line for line in result.summary_lines())
    # 20 items, 30% held out: the dev kappa stands on a handful of items and says so.
    [line] = [ln for ln in result.summary_lines() if ln.startswith("direct: dev kappa")]
    assert f"[warning: small sample: {report['split']['dev_items']} items (< 30)" in line


def test_run_optimize_requires_labeled_items(tmp_path):
    cfg = compose(tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"optimize.labeled_items must be set.*annotate_import"):
        run_optimize(cfg)
