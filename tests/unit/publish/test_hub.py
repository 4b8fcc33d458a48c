from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from huggingface_hub import snapshot_download
from omegaconf import OmegaConf

from persona_gen.core.errors import PublishError
from persona_gen.publish import publish_folder, read_token, upload_folder
from tests.unit.publish.conftest import TOKEN, TOKEN_ENV, files_under, hub_cfg


def _commits(hub):
    return [r for r in hub.requests if "/commit/" in r.path]


def _committed_paths(hub) -> set[str]:
    return {line["value"]["path"] for r in _commits(hub) for line in r.ndjson() if line["key"] == "file"}


@pytest.fixture
def pushed(hub, token, tmp_path, tables, context, plots, caplog):
    caplog.set_level(logging.DEBUG)
    return publish_folder(tables, tmp_path / "ds", context=context, plots=plots, publish_cfg=hub_cfg(hub))


def test_upload_creates_the_dataset_repo_private_by_default(hub, pushed):
    create = next(r for r in hub.requests if r.path == "/api/repos/create").json()
    assert (create["name"], create["organization"], create["type"]) == ("persona-data", "me", "dataset")
    assert create.get("private") is True or create.get("visibility") == "private"


def test_upload_creates_a_public_repo_when_private_is_false(hub, token, tmp_path, tables, context):
    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub, private=False))
    create = next(r for r in hub.requests if r.path == "/api/repos/create").json()
    assert create.get("private") is False or create.get("visibility") == "public"


def test_upload_sends_the_token_as_bearer_on_every_request(hub, pushed):
    assert {r.headers.get("authorization") for r in hub.requests} == {f"Bearer {TOKEN}"}


def test_upload_commits_every_file_of_the_folder(hub, pushed):
    local = {p.relative_to(pushed.folder).as_posix() for p in files_under(pushed.folder)}
    assert _committed_paths(hub) == local


def test_upload_commits_the_same_bytes_as_on_disk(hub, pushed):
    sent = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
            for r in _commits(hub) for line in r.ndjson() if line["key"] == "file"}
    assert sent["README.md"] == pushed.card_path.read_bytes()


def test_upload_returns_the_commit_url(hub, pushed):
    assert pushed.uploaded.startswith(f"{hub.url}/datasets/me/persona-data/commit/")


def test_upload_sends_the_card_for_yaml_validation(hub, pushed):
    body = next(r for r in hub.requests if r.path == "/api/validate-yaml").json()
    assert body["repoType"] == "dataset" and "config_name: feedback" in body["content"]


def test_token_absent_from_written_uploaded_and_logged_bytes(hub, pushed, tmp_path, caplog):
    secret = TOKEN.encode()
    cfg = OmegaConf.create({"publish": hub_cfg(hub)})  # what Hydra saves as .hydra/config.yaml
    (tmp_path / "saved_config.yaml").write_text(OmegaConf.to_yaml(cfg))
    assert [p for p in files_under(tmp_path) if secret in p.read_bytes()] == []
    assert [r.path for r in hub.requests if secret in r.body or secret in r.path.encode()] == []
    assert TOKEN not in caplog.text and TOKEN not in pushed.card_path.read_text()


def test_upload_deletes_remote_shards_the_folder_no_longer_has(hub, token, tmp_path, tables, context):
    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub, rows_per_shard=1))
    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub, rows_per_shard=10))
    remote = {p for p in hub.repos["me/persona-data"].files if p.startswith("data/feedback/")}
    assert remote == {"data/feedback/test-00000-of-00001.parquet", "data/feedback/train-00000-of-00001.parquet"}


def test_upload_large_folder_option_uploads_every_file(hub, token, tmp_path, tables, context):
    published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub, large_folder=True))
    local = {p.relative_to(published.folder).as_posix() for p in files_under(published.folder)}
    assert local <= set(hub.repos["me/persona-data"].files)


def test_upload_refused_commit_raises_without_the_token(hub, token, tmp_path, tables, context):
    hub.fail_commits = True
    with pytest.raises(PublishError, match=r"upload to dataset me/persona-data must be accepted by the Hub, "
                                           r"but got '\w*HTTPError.*rerun to resume") as info:
        publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub))
    assert TOKEN not in str(info.value) and (tmp_path / "ds" / "README.md").is_file()


def test_publish_folder_without_token_raises_and_writes_nothing(hub, monkeypatch, tmp_path, tables, context):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(PublishError, match=rf"Hub token must be set in {TOKEN_ENV} \(named by publish.token_env\) or "
                                           r"HF_TOKEN, or saved by `hf auth login`, but got 'none found'.*auth login"):
        publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub))
    assert list(tmp_path.iterdir()) == [] and hub.requests == []


def test_publish_folder_without_repo_id_raises_and_writes_nothing(hub, token, tmp_path, tables, context):
    with pytest.raises(PublishError, match=r"publish.repo_id must be '<user or org>/<name>', but got 'unset'.*"
                                           r"pass publish.repo_id=me/persona-data"):
        publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=hub_cfg(hub, repo_id="???"))
    assert list(tmp_path.iterdir()) == [] and hub.requests == []


def test_read_token_refuses_a_token_in_token_env_without_showing_it():
    with pytest.raises(PublishError, match=r"publish.token_env must be the NAME of an environment variable") as info:
        read_token({"token_env": TOKEN})
    assert TOKEN not in str(info.value)


def test_read_token_refuses_a_token_in_the_config():
    with pytest.raises(PublishError, match=r"publish.token must be unset .*but got 'a value \(hidden\)'") as info:
        read_token({"token": TOKEN, "token_env": TOKEN_ENV})
    assert TOKEN not in str(info.value)


def test_upload_refuses_a_folder_that_contains_the_token(hub, token, tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text(f"oops {TOKEN}")
    with pytest.raises(PublishError, match=r"the dataset folder must be free of the Hub token.*\(notes.txt\)"):
        upload_folder(tmp_path / "ds", hub_cfg(hub))
    assert [r.path for r in hub.requests] == []


def test_upload_in_offline_mode_raises(hub, token, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PublishError, match=r"huggingface_hub offline mode must be off to upload.*unset HF_HUB_OFFLINE"):
        upload_folder(tmp_path, hub_cfg(hub))


def test_uploaded_folder_downloads_byte_for_byte_and_loads(hub, pushed, tmp_path):
    out = Path(snapshot_download("me/persona-data", repo_type="dataset", local_dir=tmp_path / "down",
                                 endpoint=hub.url, token=TOKEN))
    for src in files_under(pushed.folder):
        assert (out / src.relative_to(pushed.folder)).read_bytes() == src.read_bytes()
    feedback = datasets.load_dataset(str(out), "feedback", cache_dir=str(tmp_path / "cache"))
    assert feedback["train"].num_rows == 3


def test_hf_cli_uploads_the_folder_as_is(hub, tmp_path, tables, context):
    folder = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"}).folder
    hf = Path(sys.executable).with_name("hf")
    if not hf.exists():
        pytest.skip("the hf command (huggingface_hub >= 1.0) is not installed beside this python")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    run = subprocess.run([str(hf), "upload", "me/cli-data", str(folder), ".", "--repo-type", "dataset", "--private",
                          "--delete", "data/*", "--delete", "plots/*"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    local = {p.relative_to(folder).as_posix() for p in files_under(folder)}
    assert set(hub.repos["me/cli-data"].files) == local


def test_publish_folder_with_the_composed_hub_group_needs_a_repo_id(tmp_path, tables, context):
    from tests.helpers import compose_run

    cfg = compose_run(tmp_path / "out", tmp_path / "cache", ["publish=hub"])
    with pytest.raises(PublishError, match=r"publish.repo_id must be '<user or org>/<name>', but got 'unset'"):
        publish_folder(tables, tmp_path / "out" / "dataset", context=context, publish_cfg=cfg.publish)
    assert not (tmp_path / "out" / "dataset").exists()
