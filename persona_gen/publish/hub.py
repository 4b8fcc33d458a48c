"""Publish: the Hub folder (card + parquet configs + plots) and, unless dry-run, the upload.

The folder is what the Hub CLI pushes as is and what ``datasets`` reads::

    README.md                                      dataset card (YAML header declares the configs)
    data/<config>/<split>-NNNNN-of-NNNNN.parquet   shards of at most publish.rows_per_shard rows
    plots/<name>.png                               linked from the card

    reproduce/                                     resolved config (secrets redacted), versions, command line

The folder is built in a hidden staging folder beside it and swapped in only when complete, so a failed
run leaves the previous folder as it was and no half-written one; it gets the permissions the umask gives
(not ``mkdtemp``'s 0700). The token comes from ``huggingface_hub.get_token()`` (``HF_TOKEN`` first, then the
login that ``hf auth login`` saved), or from the variable ``publish.token_env`` names when that is not
``HF_TOKEN``; it is read at upload time only, never written to the card, the config, logs or data, and every
file is checked for it before anything is sent. Data made by the fake LM (``persona_gen.testing``) is not
uploaded unless ``publish.allow_fake_model=true``. A failed upload names the exact ``hf upload`` command that
retries it. See ``README.md`` beside this module for the CLI commands.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from persona_gen.core.errors import PublishError, format_error
from persona_gen.publish.card import SplitInfo, _get, render_card, validate_card
from persona_gen.publish.writer import (
    ROW_GROUP_SIZE,
    ROWS_PER_SHARD,
    ShardWriter,
    atomic_write_bytes,
    atomic_write_text,
    check_name,
    content_hash,
    fsync_dir,
)

__all__ = ["MODES", "Published", "check_publish_config", "clean_leftovers", "made_by_fake_model", "publish_folder",
           "read_token", "retry_command", "scan_for_secret", "upload_folder", "upload_published"]

log = logging.getLogger(__name__)

MODES = ("dry_run", "hub")
# Remote files under these patterns that the local folder no longer has are deleted in the upload commit:
# shards of an earlier run with another shard count would otherwise be read as data by the config globs.
MANAGED_PATTERNS = ["data/*", "plots/*"]
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
_TOKEN_LIKE = re.compile(r"(hf_|api_org_)[A-Za-z0-9]{8,}")
_WHERE = "conf/publish/hub.yaml or the command line"


@dataclass(frozen=True)
class Published:
    """What :func:`publish_folder` wrote, and where it was uploaded (``None`` on a dry run)."""

    folder: Path
    card_path: Path
    content_hash: str
    uploaded: str | None
    files: tuple[Path, ...] = ()
    splits: Mapping[str, Mapping[str, SplitInfo]] = field(default_factory=dict)
    # True when publish.mode=hub and publish_folder(upload=False) left the upload to upload_published().
    pending_upload: bool = False
    repo_id: str | None = None


# -- configuration checks (all before anything is written) -------------------------------------------------------


def _mode(cfg: Any) -> str:
    mode = str(_get(cfg, "mode", "dry_run"))
    if mode not in MODES:
        raise PublishError(format_error("publish.mode", expected=f"one of {list(MODES)}", got=mode, where=_WHERE,
                                        fix="use publish=dry_run (write only) or publish=hub (write and upload)"))
    return mode


def _repo_id(cfg: Any) -> str:
    repo_id = _get(cfg, "repo_id")
    if not repo_id or repo_id == "???" or not _REPO_ID.fullmatch(str(repo_id)) or len(str(repo_id)) > 96:
        got = "unset" if repo_id in (None, "", "???") else repo_id
        raise PublishError(format_error("publish.repo_id", expected="'<user or org>/<name>'", got=got,
                                        where=_WHERE, fix="pass publish.repo_id=me/persona-data"))
    return str(repo_id)


def read_token(publish_cfg: Any) -> str:
    """The Hub token: ``huggingface_hub.get_token()``, or the variable ``publish.token_env`` names.

    With ``publish.token_env`` unset or ``HF_TOKEN`` (the default), the token is what ``huggingface_hub`` itself
    would use: ``HF_TOKEN`` if set, else the login saved by ``hf auth login``. Another variable name is read
    first, then the same fallback.

    Raises:
        PublishError: the config holds a token itself, ``token_env`` looks like a token rather than a
            variable name, or no token is found. No message ever shows a token.
    """
    from huggingface_hub import get_token

    if _get(publish_cfg, "token"):
        raise PublishError(format_error(
            "publish.token", expected="unset (a token in the config would be saved with it)", got="a value (hidden)",
            where=_WHERE, fix="remove it, and run `hf auth login` or export HF_TOKEN=<token>"))
    token_env = str(_get(publish_cfg, "token_env", "HF_TOKEN"))
    if _TOKEN_LIKE.search(token_env) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise PublishError(format_error(
            "publish.token_env", expected="the NAME of an environment variable, e.g. HF_TOKEN",
            got="a value that is not a variable name (hidden: it may be a token)", where=_WHERE,
            fix="export HF_TOKEN=<token> and pass publish.token_env=HF_TOKEN; revoke the token if it was a real one"))
    token = os.environ.get(token_env, "").strip() or (get_token() or "").strip()
    if not token:
        named = "HF_TOKEN" if token_env == "HF_TOKEN" else f"{token_env} (named by publish.token_env) or HF_TOKEN"
        raise PublishError(format_error(
            "Hub token", expected=f"set in {named}, or saved by `hf auth login`", got="none found",
            where="the environment and the huggingface_hub token file",
            fix=f"run `hf auth login`, or export {token_env}=<token from https://huggingface.co/settings/tokens>, "
                "or use publish=dry_run"))
    return token


def made_by_fake_model(models: Any = None, context: Mapping[str, Any] | None = None) -> bool:
    """Whether the data was made by persona_gen's fake LM: a ``models.<role>.kind`` or a model id says ``fake``."""
    kinds = []
    if models is not None:
        for role in ("generator", "judge"):
            model = models.get(role) if hasattr(models, "get") else None
            if model is not None:
                kinds.append(str(_get(model, "kind", "")))
    if context is not None:
        kinds += [str(context.get(k) or "").split(":", 1)[0] for k in ("generator_model", "judge_model")]
    return "fake" in kinds


def _refuse_fake(publish_cfg: Any, models: Any = None, context: Mapping[str, Any] | None = None) -> None:
    if _mode(publish_cfg) == "hub" and not _get(publish_cfg, "allow_fake_model", False) \
            and made_by_fake_model(models, context):
        raise PublishError(format_error(
            "upload of data made by the fake LM", expected="refused (its text is placeholder words, not data)",
            got="models.generator or models.judge is kind 'fake'", where=_WHERE,
            fix="use a real model, or publish=dry_run; to push it anyway pass publish.allow_fake_model=true"))


def check_publish_config(publish_cfg: Any, models: Any = None) -> str | None:
    """Check ``publish`` before any work: the mode and, for ``hub``, the repo id, the token and online mode.

    Args:
        publish_cfg: the ``publish`` group.
        models: the ``models`` group, if known: an upload of the fake LM's data is refused here, before any work.

    Returns:
        The Hub token for ``publish.mode=hub``, else ``None``.

    Raises:
        PublishError: an unknown mode, no repo id, no token, offline mode, or fake-LM data to upload.
    """
    if _mode(publish_cfg) != "hub":
        return None
    _repo_id(publish_cfg)
    _refuse_fake(publish_cfg, models)
    token = read_token(publish_cfg)
    _check_online()
    return token


def _check_online() -> None:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise PublishError(format_error(
            "huggingface_hub offline mode", expected="off to upload", got="HF_HUB_OFFLINE=1", where="the environment",
            fix="unset HF_HUB_OFFLINE, or use publish=dry_run and upload later with `hf upload`"))


def scan_for_secret(folder: str | Path, secret: str, *, chunk: int = 1 << 20) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``secret`` (read in overlapping chunks)."""
    needle = secret.encode()
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        tail = b""
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                if needle in tail + block:
                    found.append(path)
                    break
                tail = block[-(len(needle) - 1):] if len(needle) > 1 else b""
    return found


def _refuse_secret(folder: Path, token: str) -> None:
    leaks = scan_for_secret(folder, token)
    if leaks:
        raise PublishError(format_error(
            "the dataset folder", expected="free of the Hub token", got=f"the token in {len(leaks)} file(s)",
            where=", ".join(str(p.relative_to(folder)) for p in leaks[:5]),
            fix="find how it got into the data (a prompt? a config dump?), remove it, and revoke the token"))


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


# -- upload --------------------------------------------------------------------------------------------------------


def upload_folder(folder: str | Path, publish_cfg: Any, *, token: str | None = None) -> str:
    """Create the dataset repo (private unless ``publish.private=false``) and upload the folder.

    Remote shards and plots the folder no longer has are deleted in the same commit. With
    ``publish.large_folder=true`` the upload is resumable: ``HfApi.upload_large_folder`` where the installed
    huggingface_hub has it (2.4, pinned here, does not), else ``HfApi.upload_folder``, which with ``hf_xet``
    installed is itself resumable and splits large folders into several commits. Rerunning an interrupted
    upload resumes it.

    Returns:
        The commit URL, or the repo URL for ``upload_large_folder``.

    Raises:
        PublishError: no repo id, no token, offline mode, the token found in a file, or the Hub refused.
    """
    folder = Path(folder)
    repo_id = _repo_id(publish_cfg)
    token = token or read_token(publish_cfg)
    _check_online()
    _refuse_fake(publish_cfg, _folder_models(folder))
    _refuse_secret(folder, token)
    return _upload(folder, publish_cfg, repo_id=repo_id, token=token)


def _folder_models(folder: Path) -> Any:
    """The ``models`` group recorded in the folder's ``reproduce/config.yaml``, if it has one."""
    from omegaconf import OmegaConf

    path = folder / "reproduce" / "config.yaml"
    if not path.is_file():
        return None
    try:
        return OmegaConf.load(path).get("models")
    except Exception:  # an unreadable record is no evidence either way
        return None


def retry_command(folder: str | Path, publish_cfg: Any) -> str:
    """The ``hf upload`` command that pushes ``folder`` as :func:`upload_folder` would (for a failed upload)."""
    repo_id = str(_get(publish_cfg, "repo_id", "<user>/<name>"))
    args = ["hf", "upload", repo_id, str(Path(folder).resolve()), ".", "--repo-type", "dataset"]
    if bool(_get(publish_cfg, "private", True)):
        args.append("--private")
    for pattern in MANAGED_PATTERNS:
        args += ["--delete", pattern]
    args += ["--commit-message", str(_get(publish_cfg, "commit_message", "persona_gen: publish dataset"))]
    env = []
    endpoint = _get(publish_cfg, "endpoint")
    if endpoint:
        env.append(f"HF_ENDPOINT={shlex.quote(str(endpoint))}")
    token_env = str(_get(publish_cfg, "token_env", "HF_TOKEN"))
    if token_env != "HF_TOKEN" and os.environ.get(token_env):
        env.append(f'HF_TOKEN="${token_env}"')
    return " ".join([*env, shlex.join(args)])


def _upload(folder: Path, publish_cfg: Any, *, repo_id: str, token: str) -> str:
    from huggingface_hub import HfApi

    endpoint = _get(publish_cfg, "endpoint") or None
    private = bool(_get(publish_cfg, "private", True))
    api = HfApi(endpoint=endpoint, token=token, library_name="persona_gen")
    log.info("publish: uploading %s to dataset %s (private=%s)", folder, repo_id, private)
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        large = getattr(api, "upload_large_folder", None) if _get(publish_cfg, "large_folder", False) else None
        if large is not None:
            large(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", private=private)
            _delete_stale(api, repo_id, folder)
            return str(repo_url)
        message = str(_get(publish_cfg, "commit_message", "persona_gen: publish dataset"))
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset",
                                 commit_message=message, delete_patterns=MANAGED_PATTERNS)
    except Exception as exc:
        # huggingface_hub errors carry URLs and response bodies, not request headers; redact anyway.
        got = _redact(f"{type(exc).__name__}: {exc}", token).splitlines()[0][:300]
        command = retry_command(folder, publish_cfg)
        log.error("publish: upload failed; the folder is complete on disk, retry with: %s", command)
        raise PublishError(format_error(
            f"upload to dataset {repo_id}", expected="accepted by the Hub", got=got, where=str(endpoint or "the Hub"),
            fix=f"check the network and that the token may write to {repo_id}; rerun to resume (the folder is "
                f"complete on disk), or retry with: {command}")) from None
    return str(getattr(info, "commit_url", repo_url))


def upload_published(published: Published, publish_cfg: Any) -> Published:
    """Upload a folder that ``publish_folder(..., upload=False)`` wrote (after the caller saved its manifest).

    Returns:
        ``published`` with ``uploaded`` set to the commit URL; unchanged when nothing was pending.
    """
    if not published.pending_upload:
        return published
    uploaded = upload_folder(published.folder, publish_cfg)
    return replace(published, uploaded=uploaded, pending_upload=False)


def _delete_stale(api: Any, repo_id: str, folder: Path) -> None:
    """``upload_large_folder`` cannot delete; drop remote shards and plots the folder no longer has."""
    from huggingface_hub import CommitOperationDelete

    local = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    remote = api.list_repo_files(repo_id, repo_type="dataset")
    stale = [f for f in remote if f.startswith(("data/", "plots/")) and f not in local]
    if stale:
        api.create_commit(repo_id=repo_id, repo_type="dataset", commit_message="persona_gen: drop stale files",
                          operations=[CommitOperationDelete(path_in_repo=f) for f in stale])


# -- the folder ----------------------------------------------------------------------------------------------------


def _write_split(value: Any, folder: Path, split: str, *, rows_per_shard: int, row_group_size: int,
                 config: str = "") -> list[Path]:
    from persona_gen.publish.typed import typed_table

    if isinstance(value, pd.DataFrame):
        # Typed once over the whole frame: one schema whatever the batch a column is first non-null in.
        table = typed_table(config, value)
        with ShardWriter(folder, split, rows_per_shard=rows_per_shard, row_group_size=row_group_size,
                         schema=table.schema) as writer:
            for start in range(0, table.num_rows, 50_000):
                writer.write(table.slice(start, 50_000))
        return writer.paths
    if isinstance(value, ShardWriter):  # already streamed elsewhere: bring its shards in
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for src in value.close():
            dst = folder / f"{split}-{src.name.split('-', 1)[1]}"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            paths.append(dst)
        return paths
    with ShardWriter(folder, split, rows_per_shard=rows_per_shard, row_group_size=row_group_size) as writer:
        if isinstance(value, pa.Table | pa.RecordBatch | Mapping):
            writer.write(value)
        else:
            for batch in value:  # an iterable of batches: streamed, never all in memory
                writer.write(typed_table(config, batch) if isinstance(batch, pd.DataFrame) else batch)
    return writer.paths


def _copy_plots(plots: Sequence[Any] | Mapping[str, Any], staging: Path, folder: Path) -> list[tuple[str, str]]:
    """Copy plots into ``plots/``; returns (caption or '', path in the repo) pairs."""
    items = list(plots.items()) if isinstance(plots, Mapping) else [("", p) for p in plots]
    out: list[tuple[str, str]] = []
    for caption, src in items:
        src = Path(src)
        if not src.is_absolute() and not src.exists():
            src = folder / src
        if not src.is_file():
            raise PublishError(format_error(f"plot {src}", expected="an existing file", got="missing",
                                            where="publish_folder(plots=...)", fix="write the plot first or drop it"))
        dst = staging / "plots" / src.name
        if dst.exists():
            raise PublishError(format_error(f"plot name {src.name}", expected="unique under plots/", got="twice",
                                            where="publish_folder(plots=...)", fix="give the plots distinct names"))
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        out.append((str(caption or ""), f"plots/{src.name}"))
    return out


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by ``staging``: two renames on one filesystem, the old folder restored on failure."""
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise PublishError(format_error(f"output folder {folder}", expected="a directory", got="a file",
                                            where="publish_folder", fix="remove it or pick another paths.output_dir"))
        old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
        os.replace(folder, old / "x")
        try:
            os.replace(staging, folder)
        except OSError:
            os.replace(old / "x", folder)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, folder)
    fsync_dir(folder.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_bench_hash(context: Mapping[str, Any], digest: str) -> None:
    """A bench's scores join only the dataset they were computed on (same content hash)."""
    scores = context.get("bench_scores") or {}
    theirs = scores.get("dataset_content_hash") if isinstance(scores, Mapping) else None
    if theirs and theirs != digest:
        raise PublishError(format_error(
            "publish.bench_dir scores", expected=f"computed on this dataset (content hash {digest[:16]})",
            got=f"scores of dataset {str(theirs)[:16]} ({scores.get('dataset_source') or 'unknown source'})",
            where="publish.bench_dir", fix="rerun task=bench on this dataset folder, or set publish.bench_dir=null"))
    if scores and not theirs:
        log.warning("publish: the bench scores record no dataset content hash; attached without a check")


def _hold(staging: Path) -> int | None:
    """Lock ``staging`` for this process's lifetime (flock on the folder): a later run can tell it from the leftover
    of a killed one (the kernel drops the lock when its process dies, kill -9 included)."""
    try:
        import fcntl

        fd = os.open(staging, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except (OSError, ImportError):
        return None


def _release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def clean_leftovers(folder: str | Path, *, min_age_s: float = 60.0) -> list[Path]:
    """Remove what a killed publish left beside ``folder``: ``.<name>.staging-*`` no live process holds, and
    ``.<name>.old-*`` (a dataset moved aside mid-swap is moved back when ``folder`` is missing).

    Returns:
        The paths removed or restored.
    """
    folder = Path(folder)
    done: list[Path] = []
    if not folder.parent.is_dir():
        return done
    for old in sorted(folder.parent.glob(f".{folder.name}.old-*")):
        if not folder.exists() and (old / "x").is_dir():
            os.replace(old / "x", folder)  # killed between the two renames of _swap_in: the old dataset is back
        elif time.time() - old.stat().st_mtime < min_age_s:
            continue  # another run's swap, a moment old
        shutil.rmtree(old, ignore_errors=True)
        done.append(old)
    for staging in sorted(folder.parent.glob(f".{folder.name}.staging-*")):
        fd = _hold(staging)
        if fd is None:
            continue  # a live run is writing it
        try:
            shutil.rmtree(staging, ignore_errors=True)
            done.append(staging)
        finally:
            _release(fd)
    if done:
        log.info("publish: removed %d leftover(s) of an interrupted publish beside %s", len(done), folder)
    return done


def _card_metadata(staging: Path, files: Sequence[Path], tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``dataset_info`` (features per config) and ``source_datasets`` for the card's YAML header."""
    from persona_gen.publish.typed import dataset_info, source_datasets

    by_config: dict[str, dict[str, list[Path]]] = {}
    for path in files:
        rel = path.relative_to(staging)
        by_config.setdefault(rel.parts[1], {}).setdefault(rel.name.split("-", 1)[0], []).append(path)
    sources: list[str] = []
    for value in (tables.get("questions") or {}).values():
        if isinstance(value, pd.DataFrame) and "source" in value.columns:
            sources += [str(s) for s in value["source"].dropna().unique()]
    meta: dict[str, Any] = {"source_datasets": source_datasets(sources)}
    try:
        meta["dataset_info"] = dataset_info(staging, by_config)
    except ImportError:  # datasets is not installed: the card still declares its configs
        log.warning("publish: `datasets` is not installed; the card has no dataset_info features")
    return meta


def publish_folder(tables: Mapping[str, Mapping[str, Any]], folder: str | Path, *, context: Mapping[str, Any],
                   plots: Sequence[Any] | Mapping[str, Any] = (), publish_cfg: Any = None,
                   extra_files: Mapping[str, str | bytes] | None = None, upload: bool = True) -> Published:
    """Write the Hub folder for ``tables`` and, with ``publish.mode=hub``, upload it.

    Args:
        tables: config -> split -> rows. Rows are a DataFrame, an Arrow table, an iterable of batches
            (DataFrames, Arrow tables or lists of row dicts: streamed, so a large split never sits in memory),
            or a :class:`ShardWriter` whose shards are brought in.
        folder: the dataset folder; replaced as a whole when the new one is complete.
        context: what the run knows, for the card (see :func:`persona_gen.publish.card.card_context`).
        plots: image paths (or caption -> path) copied to ``plots/`` and linked from the card.
        publish_cfg: the ``publish`` config group (``mode``, ``repo_id``, ``private``, ``token_env``, ``endpoint``,
            ``large_folder``, ``rows_per_shard``, ``row_group_size``, ``license``, ``pretty_name``,
            ``commit_message``, ``allow_fake_model``).
        extra_files: more files by path inside the folder (e.g.
            :func:`persona_gen.publish.reproduce.reproduction_files`), written before the folder is swapped in.
        upload: with ``publish.mode=hub``, upload now; ``False`` leaves it to :func:`upload_published`, so the
            caller can save its manifest first (``Published.pending_upload`` says one is due).

    Raises:
        PublishError: bad config (checked before anything is written), an unwritable folder, bad rows, bench
            scores of another dataset, fake-LM data to upload, or a failed upload. Except after a failed upload,
            nothing new is left on disk.
    """
    folder = Path(folder)
    token = check_publish_config(publish_cfg)
    _refuse_fake(publish_cfg, context=context)
    rows_per_shard = int(_get(publish_cfg, "rows_per_shard", ROWS_PER_SHARD))
    row_group_size = int(_get(publish_cfg, "row_group_size", ROW_GROUP_SIZE))
    for name, splits in tables.items():
        check_name("config", name, "publish_folder(tables=...)")
        for split in splits:
            check_name("split", split, f"publish_folder(tables[{name!r}])")

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(folder)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging-"))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder is meant to be shared
        lock = _hold(staging)
    except OSError as exc:
        raise PublishError(format_error(
            f"output folder {folder}", expected="writable", got=f"{type(exc).__name__}: {exc.strerror or exc}",
            where="publish_folder", fix="pick another paths.output_dir or fix its permissions; nothing was written"))\
            from exc
    try:
        files: list[Path] = []
        infos: dict[str, dict[str, SplitInfo]] = {}
        for name, splits in tables.items():
            infos[name] = {}
            for split, value in sorted(splits.items()):
                paths = _write_split(value, staging / "data" / name, split, rows_per_shard=rows_per_shard,
                                     row_group_size=row_group_size, config=name)
                rows = sum(_num_rows(p) for p in paths)
                if rows == 0:
                    # datasets cannot load a split without rows ("corresponds to no data"): the card lists
                    # the split as empty and declares no data files for it.
                    for p in paths:
                        p.unlink()
                    if not any((staging / "data" / name).iterdir()):
                        (staging / "data" / name).rmdir()
                    infos[name][split] = SplitInfo(rows=0)
                    continue
                infos[name][split] = SplitInfo(rows=rows, shards=len(paths), bytes=sum(p.stat().st_size for p in paths))
                files += paths
        digest = content_hash(files, staging)
        # The bench scored this dataset before its own rows (the bench config) joined it.
        _check_bench_hash(context, content_hash([f for f in files if f.relative_to(staging).parts[1] != "bench"],
                                                staging))
        card_plots = _copy_plots(plots, staging, folder)
        for rel, data in sorted((extra_files or {}).items()):
            atomic_write_bytes(staging / rel, data.encode("utf-8") if isinstance(data, str) else data)
        card_context = {**context, "content_hash": digest,
                        "card_metadata": {**_card_metadata(staging, files, tables),
                                          **dict(context.get("card_metadata") or {})},
                        "extra_files": sorted(extra_files or {})}
        card_text = render_card(infos, card_context, plots=card_plots, publish_cfg=publish_cfg)
        atomic_write_text(staging / "README.md", card_text)
        validate_card(staging)
        if token:
            _refuse_secret(staging, token)
        _swap_in(staging, folder)
        _release(lock)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _release(lock)
        raise PublishError(format_error(
            f"writing {folder}", expected="to succeed", got=f"{type(exc).__name__}: {exc.strerror or exc}",
            where="publish_folder", fix="free disk space or fix permissions; nothing partial was left")) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _release(lock)
        raise

    final_files = tuple(folder / p.relative_to(staging) for p in files)
    log.info("publish: wrote %s (%d shards, content hash %s)", folder, len(final_files), digest[:12])
    uploaded = None
    published = Published(folder, folder / "README.md", digest, None, final_files, infos,
                          pending_upload=token is not None, repo_id=_get(publish_cfg, "repo_id"))
    if token is not None and upload:
        # The staging folder was checked for the token before it was swapped in.
        uploaded = _upload(folder, publish_cfg, repo_id=_repo_id(publish_cfg), token=token)
        published = replace(published, uploaded=uploaded, pending_upload=False)
    elif token is None:
        log.info("publish: dry run, nothing uploaded; to push: %s", retry_command(folder, publish_cfg))
    return published


def _num_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows

