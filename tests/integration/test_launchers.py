"""Hydra launchers: sharded runs on the joblib launcher merge into the bytes of one run; sweeps on the basic one.

Both go through the installed ``persona-gen`` console script with the fake LM. The Slurm and Ray launcher configs
shipped in ``conf/hydra/launcher/`` need plugins that are not installed here: they are parsed, checked to name
their plugin, and composed against stand-ins of the plugins' base configs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

FAKE = ["models.generator=fake", "models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]


def _persona_gen() -> str:
    script = Path(sys.executable).with_name("persona-gen")
    found = str(script) if script.exists() else shutil.which("persona-gen")
    if not found:
        pytest.skip("the persona-gen console script is not installed (pip install -e .)")
    return found


def _cli(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([_persona_gen(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"persona-gen {' '.join(args)}\n{proc.stderr[-3000:]}"
    return proc


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _parquet_bytes(dataset: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dataset)): p.read_bytes() for p in sorted(dataset.rglob("*.parquet"))}


def test_joblib_shards_then_merge_equal_one_unsharded_run(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    content = [*FAKE, "scale.chunk_personas=1"]  # tiny has 2 personas: one chunk per shard
    parts = tmp_path / "parts"
    shards = tmp_path / "shards"
    _cli(["-m", "shard.index=0,1", "shard.count=2", f"shard.parts_dir={parts}", "hydra/launcher=joblib",
          "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep", *content], shards, tmp_path / "shard_cache")
    assert sorted(p.name for p in (parts / "stats").glob("*.json")) == ["part-000000.json", "part-000001.json"]
    assert not (shards / "sweep" / "0" / "dataset").exists()  # shards write parts, only the merge publishes
    assert "JoblibLauncher" in (shards / "sweep" / "multirun.yaml").read_text()

    _cli(["task=merge", "shard.count=2", f"shard.parts_dir={parts}", "hydra.run.dir=merged", *content], shards,
         tmp_path / "shard_cache")
    single = tmp_path / "single"
    _cli(["hydra.run.dir=run", *content], single, tmp_path / "single_cache")  # its own cache: made from scratch

    merged, one = _manifest(shards / "merged"), _manifest(single / "run")
    assert merged["content_hash"] == one["content_hash"]
    assert _parquet_bytes(shards / "merged" / "dataset") == _parquet_bytes(single / "run" / "dataset")
    assert merged["rows"] == one["rows"]


def test_basic_launcher_sweep_over_seeds_makes_two_datasets(tmp_path: Path) -> None:
    proc = _cli(["-m", *FAKE, "seed=1,2", "hydra.sweep.dir=sweep"], tmp_path, tmp_path / "cache")
    runs = [tmp_path / "sweep" / str(i) for i in (0, 1)]
    manifests = [_manifest(r) for r in runs]
    assert [m["seed"] for m in manifests] == [1, 2]
    assert manifests[0]["content_hash"] != manifests[1]["content_hash"]
    for run, manifest in zip(runs, manifests, strict=True):
        assert (run / "dataset" / "README.md").is_file()
        assert manifest["content_hash"] in proc.stdout


# -- launcher configs for more than one machine (plugins not installed here) ------------------------------------

LAUNCHERS = {
    # shipped config: (the plugin's base config it extends, the plugin's launcher class, a pip package)
    "slurm_shards": ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                     "hydra-submitit-launcher"),
    "ray_shards": ("ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher", "hydra-ray-launcher"),
}


def _shipped(name: str) -> Path:
    return Path(str(resources.files("persona_gen.conf").joinpath("hydra", "launcher", f"{name}.yaml")))


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_shipped_launcher_config_names_its_plugin(name: str) -> None:
    base, target, package = LAUNCHERS[name]
    text = _shipped(name).read_text()
    config = yaml.safe_load(text)
    assert config["defaults"] == [base, "_self_"]
    assert config["_target_"] == target
    assert f"pip install {package}" in text  # the file says what to install
    assert "shard.parts_dir" in text and "task=merge" in text


@pytest.fixture
def plugin_stand_ins():
    """The plugins' base launcher configs as plain nodes in Hydra's ConfigStore; removed afterwards."""
    from hydra.core.config_store import ConfigStore

    launchers = ConfigStore.instance().repo.setdefault("hydra", {}).setdefault("launcher", {})
    added = []
    for base, target, _ in LAUNCHERS.values():
        if f"{base}.yaml" not in launchers:  # a real plugin, where installed, is used as it is
            ConfigStore.instance().store(group="hydra/launcher", name=base, node={"_target_": target},
                                         provider="test_launchers")
            added.append(f"{base}.yaml")
    yield
    for key in added:
        launchers.pop(key, None)


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_shipped_launcher_config_composes_as_hydra_launcher(name: str, plugin_stand_ins) -> None:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from persona_gen.core.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module("persona_gen.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}", *[f"model@{a}" for a in FAKE[:2]]],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == LAUNCHERS[name][1]
    shipped = yaml.safe_load(_shipped(name).read_text())
    for key, value in shipped.items():
        if key != "defaults":
            assert launcher[key] == value, key
