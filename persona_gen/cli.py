"""``persona-gen``: a thin ``@hydra.main`` around the tasks of ``persona_gen.tasks``.

Around each task: ``--version``; the models and cache announced at start; the run's report
(``persona_gen.core.progress``: bars, one line per step, failures.jsonl, the closing summary); in a sweep, each
job's failure recorded in ``.hydra/job_status.json`` without stopping the sweep (``persona_gen.callbacks``
writes the sweep's summary table), and exit 1 when any job failed.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
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
    if _in_sweep():
        return _sweep_job(cfg)
    _run_task(cfg)
    return None


def _run_task(cfg: DictConfig) -> None:
    """Run ``cfg.task`` with its report: models and cache at start, bars and step lines, summary at the end."""
    from omegaconf.errors import OmegaConfBaseException

    from persona_gen.core import progress
    from persona_gen.tasks import resolve_task

    with progress.reporting(_run_dir(cfg)) as reporter:
        try:
            _announce(cfg)
            result = resolve_task(str(cfg.task))(cfg)
        except (PersonaGenError, OSError, OmegaConfBaseException) as exc:
            # One clear line, no traceback: the message says what, expected, got, where and how to fix.
            _report_end(reporter)
            _fail(exc)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the lines, but no failures.jsonl; the rerun resumes and writes it.
            _report_end(reporter, write=False)
            raise
        _report_end(reporter)
    for line in result.summary_lines():
        print(line)


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


class _Exit(SystemExit):
    """The CLI's exit after printing one error line; a sweep job records ``line`` as its reason."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(code)
        self.line = line


def _fail(exc: BaseException) -> NoReturn:
    line = _one_line(exc)
    print(f"persona-gen: error: {line}", file=sys.stderr)
    raise _Exit(2, line) from None


# -- the run's report (issue 18): what a run uses, how it went ------------------------------------------------


def _run_dir(cfg: DictConfig) -> str | None:
    try:
        return str(cfg.paths.output_dir)
    except Exception:
        return None


def model_ids(cfg: DictConfig) -> dict[str, str]:
    """``{"generator": "kind:name", "judge": "kind:name"}`` from the config (no model is loaded)."""
    out = {}
    for role in ("generator", "judge"):
        try:
            node = cfg.models[role]
            out[role] = f"{node.kind}:{node.name}"
        except Exception as exc:  # an unresolvable name is reported by the task itself, in the house format
            out[role] = f"<unresolved: {type(exc).__name__}>"
    return out


def _announce(cfg: DictConfig) -> None:
    """Print and log, before any work, which models the run uses and where its cache is."""
    ids = model_ids(cfg)
    log.info("persona-gen %s, task %s", _version(), cfg.get("task", "generate"))
    log.info("generator: %s / judge: %s", ids["generator"], ids["judge"])
    try:
        cache = cfg.cache
        log.info("cache: %s", cache.dir if cache.enabled else "disabled (cache.enabled=false)")
    except Exception:
        pass


def _report_end(reporter: object, *, write: bool = True) -> None:
    """The run's closing lines (failures by kind, where the raw answers are) and, with ``write``, failures.jsonl."""
    from persona_gen.core.progress import RunReporter

    if not isinstance(reporter, RunReporter):
        return
    reporter.close()
    if not reporter.steps:
        return  # no LM step ran (a bad config): nothing to report, nothing to write
    try:
        if write:
            reporter.write_failures()
        else:
            reporter.run_dir = None  # the summary then says the raw answers are kept in the data
    except PersonaGenError as exc:
        log.warning("failures.jsonl not written: %s", exc)
    for line in reporter.summary_lines():
        log.info(line)


def _version() -> str:
    from persona_gen.helppage import version

    return version()


# -- sweeps (issue 19, item 6): every job's failure recorded, the sweep goes on -------------------------------


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


def _sweep_job(cfg: DictConfig) -> None:
    """One job of a sweep: its failure (clean error or crash) is recorded in ``.hydra/job_status.json``, printed in
    one line, and does not stop the sweep; ``persona_gen.callbacks.SweepSummary`` reads the statuses at the end."""
    import time

    from hydra.core.hydra_config import HydraConfig

    from persona_gen.callbacks import JOB_STATUS
    from persona_gen.core.io import atomic_write_text

    start = time.monotonic()
    status: dict[str, object] = {"status": "ok", "error": ""}
    try:
        _run_task(cfg)
    except _Exit as exc:
        status = {"status": "failed", "error": exc.line}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a crash of one job is that job's failure, not the sweep's
        log.debug("job crashed", exc_info=True)
        status = {"status": "crashed", "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                  if str(exc).strip() else type(exc).__name__}
        print(f"persona-gen: error: {status['error']}", file=sys.stderr)
    hc = HydraConfig.get()
    status.update({"job": hc.job.num, "overrides": list(hc.overrides.task), "models": model_ids(cfg),
                   "wall_s": round(time.monotonic() - start, 3)})
    try:
        import json

        atomic_write_text(Path(hc.runtime.output_dir) / ".hydra" / JOB_STATUS, json.dumps(status, indent=2) + "\n")
    except PersonaGenError as exc:
        log.warning("job status not written: %s", exc)


def _sweep_exit_code() -> int:
    """1 when the sweep that just ended had a failed job (its summary says which and why), else 0."""
    from persona_gen.callbacks import last_sweep

    report = last_sweep()
    return 1 if report is not None and report.failed else 0


# -- --version, --help --------------------------------------------------------------------------------------


def _early_flags(argv: list[str]) -> None:
    """``--version`` prints persona_gen's version (Hydra's would print Hydra's)."""
    if "--version" in argv or "-V" in argv:
        print(f"persona-gen {_version()}")
        raise SystemExit(0)


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _early_flags(sys.argv[1:])
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
    code = _sweep_exit_code()
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
