"""The ``bench`` config group, read and checked once into a typed ``BenchSettings``.

Every check raises one ``ConfigError`` in the house format (what, expected, got, where, how to fix).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from persona_gen.core import config as schema
from persona_gen.core.errors import ConfigError, format_error

__all__ = ["ANALYSES", "MODES", "PAPER_MODES", "SPLITS", "BenchSettings", "read_settings"]

# The four modes of the paper's PERSONA Bench, then a user-supplied DSPy module (bench.method).
PAPER_MODES: tuple[str, ...] = ("baseline", "output_only", "chain_of_thought", "demographic_summary")
MODES: tuple[str, ...] = (*PAPER_MODES, "custom")
ANALYSES: tuple[str, ...] = ("eval", "intersectionality", "leave_one_out", "pass_at_k")
SPLITS: tuple[str, ...] = ("held_out", "train", "all")
_WHERE = "command line or conf/bench/"


@dataclass(frozen=True)
class LeaveOneOutSettings:
    mode: str = schema.LeaveOneOutConfig.mode
    attributes: tuple[str, ...] | None = None
    max_pairs: int | None = schema.LeaveOneOutConfig.max_pairs


@dataclass(frozen=True)
class PassAtKSettings:
    mode: str = schema.PassAtKConfig.mode
    num_samples: int = schema.PassAtKConfig.num_samples
    max_k: int = schema.PassAtKConfig.max_k
    temperature: float = schema.PassAtKConfig.temperature
    max_pairs: int | None = schema.PassAtKConfig.max_pairs


@dataclass(frozen=True)
class IntersectionalitySettings:
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    breakdown_by: tuple[str, ...] = ()
    min_group_size: int = schema.IntersectionalityConfig.min_group_size


@dataclass(frozen=True)
class BenchSettings:
    """What ``persona-gen task=bench`` runs; see ``conf/bench/default.yaml`` for each key."""

    dataset_dir: Path
    modes: tuple[str, ...]
    analyses: tuple[str, ...]
    method: str | None = None
    question_split: str = schema.BenchConfig.question_split
    num_personas: int | None = None
    questions_per_persona: int | None = None
    bootstrap_samples: int = schema.BenchConfig.bootstrap_samples
    intersectionality: IntersectionalitySettings = field(default_factory=IntersectionalitySettings)
    leave_one_out: LeaveOneOutSettings = field(default_factory=LeaveOneOutSettings)
    pass_at_k: PassAtKSettings = field(default_factory=PassAtKSettings)

    @property
    def eval_modes(self) -> tuple[str, ...]:
        """Modes the main evaluation scores (intersectionality splits those same rows)."""
        return self.modes if {"eval", "intersectionality"} & set(self.analyses) else ()


def _fail(key: str, expected: str, got: object, fix: str) -> ConfigError:
    return ConfigError(format_error(f"bench.{key}", expected=expected, got=got, where=_WHERE, fix=fix))


def _names(value: Any, key: str) -> tuple[str, ...]:
    """One name or a list of names (``bench.mode=output_only`` and ``bench.mode=[a,b]`` both work)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple | ListConfig):
        return tuple(str(v) for v in value)
    raise _fail(key, "a name or a list of names", value, f"e.g. bench.{key}=[...]")


def _choice(value: str, allowed: tuple[str, ...], key: str, example: str) -> str:
    if value not in allowed:
        raise _fail(key, f"one of {list(allowed)}", value, f"pick one of those, e.g. bench.{key}={example}")
    return value


def _optional_count(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, "an integer >= 1 or null (all)", value, f"set bench.{key}=null to use all")
    return int(value)


def _count(value: Any, key: str, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, f"an integer >= {minimum}", value, fix)
    return int(value)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig | ListConfig) else node


def read_settings(cfg: Any) -> BenchSettings:
    """Read ``cfg.bench`` into ``BenchSettings``, raising ``ConfigError`` on the first bad value."""
    bench = cfg.get("bench") if isinstance(cfg, DictConfig | Mapping) else None
    if bench is None:
        raise ConfigError(format_error(
            "bench", expected="a config of the bench group", got=None, where="conf/config.yaml defaults list",
            fix="add `+bench=default` to the command line (or `- bench: default` to the defaults list)"))
    if OmegaConf.is_missing(bench, "dataset_dir") or bench.get("dataset_dir") in (None, ""):
        raise _fail("dataset_dir", "the dataset/ folder of a generate run", "unset",
                    "run `persona-gen` first, then pass bench.dataset_dir=outputs/<date>/<time>/dataset")
    modes = _names(bench.get("mode", list(PAPER_MODES)), "mode")
    if not modes:
        raise _fail("mode", "at least one mode", [], f"pick from {list(MODES)}")
    for mode in modes:
        _choice(mode, MODES, "mode", "output_only")
    method = bench.get("method")
    if method is not None and (not isinstance(method, str) or not method.strip()):
        raise _fail("method", "an import path 'package.module:Class'", method, "or leave it null")
    if method and "custom" not in modes:
        modes = (*modes, "custom")  # a plugged-in method is always scored
    analyses = _names(bench.get("analyses", ["eval"]), "analyses")
    for analysis in analyses:
        _choice(analysis, ANALYSES, "analyses", "[eval,leave_one_out]")

    loo_node = bench.get("leave_one_out") or {}
    loo_attrs = loo_node.get("attributes")
    loo = LeaveOneOutSettings(
        mode=_choice(str(loo_node.get("mode", "output_only")), MODES, "leave_one_out.mode", "output_only"),
        attributes=None if loo_attrs is None else _names(loo_attrs, "leave_one_out.attributes"),
        max_pairs=_optional_count(loo_node.get("max_pairs"), "leave_one_out.max_pairs"))
    pk_node = bench.get("pass_at_k") or {}
    num_samples = _count(pk_node.get("num_samples", 16), "pass_at_k.num_samples", 1, "draw e.g. 16 samples")
    max_k = _count(pk_node.get("max_k", 16), "pass_at_k.max_k", 1, "use e.g. 16")
    if max_k > num_samples:
        raise _fail("pass_at_k.max_k", f"<= pass_at_k.num_samples={num_samples}", max_k,
                    "lower max_k or draw more samples")
    temperature = pk_node.get("temperature", 0.7)
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or temperature <= 0:
        raise _fail("pass_at_k.temperature", "> 0 (distinct samples need sampling)", temperature, "use e.g. 0.7")
    pk = PassAtKSettings(
        mode=_choice(str(pk_node.get("mode", "output_only")), MODES, "pass_at_k.mode", "output_only"),
        num_samples=num_samples, max_k=max_k, temperature=float(temperature),
        max_pairs=_optional_count(pk_node.get("max_pairs"), "pass_at_k.max_pairs"))
    for key, used in (("leave_one_out", "leave_one_out" in analyses), ("pass_at_k", "pass_at_k" in analyses)):
        sub_mode = loo.mode if key == "leave_one_out" else pk.mode
        if used and sub_mode == "custom" and not method:
            raise _fail(f"{key}.mode", "a mode other than 'custom' unless bench.method is set", sub_mode,
                        "set bench.method=package.module:Class")

    ix_node = bench.get("intersectionality") or {}
    filters = _plain(ix_node.get("filters")) or {}
    if not isinstance(filters, dict) or not all(isinstance(v, dict) and v for v in filters.values()):
        raise _fail("intersectionality.filters", "a mapping name -> {attribute: condition}", filters,
                    "e.g. {older_women: {sex: Female, age: {op: '>=', value: 65}}}")
    ix = IntersectionalitySettings(
        filters={str(k): dict(v) for k, v in filters.items()},
        breakdown_by=_names(ix_node.get("breakdown_by") or [], "intersectionality.breakdown_by"),
        min_group_size=_count(ix_node.get("min_group_size", 1), "intersectionality.min_group_size", 1, "use 1"))

    if "custom" in modes and not method:
        raise _fail("method", "an import path 'package.module:Class' when bench.mode has 'custom'", None,
                    "set bench.method=package.module:Class")
    return BenchSettings(
        dataset_dir=Path(str(bench.dataset_dir)).expanduser(),
        modes=modes,
        analyses=analyses,
        method=str(method).strip() if method else None,
        question_split=_choice(str(bench.get("question_split", "held_out")), SPLITS, "question_split", "held_out"),
        num_personas=_optional_count(bench.get("num_personas"), "num_personas"),
        questions_per_persona=_optional_count(bench.get("questions_per_persona"), "questions_per_persona"),
        bootstrap_samples=_count(bench.get("bootstrap_samples", 1000), "bootstrap_samples", 2, "use e.g. 1000"),
        intersectionality=ix, leave_one_out=loo, pass_at_k=pk)
