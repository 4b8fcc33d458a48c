"""Compile a ``PersonaJudge`` with one of DSPy's optimizers, chosen by ``optimize.optimizer``.

| optimizer            | what it changes                 | extra LM use                                     |
|----------------------|---------------------------------|--------------------------------------------------|
| ``bootstrap_few_shot`` | demos (few-shot examples)     | the judge on train items                         |
| ``mipro_v2``         | instructions and demos          | the prompt model proposes instructions; optuna   |
| ``gepa``             | instructions (reflective)       | the prompt model reflects on raters' reasons     |

Optimizer calls run on the judge LM directly (DSPy's JSON adapter, as ``Caller`` uses), not through
persona_gen's cache: they are part of compiling, not of judging. Judging before and after goes through
``Caller`` and the cache, keyed by each program's hash.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.optimize.config import OPTIMIZERS
from persona_gen.optimize.data import Feedbacks, agreement_metric, gepa_metric

__all__ = ["build_optimizer", "compile_judge"]


def _check_auto(name: str, auto: Any) -> None:
    if auto not in (None, "light", "medium", "heavy"):
        raise ConfigError(format_error(f"optimize.{name}.auto", expected="light, medium, heavy or null", got=auto,
                                       where="conf/optimize/default.yaml", fix="use light for a small budget"))


def build_optimizer(name: str, cfg: Any, *, prompt_lm: Any, task_lm: Any, seed: int, num_threads: int,
                    feedbacks: Feedbacks | None = None) -> tuple[Any, dict[str, Any]]:
    """The DSPy optimizer named ``name`` from its config section, and the extra ``compile`` keyword arguments.

    Args:
        name: ``bootstrap_few_shot``, ``mipro_v2`` or ``gepa``.
        cfg: The ``optimize.<name>`` section.
        prompt_lm: LM that proposes instructions (MIPROv2) or reflects (GEPA).
        task_lm: The judge LM.
        seed: Seeds the optimizer's own random choices.
        num_threads: Evaluation threads.
        feedbacks: Raters' reasons per example, for GEPA.
    """
    import dspy

    if name == "bootstrap_few_shot":
        return dspy.BootstrapFewShot(metric=agreement_metric, max_bootstrapped_demos=int(cfg.max_bootstrapped_demos),
                                     max_labeled_demos=int(cfg.max_labeled_demos),
                                     max_rounds=int(cfg.max_rounds)), {}
    if name == "mipro_v2":
        _check_auto(name, cfg.auto)
        try:
            import optuna  # noqa: F401 - MIPROv2 needs it at compile time; fail before any LM call
        except ImportError:
            raise ConfigError(format_error(
                "optimize.optimizer=mipro_v2", expected="the optuna package installed", got="not installed",
                where="python environment",
                fix="pip install optuna, or pick optimize.optimizer=bootstrap_few_shot")) from None
        budget = {} if cfg.auto else {"num_candidates": cfg.num_candidates}
        if not cfg.auto and (cfg.num_candidates is None or cfg.num_trials is None):
            raise ConfigError(format_error(
                "optimize.mipro_v2.num_candidates and num_trials", expected="set when auto is null",
                got=f"{cfg.num_candidates}, {cfg.num_trials}", where="conf/optimize/default.yaml",
                fix="set both, or set optimize.mipro_v2.auto=light"))
        optimizer = dspy.MIPROv2(metric=agreement_metric, prompt_model=prompt_lm, task_model=task_lm, auto=cfg.auto,
                                 max_bootstrapped_demos=int(cfg.max_bootstrapped_demos),
                                 max_labeled_demos=int(cfg.max_labeled_demos), num_threads=num_threads, seed=seed,
                                 verbose=False, **budget)
        extra = {"minibatch": bool(cfg.minibatch), "minibatch_size": int(cfg.minibatch_size)}
        if not cfg.auto:
            extra["num_trials"] = int(cfg.num_trials)
        return optimizer, extra
    if name == "gepa":
        _check_auto(name, cfg.auto)
        budgets = {k: cfg[k] for k in ("auto", "max_metric_calls", "max_full_evals") if cfg[k] is not None}
        if len(budgets) != 1:
            raise ConfigError(format_error(
                "optimize.gepa budget (auto, max_metric_calls, max_full_evals)", expected="exactly one set",
                got=budgets or "none", where="conf/optimize/default.yaml",
                fix="e.g. optimize.gepa.auto=null optimize.gepa.max_metric_calls=200"))
        optimizer = dspy.GEPA(metric=gepa_metric(feedbacks or Feedbacks()), reflection_lm=prompt_lm,
                              reflection_minibatch_size=int(cfg.reflection_minibatch_size),
                              use_merge=bool(cfg.use_merge), num_threads=num_threads, seed=seed, **budgets)
        return optimizer, {}
    raise ConfigError(format_error("optimize.optimizer", expected=f"one of {list(OPTIMIZERS)}", got=name,
                                   where="conf/optimize/default.yaml",
                                   fix="e.g. optimize.optimizer=bootstrap_few_shot"))


def compile_judge(student: Any, trainset: Sequence[Any], *, name: str, cfg: Any, lm: Any, prompt_lm: Any | None = None,
                  seed: int = 0, num_threads: int = 1, feedbacks: Feedbacks | None = None) -> Any:
    """Compile ``student`` on ``trainset`` (shuffled with ``seed``) and return the compiled copy.

    The dev split is never passed here: MIPROv2 and GEPA hold out part of ``trainset`` themselves, so the
    dev kappa in the report stays a held-out estimate.
    """
    import dspy

    from persona_gen.core.adapter import JSONAdapter

    train = list(trainset)
    random.Random(seed).shuffle(train)
    with dspy.context(lm=lm, adapter=JSONAdapter()):
        optimizer, extra = build_optimizer(name, cfg, prompt_lm=prompt_lm or lm, task_lm=lm, seed=seed,
                                           num_threads=num_threads, feedbacks=feedbacks)
        return optimizer.compile(student, trainset=train, **extra)
