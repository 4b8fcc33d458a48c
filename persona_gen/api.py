"""The Python API: ``persona_gen.generate`` and ``persona_gen.bench`` for notebooks and scripts.

Both take the command line's Hydra overrides (``["models.generator=fake", "scale=tiny", "seed=3"]``), compose the
packaged config with Hydra's compose API, run the task in this process and return its result with a
``load()`` that gives a ``datasets.DatasetDict``. Hydra's global state is set only while composing and
restored afterwards, so calls can follow each other in one process (and one inside a running Hydra app leaves it
as it was)::

    import persona_gen

    run = persona_gen.generate(["models.generator=fake", "models.judge=fake", "scale=tiny"], output_dir="out/run1")
    dpo = run.load("dpo")["train"]            # prompt / chosen / rejected, TRL's conversational format
    scores = persona_gen.bench(["models.generator=fake", "models.judge=fake"], output_dir="out/bench1",
                               dataset=run.dataset_dir).scores

``persona_gen.pipeline.run(cfg)`` stays the entry point for a config you composed yourself.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from persona_gen.core.errors import ConfigError, PersonaGenError, format_error

__all__ = ["BenchRun", "GeneratedRun", "bench", "compose_config", "generate"]


@contextlib.contextmanager
def _isolated_hydra() -> Iterator[None]:
    """Hydra's global state (GlobalHydra, HydraConfig) as it was before, whatever happens inside."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    gh = GlobalHydra.instance()
    previous = gh.hydra if gh.is_initialized() else None
    previous_cfg = HydraConfig.instance().cfg
    gh.clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        if previous is not None:
            GlobalHydra.instance().initialize(previous)
        HydraConfig.instance().cfg = previous_cfg


def _listed(overrides: Sequence[str] | None) -> list[str]:
    if isinstance(overrides, str):
        raise ConfigError(format_error(
            "overrides", expected="a list of Hydra overrides, e.g. ['scale=tiny', 'seed=3']", got=overrides,
            where="persona_gen.generate / persona_gen.bench", fix="wrap it in a list"))
    return [str(o) for o in overrides or []]


def _aliased(overrides: Sequence[str] | None) -> list[str]:
    from persona_gen.cli import _alias_model_overrides  # one definition of the CLI's shorthands

    return _alias_model_overrides(_listed(overrides))


def compose_config(overrides: Sequence[str] | None = None, *, output_dir: str | Path,
                   cwd: str | Path | None = None) -> DictConfig:
    """Compose persona_gen's config as the command line would, with its paths set, resolved, Hydra's node removed.

    Args:
        overrides: Hydra overrides, as on the command line (``model@models.generator=fake`` or the CLI's shorthand
            ``models.generator=fake``). One run per call: sweeps (``-m``, ``a=1,2``) are the CLI's.
        output_dir: the run directory (``paths.output_dir``); the dataset goes to ``<output_dir>/dataset``.
        cwd: what relative paths resolve against (``paths.root``); default the current directory.

    Raises:
        ConfigError: an override Hydra cannot apply, in the house format.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from persona_gen.cli import _one_line
    from persona_gen.core.config import register_configs

    register_configs()
    out = Path(output_dir).expanduser().resolve()
    root = Path(cwd or Path.cwd()).expanduser().resolve()
    with _isolated_hydra():
        try:
            with initialize_config_module("persona_gen.conf", version_base="1.3"):
                cfg = compose("config", overrides=_aliased(overrides), return_hydra_config=True)
                with open_dict(cfg):
                    cfg.hydra.runtime.output_dir = str(out)
                    cfg.hydra.runtime.cwd = str(root)
                    cfg.paths.output_dir = str(out)
                    cfg.paths.root = str(root)
                HydraConfig.instance().set_config(copy.deepcopy(cfg))  # set_config makes its input read-only
                OmegaConf.resolve(cfg)
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(_one_line(exc)) from None
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _load(path: Path, config: str | None, what: str, **kwargs: Any) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise PersonaGenError(format_error(
            "the `datasets` package", expected="installed to load the data", got="missing", where=what,
            fix="pip install datasets (or read the parquet files under data/ with pandas)")) from exc
    return datasets.load_dataset(str(path), config, **kwargs)


class GeneratedRun:
    """What :func:`generate` returns: the pipeline's ``RunResult`` and :meth:`load`.

    ``dataset_dir``, ``card_path``, ``manifest`` (a dict), ``manifest_path``, ``output_dir``, ``content_hash`` and
    the other fields of :class:`persona_gen.pipeline.RunResult` are read from it.
    """

    def __init__(self, result: Any) -> None:
        self.result = result

    @property
    def dataset_dir(self) -> Path:
        return Path(self.result.dataset_dir)

    @property
    def card_path(self) -> Path:
        return Path(self.result.card_path)

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self.result.manifest)

    def __getattr__(self, name: str) -> Any:
        if name == "result":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.result, name)

    def load(self, config: str = "feedback", **kwargs: Any) -> Any:
        """``datasets.load_dataset(dataset_dir, config, **kwargs)``: a ``DatasetDict`` of the config's splits.

        Configs: ``feedback`` (default), ``dpo``, ``personas``, ``questions``, ``judgments`` and, where the run
        has them, ``persona_rejections``, ``candidates``, ``bench``.
        """
        return _load(self.dataset_dir, config, "GeneratedRun.load", **kwargs)

    def summary_lines(self) -> list[str]:
        return list(self.result.summary_lines())

    def __repr__(self) -> str:
        return f"GeneratedRun(dataset_dir={str(self.dataset_dir)!r}, content_hash={self.result.content_hash!r})"


class BenchRun:
    """What :func:`bench` returns: the bench task's ``BenchResult`` (scores, rows, plots) and :meth:`load`.

    ``dataset_dir`` is the bench folder (``<output_dir>/bench``: ``scores.json``, ``rows.parquet``, plots),
    ``manifest`` its scores, ``card_path`` its ``README.md`` where one was written (else ``None``).
    """

    def __init__(self, result: Any) -> None:
        self.result = result

    @property
    def dataset_dir(self) -> Path:
        return Path(self.result.scores_path).parent

    @property
    def card_path(self) -> Path | None:
        path = self.dataset_dir / "README.md"
        return path if path.is_file() else None

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self.result.scores)

    @property
    def scores(self) -> dict[str, Any]:
        return dict(self.result.scores)

    def __getattr__(self, name: str) -> Any:
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)

    def load(self, config: str | None = None, **kwargs: Any) -> Any:
        """Every scored answer and verdict (``rows.parquet``) as a ``DatasetDict`` with one ``train`` split."""
        return _load(Path("parquet"), None, "BenchRun.load",
                     data_files={"train": str(self.result.rows_path)}, **kwargs) if config in (None, "rows") \
            else _load(self.dataset_dir, config, "BenchRun.load", **kwargs)

    def summary_lines(self) -> list[str]:
        return list(self.result.summary_lines())

    def __repr__(self) -> str:
        return f"BenchRun(scores={str(self.result.scores_path)!r})"


def _override_value(value: str | Path) -> str:
    """A value as Hydra's override grammar reads it back unchanged (quoted where it has special characters)."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_/.:~+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _command(overrides: Sequence[str] | None, extra: Sequence[str] = ()) -> list[str]:
    return ["persona-gen", *[str(o) for o in overrides or []], *extra]


def generate(overrides: Sequence[str] | None = None, *, output_dir: str | Path,
             cwd: str | Path | None = None) -> GeneratedRun:
    """Run the pipeline (``task=generate``) in this process; the Python twin of ``persona-gen <overrides>``.

    Args:
        overrides: the command line's Hydra overrides, e.g. ``["models.generator=fake", "models.judge=fake",
            "scale=tiny"]``.
        output_dir: the run directory; the dataset goes to ``<output_dir>/dataset``, the manifest beside it.
        cwd: what relative paths in the config resolve against; default the current directory.

    Returns:
        A :class:`GeneratedRun`: ``.dataset_dir``, ``.card_path``, ``.manifest``, ``.load(config="feedback")``.
        With ``shard.count`` > 1 the pipeline's ``ShardResult`` instead (merge with ``task=merge``).

    Raises:
        ConfigError: a bad override. PersonaGenError: what the run itself raises, in the house format.
    """
    from persona_gen.pipeline import RunResult, run
    from persona_gen.publish.reproduce import recorded_command

    cfg = compose_config([*_listed(overrides), "task=generate"], output_dir=output_dir, cwd=cwd)
    with recorded_command(_command(overrides)):
        result = run(cfg)
    return GeneratedRun(result) if isinstance(result, RunResult) else result


def bench(overrides: Sequence[str] | None = None, *, output_dir: str | Path, dataset: str | Path | None = None,
          cwd: str | Path | None = None) -> BenchRun:
    """Run PERSONA Bench (``task=bench``) in this process.

    Args:
        overrides: the command line's Hydra overrides (``bench.mode=[output_only,demographic_summary]``...).
        output_dir: the run directory; scores, rows and plots go to ``<output_dir>/bench``.
        dataset: what to score, as ``bench.dataset_dir``: a dataset folder written by :func:`generate`, a local
            folder of parquet/JSONL/CSV in the released PERSONA layout, or a Hub dataset id. Default: the
            ``bench.dataset_dir`` among the overrides.
        cwd: what relative paths resolve against; default the current directory.

    Returns:
        A :class:`BenchRun`: ``.scores``, ``.manifest`` (the scores), ``.dataset_dir`` (the bench folder), ``.load()``.
    """
    from persona_gen.bench.task import run_bench
    from persona_gen.publish.reproduce import recorded_command

    extra = [f"bench.dataset_dir={_override_value(dataset)}"] if dataset is not None else []
    cfg = compose_config([*_listed(overrides), *extra, "task=bench"], output_dir=output_dir, cwd=cwd)
    with recorded_command(_command(overrides, [*extra, "task=bench"])):
        return BenchRun(run_bench(cfg))
