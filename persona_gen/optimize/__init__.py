"""Judge-prompt optimization with DSPy optimizers on human labels; compiled programs saved and loaded by hash."""

from persona_gen.judge.programs import load_judges, save_judges
from persona_gen.optimize.config import OPTIMIZERS, OptimizeConfig
from persona_gen.optimize.data import agreement_metric, split_items, to_examples
from persona_gen.optimize.optimizers import build_optimizer, compile_judge
from persona_gen.optimize.task import OptimizeOutcome, OptimizeResult, optimize_judges, run_optimize

__all__ = [
    "OPTIMIZERS",
    "OptimizeConfig",
    "OptimizeOutcome",
    "OptimizeResult",
    "agreement_metric",
    "build_optimizer",
    "compile_judge",
    "load_judges",
    "optimize_judges",
    "run_optimize",
    "save_judges",
    "split_items",
    "to_examples",
]
