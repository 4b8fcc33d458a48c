"""The Python API as a notebook would use it: persona_gen.generate / persona_gen.bench, fake LM, no network."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest

import persona_gen
from persona_gen.core.errors import ConfigError

FAKE = ["models.generator=fake", "models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]


def _overrides(root: Path) -> list[str]:
    return [*FAKE, f"cache.dir={root / 'cache'}"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    return root, persona_gen.generate(_overrides(root), output_dir=root / "run1", cwd=root)


def _feedback(dataset_dir: Path) -> pd.DataFrame:
    files = sorted((dataset_dir / "data" / "feedback").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_generate_returns_the_dataset_card_and_manifest(generated):
    root, run = generated
    assert run.dataset_dir == (root / "run1" / "dataset").resolve()
    assert run.card_path == run.dataset_dir / "README.md" and run.card_path.is_file()
    assert isinstance(run.manifest, dict) and run.manifest["content_hash"] == run.content_hash
    assert json.loads((root / "run1" / "manifest.json").read_text())["content_hash"] == run.content_hash


def test_generate_load_dpo_pairs_match_the_feedback_rows(generated, tmp_path):
    _, run = generated
    train = run.load("dpo", cache_dir=str(tmp_path / "hf"))["train"]
    assert {"prompt", "chosen", "rejected"} <= set(train.column_names)
    feedback = _feedback(run.dataset_dir).set_index("feedback_id")
    assert train.num_rows == int((feedback["question type"] == "train").sum()) > 0
    for row in train:
        source = feedback.loc[row["feedback_id"]]
        assert row["chosen"] == [{"role": "assistant", "content": source["data"]}]
        assert row["rejected"] == [{"role": "assistant", "content": source["original"]}]
        system, user = row["prompt"]
        assert system["role"] == "system" and source["persona"] in system["content"]
        assert user == {"role": "user", "content": source["instruction"]}
        assert row["persona_id"] == source["persona_id"] and row["question type"] == "train"


def test_generate_load_defaults_to_the_feedback_config(generated, tmp_path):
    _, run = generated
    loaded = run.load(cache_dir=str(tmp_path / "hf"))
    assert set(loaded) == {"train", "test"}
    assert "critique" in loaded["train"].column_names


def test_generate_records_the_equivalent_command_line(generated):
    root, run = generated
    command = (run.dataset_dir / "reproduce" / "command.txt").read_text().strip()
    assert shlex.split(command) == ["persona-gen", *_overrides(root), ]


def test_generate_twice_in_one_process_gives_the_same_data_from_the_cache(generated):
    from hydra.core.global_hydra import GlobalHydra

    root, run = generated
    again = persona_gen.generate(_overrides(root), output_dir=root / "run2", cwd=root)
    assert again.content_hash == run.content_hash and again.lm_calls == 0
    assert not GlobalHydra.instance().is_initialized()


def test_generate_leaves_a_running_hydra_app_as_it_was(generated):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    root, _ = generated
    with initialize_config_module("persona_gen.conf", version_base="1.3"):
        mine = GlobalHydra.instance().hydra
        cfg = persona_gen.compose_config(FAKE, output_dir=root / "composed")
        assert GlobalHydra.instance().hydra is mine
    assert cfg.paths.output_dir == str((root / "composed").resolve()) and "hydra" not in cfg


def test_generate_bad_override_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"must be .*scale"):
        persona_gen.generate(["scale=nope"], output_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_generate_overrides_must_be_a_list(tmp_path):
    with pytest.raises(ConfigError, match=r"overrides must be a list of Hydra overrides.*wrap it in a list"):
        persona_gen.generate("scale=tiny", output_dir=tmp_path / "x")


def test_package_exports_the_api():
    assert callable(persona_gen.generate) and callable(persona_gen.bench) and callable(persona_gen.run)
    from persona_gen import RunResult, run  # the failing import

    assert run.__module__ == "persona_gen.pipeline.runner" and RunResult.__name__ == "RunResult"


def test_bench_scores_a_generated_dataset(generated, tmp_path):
    root, run = generated
    result = persona_gen.bench([*_overrides(root), "bench.bootstrap_samples=50", "bench.analyses=[eval]",
                                "bench.question_split=all"], output_dir=tmp_path / "bench", dataset=run.dataset_dir,
                               cwd=root)
    assert result.scores["dataset_content_hash"] == run.content_hash
    assert result.manifest["modes"] and (result.dataset_dir / "scores.json").is_file()
    rows = result.load(cache_dir=str(tmp_path / "hf"))["train"]
    assert rows.num_rows == len(result.rows) > 0


def test_bench_attaches_to_the_dataset_it_scored_and_not_to_another(generated, tmp_path):
    from persona_gen.core.errors import PublishError

    root, run = generated
    bench = persona_gen.bench([*_overrides(root), "bench.bootstrap_samples=20", "bench.analyses=[eval]",
                               "bench.mode=output_only", "bench.question_split=all"], output_dir=tmp_path / "b",
                              dataset=run.dataset_dir, cwd=root)
    attached = persona_gen.generate([*_overrides(root), f"publish.bench_dir={bench.dataset_dir}"],
                                    output_dir=tmp_path / "same", cwd=root)
    assert attached.manifest["rows"]["bench"]["train"] == len(bench.rows)
    assert "## PERSONA Bench" in attached.card_path.read_text()
    with pytest.raises(PublishError, match=r"publish.bench_dir scores must be computed on this dataset"):
        persona_gen.generate([*_overrides(root), "seed=5", f"publish.bench_dir={bench.dataset_dir}"],
                             output_dir=tmp_path / "other", cwd=root)


def test_generated_configs_load_with_the_card_features_and_reproduction_files(generated, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    _, run = generated
    data = DatasetCard.load(run.card_path).data.to_dict()
    infos = {i["config_name"]: i for i in data["dataset_info"]}
    assert {c["config_name"] for c in data["configs"]} == set(infos) >= {"feedback", "dpo", "personas", "judgments"}
    for config, info in infos.items():
        loaded = run.load(config, cache_dir=str(tmp_path / "hf"))
        expected = datasets.Features._from_yaml_list(info["features"])
        assert all(loaded[split].features == expected for split in loaded), config
    personas = run.load("personas", cache_dir=str(tmp_path / "hf"))["train"]
    assert personas.features["age"].dtype == "int64" and all(isinstance(a, int) for a in personas["age"])
    assert all(label == str(age) for age, label in zip(personas["age"], personas["age_label"], strict=True))
    for name in ("config.yaml", "versions.json", "command.txt"):
        assert (run.dataset_dir / "reproduce" / name).stat().st_size > 0
