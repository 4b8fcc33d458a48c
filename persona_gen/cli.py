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
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

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
            _preflight(cfg)
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
            import errno

            fixes = {errno.ENOSPC: "free disk space (or point cache.dir / hydra.run.dir at a disk with room)",
                     errno.EROFS: "the file system is read-only: point cache.dir / hydra.run.dir at a writable one",
                     errno.EACCES: "fix the permissions, or point cache.dir / hydra.run.dir at a folder you can write",
                     errno.EADDRINUSE: "the port is in use: pick another (annotate.port=0 picks a free one)"}
            return format_error("a file or network operation", expected="successful", got=got,
                                where=f"the running task, {_innermost(exc)}",
                                fix=fixes.get(exc.errno or -1,
                                              "check the resource it names (disk space, a port in use, permissions)"))
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
    _restore_finished_run_config()
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


# -- before any work: the whole config, the cache folder ---------------------------------------------------------


def _preflight(cfg: DictConfig) -> None:
    """Every group's schema and bounds (``validate``) and a writable cache folder, before any task starts."""
    from persona_gen.core.cache import check_cache_dir
    from persona_gen.core.config import validate

    _refuse_secrets_in_config(cfg)
    validate(cfg)
    if cfg.cache.enabled:
        check_cache_dir(cfg.cache.dir)
    # generate checks its endpoints in pipeline.run; the other tasks that call an LM, here.
    from persona_gen.core.lm import check_endpoints

    task = str(cfg.task)
    roles = {"bench": ("generator", "judge"), "optimize": ("judge",),
             "annotate_import": ("judge",) if cfg.annotate.judge_source == "run" else ()}.get(task, ())
    check_endpoints({role: cfg.models[role] for role in roles})


# -- secrets never reach Hydra (.hydra/config.yaml, overrides.yaml, hydra.yaml) ----------------------------------

# Keys whose value is a secret by name; `api_key_env` / `token_env` (a variable NAME) end in `_env` and are not.
_SECRET_KEY = re.compile(r"(?:^|[._])(?:api_?key|token|password|passwd|secret|access_key|auth|bearer)$", re.I)


def _secret_fix(key: str) -> str:
    where = "publish.token_env" if "token" in key.lower() else "models.<role>.api_key_env"
    return (f"export the secret in an environment variable and set {where}=<ITS NAME> (Hydra saves every override "
            "in .hydra/); if a real key was typed, revoke it")


def _refuse_secret_overrides(argv: list[str]) -> None:
    """Refuse, before Hydra saves anything, an override that holds a secret, without echoing it.

    A value that looks like a key or token (``sk-...``, ``hf_...``, ...), a value for a key named like a secret
    (``api_key``, ``token``, ``password``, with or without ``+``), an ``*_env`` value that is no variable name, and
    an ``api_key_env`` naming a variable that is not set, are each one house-format line and exit 2.
    """
    from persona_gen.core.config import looks_secret

    env_name = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    for arg in argv:
        key, sep, value = arg.partition("=")
        if arg.startswith("-") or not sep:
            continue
        key = key.lstrip("+~").split("@")[-1]
        last = key.rsplit(".", 1)[-1]
        if value and (looks_secret(value) or looks_secret(key) or _SECRET_KEY.search(last)):
            _refuse(format_error(f"command-line override {key}", expected="free of secrets",
                                 got="a secret-looking value (not shown)", where="the command line",
                                 fix=_secret_fix(key)))
        if last.endswith("_env") and value:
            for name in value.strip("[]").split(","):
                if not env_name.fullmatch(name):
                    _refuse(format_error(
                        f"{key}", expected="the NAME of an environment variable (letters, digits, _)",
                        got="a value that is no variable name (not shown: it may be the secret itself)",
                        where="the command line", fix=_secret_fix(key)))
                if last == "api_key_env" and name not in os.environ:
                    shown = name if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) else "(not shown: it may be a key)"
                    _refuse(format_error(
                        f"{key}", expected="the name of a SET environment variable holding the key",
                        got=f"{shown}, which is not set", where="the command line and the environment",
                        fix=f"export {shown if shown[0] != '(' else '<NAME>'}=<your key> first, or drop the override "
                            "for a server without a key"))


def _refuse_secrets_in_config(cfg: DictConfig) -> None:
    """A secret written into a config file (conf/local, an experiment, --config-dir) is refused, unechoed, and the
    copies Hydra has just saved in this run's .hydra/ are removed (a finished run's are put back)."""
    from omegaconf import OmegaConf

    from persona_gen.core.config import looks_secret

    def leaves(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from leaves(v, f"{path}[{i}]")
        elif isinstance(node, str):
            yield path, node

    plain = OmegaConf.to_container(cfg, resolve=False)  # ${oc.env:...} stays a reference, never a value
    for key, value in leaves(plain, ""):
        if looks_secret(value) or (_SECRET_KEY.search(key.rsplit(".", 1)[-1]) and value):
            _remove_saved_run_config()
            raise PersonaGenError(format_error(
                f"config value {key}", expected="free of secrets", got="a secret-looking value (not shown)",
                where="a config file (conf/, conf/local, an experiment or --config-dir)", fix=_secret_fix(key)))


def _remove_saved_run_config() -> None:
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
    except Exception:
        return
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (folder / name).unlink(missing_ok=True)


def _refuse(message: str) -> NoReturn:
    print(f"persona-gen: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# -- a failed rerun into a finished run dir keeps that run's .hydra/ -----------------------------------------------

_FINISHED_RUN_CONFIG: dict[Path, bytes] = {}


def _remember_finished_run_config(argv: list[str]) -> None:
    """Before Hydra rewrites ``<run dir>/.hydra/*.yaml``, keep those of a finished run there (one with a dataset/),
    so that a rerun into it which fails leaves them beside the dataset they describe.

    Only a run dir named on the command line can be found again (the default one is new at every start).
    """
    run_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")), None)
    subdir = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.output_subdir=")), ".hydra")
    if not run_dir or "${" in run_dir or "${" in subdir or subdir in ("null", ""):
        return
    folder = Path(run_dir).expanduser() / subdir
    if not (Path(run_dir).expanduser() / "dataset").is_dir() or not folder.is_dir():
        return
    for path in folder.glob("*.yaml"):
        try:
            _FINISHED_RUN_CONFIG[path.resolve()] = path.read_bytes()
        except OSError:
            continue


def _restore_finished_run_config() -> None:
    from persona_gen.core.io import atomic_write_bytes

    for path, data in _FINISHED_RUN_CONFIG.items():
        try:
            if not path.exists() or path.read_bytes() != data:
                atomic_write_bytes(path, data)
        except OSError:
            continue
    _FINISHED_RUN_CONFIG.clear()


# -- SIGTERM and SIGINT: one line, a clean run dir, a resumable state --------------------------------------------


class Interrupted(KeyboardInterrupt):
    """SIGTERM (Slurm, Kubernetes, ``timeout``) or SIGINT (Ctrl-C), raised in the main thread. A KeyboardInterrupt,
    so every cleanup that handles Ctrl-C (calls in flight, cache transactions, partial output) handles both."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
    # The cleanup that follows (calls in flight, removing partial output) runs to its end: later signals wait.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    _restore_finished_run_config()
    print(f"persona-gen: interrupted by {signal.Signals(signum).name}: stopped cleanly and removed this run's partial "
          "output; finished LM answers are in the cache and finished persona parts beside it, so the same command "
          "resumes where it stopped", file=sys.stderr)
    raise SystemExit(128 + int(signum)) from None


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _early_flags(sys.argv[1:])
    sys.argv = [sys.argv[0], *_alias_model_overrides(sys.argv[1:])]
    _refuse_secret_overrides(sys.argv[1:])
    _remember_finished_run_config(sys.argv[1:])
    _install_signal_handlers()
    # Hydra prints its own errors (composition, run dir) as multi-line reports or tracebacks unless
    # HYDRA_FULL_ERROR=1 lets them through; then they become one line here. A user's own setting wins.
    user_full_error = "HYDRA_FULL_ERROR" in os.environ
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _app()
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except (HydraException, OmegaConfBaseException, OSError) as exc:
        if user_full_error:
            raise
        _fail(exc)
    except Exception as exc:  # a bug: still one line, with where it happened and how to see the traceback
        if user_full_error:
            raise
        _fail(PersonaGenError(_unexpected(exc)))

    code = _sweep_exit_code()
    if code:
        raise SystemExit(code)


def _innermost(exc: BaseException) -> str:
    """``file.py:line in function`` of the innermost persona_gen frame an exception passed through."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    inner = next((f for f in reversed(frames) if "persona_gen" in f.filename), frames[-1] if frames else None)
    return f"{Path(inner.filename).name}:{inner.lineno} in {inner.name}" if inner else "persona_gen"


def _unexpected(exc: BaseException) -> str:
    return format_error("persona_gen", expected="to finish or to report a bad input in one line",
                        got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                        where=_innermost(exc),
                        fix="this is a bug: rerun with HYDRA_FULL_ERROR=1 for the traceback and report it")


if __name__ == "__main__":
    main()
