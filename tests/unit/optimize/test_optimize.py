from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from persona_gen.core.errors import ConfigError
from persona_gen.core.lm import build_lm
from persona_gen.optimize import build_optimizer, optimize_judges
from persona_gen.testing import fake_caller
from tests.unit.annotate.synthetic import demo_rule, make_items

TINY = {
    "bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 4, "max_rounds": 1},
    "mipro_v2": {"auto": None, "num_candidates": 2, "num_trials": 2, "max_bootstrapped_demos": 1,
                 "max_labeled_demos": 2, "minibatch": False, "minibatch_size": 35},
    "gepa": {"auto": None, "max_metric_calls": 30, "max_full_evals": None, "reflection_minibatch_size": 2,
             "use_merge": False},
}


def _caller(tmp_path, *, rule=True):
    return fake_caller(tmp_path / "cache", rules=[demo_rule] if rule else ())


def _optimize(tmp_path, optimizer, variant="direct", **kwargs):
    return optimize_judges(make_items(30), caller=_caller(tmp_path, **kwargs), variants=[variant], optimizer=optimizer,
                           optimizer_cfg=OmegaConf.create(TINY[optimizer]), n_boot=200)


@pytest.mark.parametrize("variant", ["direct", "chain_of_thought"])
def test_optimize_bootstrap_few_shot_raises_agreement_on_held_out_items(tmp_path, variant):
    """BootstrapFewShot raises dev kappa with the fake LM: a test of the optimization plumbing, not of a real LM.

    The fake answers by a hash of the prompt (kappa near 0) unless the prompt holds few-shot demonstrations;
    then ``demo_rule`` answers by the rule the synthetic human labels follow. So kappa rises on held-out items
    exactly when the optimizer put demos into the compiled program, that program is what judges dev, and the
    before/after kappas are computed on the dev split.
    """
    outcome = _optimize(tmp_path, "bootstrap_few_shot", variant)
    before, after = outcome.kappa(variant, "before"), outcome.kappa(variant, "after")
    assert before < 0.3 < 0.9 < after
    assert outcome.report["variants"][variant]["dev"]["delta"]["ci_low"] > 0


def test_optimize_judges_evaluates_on_items_it_did_not_train_on(tmp_path):
    outcome = _optimize(tmp_path, "bootstrap_few_shot")
    demo_questions = {d["question"] for d in outcome.judges["direct"].predict.demos}
    assert demo_questions.isdisjoint({i.question for i in outcome.dev})


def test_optimize_judges_rows_carry_the_compiled_program_hash(tmp_path):
    outcome = _optimize(tmp_path, "bootstrap_few_shot")
    hashes = outcome.report["variants"]["direct"]
    assert {j.program_hash for j in outcome.after} == {hashes["program_hash_after"]}
    assert hashes["program_hash_after"] != hashes["program_hash_before"]


def test_optimize_mipro_v2_runs_with_a_tiny_budget(tmp_path):
    pytest.importorskip("optuna", reason="MIPROv2 needs optuna (pip install optuna)")
    outcome = _optimize(tmp_path, "mipro_v2")
    assert outcome.report["variants"]["direct"]["dev"]["after"]["n_pairs"] == 2 * len(outcome.dev)


def test_optimize_gepa_runs_with_a_tiny_budget(tmp_path):
    outcome = _optimize(tmp_path, "gepa")
    assert outcome.report["variants"]["direct"]["dev"]["after"]["n_pairs"] == 2 * len(outcome.dev)


@pytest.mark.parametrize(("name", "cls"), [("bootstrap_few_shot", "BootstrapFewShot"), ("mipro_v2", "MIPROv2"),
                                          ("gepa", "GEPA")])
def test_build_optimizer_selects_the_configured_optimizer(name, cls):
    if name == "mipro_v2":
        pytest.importorskip("optuna", reason="MIPROv2 needs optuna (pip install optuna)")
    lm = build_lm(OmegaConf.create({"kind": "fake", "name": "f", "temperature": 0.0, "max_tokens": 8,
                                    "concurrency": 1})).lm
    optimizer, _ = build_optimizer(name, OmegaConf.create(TINY[name]), prompt_lm=lm, task_lm=lm, seed=0,
                                   num_threads=1)
    assert type(optimizer).__name__ == cls


def test_build_optimizer_rejects_an_unknown_name():
    with pytest.raises(ConfigError, match=r"optimize.optimizer must be one of \['bootstrap_few_shot', 'mipro_v2', "
                                          r"'gepa'\], but got 'copro'"):
        build_optimizer("copro", OmegaConf.create({}), prompt_lm=None, task_lm=None, seed=0, num_threads=1)


def test_build_optimizer_gepa_needs_exactly_one_budget():
    cfg = OmegaConf.create({**TINY["gepa"], "auto": "light"})
    with pytest.raises(ConfigError, match=r"optimize.gepa budget .* must be exactly one set"):
        build_optimizer("gepa", cfg, prompt_lm=object(), task_lm=None, seed=0, num_threads=1)


def test_optimize_judges_rejects_an_unknown_variant(tmp_path):
    with pytest.raises(ConfigError, match=r"optimize.variants must be a non-empty list of"):
        optimize_judges(make_items(10), caller=_caller(tmp_path), variants=["socratic"],
                        optimizer="bootstrap_few_shot", optimizer_cfg=OmegaConf.create(TINY["bootstrap_few_shot"]))


def test_optimize_judges_is_deterministic_for_a_seed(tmp_path):
    first = _optimize(tmp_path / "a", "bootstrap_few_shot")
    second = _optimize(tmp_path / "b", "bootstrap_few_shot")
    assert first.report["variants"] == second.report["variants"]
