"""Hydra launchers: sharded runs merge into the bytes of one run on every launcher that runs here for real.

Each test goes through the installed ``persona-gen`` console script with the fake LM: the joblib launcher, the
submitit launcher's local executor (``hydra/launcher=submitit_local``: the Slurm plugin's code path, with local
processes in place of Slurm jobs) and the Ray launcher on a one-machine Ray that the test starts (the shipped
``ray_shards`` config with ``ray.init.address=null``). The Slurm config (``slurm_shards``) needs a Slurm cluster:
it is parsed, checked to name its plugin, and composed with the installed plugin's base config.
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


CONTENT = [*FAKE, "scale.chunk_personas=1"]  # tiny has 2 personas: one chunk per shard


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> Path:
    """One unsharded run of CONTENT with its own cache (made from scratch): what every launcher's merge must equal."""
    root = tmp_path_factory.mktemp("unsharded")
    _cli(["hydra.run.dir=run", *CONTENT], root, root / "cache")
    return root / "run"


def _shards_then_merge(tmp_path: Path, launcher: list[str], count: int = 2) -> tuple[Path, str]:
    """``count`` shards through ``launcher`` sharing only the parts dir, then ``task=merge``: the merged run dir and
    what the multirun printed.

    The shards of one multirun share a node-local cache folder (``PERSONA_GEN_CACHE_DIR``), as shards on one
    machine do; the merge gets an empty one of its own (it makes no LM call).
    """
    parts, shards = tmp_path / "parts", tmp_path / "shards"
    proc = _cli(["-m", f"shard.index=range(0,{count})", f"shard.count={count}", f"shard.parts_dir={parts}",
                 *launcher, "hydra.sweep.dir=sweep", *CONTENT], shards, tmp_path / "shard_cache")
    assert sorted(p.name for p in (parts / "stats").glob("*.json")) == [f"part-{i:06d}.json" for i in range(2)]
    for i in range(count):
        assert not (shards / "sweep" / str(i) / "dataset").exists()  # shards write parts, only the merge publishes
    _cli(["task=merge", f"shard.count={count}", f"shard.parts_dir={parts}", "hydra.run.dir=merged", *CONTENT],
         shards, tmp_path / "merge_cache")
    return shards / "merged", proc.stdout + proc.stderr


def _assert_same_dataset(merged: Path, one: Path) -> None:
    assert _manifest(merged)["content_hash"] == _manifest(one)["content_hash"]
    assert _parquet_bytes(merged / "dataset") == _parquet_bytes(one / "dataset")
    assert _manifest(merged)["rows"] == _manifest(one)["rows"]


def test_joblib_shards_then_merge_equal_one_unsharded_run(tmp_path: Path, unsharded: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    merged, _ = _shards_then_merge(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert "JoblibLauncher" in (tmp_path / "shards" / "sweep" / "multirun.yaml").read_text()
    _assert_same_dataset(merged, unsharded)


def test_submitit_local_shards_then_merge_equal_one_unsharded_run(tmp_path: Path, unsharded: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    merged, _ = _shards_then_merge(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                                              "hydra.launcher.cpus_per_task=1"])
    sweep = tmp_path / "shards" / "sweep"
    assert "LocalLauncher" in (sweep / "multirun.yaml").read_text()
    # submitit ran each shard as its own job: one result pickle and log per shard in its folder.
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
    _assert_same_dataset(merged, unsharded)


def test_ray_shards_then_merge_equal_one_unsharded_run(tmp_path: Path, unsharded: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    pytest.importorskip("ray")
    # The shipped config, on a one-machine Ray started by the launcher (address null), sized for a small machine.
    merged, printed = _shards_then_merge(tmp_path, [
        "hydra/launcher=ray_shards", "hydra.launcher.ray.init.address=null", "hydra.launcher.ray.remote.num_cpus=1",
        "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false"])
    assert "RayLauncher" in (tmp_path / "shards" / "sweep" / "multirun.yaml").read_text()
    assert "Ray Launcher is launching 2 jobs" in printed  # the plugin's own log line: Ray ran the shards
    _assert_same_dataset(merged, unsharded)


def test_basic_launcher_sweep_over_seeds_makes_two_datasets(tmp_path: Path) -> None:
    proc = _cli(["-m", *FAKE, "seed=1,2", "hydra.sweep.dir=sweep"], tmp_path, tmp_path / "cache")
    runs = [tmp_path / "sweep" / str(i) for i in (0, 1)]
    manifests = [_manifest(r) for r in runs]
    assert [m["seed"] for m in manifests] == [1, 2]
    assert manifests[0]["content_hash"] != manifests[1]["content_hash"]
    for run, manifest in zip(runs, manifests, strict=True):
        assert (run / "dataset" / "README.md").is_file()
        assert manifest["content_hash"] in proc.stdout


# -- the shipped launcher configs for clusters -------------------------------------------------------------------

LAUNCHERS = {
    # shipped config: (the plugin's base config it extends, the plugin's launcher class, its config module, a pip
    # package)
    "slurm_shards": ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                     "hydra_plugins.hydra_submitit_launcher.config", "hydra-submitit-launcher"),
    "ray_shards": ("ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
                   "hydra_plugins.hydra_ray_launcher._config", "hydra-ray-launcher"),
}


def _shipped(name: str) -> Path:
    return Path(str(resources.files("persona_gen.conf").joinpath("hydra", "launcher", f"{name}.yaml")))


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_shipped_launcher_config_names_its_plugin(name: str) -> None:
    base, target, _, package = LAUNCHERS[name]
    text = _shipped(name).read_text()
    config = yaml.safe_load(text)
    assert config["defaults"] == [base, "_self_"]
    assert config["_target_"] == target
    assert "pip install" in text and package in text  # the file says what to install
    assert "shard.parts_dir" in text and "task=merge" in text


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_shipped_launcher_config_composes_on_the_installed_plugin(name: str) -> None:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from persona_gen.core.config import register_configs

    base, target, config_module, _ = LAUNCHERS[name]
    pytest.importorskip(config_module)  # registers the plugin's base configs in Hydra's ConfigStore
    register_configs()
    GlobalHydra.instance().clear()
    # One sweep dir for both: its default holds the time to the second, and the two composes may straddle one.
    fixed = ["hydra.sweep.dir=multirun/launcher-test", *[f"model@{a}" for a in FAKE[:2]]]
    with initialize_config_module("persona_gen.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}", *fixed], return_hydra_config=True)
        plain = compose("config", overrides=[f"hydra/launcher={base}", *fixed], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == target
    shipped = yaml.safe_load(_shipped(name).read_text())
    for key, value in shipped.items():
        if key != "defaults":
            assert launcher[key] == value, key
    # Everything else is the plugin's own default: the file extends the base config, it does not replace it.
    for key in set(plain.hydra.launcher) - set(shipped):
        assert launcher[key] == plain.hydra.launcher[key], key
