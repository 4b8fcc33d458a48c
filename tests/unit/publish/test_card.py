from __future__ import annotations

import pytest
import yaml
from huggingface_hub import DatasetCard

from persona_gen.core.errors import PublishError
from persona_gen.publish.card import render_bench_card, render_card, validate_card

PLOTS = ["plots/population_vs_census.png", "plots/kappa_histogram.png", "plots/pass_at_k.png"]


def _card(tables, context, **kwargs) -> str:
    return render_card(tables, context, plots=PLOTS, publish_cfg={"repo_id": "me/persona-data"}, **kwargs)


def _header(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_render_card_declares_every_config_with_its_splits(tables, context):
    configs = {c["config_name"]: c["data_files"] for c in _header(_card(tables, context))["configs"]}
    assert configs["feedback"] == [{"split": "test", "path": "data/feedback/test-*.parquet"},
                                   {"split": "train", "path": "data/feedback/train-*.parquet"}]
    assert set(configs) == {"feedback", "personas", "questions", "judgments", "bench", "persona_rejections"}


def test_render_card_makes_feedback_the_default_config(tables, context):
    configs = _header(_card(tables, context))["configs"]
    assert [c["config_name"] for c in configs if c.get("default")] == ["feedback"]


def test_render_card_parses_as_dataset_card_data(tables, context):
    card = DatasetCard(_card(tables, context))
    assert (card.data.license, card.data.size_categories, card.data.pretty_name) == \
        ("cc-by-4.0", ["n<1K"], "PERSONA-style synthetic preference data")


def test_render_card_states_models_seed_and_hashes(tables, context):
    text = _card(tables, context)
    for needle in ("openai/gen-model-x", "openai/judge-model-y", "Seed: `7`", "cfg0123456789abc",
                   "`JudgeInVoice`=`sigjudge1234`", "`WritePersonaDetails`=`sigwrite5678`"):
        assert needle in text


def test_render_card_states_census_source_year_and_license(tables, context):
    text = _card(tables, context)
    assert "American Community Survey 2019 1-Year PUMS, person records\n(MA, NY); license: public domain" in text


def test_render_card_states_fidelity_numbers(tables, context):
    text = _card(tables, context)
    assert "| max one-way TVD | 0.0123 (worst: AGEP) |" in text
    assert "![Population vs census](plots/population_vs_census.png)" in text


def test_render_card_states_filter_counts(tables, context):
    assert "| has_question_mark | 97 | 23 |" in _card(tables, context)


def test_render_card_states_failure_rate_per_stage(tables, context):
    # 8 calls + 2 cache hits = 10 answers, 1 failed
    assert "| enrich | 10 | 1 | 10.0% | parse: 1 |" in _card(tables, context)


def test_render_card_states_judge_order_consistency_and_position_bias(tables, context):
    assert "| direct | 2 | 0.5000 | 0.7500 | 0.2500 | 0.7500 | n/a | 0 |" in _card(tables, context)


def test_render_card_states_judge_agreement(tables, context):
    assert "Cohen's κ = 0.3333 between `cot` and `direct` on 4 preferred answers" in _card(tables, context)


def test_render_card_states_rows_per_split(tables, context):
    assert "| `feedback` | `train` | 3 |" in _card(tables, context)


def test_render_card_lists_license_of_each_input(tables, context):
    text = _card(tables, context)
    assert "| PRISM opening prompts (Kirk et al., 2024) | CC-BY-4.0 |" in text
    assert "| Generated text | produced by openai/gen-model-x and openai/judge-model-y; check their licenses |" in text


def test_render_card_cites_the_paper(tables, context):
    assert "journal = {arXiv preprint arXiv:2407.17387}" in _card(tables, context)


def test_render_card_documents_cli_download_and_upload(tables, context):
    text = _card(tables, context)
    assert "hf download me/persona-data --repo-type dataset --local-dir persona_data" in text
    assert "hf upload me/persona-data path/to/folder . --repo-type dataset --private" in text


def test_render_card_links_every_plot_with_a_caption(tables, context):
    text = _card(tables, context)
    assert "![Cohen's κ between judge variants](plots/kappa_histogram.png)" in text
    assert "![pass@k](plots/pass_at_k.png)" in text


def test_render_card_includes_bench_scores(tables, context):
    assert "| persona | 0.6200 | 0.0300 | 40 |" in _card(tables, context)


def test_render_card_renders_with_an_empty_context(tables):
    text = render_card(tables, {})
    assert "Seed: `n/a`" in text and "No fidelity report in this run." in text


def test_render_card_escapes_pipes_in_table_cells(tables, context):
    context["filter_counts"] = [{"step": "a|b", "kept": 1, "dropped": 0}]
    assert "| a\\|b | 1 | 0 |" in _card(tables, context)


def test_render_card_omits_a_config_without_rows_from_the_header(tables, context):
    tables["persona_rejections"]["train"] = tables["persona_rejections"]["train"].iloc[:0]
    names = [c["config_name"] for c in _header(_card(tables, context))["configs"]]
    assert "persona_rejections" not in names


def test_render_bench_card_shows_accuracy_and_std_per_mode():
    text = render_bench_card({"method": "persona-prompt", "modes": {
        "persona": {"accuracy": 0.62, "std": 0.03, "n": 40, "pass_at_k": {1: 0.62, 4: 0.81}},
        "no_persona": {"accuracy": 0.5, "std": 0.02, "n": 40}}})
    assert "| persona | 0.6200 | 0.0300 | 40 | n/a | n/a | 0.6200 | 0.8100 |" in text
    assert "| no_persona | 0.5000 | 0.0200 | 40 | n/a | n/a | n/a | n/a |" in text


def test_render_bench_card_accepts_a_list_of_modes():
    text = render_bench_card({"modes": [{"mode": "summary", "accuracy": 0.55, "std": 0.01}]})
    assert "| summary | 0.5500 | 0.0100 | n/a |" in text


def test_render_bench_card_reads_the_bench_tasks_scores_json():
    scores = {  # the shape persona_gen.bench.task writes to <output_dir>/bench/scores.json
        "dataset_dir": "/runs/x/dataset", "seed": 3, "method": "persona_gen.bench.methods:Direct",
        "inputs": {"personas": 10, "questions": 5, "pairs": 50, "question_split": "held_out"},
        "models": {"generator": {"kind": "openai", "name": "gen-m", "revision": ""},
                   "judge": {"kind": "openai", "name": "judge-m", "revision": ""}},
        "signature_hashes": {"AnswerForPersona": "abc"},
        "modes": {"persona": {"accuracy": 0.6, "std": 0.05, "n_items": 50, "n_scored": 48,
                              "failures": {"parse": 2}},
                  "summary": {"accuracy": None, "std": None, "n_items": 50, "n_scored": 0, "failures": {}}},
        "pass_at_k": {"mode": "persona", "num_samples": 4, "curve": [{"k": 1, "pass_at_k": 0.6},
                                                                     {"k": 2, "pass_at_k": 0.75}]},
    }
    text = render_bench_card(scores)
    assert "| persona | 0.6000 | 0.0500 | 48 | 50 | 2 | 0.6000 | 0.7500 |" in text
    assert "| summary | n/a | n/a | 0 | 50 | 0 | n/a | n/a |" in text
    assert "answers by `openai:gen-m`, judged by `openai:judge-m`" in text


def test_render_bench_card_rejects_a_text_accuracy():
    with pytest.raises(PublishError, match=r"accuracy of mode 'persona' must be a number \(or None\), but got 'high'"):
        render_bench_card({"modes": {"persona": {"accuracy": "high", "std": 0.1}}})


def test_render_bench_card_is_a_dataset_card_with_metadata():
    card = DatasetCard(render_bench_card({"modes": {"persona": {"accuracy": 0.6, "std": 0.1}}}))
    assert "persona-bench" in card.data.tags


def test_render_bench_card_rejects_a_mode_without_std():
    with pytest.raises(PublishError, match=r"std of mode 'persona' must be a number \(or None\), but got 'missing'"):
        render_bench_card({"modes": {"persona": {"accuracy": 0.6}}})


def test_render_bench_card_rejects_no_modes():
    with pytest.raises(PublishError, match=r"scores\['modes'\] must be a non-empty mapping"):
        render_bench_card({"method": "x"})


def _folder_with_card(tmp_path, tables, context, text=None):
    from persona_gen.publish import publish_folder

    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"})
    if text is not None:
        (tmp_path / "ds" / "README.md").write_text(text)
    return tmp_path / "ds"


def test_validate_card_rejects_a_config_matching_no_shard(tmp_path, tables, context):
    folder = _folder_with_card(tmp_path, tables, context)
    for p in (folder / "data" / "questions").iterdir():
        p.unlink()
    with pytest.raises(PublishError, match=r"data_files 'data/questions/train-\*.parquet' of config 'questions'"):
        validate_card(folder)


def test_validate_card_rejects_a_shard_no_config_reads(tmp_path, tables, context):
    folder = _folder_with_card(tmp_path, tables, context)
    (folder / "data" / "stray").mkdir()
    (folder / "data" / "stray" / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(PublishError, match=r"shards under data/ must be each read by a config"):
        validate_card(folder)


def test_validate_card_rejects_a_missing_plot(tmp_path, tables, context):
    folder = _folder_with_card(tmp_path, tables, context)
    text = (folder / "README.md").read_text() + "\n![x](plots/missing.png)\n"
    (folder / "README.md").write_text(text)
    with pytest.raises(PublishError, match=r"plot plots/missing.png must be present in the folder"):
        validate_card(folder)


def test_validate_card_rejects_a_header_without_license(tmp_path, tables, context):
    folder = _folder_with_card(tmp_path, tables, context)
    text = (folder / "README.md").read_text().replace("license: cc-by-4.0\n", "")
    (folder / "README.md").write_text(text)
    with pytest.raises(PublishError, match=r"card metadata 'license' must be set"):
        validate_card(folder)
