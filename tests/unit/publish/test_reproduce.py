"""Reproduction files: resolved config with secrets redacted, package versions, command line."""

from __future__ import annotations

import json
import shlex

from omegaconf import OmegaConf

from persona_gen.publish import publish_folder
from persona_gen.publish.reproduce import (
    command_line,
    package_versions,
    recorded_command,
    redact_config,
    reproduction_files,
)

KEY = "sk-LiveKeyThatMustNotShip123456"


def test_redact_config_hides_secret_keys_token_values_and_named_env_values(monkeypatch):
    monkeypatch.setenv("MY_GEN_KEY", "plain-looking-secret-42")
    plain = {"models": {"generator": {"api_key_env": "MY_GEN_KEY", "api_key": KEY, "name": "m",
                                      "base_url": "http://x/?k=plain-looking-secret-42"}},
             "publish": {"token_env": "HF_TOKEN", "note": "hf_abcdefghijklmnop"}}
    out = redact_config(plain)
    assert out["models"]["generator"]["api_key"] == "***" and out["models"]["generator"]["api_key_env"] == "MY_GEN_KEY"
    assert out["models"]["generator"]["base_url"] == "http://x/?k=***"
    assert out["publish"] == {"token_env": "HF_TOKEN", "note": "***"}


def test_reproduction_files_ship_config_versions_and_command(monkeypatch):
    monkeypatch.setenv("MY_GEN_KEY", KEY)
    cfg = OmegaConf.create({"seed": 3, "models": {"generator": {"api_key_env": "MY_GEN_KEY", "kind": "fake",
                                                                "extra": "${oc.env:MY_GEN_KEY}"}}})
    files = reproduction_files(cfg, ["persona-gen", "seed=3", "scale=tiny"])
    assert set(files) == {"reproduce/config.yaml", "reproduce/versions.json", "reproduce/command.txt"}
    assert KEY not in "".join(files.values())
    config = OmegaConf.create(files["reproduce/config.yaml"])
    assert config.seed == 3 and config.models.generator.extra == "***"
    assert shlex.split(files["reproduce/command.txt"]) == ["persona-gen", "seed=3", "scale=tiny"]
    versions = json.loads(files["reproduce/versions.json"])
    assert versions["packages"]["persona_gen"] and "pyarrow" in versions["packages"] and versions["python"]


def test_package_versions_lists_the_dependencies():
    packages = package_versions()["packages"]
    assert {"persona_gen", "dspy", "hydra-core", "huggingface-hub", "pandas"} <= set(packages)


def test_recorded_command_wins_over_sys_argv():
    with recorded_command(["persona-gen", "scale=tiny"]):
        assert command_line() == ["persona-gen", "scale=tiny"]
    assert command_line(["x"]) == ["x"]


def test_publish_folder_ships_extra_files_and_lists_them_on_the_card(tmp_path, tables, context):
    files = reproduction_files(OmegaConf.create({"seed": 1}), ["persona-gen", "seed=1"])
    published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"},
                               extra_files=files)
    for rel, text in files.items():
        assert (published.folder / rel).read_text() == text
    assert "`reproduce/config.yaml`" in published.card_path.read_text()
