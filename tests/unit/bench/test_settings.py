from __future__ import annotations

from importlib import resources

import pytest
from omegaconf import OmegaConf

from persona_gen.bench.settings import MODES, PAPER_MODES, read_settings
from persona_gen.core.config import validate
from persona_gen.core.errors import ConfigError
from tests.helpers import compose_run
from tests.unit.bench._data import FAKE_MODELS, bench_group_override, compose_bench

OPTIONS = sorted(p.name[:-5] for p in resources.files("persona_gen.conf").joinpath("bench").iterdir()
                 if p.name.endswith(".yaml"))


@pytest.mark.parametrize("option", OPTIONS)
def test_bench_config_every_option_composes_and_reads(tmp_path, option):
    cfg = compose_bench(tmp_path, option=option)
    validate(cfg)
    settings = read_settings(cfg)
    assert set(settings.modes) <= set(MODES)
    assert settings.dataset_dir == tmp_path / "dataset"


def test_read_settings_default_scores_the_four_paper_modes(tmp_path):
    settings = read_settings(compose_bench(tmp_path))
    assert settings.modes == PAPER_MODES
    assert settings.analyses == ("eval", "intersectionality")


def test_read_settings_rejects_unknown_mode_in_house_format(tmp_path):
    cfg = compose_bench(tmp_path, ["bench.mode=telepathy"])
    with pytest.raises(ConfigError, match=r"^bench\.mode must be one of \[.*'output_only'.*\], but got 'telepathy' "
                                          r"\(command line or conf/bench/\); pick one of those"):
        read_settings(cfg)


def test_read_settings_accepts_one_mode_as_a_string(tmp_path):
    assert read_settings(compose_bench(tmp_path, ["bench.mode=chain_of_thought"])).modes == ("chain_of_thought",)


def test_read_settings_requires_dataset_dir(tmp_path):
    cfg = compose_run(tmp_path / "run", tmp_path / "cache", [bench_group_override(), *FAKE_MODELS])
    with pytest.raises(ConfigError, match=r"bench\.dataset_dir must be the dataset/ folder of a generate run"):
        read_settings(cfg)


def test_read_settings_requires_the_bench_group():
    with pytest.raises(ConfigError, match=r"^bench must be a config of the bench group.*\+bench=default"):
        read_settings(OmegaConf.create({"bench": None}))


def test_read_settings_rejects_unknown_analysis(tmp_path):
    with pytest.raises(ConfigError, match=r"bench\.analyses must be one of .*but got 'vibes'"):
        read_settings(compose_bench(tmp_path, ["bench.analyses=[eval,vibes]"]))


def test_read_settings_rejects_greedy_pass_at_k(tmp_path):
    with pytest.raises(ConfigError, match=r"bench\.pass_at_k\.temperature must be > 0"):
        read_settings(compose_bench(tmp_path, ["bench.pass_at_k.temperature=0.0"]))


def test_read_settings_rejects_max_k_above_samples(tmp_path):
    with pytest.raises(ConfigError, match=r"bench\.pass_at_k\.max_k must be <= pass_at_k\.num_samples=4"):
        read_settings(compose_bench(tmp_path, ["bench.pass_at_k.num_samples=4", "bench.pass_at_k.max_k=8"]))


def test_read_settings_custom_mode_requires_method(tmp_path):
    with pytest.raises(ConfigError, match=r"bench\.method must be an import path"):
        read_settings(compose_bench(tmp_path, ["bench.mode=custom"]))


def test_read_settings_adds_custom_mode_when_method_is_set(tmp_path):
    cfg = compose_bench(tmp_path, ["bench.mode=output_only", "bench.method='tests.unit.bench.plugins:TerseAnswerer'"])
    assert read_settings(cfg).modes == ("output_only", "custom")
