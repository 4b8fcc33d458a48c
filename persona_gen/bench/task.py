"""``persona-gen task=bench``: PERSONA Bench over a generated dataset, scores and plots into the run directory.

Analyses (``bench.analyses``): ``eval`` (accuracy with bootstrap std per mode), ``intersectionality``
(accuracy on attribute-filtered subgroups and per attribute value), ``leave_one_out`` (kappa of the critic's
verdicts with vs without each attribute) and ``pass_at_k`` (n sampled answers per pair). Everything lands in
``<output_dir>/bench/``: ``scores.json``, ``rows.parquet`` (every answer and verdict, failures included) and
the PNG plots; each file is written to a temporary name and moved into place.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from persona_gen.bench import plots
from persona_gen.bench.data import BenchPair, load_bench_data, select_pairs
from persona_gen.bench.evaluate import (
    accuracy_summary,
    answer_stage,
    intersectionality,
    leave_one_out,
    pass_at_k_samples,
    pass_at_k_summary,
    score_pairs,
    small_sample_warning,
)
from persona_gen.bench.methods import BenchCritic, build_method
from persona_gen.bench.records import BenchRow
from persona_gen.bench.settings import BenchSettings, read_settings
from persona_gen.core.cache import CallCache, canonical_json
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.errors import PersonaGenError, format_error
from persona_gen.core.io import atomic_write_bytes
from persona_gen.core.lm import LMClient, build_lm, signature_hash
from persona_gen.core.records import PERSONA_KEYS, Persona

__all__ = ["BenchResult", "run_bench"]


# Entropy mixed into cfg.seed so the bench's generators differ from the pipeline's stage generators.
_BENCH_ENTROPY = 0xBE4C


@dataclass
class BenchResult:
    """What a bench run wrote, with the scores for the command line."""

    output_dir: Path
    scores_path: Path
    rows_path: Path
    plots: list[Path]
    scores: dict[str, Any]
    rows: list[BenchRow] = field(repr=False, default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = []
        for mode, s in self.scores.get("modes", {}).items():
            acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f} ± {s['std']:.3f}"
            fails = s["failures"]
            lines.append(f"bench {mode:<20} accuracy {acc}  (scored {s['n_scored']}/{s['n_items']}; "
                         f"failures: answer {fails['answer']}, critic {fails['critic']})"
                         + (f"  [warning: {s['warning']}]" if s.get("warning") else ""))
        if self.scores.get("intersectionality_note"):
            lines.append(f"bench intersectionality: {self.scores['intersectionality_note']}")
        loo = self.scores.get("leave_one_out")
        if loo and loo["attributes"]:
            top = loo["attributes"][0]
            kappa = "n/a" if top["kappa"] is None else f"{top['kappa']:.3f}"
            lines.append(f"bench leave-one-out ({loo['mode']}): most influential {top['attribute']!r} (kappa {kappa})"
                         + (f"  [warning: {loo['warning']}]" if loo.get("warning") else ""))
        pk = self.scores.get("pass_at_k")
        if pk and pk["curve"]:
            first, last = pk["curve"][0], pk["curve"][-1]
            lines.append(f"bench pass@k ({pk['mode']}): pass@{first['k']} {first['pass_at_k']:.3f}, "
                         f"pass@{last['k']} {last['pass_at_k']:.3f}")
        lines.append(f"scores:   {self.scores_path}")
        lines.append(f"rows:     {self.rows_path}")
        lines += [f"plot:     {p}" for p in self.plots]
        return lines


def _clean(value: Any) -> Any:
    """JSON-ready: NaN -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _rows_frame(rows: list[BenchRow]) -> pd.DataFrame:
    records = []
    for r in rows:
        d = r.model_dump(mode="json", exclude={"failure"})
        f = r.failure
        d.update({"failure_stage": f.stage if f else None, "failure_kind": f.kind if f else None,
                  "failure_message": f.message if f else None, "failure_raw": f.raw if f else None})
        records.append(d)
    columns = [*BenchRow.model_fields, "failure_stage", "failure_kind", "failure_message", "failure_raw"]
    columns.remove("failure")
    return pd.DataFrame(records, columns=columns)


def _check_failure_rate(stats: dict[str, CallStats], limit: float, scores_path: Path) -> None:
    for stage, s in sorted(stats.items()):
        total = s.calls + s.cache_hits
        if total and s.failures / total > limit:
            raise PersonaGenError(format_error(
                f"failure rate of bench stage {stage!r}", expected=f"<= max_failure_rate={limit}",
                got=f"{s.failures}/{total}", where=f"scores and failed rows are in {scores_path.parent}",
                fix="use a stronger model, or raise max_failure_rate to accept the scores anyway"))


@dataclass
class _Bench:
    """One bench run's shared state: the inputs, the callers and the methods."""

    settings: BenchSettings
    cfg: DictConfig
    pairs: list[BenchPair]
    personas: list[Persona]
    methods: dict[str, Any]
    gen: Caller
    judge: Caller
    critic: BenchCritic
    cache: CallCache
    out_dir: Path
    seed_boot: int
    by_mode: dict[str, list[BenchRow]] = field(default_factory=dict)

    def eval_rows(self, mode: str) -> list[BenchRow]:
        """The main evaluation's rows of one mode, computed once (leave-one-out reuses them)."""
        if mode not in self.by_mode:
            self.by_mode[mode] = score_pairs(self.pairs, self.methods[mode], mode=mode, generator=self.gen,
                                             judge=self.judge, critic=self.critic,
                                             stage=answer_stage(mode, self.settings.method))
        return self.by_mode[mode]

    def plot(self, name: str, png: bytes) -> Path:
        return atomic_write_bytes(self.out_dir / name, png)


def run_bench(cfg: DictConfig, *, generator: LMClient | None = None, judge: LMClient | None = None,
              sampler: LMClient | None = None) -> BenchResult:
    """Run the configured analyses and write scores, rows and plots under ``<paths.output_dir>/bench``.

    Args:
        cfg: The composed run config with a ``bench`` group.
        generator: The LM of the methods (default: ``build_lm(cfg.models.generator)``).
        judge: The LM of the critic (default: ``build_lm(cfg.models.judge)``).
        sampler: The LM of the pass@k samples (default: the generator's config at
            ``bench.pass_at_k.temperature``).

    Raises:
        ConfigError: On a bad ``bench`` value or dataset folder.
        PersonaGenError: When a stage's failure rate passes ``max_failure_rate`` (after writing the outputs).
    """
    settings = read_settings(cfg)
    # A persona_gen dataset folder, a folder or file in the released PERSONA layout, or a Hub dataset id.
    root = cfg.paths.get("root") if cfg.get("paths") is not None else None
    data = load_bench_data(settings.dataset_dir, root=str(root) if root else None)
    dataset_dir = data.dataset_dir
    seed_questions, seed_boot = (int(c.generate_state(1)[0]) for c in
                                 np.random.SeedSequence([int(cfg.seed), _BENCH_ENTROPY]).spawn(2))
    pairs = select_pairs(data.personas, data.questions, split=settings.question_split,
                         num_personas=settings.num_personas, questions_per_persona=settings.questions_per_persona,
                         seed=seed_questions)
    root = cfg.paths.get("root") if cfg.get("paths") is not None else None
    methods = {mode: build_method(mode, settings.method, root=root) for mode in
               dict.fromkeys([*settings.eval_modes, *_sub_modes(settings)])}
    from persona_gen.core.runtime import Runtime

    runtime = Runtime(cfg)  # the cache and the LM clients of the roles (generator: methods, judge: critic)
    cache = runtime.cache
    stats: dict[str, CallStats] = {}
    bench = _Bench(
        settings=settings, cfg=cfg, pairs=pairs, personas=data.personas, methods=methods,
        gen=Caller(generator or runtime.client("generator"), cache, stats=stats),
        judge=Caller(judge or runtime.client("judge"), cache, stats=stats),
        critic=BenchCritic(), cache=cache, out_dir=Path(str(cfg.paths.output_dir)) / "bench", seed_boot=seed_boot)
    scores = _header(bench, dataset_dir)
    if data.origin is not None:  # what was scored: a bench joins only a dataset card with this content hash
        scores.update(data.origin.as_scores())
    extra_rows: list[BenchRow] = []
    plot_paths: list[Path] = []
    try:
        plot_paths += _evaluate(bench, scores)
        if "intersectionality" in settings.analyses:
            plot_paths += _intersectionality(bench, scores)
        if "leave_one_out" in settings.analyses:
            plot_paths += _leave_one_out(bench, scores, extra_rows)
        if "pass_at_k" in settings.analyses:
            plot_paths += _pass_at_k(bench, scores, extra_rows, sampler)
    finally:
        cache.close()
    scores["lm"] = {"stages": {k: v.as_dict() for k, v in sorted(stats.items())}, "cache": cache.stats()}
    text = json.dumps(_clean(scores), indent=2, allow_nan=False) + "\n"
    scores_path = atomic_write_bytes(bench.out_dir / "scores.json", text.encode())
    rows = [r for rs in bench.by_mode.values() for r in rs] + extra_rows
    rows_path = atomic_write_bytes(bench.out_dir / "rows.parquet", _rows_frame(rows).to_parquet(index=False))
    result = BenchResult(bench.out_dir, scores_path, rows_path, plot_paths, scores, rows)
    _check_failure_rate(stats, float(cfg.get("max_failure_rate", 0.5)), scores_path)
    return result


def _sub_modes(settings: BenchSettings) -> list[str]:
    modes = []
    if "leave_one_out" in settings.analyses:
        modes.append(settings.leave_one_out.mode)
    if "pass_at_k" in settings.analyses:
        modes.append(settings.pass_at_k.mode)
    return modes


def _header(bench: _Bench, dataset_dir: Path) -> dict[str, Any]:
    from persona_gen.signatures import (
        AnswerForPersona,
        AnswerFromPersonaSummary,
        AnswerQuestion,
        CritiqueBenchAnswer,
        SummarizePersona,
    )

    signatures = (AnswerQuestion, AnswerForPersona, SummarizePersona, AnswerFromPersonaSummary, CritiqueBenchAnswer)
    config = cast(dict[str, Any], OmegaConf.to_container(bench.cfg.bench, resolve=True))
    # Where the dataset lives does not change the scores; which models score it does.
    hashed = {"bench": {k: v for k, v in config.items() if k != "dataset_dir"}, "seed": int(bench.cfg.seed),
              "models": {"generator": bench.gen.client.identity, "judge": bench.judge.client.identity}}
    return {
        "dataset_dir": str(dataset_dir), "seed": int(bench.cfg.seed),
        "inputs": {"personas": len({p.persona.persona_id for p in bench.pairs}),
                   "questions": len({p.question.question_id for p in bench.pairs}), "pairs": len(bench.pairs),
                   "question_split": bench.settings.question_split},
        "models": {"generator": bench.gen.client.identity, "judge": bench.judge.client.identity},
        "signature_hashes": {s.__name__: signature_hash(s) for s in signatures},
        "method": bench.settings.method,
        "method_label": _label(bench, "custom") if "custom" in bench.methods else None,
        "analyses": list(bench.settings.analyses),
        "config": config, "config_hash": hashlib.sha256(canonical_json(hashed).encode()).hexdigest()[:16],
        "std_over": f"{bench.settings.bootstrap_samples} bootstrap resamples of the scored rows", "modes": {},
    }


def _label(bench: _Bench, mode: str) -> str:
    """How results of a mode are labelled: a plugged-in method by its class name, the others by mode."""
    return str(getattr(bench.methods.get(mode), "label", mode))


def _evaluate(bench: _Bench, scores: dict[str, Any]) -> list[Path]:
    for mode in bench.settings.eval_modes:
        scores["modes"][_label(bench, mode)] = accuracy_summary(
            bench.eval_rows(mode), n_boot=bench.settings.bootstrap_samples, seed=bench.seed_boot)
    return [bench.plot("accuracy_by_mode.png", plots.plot_accuracy(scores["modes"]))] if scores["modes"] else []


def _intersectionality(bench: _Bench, scores: dict[str, Any]) -> list[Path]:
    ix = bench.settings.intersectionality
    rows = [r for mode in bench.settings.eval_modes for r in bench.eval_rows(mode)]
    result = intersectionality(rows, {p.persona_id: p for p in bench.personas}, filters=ix.filters,
                               breakdown_by=ix.breakdown_by, min_group_size=ix.min_group_size,
                               n_boot=bench.settings.bootstrap_samples, seed=bench.seed_boot)
    result = {_label(bench, mode): v for mode, v in result.items()}
    scores["intersectionality"] = result
    if not (ix.filters and result):
        return []
    if not any(sub["n"] for r in result.values() for sub in r["filters"].values()):
        # An empty chart would look like accuracy 0: say so instead of drawing one.
        scores["intersectionality_note"] = (f"no persona matched any filter ({', '.join(ix.filters)}) among "
                                            f"{len(bench.personas)} personas; no plot drawn")
        return []
    return [bench.plot("intersectionality.png", plots.plot_intersectionality(result))]


def _leave_one_out(bench: _Bench, scores: dict[str, Any], extra_rows: list[BenchRow]) -> list[Path]:
    loo = bench.settings.leave_one_out
    base = bench.eval_rows(loo.mode)
    if loo.max_pairs:
        kept = {(p.persona.persona_id, p.question.question_id) for p in bench.pairs[: loo.max_pairs]}
        base = [r for r in base if (r.persona_id, r.question_id) in kept]
    present = {k for p in bench.pairs for k in p.persona.attributes}
    attributes = list(loo.attributes) if loo.attributes else \
        [k for k in PERSONA_KEYS if k in present] + sorted(present - set(PERSONA_KEYS))
    lookup = {(p.persona.persona_id, p.question.question_id): p for p in bench.pairs}
    table, loo_rows = leave_one_out(base, lookup, attributes=attributes, judge=bench.judge, critic=bench.critic)
    records = table.to_dict(orient="records")
    items = sum(1 for r in base if r.passed is not None)
    scores["leave_one_out"] = {"mode": _label(bench, loo.mode), "items": items,
                               "warning": small_sample_warning(items, "items per kappa"),
                               "failures": sum(1 for r in loo_rows if r.failure is not None), "attributes": records}
    extra_rows += loo_rows
    return [bench.plot("leave_one_out.png", plots.plot_leave_one_out(records, mode=loo.mode))] if records else []


def _pass_at_k(bench: _Bench, scores: dict[str, Any], extra_rows: list[BenchRow],
               sampler: LMClient | None) -> list[Path]:
    pk = bench.settings.pass_at_k
    client = sampler or build_lm(OmegaConf.merge(bench.cfg.models.generator, {"temperature": pk.temperature}),
                                 role="generator")
    sampling = Caller(client, bench.cache, stats=bench.gen.stats)
    chosen = bench.pairs[: pk.max_pairs] if pk.max_pairs else bench.pairs
    rows = pass_at_k_samples(chosen, bench.methods[pk.mode], mode=pk.mode, num_samples=pk.num_samples,
                             generator=sampling, judge=bench.judge, critic=bench.critic,
                             stage=answer_stage(pk.mode, bench.settings.method, sampled=True))
    summary = pass_at_k_summary(rows, max_k=pk.max_k)
    scores["pass_at_k"] = {"mode": _label(bench, pk.mode), "num_samples": pk.num_samples,
                           "temperature": client.identity.get("temperature"), **summary}
    extra_rows += rows
    if not summary["curve"]:
        return []
    return [bench.plot("pass_at_k.png", plots.plot_pass_at_k(summary["curve"], mode=pk.mode))]
