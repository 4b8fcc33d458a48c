"""Hugging Face Hub conventions: the token from huggingface_hub, the retry command, permissions, fake data."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import persona_gen
from persona_gen.core.errors import PublishError
from persona_gen.publish import publish_folder, read_token
from persona_gen.publish.hub import check_publish_config, retry_command, upload_folder, upload_published
from tests.unit.publish.conftest import TOKEN, TOKEN_ENV, hub_cfg

SAVED = "hf_SavedLoginTokenForTests0123456789"


def _login(path: Path, token: str = SAVED) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)


def _auth(hub) -> set[str | None]:
    return {r.headers.get("authorization") for r in hub.requests}


def test_read_token_uses_a_saved_login(no_saved_hub_login):
    _login(no_saved_hub_login)
    assert read_token({}) == SAVED


def test_read_token_hf_token_wins_over_a_saved_login(no_saved_hub_login, monkeypatch):
    _login(no_saved_hub_login)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert read_token({"token_env": "HF_TOKEN"}) == TOKEN


def test_read_token_a_named_variable_wins_then_falls_back_to_the_login(no_saved_hub_login, monkeypatch):
    _login(no_saved_hub_login)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert read_token({"token_env": TOKEN_ENV}) == TOKEN
    monkeypatch.delenv(TOKEN_ENV)
    assert read_token({"token_env": TOKEN_ENV}) == SAVED


def test_publish_with_only_a_saved_login_uploads(hub, no_saved_hub_login, tmp_path, tables, context):
    _login(no_saved_hub_login)
    published = publish_folder(tables, tmp_path / "ds", context=context,
                               publish_cfg={**hub_cfg(hub), "token_env": "HF_TOKEN"})
    assert published.uploaded and _auth(hub) == {f"Bearer {SAVED}"}
    assert "README.md" in hub.repos["me/persona-data"].files


def test_failed_upload_names_the_exact_hf_upload_command(hub, token, tmp_path, tables, context):
    hub.fail_commits = True
    cfg = hub_cfg(hub)
    with pytest.raises(PublishError, match=r"retry with: HF_ENDPOINT=\S+ HF_TOKEN=\"\$PERSONA_GEN_TEST_HF_TOKEN\" "
                                           r"hf upload me/persona-data ") as info:
        publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=cfg)
    command = str(info.value).split("retry with: ", 1)[1]
    args = shlex.split(command.split(" hf ", 1)[1])
    assert args[:6] == ["upload", "me/persona-data", str((tmp_path / "ds").resolve()), ".", "--repo-type", "dataset"]
    assert "--private" in args and ["--delete", "data/*"] == args[args.index("--delete"):args.index("--delete") + 2]
    assert TOKEN not in str(info.value)


def test_retry_command_is_public_when_private_is_false(tmp_path):
    command = retry_command(tmp_path, {"repo_id": "me/x", "private": False})
    assert command.startswith("hf upload me/x ") and "--private" not in command


def test_dataset_folder_follows_the_umask(tmp_path, tables, context):
    old = os.umask(0o022)
    try:
        published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(published.folder.stat().st_mode) == 0o755


def test_card_says_the_upload_is_private_by_default(tmp_path, tables, context):
    card = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"}).card_path
    assert "uploads a dataset **private** (the default, `publish.private=true`)" in card.read_text()


def test_fake_lm_data_is_not_uploaded_unless_allowed(hub, token, tmp_path, tables, context):
    fake = {**context, "generator_model": "fake:fake-v1", "judge_model": "fake:fake-v1"}
    with pytest.raises(PublishError, match=r"upload of data made by the fake LM must be refused.*fake_model=true"):
        publish_folder(tables, tmp_path / "ds", context=fake, publish_cfg=hub_cfg(hub))
    assert hub.requests == [] and not (tmp_path / "ds").exists()
    published = publish_folder(tables, tmp_path / "ds", context=fake, publish_cfg=hub_cfg(hub, allow_fake_model=True))
    assert published.uploaded


def test_check_publish_config_refuses_fake_models_before_any_work(token):
    models = OmegaConf.create({"generator": {"kind": "fake"}, "judge": {"kind": "smollm2"}})
    with pytest.raises(PublishError, match=r"fake LM"):
        check_publish_config({"mode": "hub", "repo_id": "me/x", "token_env": TOKEN_ENV}, models=models)
    assert check_publish_config({"mode": "dry_run"}, models=models) is None


def test_upload_folder_refuses_a_folder_whose_config_says_fake(hub, token, tmp_path):
    (tmp_path / "ds" / "reproduce").mkdir(parents=True)
    (tmp_path / "ds" / "reproduce" / "config.yaml").write_text("models:\n  generator:\n    kind: fake\n")
    with pytest.raises(PublishError, match=r"fake LM"):
        upload_folder(tmp_path / "ds", hub_cfg(hub))


def test_deferred_upload_waits_for_upload_published(hub, token, tmp_path, tables, context):
    published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub), upload=False)
    assert published.pending_upload and published.uploaded is None and "me/persona-data" not in hub.repos
    done = upload_published(published, hub_cfg(hub))
    assert done.uploaded and not done.pending_upload and "README.md" in hub.repos["me/persona-data"].files


def test_bench_scores_of_another_dataset_are_refused(tmp_path, tables, context):
    other = {**context, "bench_scores": {**context["bench_scores"], "dataset_content_hash": "0" * 64,
                                         "dataset_source": "/elsewhere"}}
    with pytest.raises(PublishError, match=r"publish.bench_dir scores must be computed on this dataset"):
        publish_folder(tables, tmp_path / "ds", context=other, publish_cfg={"mode": "dry_run"})
    assert not (tmp_path / "ds").exists()


def test_bench_scores_of_this_dataset_are_attached(tmp_path, tables, context):
    from persona_gen.bench.data import load_bench_data

    first = publish_folder(tables, tmp_path / "a", context=context, publish_cfg={"mode": "dry_run"})
    # What the bench records for the folder it scores: the data configs, its own attached rows left out.
    digest = load_bench_data(first.folder).origin.content_hash
    assert digest != first.content_hash  # the folder has a bench config already
    same = {**context, "bench_scores": {**context["bench_scores"], "dataset_content_hash": digest}}
    second = publish_folder(tables, tmp_path / "b", context=same, publish_cfg={"mode": "dry_run"})
    assert second.content_hash == first.content_hash


FAKE = ["models.generator=fake", "models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]


def _hub_run(hub, tmp_path, *extra):
    return [*FAKE, f"cache.dir={tmp_path / 'cache'}", "publish=hub", "publish.repo_id=me/api-data",
            f"publish.endpoint={hub.url}", *extra]


def test_generate_publishes_with_a_saved_login_and_writes_the_manifest_first(hub, no_saved_hub_login, tmp_path):
    _login(no_saved_hub_login)
    run = persona_gen.generate(_hub_run(hub, tmp_path, "publish.allow_fake_model=true"), output_dir=tmp_path / "run",
                               cwd=tmp_path)
    assert run.manifest["uploaded"].startswith(f"{hub.url}/datasets/me/api-data/commit/")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["uploaded"] == run.manifest["uploaded"]
    remote = hub.repos["me/api-data"]
    assert remote.private and {"README.md", "reproduce/config.yaml"} <= set(remote.files)
    assert _auth(hub) == {f"Bearer {SAVED}"} and SAVED.encode() not in b"".join(remote.files.values())


def test_generate_failed_upload_keeps_the_manifest_with_the_retry_command(hub, no_saved_hub_login, tmp_path):
    _login(no_saved_hub_login)
    hub.fail_commits = True
    with pytest.raises(PublishError, match=r"retry with: .*hf upload me/api-data"):
        persona_gen.generate(_hub_run(hub, tmp_path, "publish.allow_fake_model=true"), output_dir=tmp_path / "run",
                             cwd=tmp_path)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["uploaded"] is None and "hf upload me/api-data" in manifest["upload_command"]
    assert (tmp_path / "run" / "dataset" / "README.md").is_file()


def test_generate_refuses_to_push_fake_data_before_any_lm_call(hub, no_saved_hub_login, tmp_path):
    _login(no_saved_hub_login)
    with pytest.raises(PublishError, match=r"fake LM"):
        persona_gen.generate(_hub_run(hub, tmp_path), output_dir=tmp_path / "run", cwd=tmp_path)
    assert not (tmp_path / "cache").exists() and hub.requests == []
