"""Shared test helpers: compose the real config with overrides, outside of @hydra.main."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from persona_gen.census.spec import package_data
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


def read_wyoming_csv() -> pd.DataFrame:
    """The shipped Wyoming person file as text, to build broken copies from."""
    with zipfile.ZipFile(package_data("csv_pwy.zip")) as archive, archive.open("psam_p56.csv") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def write_zip(path: Path, frame: pd.DataFrame, member: str = "psam_p56.csv") -> Path:
    """Write a frame as a Bureau-style zip holding one CSV member."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, buffer.getvalue())
    return path
