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
