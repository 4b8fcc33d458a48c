"""Reproduction files shipped inside the dataset folder, so a downloaded copy can be remade without the run dir.

``reproduce/`` holds:

| file | what |
|---|---|
| ``config.yaml`` | the resolved config of the run (Hydra's node left out), secrets redacted |
| ``versions.json`` | Python, the platform, persona_gen and the installed version of each of its dependencies |
| ``command.txt`` | the command line that made the run (``persona-gen <overrides>``) |

Redaction: a value is replaced by ``***`` when its key names a secret (``api_key``, ``token``, ``password``,
``secret``, but not ``*_env``, which holds a variable's *name*), when it looks like a token (``hf_...``,
``sk-...``), or when it contains the value of an environment variable that a ``*_env`` key names or whose name
says it is a secret (``HF_TOKEN``, ``*_API_KEY``...).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = [
    "REPRODUCE_DIR",
    "command_line",
    "package_versions",
    "recorded_command",
    "redact_config",
    "reproduction_files",
    "write_reproduction_files",
]

REPRODUCE_DIR = "reproduce"
REDACTED = "***"
_SECRET_KEY = re.compile(r"(api_?key|token|secret|passw(or)?d|credential|authorization)", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|api_org_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S{8,})")
_SECRET_ENV = re.compile(r"(TOKEN|API_KEY|APIKEY|SECRET|PASSWORD)", re.IGNORECASE)
_EXTRA_PACKAGES = ("datasets",)
_COMMAND: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("persona_gen_command",
                                                                                  default=None)


@contextlib.contextmanager
def recorded_command(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, :func:`command_line` returns ``argv`` (the Python API records its equivalent command)."""
    token = _COMMAND.set(tuple(str(a) for a in argv))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def command_line(argv: Sequence[str] | None = None) -> list[str]:
    """The command that made this run: ``argv``, else what :func:`recorded_command` set, else Hydra's overrides of
    the running ``persona-gen``, else ``sys.argv``."""
    if argv is not None:
        return [str(a) for a in argv]
    recorded = _COMMAND.get()
    if recorded is not None:
        return list(recorded)
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return ["persona-gen", *[str(o) for o in HydraConfig.get().overrides.task]]
    except Exception:  # no Hydra run in this process: fall back to sys.argv
        pass
    return [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]


def _secret_values(plain: Any) -> set[str]:
    """Values of the environment variables the config names (``*_env``) or whose names say they are secrets."""
    names = {k for k in os.environ if _SECRET_ENV.search(k)}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str):
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plain)
    return {v for v in (os.environ.get(n, "").strip() for n in names) if len(v) >= 6}


def redact_config(plain: Any, secrets: set[str] | None = None) -> Any:
    """A copy of a plain config (dicts and lists) with secrets replaced by ``***`` (see the module docstring)."""
    secrets = _secret_values(plain) if secrets is None else secrets

    def value(key: str, node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: value(str(k), v) for k, v in node.items()}
        if isinstance(node, list):
            return [value(key, v) for v in node]
        if node is None or isinstance(node, bool | int | float):
            return node
        text = str(node)
        if _SECRET_KEY.search(key) and not key.endswith("_env") and text:
            return REDACTED
        if _SECRET_VALUE.search(text):
            return _SECRET_VALUE.sub(REDACTED, text)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    return value("", plain)


def _plain(cfg: DictConfig | Mapping[str, Any]) -> Any:
    if not isinstance(cfg, DictConfig):
        return json.loads(json.dumps(cfg, default=str))
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that only Hydra's runtime resolves: keep it as written
        plain = OmegaConf.to_container(cfg, resolve=False)
    if isinstance(plain, dict):
        plain.pop("hydra", None)
    return plain


def package_versions() -> dict[str, Any]:
    """Python, the platform, and the installed version of persona_gen and of each of its dependencies."""
    names = ["persona_gen"]
    try:
        requires = metadata.requires("persona_gen") or []
    except metadata.PackageNotFoundError:
        requires = []
    for req in requires:
        if "extra ==" in req:
            continue
        names.append(re.split(r"[\s;<>=!~\[]", req, maxsplit=1)[0])
    names += [n for n in _EXTRA_PACKAGES if n not in names]
    packages = {}
    for name in dict.fromkeys(names):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(terse=True), "packages": dict(sorted(packages.items()))}


def reproduction_files(cfg: DictConfig | Mapping[str, Any], argv: Sequence[str] | None = None) -> dict[str, str]:
    """The ``reproduce/`` files' text by path inside the dataset folder (see the module docstring).

    Args:
        cfg: the run's config (a DictConfig is resolved first).
        argv: the command line; default :func:`command_line`.
    """
    plain = redact_config(_plain(cfg))
    command = redact_config({"command": shlex.join(command_line(argv))})["command"]
    header = "# The resolved config of the run that made this dataset (secrets redacted as ***).\n" \
             f"# Remake it: {command}\n"
    return {
        f"{REPRODUCE_DIR}/config.yaml": header + OmegaConf.to_yaml(OmegaConf.create(plain), sort_keys=True),
        f"{REPRODUCE_DIR}/versions.json": json.dumps(package_versions(), indent=2, sort_keys=True) + "\n",
        f"{REPRODUCE_DIR}/command.txt": command + "\n",
    }


def write_reproduction_files(folder: str | Path, cfg: DictConfig | Mapping[str, Any],
                             argv: Sequence[str] | None = None) -> list[Path]:
    """Write :func:`reproduction_files` under ``folder`` atomically; returns the paths written."""
    from persona_gen.publish.writer import atomic_write_text

    paths = []
    for rel, text in reproduction_files(cfg, argv).items():
        path = Path(folder) / rel
        atomic_write_text(path, text)
        paths.append(path)
    return paths
