"""``persona-gen task=optimize``: compile the judge on human labels and report kappa before and after.

Items (``annotation/items.jsonl`` from ``task=annotate_import``) are split by item into train and dev
(seeded). Each variant in ``optimize.variants`` is compiled on train with ``optimize.optimizer``; the
baseline and the compiled judge then judge dev through ``Caller`` (cached, keyed by program hash) and
their kappa with the human majority is reported with item-bootstrap intervals. Written under
``<run dir>/optimize/``: ``judge_program.json`` (load it with ``stage.judge.program_path=...``),
``report.json``, ``split.json`` and ``dev_judgments.jsonl``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from persona_gen.annotate._io import atomic_write_text, jsonl_text, to_json
from persona_gen.annotate.agreement import feedback_rows, kappa_change
from persona_gen.annotate.config import checked_group, required
from persona_gen.annotate.labels import read_items
from persona_gen.annotate.records import LabeledItem
from persona_gen.core.calls import Caller, program_hash
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Judgment
from persona_gen.judge.programs import clean_state, rebuild_judge, save_judges
from persona_gen.optimize.config import OPTIMIZERS, OptimizeConfig
from persona_gen.optimize.data import Feedbacks, split_items, to_examples
from persona_gen.optimize.optimizers import compile_judge

__all__ = ["OptimizeOutcome", "OptimizeResult", "optimize_judges", "run_optimize"]

log = logging.getLogger(__name__)

SEED_NAMES = ("split", "compile", "bootstrap")


def optimize_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for the split, the optimizer and the confidence intervals, from the one config seed."""
    children = np.random.SeedSequence(int(seed)).spawn(len(SEED_NAMES))
    return {n: int(c.generate_state(1, dtype=np.uint32)[0]) for n, c in zip(SEED_NAMES, children, strict=True)}


@dataclass
class OptimizeOutcome:
    """Compiled judges, the split, the dev judgments before and after, and the report."""

    judges: dict[str, Any]
    train: list[LabeledItem]
    dev: list[LabeledItem]
    before: list[Judgment]
    after: list[Judgment]
    report: dict[str, Any] = field(default_factory=dict)

    def kappa(self, variant: str, when: str) -> float | None:
        """Dev kappa of ``variant`` ``before`` or ``after`` optimization."""
        return self.report["variants"][variant]["dev"][when]["kappa"]


def _judge(items: Sequence[LabeledItem], variant: str, module: Any, caller: Caller) -> list[Judgment]:
    from persona_gen.judge.stage import run_judge

    return run_judge(feedback_rows(items), cfg=OmegaConf.create({"variants": [variant]}), caller=caller,
                     judges={variant: module})


def optimize_judges(items: Sequence[LabeledItem], *, caller: Caller, variants: Sequence[str], optimizer: str,
                    optimizer_cfg: Any, seed: int = 0, dev_fraction: float = 0.3, ci: float = 0.95,
                    n_boot: int = 1000, prompt_lm: Any | None = None) -> OptimizeOutcome:
    """Split ``items``, compile each variant's judge on train, and judge dev before and after.

    Args:
        items: Labeled items; those without a human majority are left out.
        caller: Runs the judge (its client is the judge LM and the task LM of the optimizer).
        variants: Judge variants to compile (``direct``, ``chain_of_thought``).
        optimizer: ``bootstrap_few_shot``, ``mipro_v2`` or ``gepa``.
        optimizer_cfg: That optimizer's config section.
        seed: The one seed; split, optimizer and intervals get their own from it.
        dev_fraction: Share of items held out for the report.
        ci: Confidence level of the intervals.
        n_boot: Bootstrap replicates of the intervals.
        prompt_lm: LM for instruction proposals / reflection; the judge LM when None.
    """
    from persona_gen.judge.stage import VARIANTS, PersonaJudge

    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ConfigError(format_error("optimize.variants", expected=f"a non-empty list of {list(VARIANTS)}",
                                       got=list(variants), where="conf/optimize/default.yaml",
                                       fix="e.g. optimize.variants=[direct]"))
    seeds = optimize_seeds(seed)
    train, dev = split_items(items, dev_fraction=dev_fraction, seed=seeds["split"])
    feedbacks = Feedbacks()
    trainset = to_examples(train, feedbacks)
    judges: dict[str, Any] = {}
    before: list[Judgment] = []
    after: list[Judgment] = []
    per_variant: dict[str, Any] = {}
    for variant in variants:
        baseline = PersonaJudge(variant)
        compiled = compile_judge(PersonaJudge(variant), trainset, name=optimizer, cfg=optimizer_cfg,
                                 lm=caller.client.lm, prompt_lm=prompt_lm, seed=seeds["compile"],
                                 num_threads=caller.client.concurrency, feedbacks=feedbacks)
        clean_state(compiled)
        # Judge dev with the program as a later run loads it from the file: the report's numbers then
        # come back from the cache when someone runs with stage.judge.program_path.
        compiled = rebuild_judge(variant, compiled.dump_state())
        judges[variant] = compiled
        b, a = _judge(dev, variant, baseline, caller), _judge(dev, variant, compiled, caller)
        before += b
        after += a
        per_variant[variant] = {
            "program_hash_before": program_hash(baseline), "program_hash_after": program_hash(compiled),
            "demos": {name: len(p.demos) for name, p in compiled.named_predictors()},
            "instructions_changed": any(p.signature.instructions != q.signature.instructions for (_, p), (_, q)
                                        in zip(compiled.named_predictors(), baseline.named_predictors(), strict=True)),
            "dev": kappa_change(b, a, dev, ci=ci, n_boot=n_boot, seed=seeds["bootstrap"]),
        }
    report = {
        "optimizer": optimizer, "seed": int(seed), "judge_model": caller.client.model_id,
        "judge_identity": caller.client.identity,
        "split": {"train_items": len(train), "dev_items": len(dev), "train_examples": len(trainset),
                  "dev_fraction": dev_fraction, "items_without_majority": sum(1 for i in items if i.majority is None),
                  "by": "item (both presentation orders on one side)"},
        "metric": "agreement with the human majority (per presentation order)",
        "variants": per_variant,
    }
    return OptimizeOutcome(judges, train, dev, before, after, report)


@dataclass
class OptimizeResult:
    output_dir: Path
    program_path: Path
    report_path: Path
    report: dict[str, Any]

    def summary_lines(self) -> list[str]:
        def fmt(k: dict[str, Any]) -> str:
            if k["kappa"] is None:
                return "undefined"
            low, high = k["ci_low"], k["ci_high"]
            return f"{k['kappa']:+.3f} [{low if low is None else f'{low:+.3f}'}, " \
                   f"{high if high is None else f'{high:+.3f}'}]"

        lines = [f"optimizer: {self.report['optimizer']}  (train {self.report['split']['train_items']} items, "
                 f"dev {self.report['split']['dev_items']} items)"]
        for variant, v in self.report["variants"].items():
            dev = v["dev"]
            warning = dev["before"].get("warning")  # a dev set of fewer than 30 items (annotate.agreement)
            lines.append(f"{variant}: dev kappa {fmt(dev['before'])} -> {fmt(dev['after'])}; "
                         f"change {fmt(dev['delta'])}  (program {v['program_hash_after']})"
                         + (f"  [warning: {warning}]" if warning else ""))
        lines += [f"program: {self.program_path}", f"report:  {self.report_path}",
                  f"use it:  persona-gen stage.judge.program_path={self.program_path}"]
        return lines


def run_optimize(cfg: DictConfig) -> OptimizeResult:
    """The ``optimize`` task: read labeled items, compile, judge dev before/after, write program and report."""

    opt = checked_group(cfg, "optimize", OptimizeConfig)
    path = required(opt, "labeled_items", "optimize",
                    "pass optimize.labeled_items=<run dir of task=annotate_import>/annotation/items.jsonl")
    if opt.optimizer not in OPTIMIZERS:
        raise ConfigError(format_error("optimize.optimizer", expected=f"one of {list(OPTIMIZERS)}", got=opt.optimizer,
                                       where="conf/optimize/default.yaml", fix="e.g. optimize.optimizer=mipro_v2"))
    items = read_items(path)
    from persona_gen.core.runtime import Runtime

    runtime = Runtime(cfg)
    client = runtime.client("judge")
    prompt_lm = runtime.client("prompt", opt.prompt_model).lm if opt.prompt_model is not None else None
    cache = runtime.cache
    try:
        caller = runtime.caller("judge")
        outcome = optimize_judges(items, caller=caller, variants=list(opt.variants), optimizer=opt.optimizer,
                                  optimizer_cfg=opt[opt.optimizer], seed=int(cfg.seed),
                                  dev_fraction=float(opt.dev_fraction), ci=float(opt.ci), n_boot=int(opt.n_boot),
                                  prompt_lm=prompt_lm)
    finally:
        cache.close()
    out = Path(cfg.paths.output_dir) / "optimize"
    settings = OmegaConf.to_container(opt[opt.optimizer], resolve=True)
    report = {**outcome.report, "labeled_items": str(path), "optimizer_config": settings,
              # Judging before/after goes through the cache; the optimizer's own calls do not, and only an
              # in-process engine can count them (None for HTTP servers).
              "lm_calls": {"judging": sum(s.calls for s in caller.stats.values()),
                           "all_engine_calls": getattr(client.engine, "calls", None)}}
    program_path = save_judges(out / "judge_program.json", outcome.judges, meta={
        "optimizer": opt.optimizer, "optimizer_config": settings, "seed": int(cfg.seed),
        "judge_model": client.model_id, "labeled_items": str(path), "train_items": len(outcome.train),
        "dev_items": len(outcome.dev)})
    report["program_path"] = str(program_path)
    atomic_write_text(out / "split.json", to_json({"train": [i.task_id for i in outcome.train],
                                                   "dev": [i.task_id for i in outcome.dev]}))
    atomic_write_text(out / "dev_judgments.jsonl", jsonl_text(
        {"phase": phase, **j.model_dump(mode="json")} for phase, js in (("before", outcome.before),
                                                                         ("after", outcome.after)) for j in js))
    report_path = atomic_write_text(out / "report.json", to_json(report))
    return OptimizeResult(out, program_path, report_path, report)
