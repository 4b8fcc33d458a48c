"""Shared test helpers: compose the real config with overrides, outside of @hydra.main."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from persona_gen.core.config import register_configs

register_configs()


def compose_run(out: Path, cache: Path, overrides: list[str] = ()) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_module("persona_gen.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(out.parent)
        cfg.paths.output_dir = str(out)
        cfg.paths.root = str(out.parent)
        cfg.cache.dir = str(cache)
    OmegaConf.resolve(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
