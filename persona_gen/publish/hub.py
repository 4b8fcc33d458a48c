"""Publish: the Hub folder (card + parquet configs + plots) and, unless dry-run, the upload.

The folder is what ``huggingface-cli upload <repo> <folder> --repo-type dataset`` pushes as is, and
``datasets.load_dataset(<folder>, "<config>")`` reads. The token is read from the environment variable
that ``publish.token_env`` names; it is never written to the card, the manifest, logs or data.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from persona_gen.core.errors import PublishError, format_error
from persona_gen.publish.writer import atomic_write_text, content_hash, write_parquet_shards

__all__ = ["Published", "publish_folder", "render_card", "upload_folder"]


@dataclass(frozen=True)
class Published:
    folder: Path
    card_path: Path
    content_hash: str
    uploaded: str | None


def _card_data(tables: dict[str, dict[str, pd.DataFrame]], pretty_name: str) -> Any:
    from huggingface_hub import DatasetCardData

    total = sum(len(df) for splits in tables.values() for df in splits.values())
    size = "n<1K" if total < 1_000 else "1K<n<10K" if total < 10_000 else "10K<n<100K" if total < 100_000 \
        else "100K<n<1M" if total < 1_000_000 else "1M<n<10M"
    configs = [{"config_name": name, "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"}
                                                    for split in sorted(splits)],
                **({"default": True} if name == "feedback" else {})}
               for name, splits in tables.items()]
    return DatasetCardData(
        license="cc-by-4.0", language=["en"], pretty_name=pretty_name, size_categories=[size],
        task_categories=["text-generation"], tags=["synthetic", "personas", "pluralistic-alignment", "preference",
                                                   "census", "dpf"],
        configs=configs)


def render_card(tables: dict[str, dict[str, pd.DataFrame]], context: dict[str, Any], *, plots: list[str],
                pretty_name: str = "PERSONA-style synthetic preference data") -> str:
    from huggingface_hub import DatasetCard

    template = resources.files("persona_gen.cards").joinpath("dataset_card.md.j2")
    configs_table = [{"name": n, "splits": ", ".join(sorted(s)), "rows": sum(len(d) for d in s.values())}
                     for n, s in tables.items()]
    card = DatasetCard.from_template(
        _card_data(tables, pretty_name), template_path=str(template), pretty_name=pretty_name,
        configs_table=configs_table, plots=plots, **context)
    return str(card)


def upload_folder(folder: Path, publish_cfg: Any) -> str:
    """Create the dataset repo (private by default) and upload the folder; resumable for large folders."""
    from huggingface_hub import HfApi

    repo_id = publish_cfg.get("repo_id")
    if not repo_id:
        raise PublishError(format_error("publish.repo_id", expected="'<user or org>/<name>'", got=repo_id,
                                        where="conf/publish/hub.yaml", fix="pass publish.repo_id=me/persona-data"))
    token_env = publish_cfg.get("token_env") or "HF_TOKEN"
    token = os.environ.get(token_env)
    if not token:
        raise PublishError(format_error(f"environment variable {token_env}", expected="set to a Hub write token",
                                        got="unset", where="publish.token_env", fix=f"export {token_env}=..."))
    api = HfApi(endpoint=publish_cfg.get("endpoint") or None, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=bool(publish_cfg.get("private", True)), exist_ok=True)
        if publish_cfg.get("large_folder", False):
            api.upload_large_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset")
            return f"{repo_id}"
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset",
                                 commit_message="persona_gen: publish dataset")
    except Exception as exc:
        # Never echo the token: huggingface_hub errors carry URLs and bodies, not headers.
        raise PublishError(format_error(f"upload to {repo_id}", expected="to succeed", got=type(exc).__name__,
                                        where=str(publish_cfg.get("endpoint") or "the Hub"),
                                        fix=f"check the network and the token in {token_env}; rerun to resume"))\
            from exc
    return str(getattr(info, "commit_url", repo_id))


def publish_folder(tables: dict[str, dict[str, pd.DataFrame]], folder: Path, *, context: dict[str, Any],
                   plots: list[Path], publish_cfg: Any) -> Published:
    folder = Path(folder)
    data_dir = folder / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a rerun replaces the data wholesale; stale shards must not linger
    files = []
    for name, splits in tables.items():
        for split, frame in sorted(splits.items()):
            files += write_parquet_shards(frame, data_dir / name, split)
    digest = content_hash(files, folder)
    rel_plots = [str(Path(p).relative_to(folder)) for p in plots]
    card_text = render_card(tables, {**context, "content_hash": digest}, plots=rel_plots)
    card_path = folder / "README.md"
    atomic_write_text(card_path, card_text)
    uploaded = None
    if publish_cfg.get("mode", "dry_run") == "hub":
        uploaded = upload_folder(folder, publish_cfg)
    return Published(folder, card_path, digest, uploaded)
