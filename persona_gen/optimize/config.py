"""Schema of the ``optimize`` config group: which DSPy optimizer, its budget, the split and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

__all__ = ["OPTIMIZERS", "BootstrapFewShotConfig", "GEPAConfig", "MIPROv2Config", "OptimizeConfig"]

OPTIMIZERS = ("bootstrap_few_shot", "mipro_v2", "gepa")


@dataclass
class BootstrapFewShotConfig:
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 8
    max_rounds: int = 1


@dataclass
class MIPROv2Config:
    auto: str | None = "light"
    num_candidates: int | None = None
    num_trials: int | None = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 4
    minibatch: bool = True
    minibatch_size: int = 35


@dataclass
class GEPAConfig:
    auto: str | None = "light"
    max_metric_calls: int | None = None
    max_full_evals: int | None = None
    reflection_minibatch_size: int = 3
    use_merge: bool = True


@dataclass
class OptimizeConfig:
    labeled_items: str = MISSING
    optimizer: str = "bootstrap_few_shot"
    variants: list[str] = field(default_factory=lambda: ["direct"])
    dev_fraction: float = 0.3
    ci: float = 0.95
    n_boot: int = 1000
    prompt_model: Any = None
    bootstrap_few_shot: BootstrapFewShotConfig = field(default_factory=BootstrapFewShotConfig)
    mipro_v2: MIPROv2Config = field(default_factory=MIPROv2Config)
    gepa: GEPAConfig = field(default_factory=GEPAConfig)
