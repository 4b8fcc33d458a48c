from __future__ import annotations

from importlib import resources

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from persona_gen.core.config import register_configs, validate
from persona_gen.core.errors import ConfigError

register_configs()

GROUPS = {
    "models": "models",
    "model": "models.generator",
    "scale": "scale",
    "cache": "cache",
    "publish": "publish",
    "bench": "bench",
    "annotate": "annotate",
    "optimize": "optimize",
    "plan": "plan",
    "sampler": "sampler",
    "experiment": "experiment",
    "stage/enrich": "stage/enrich",
    "stage/questions": "stage/questions",
    "stage/feedback": "stage/feedback",
    "stage/judge": "stage/judge",
}


def _options(group: str) -> list[str]:
    folder = resources.files("persona_gen.conf").joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_module("persona_gen.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root = "/tmp"
        cfg.paths.output_dir = "/tmp/out"
        cfg.hydra.runtime.output_dir = "/tmp/out"
        cfg.hydra.runtime.cwd = "/tmp"
    return cfg


CASES = [(g, o) for g in GROUPS for o in _options(g)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_config_every_option_composes_and_validates(group, option):
    if group == "model":
        override = f"model@models.generator={option}"
    else:
        override = f"{group}={option}"
    cfg = _compose([override])
    if group == "publish" and option == "hub":
        with open_dict(cfg):
            cfg.publish.repo_id = "me/data"
    OmegaConf.resolve(cfg)
    validate(cfg)


def test_config_default_model_is_embedded_not_fake():
    cfg = _compose([])
    assert cfg.models.generator.kind == "smollm2"
    assert cfg.models.judge.kind == "smollm2"


def test_config_paper_scale_is_papers_layout():
    cfg = _compose(["scale=paper"])
    per_persona = cfg.scale.train_rows_per_persona + cfg.scale.test_seen_per_persona + cfg.scale.test_unseen_per_persona
    assert cfg.scale.num_personas * per_persona == 317_200


def test_validate_rejects_zero_personas():
    cfg = _compose(["scale.num_personas=0"])
    with pytest.raises(ConfigError, match=r"scale.num_personas must be >= 1, but got 0"):
        validate(cfg)


def test_validate_rejects_negative_rows():
    cfg = _compose(["scale.test_seen_per_persona=-1"])
    with pytest.raises(ConfigError, match=r"scale\.test_seen_per_persona must be >= 0"):
        validate(cfg)


def test_config_saved_openai_config_holds_no_key(monkeypatch):
    monkeypatch.setenv("PERSONA_GEN_API_KEY", "sk-secret-123")
    cfg = _compose(["model@models.generator=openai_compatible"])
    with open_dict(cfg):
        del cfg["hydra"]
    assert "sk-secret-123" not in OmegaConf.to_yaml(cfg, resolve=True)


@pytest.mark.parametrize(("override", "match"), [
    ("seed=-1", r"seed must be >= 0, but got -1"),
    ("scale.num_personas=99999999999999999999", r"scale\.num_personas must be at most 100,000,000"),
    ("scale.num_personas=50000000", r"scale\.num_personas must be at most ~[\d,]+ on this machine .* GiB available"),
    ("models.generator.timeout_s=-1", r"models\.generator\.timeout_s must be in \(0, 86400\], but got -1"),
    ("models.generator.num_retries=-1", r"models\.generator\.num_retries must be an integer in \[0, 100\], but got -1"),
    ("models.generator.top_p=5", r"models\.generator\.top_p must be in \(0, 1\], but got 5"),
    ("stage.enrich.candidate_factor=-1", r"stage\.enrich\.candidate_factor must be in \[1, 1000\], but got -1"),
    ("cache.size_limit_gb=0", r"cache\.size_limit_gb must be in \(0, 1e\+06\], but got 0"),
    ("cache.retry_failures=-1", r"cache\.retry_failures must be an integer in \[0, 100\]"),
    ("stage.judge.variants=[]", r"stage\.judge\.variants must be a non-empty list"),
    ("stage.questions.filters=[min_word]", r"stage\.questions\.filters\[0\] must be one of .*'min_word'"),
    ("+scale.personas=3", r"config key scale\.personas must be a key of persona_gen's config schema"),
    ("+models.generator.api_key=abc", r"config key models\.generator\.api_key must be a key"),
    ("+shard.extra=1", r"config key shard\.extra"),
    ("models.generator.api_key_env=sk-abcdefghijklmnop1234", r"api_key_env must be the NAME of an environment "
                                                            r"variable.*not shown"),
    ("publish.token_env=hf_abcdefghijklmnopqrstuv", r"publish\.token_env must be the NAME"),
    ("annotate.port=70000", r"annotate\.port must be an integer in \[0, 65535\]"),
    ("optimize.dev_fraction=1.5", r"optimize\.dev_fraction must be in \(0, 1\)"),
    ("bench.pass_at_k.max_k=99", r"bench\.pass_at_k\.max_k must be an integer in \[1, 16\]"),
])
def test_validate_refuses_each_bad_value_in_one_line(override, match):
    from persona_gen.pipeline import check

    cfg = _compose([override])
    with pytest.raises(ConfigError, match=match) as info:
        check(cfg)  # the config's values (validate) and the step graph with each step's settings
    assert "\n" not in str(info.value)
    assert "sk-abcdefghijklmnop1234" not in str(info.value) and "hf_abcdefghijklmnopqrstuv" not in str(info.value)


@pytest.mark.parametrize("override", ["shard.count=abc", "cache.size_limit_gb=abc", "stage.judge.variant=[direct]",
                                      "sampler.num_personas=3", "run_name=x", "stage.enrich.candidate_factr=2",
                                      "bench.pass_at_k.num_sample=3", "annotate.prot=1", "publish.rows_per_shrad=1"])
def test_compose_refuses_unknown_keys_and_wrong_types(override):
    from hydra.errors import HydraException

    with pytest.raises(HydraException):
        _compose([override])


def test_every_group_has_a_typed_schema():
    cfg = _compose([])
    for key in ("scale", "models.generator", "models.judge", "paths", "sampler", "stage.enrich", "stage.questions",
                "stage.feedback", "stage.judge", "cache", "publish", "shard", "bench", "annotate", "optimize"):
        node = OmegaConf.select(cfg, key)
        assert OmegaConf.get_type(node).__module__.startswith("persona_gen."), key
