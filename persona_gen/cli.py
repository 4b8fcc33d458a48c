"""``persona-gen``: a thin ``@hydra.main`` around ``persona_gen.pipeline.run``."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import NoReturn

import hydra
from omegaconf import DictConfig

from persona_gen.core.config import register_configs
from persona_gen.core.errors import PersonaGenError, format_error

__all__ = ["main"]

log = logging.getLogger("persona_gen")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
register_configs()


@hydra.main(version_base="1.3", config_path="pkg://persona_gen.conf", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from omegaconf.errors import OmegaConfBaseException

    from persona_gen.tasks import resolve_task

    try:
        result = resolve_task(str(cfg.task))(cfg)
    except (PersonaGenError, OSError, OmegaConfBaseException) as exc:
        # One clear line, no traceback: the message says what, expected, got, where and how to fix.
        _fail(exc)
    for line in result.summary_lines():
        print(line)
    return None


_ROLE_ALIAS = re.compile(r"^(models\.(?:generator|judge))=([A-Za-z0-9_,\-]+)$")


def _alias_model_overrides(argv: list[str]) -> list[str]:
    """``models.generator=fake`` is shorthand for the group override ``model@models.generator=fake``.

    A bare option name (or a comma-separated sweep of them) picks a file of conf/model/; a dotted key such as
    ``models.generator.temperature=0.7`` is left alone.
    """
    return [_ROLE_ALIAS.sub(r"model@\1=\2", a) for a in argv]


def _one_line(exc: BaseException) -> str:
    """The house-format message of an error that reaches the command line (Hydra's own errors included)."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, PersonaGenError):
        return str(exc)
    missing = getattr(exc, "missing_cfg_file", None) or ""
    if isinstance(exc, MissingConfigException) and exc.options and "/" in missing:
        group, _, name = missing.rpartition("/")
        options = [o for o in exc.options if not o.startswith("base_")]
        return format_error(f"option of config group {group}", expected=f"one of {options}", got=name,
                            where=f"conf/{group}/", fix=f"pick one of them (the files of conf/{group}/)")
    if isinstance(exc, OSError) and not isinstance(exc, HydraException):
        got = f"{type(exc).__name__}: {exc.strerror or exc}"
        if not exc.filename:
            return format_error("a system call", expected="to succeed", got=got, where="the running task",
                                fix="check the resource it names (free disk space, a port in use, permissions)")
        return format_error(f"path {exc.filename}", expected="a readable file or a writable folder", got=got,
                            where="hydra.run.dir, paths.*, cache.dir or an input path",
                            fix="point it at a folder you can write (not below a file), with free space")
    # Hydra's reports span lines (and OmegaConf's add full_key/object_type lines): keep what names the problem.
    parts = [str(exc)] + ([str(exc.__cause__)] if isinstance(exc.__cause__, OmegaConfBaseException) else [])
    lines = [ln.strip() for part in parts for ln in part.splitlines()
             if ln.strip() and not ln.strip().startswith(("full_key:", "reference_type=", "object_type=", "See http"))]
    got = " ".join(dict.fromkeys(lines)) or type(exc).__name__
    what = "command-line overrides" if isinstance(exc, HydraException) else "config value"
    fix = "fix the override; `persona-gen --help` lists the groups, `--cfg job` prints the config"
    if "Could not load 'hydra/launcher/" in got:
        # conf/hydra/launcher/*.yaml extend launcher plugins that persona_gen does not install.
        fix = "install the Hydra launcher plugin it extends (the file's first lines say which), or pick another"
    return format_error(what, expected="keys and values of persona_gen's config (conf/)", got=got,
                        where="the command line or conf/", fix=fix)


def _fail(exc: BaseException) -> NoReturn:
    print(f"persona-gen: error: {_one_line(exc)}", file=sys.stderr)
    raise SystemExit(2) from None


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    sys.argv = [sys.argv[0], *_alias_model_overrides(sys.argv[1:])]
    # Hydra prints its own errors (composition, run dir) as multi-line reports or tracebacks unless
    # HYDRA_FULL_ERROR=1 lets them through; then they become one line here. A user's own setting wins.
    user_full_error = "HYDRA_FULL_ERROR" in os.environ
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _app()
    except (HydraException, OmegaConfBaseException, OSError) as exc:
        if user_full_error:
            raise
        _fail(exc)


if __name__ == "__main__":
    main()
