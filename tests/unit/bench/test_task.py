from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from persona_gen.bench.settings import PAPER_MODES
from persona_gen.bench.task import run_bench
from persona_gen.core.errors import ConfigError, PersonaGenError
from persona_gen.tasks import resolve_task
from tests.unit.bench._data import bench_group_override, compose_bench, write_dataset
from tests.unit.bench.conftest import coin, critic_rule

SMALL = ["bench.questions_per_persona=2"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Every analysis once on the fake LM: 3 personas x 2 held-out questions."""
    tmp = tmp_path_factory.mktemp("bench_full")
    cfg = compose_bench(tmp, [*SMALL, "bench.pass_at_k.num_samples=4", "bench.pass_at_k.max_k=4"], option="full")
    return run_bench(cfg)


def _scores(result):
    return json.loads(result.scores_path.read_text())


def test_run_bench_scores_every_paper_mode_with_accuracy_and_std(full_run):
    modes = _scores(full_run)["modes"]
    assert list(modes) == list(PAPER_MODES)
    for summary in modes.values():
        assert 0.0 <= summary["accuracy"] <= 1.0
        assert 0.0 <= summary["std"] <= 0.5
        assert summary["n_scored"] + summary["failures"]["answer"] + summary["failures"]["critic"] == 6


def test_run_bench_writes_every_plot_as_png(full_run):
    names = sorted(p.name for p in full_run.plots)
    assert names == ["accuracy_by_mode.png", "intersectionality.png", "leave_one_out.png", "pass_at_k.png"]
    for path in full_run.plots:
        assert path.parent == full_run.output_dir
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_bench_leave_one_out_numbers_are_in_range(full_run):
    loo = _scores(full_run)["leave_one_out"]
    assert loo["mode"] == "output_only" and len(loo["attributes"]) == 33
    for row in loo["attributes"]:
        assert row["kappa"] is None or -1.0 <= row["kappa"] <= 1.0
        assert 0.0 <= row["agreement"] <= 1.0
        assert row["n"] == loo["items"]


def test_run_bench_pass_at_k_curve_is_in_range_and_rises(full_run):
    pk = _scores(full_run)["pass_at_k"]
    values = [p["pass_at_k"] for p in pk["curve"]]
    assert [p["k"] for p in pk["curve"]] == [1, 2, 3, 4]
    assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values)
    assert pk["temperature"] == 0.7 and pk["samples"] == 4 * 6


def test_run_bench_pass_at_k_samples_differ(full_run):
    rows = pd.read_parquet(full_run.rows_path)
    samples = rows[rows["analysis"] == "pass_at_k"]
    assert sorted(samples["sample_index"].unique()) == [0, 1, 2, 3]
    assert samples.groupby(["persona_id", "question_id"])["answer"].nunique().min() > 1


def test_run_bench_intersectionality_reports_every_filter_per_mode(full_run):
    ix = _scores(full_run)["intersectionality"]
    assert list(ix) == list(PAPER_MODES)
    subgroup = ix["output_only"]["filters"]["women_65_and_over"]
    assert subgroup["n"] == 2  # one persona (Female, 70) x 2 questions
    assert {g["value"] for g in ix["output_only"]["breakdown"]["sex"]} == {"Female", "Male"}


def test_run_bench_rows_file_keeps_every_answer(full_run):
    rows = pd.read_parquet(full_run.rows_path)
    assert set(rows["analysis"]) == {"eval", "leave_one_out", "pass_at_k"}
    assert len(rows[rows["analysis"] == "eval"]) == 4 * 6


def test_run_bench_scores_json_is_complete_and_strict(full_run):
    text = full_run.scores_path.read_text()
    assert "NaN" not in text
    scores = json.loads(text)
    assert scores["inputs"] == {"personas": 3, "questions": 3, "pairs": 6, "question_split": "held_out"}
    assert set(scores["signature_hashes"]) >= {"AnswerForPersona", "CritiqueBenchAnswer", "SummarizePersona"}
    assert not list(full_run.output_dir.glob(".*.tmp"))


def test_run_bench_summary_lines_name_each_mode(full_run):
    text = "\n".join(full_run.summary_lines())
    assert all(f"bench {m}" in text for m in PAPER_MODES)
    assert "pass@1" in text and str(full_run.scores_path) in text


def test_run_bench_warm_rerun_makes_no_lm_call(tmp_path):
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=[baseline,output_only]"])
    first = run_bench(cfg)
    second = run_bench(cfg)
    assert second.scores["lm"]["cache"]["misses"] == 0
    assert sum(s["lm_calls"] for s in second.scores["lm"]["stages"].values()) == 0
    assert second.scores["modes"] == first.scores["modes"]


def test_run_bench_runs_a_module_plugged_in_by_import_path(tmp_path):
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=custom", "bench.analyses=[eval]",
                                   "bench.method='tests.unit.bench.plugins:TerseAnswerer'"])
    result = run_bench(cfg)
    assert list(result.scores["modes"]) == ["TerseAnswerer"]  # labelled with the class's name, not 'custom'
    assert result.scores["modes"]["TerseAnswerer"]["n_scored"] == 6
    assert result.scores["method_label"] == "TerseAnswerer"
    assert result.scores["method"] == "tests.unit.bench.plugins:TerseAnswerer"
    assert any(stage.startswith("bench_answer_custom[tests.unit.bench.plugins:TerseAnswerer]")
               for stage in result.scores["lm"]["stages"])


def test_run_bench_bad_mode_raises_config_error_in_house_format(tmp_path):
    cfg = compose_bench(tmp_path, ["bench.mode=[output_only,mind_reading]"])
    with pytest.raises(ConfigError, match=r"^bench\.mode must be one of .*, but got 'mind_reading' "
                                          r"\(command line or conf/bench/\); pick one of those, e\.g\."):
        run_bench(cfg)


def test_run_bench_records_failed_critic_calls_and_scores_only_the_rest(tmp_path, fake_client):
    judge = fake_client()
    judge.engine.fail_when = lambda prompt: "needs_revision" in prompt and "ideology: Conservative" in prompt
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=output_only", "bench.analyses=[eval]"])
    result = run_bench(cfg, judge=judge)
    summary = result.scores["modes"]["output_only"]
    assert summary["failures"] == {"answer": 0, "critic": 2}
    assert summary["n_scored"] == 4
    rows = pd.read_parquet(result.rows_path)
    failed = rows[rows["failure_kind"].notna()]
    assert len(failed) == 2 and set(failed["failure_stage"]) == {"bench_critic"}
    assert failed["needs_revision"].isna().all() and failed["failure_raw"].str.contains("not json").all()


def test_run_bench_fails_past_max_failure_rate_after_writing_scores(tmp_path, fake_client):
    judge = fake_client()
    judge.engine.fail_when = lambda prompt: "needs_revision" in prompt
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=output_only", "bench.analyses=[eval]"])
    with pytest.raises(PersonaGenError, match=r"failure rate of bench stage 'bench_critic' must be "
                                              r"<= max_failure_rate=0\.5, but got '6/6'"):
        run_bench(cfg, judge=judge)
    assert (tmp_path / "run" / "bench" / "scores.json").is_file()


def test_run_bench_accuracy_follows_the_critic(tmp_path, fake_client):
    judge = fake_client()
    judge.engine.rules.insert(0, critic_rule(lambda user: "sex: Male" in user))
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=output_only", "bench.analyses=[eval]"])
    summary = run_bench(cfg, judge=judge).scores["modes"]["output_only"]
    assert summary["accuracy"] == pytest.approx(4 / 6)


def test_run_bench_resolves_a_relative_dataset_dir_against_the_run_root(tmp_path):
    write_dataset(tmp_path / "dataset")
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=baseline", "bench.analyses=[eval]"], dataset=Path("dataset"))
    assert run_bench(cfg).scores["modes"]["baseline"]["n_items"] == 6


def test_run_bench_leave_one_out_kappa_is_defined_with_a_varied_critic(tmp_path, fake_client):
    judge = fake_client()
    judge.engine.rules.insert(0, critic_rule(coin))
    cfg = compose_bench(tmp_path, [*SMALL, "bench.leave_one_out.attributes=[sex,age,religion]"],
                        option="leave_one_out")
    loo = run_bench(cfg, judge=judge).scores["leave_one_out"]
    assert [r["attribute"] for r in loo["attributes"]] != []
    assert all(r["kappa"] is not None and -1.0 <= r["kappa"] <= 1.0 for r in loo["attributes"])


def test_resolve_task_finds_bench():
    assert resolve_task("bench") is run_bench


def test_cli_task_bench_writes_scores_into_the_run_dir(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    run_dir = tmp_path / "run"
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "persona_gen", "task=bench", bench_group_override(), "model@models.generator=fake",
         "model@models.judge=fake", f"bench.dataset_dir={dataset}", "bench.mode=output_only",
         "bench.analyses=[eval]", "bench.questions_per_persona=1", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bench output_only" in proc.stdout
    assert json.loads((run_dir / "bench" / "scores.json").read_text())["modes"]["output_only"]["n_items"] == 3


def test_cli_task_bench_bad_mode_prints_one_line_error(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    proc = subprocess.run(
        [sys.executable, "-m", "persona_gen", "task=bench", bench_group_override(), f"bench.dataset_dir={dataset}",
         "bench.mode=telepathy", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert "persona-gen: error: bench.mode must be one of" in proc.stderr


MY_METHOD = """
import dspy


class MyMethod(dspy.Module):
    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict("persona, question -> answer")

    def forward(self, persona, question):
        return self.predict(persona=persona, question=question)
"""


@pytest.mark.parametrize("method", ["mymethod:MyMethod", "methods/mymethod.py:MyMethod"])
def test_cli_task_bench_custom_method_from_the_current_folder(tmp_path, method):
    dataset = write_dataset(tmp_path / "dataset")
    folder = tmp_path / "methods" if method.startswith("methods/") else tmp_path
    folder.mkdir(exist_ok=True)
    (folder / "mymethod.py").write_text(MY_METHOD)
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)  # no PYTHONPATH=. needed
    proc = subprocess.run(
        [sys.executable, "-m", "persona_gen", "task=bench", bench_group_override(), "models=fake",
         f"bench.dataset_dir={dataset}", f"bench.method={method}", "bench.mode=custom", "bench.analyses=[eval]",
         "bench.questions_per_persona=1", "hydra.run.dir=run"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bench MyMethod " in proc.stdout
    assert "directly is discouraged" not in proc.stdout + proc.stderr  # DSPy's forward() warning
    scores = json.loads((tmp_path / "run" / "bench" / "scores.json").read_text())
    assert list(scores["modes"]) == ["MyMethod"] and scores["modes"]["MyMethod"]["n_scored"] == 3


def test_run_bench_small_sample_carries_a_warning(tmp_path):
    result = run_bench(compose_bench(tmp_path, [*SMALL, "bench.mode=output_only", "bench.analyses=[eval]"]))
    summary = result.scores["modes"]["output_only"]
    assert summary["n_scored"] < 30
    assert summary["warning"].startswith(f"small sample: {summary['n_scored']} scored items (< 30)")
    [line] = [ln for ln in result.summary_lines() if ln.startswith("bench output_only")]
    assert "[warning: small sample" in line


def test_run_bench_subgroup_and_leave_one_out_small_samples_are_flagged(full_run):
    for mode in full_run.scores["intersectionality"].values():
        for sub in mode["filters"].values():
            assert sub["warning"] == ("no persona matched" if sub["n"] == 0 else
                                      f"small sample: {sub['n']} scored items (< 30); read it as a rough "
                                      "indication, not a measurement")
    assert full_run.scores["leave_one_out"]["warning"].startswith("small sample:")


def test_run_bench_intersectionality_with_no_member_says_so_and_draws_nothing(tmp_path):
    cfg = compose_bench(tmp_path, [*SMALL, "bench.mode=output_only", "bench.analyses=[eval,intersectionality]",
                                   *(f"~bench.intersectionality.filters.{name}"
                                     for name in ("women_65_and_over", "men_under_30", "graduate_degree")),
                                   "+bench.intersectionality.filters.nobody={age: {op: '>', value: 500}}"])
    result = run_bench(cfg)
    assert result.scores["intersectionality"]["output_only"]["filters"]["nobody"]["n"] == 0
    assert not (result.output_dir / "intersectionality.png").exists()
    assert "no persona matched any filter (nobody)" in result.scores["intersectionality_note"]
    assert any("bench intersectionality: no persona matched" in ln for ln in result.summary_lines())
