"""Score methods on (persona, question) pairs: answers, critic verdicts, and the four analyses of the paper.

Every LM call goes through ``Caller.map`` (cache, concurrency, recorded failures). A row whose answer or
verdict failed is kept with its failure and counted, never scored; accuracies are over scored rows only.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import dspy
import pandas as pd

from persona_gen.bench.data import BenchPair
from persona_gen.bench.records import Analysis, BenchRow
from persona_gen.core.cache import canonical_json
from persona_gen.core.calls import Caller, CallResult
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import PERSONA_KEYS, Failure, Persona
from persona_gen.metrics import (
    accuracy_with_std,
    breakdown,
    filter_intersection,
    loo_attribute_influence,
    pass_at_k_curve,
)

__all__ = [
    "SMALL_SAMPLE",
    "accuracy_summary",
    "answer_stage",
    "intersectionality",
    "leave_one_out",
    "pass_at_k_samples",
    "pass_at_k_summary",
    "render_without",
    "score_pairs",
    "small_sample_warning",
]

CRITIC_STAGE = "bench_critic"
LOO_CRITIC_STAGE = "bench_critic_leave_one_out"


def answer_stage(mode: str, method_path: str | None = None, *, sampled: bool = False) -> str:
    """The ``Caller`` stage name of a mode's answers; a plugged-in method's import path is part of it (and so of
    the cache key), because two plugged-in modules without predictors would otherwise share keys."""
    name = f"bench_answer_{mode}" + (f"[{method_path}]" if mode == "custom" and method_path else "")
    return f"{name}_sampled" if sampled else name


def render_without(persona: Persona, attribute: str | None = None) -> str:
    """The persona's 'key: value' text, without ``attribute`` when given."""
    return "\n".join(f"{k}: {v}" for k, v in persona.attributes.items() if k != attribute)


def _map_unique(caller: Caller, stage: str, module: Any, inputs: Sequence[dict[str, Any]], *, sample_index: int = 0,
                desc: str | None = None) -> list[CallResult]:
    """``caller.map`` over distinct inputs only (one call for the baseline answer every persona shares)."""
    keys = [canonical_json(i) for i in inputs]
    unique: dict[str, dict[str, Any]] = {}
    for key, item in zip(keys, inputs, strict=True):
        unique.setdefault(key, item)
    results = caller.map(stage, module, list(unique.values()), sample_index=sample_index, desc=desc)
    by_key = dict(zip(unique, results, strict=True))
    return [by_key[k] for k in keys]


def _answer_of(result: CallResult, stage: str) -> tuple[str | None, Failure | None]:
    if not result.ok:
        return None, result.failure
    answer = result.outputs.get("answer") if result.outputs else None
    if not isinstance(answer, str):
        return None, Failure(stage=stage, kind="parse", message="the method's output has no str 'answer'",
                             raw=canonical_json(result.outputs))
    return answer, None


def _verdict(result: CallResult | None) -> dict[str, Any]:
    if result is None or not result.ok:
        return {}
    out = result.outputs or {}
    return {"reason": str(out.get("reason", "")), "personalization_ok": out.get("personalization_ok"),
            "helpful": out.get("helpful"), "needs_revision": out.get("needs_revision")}


def score_pairs(pairs: Sequence[BenchPair], method: dspy.Module, *, mode: str, generator: Caller, judge: Caller,
                critic: dspy.Module, stage: str, analysis: Analysis = "eval", sample_index: int = 0) -> list[BenchRow]:
    """Answer every pair with ``method`` and have the persona-voiced critic judge each answer."""
    uses_persona = getattr(method, "uses_persona", True)
    inputs = [({"persona": render_without(p.persona), "question": p.question.text} if uses_persona
               else {"question": p.question.text}) for p in pairs]
    answers = [_answer_of(r, stage) for r in _map_unique(generator, stage, method, inputs, sample_index=sample_index,
                                                         desc=f"bench: {mode} answers")]
    to_judge = [i for i, (answer, _) in enumerate(answers) if answer is not None]
    verdicts: dict[int, CallResult] = dict(zip(to_judge, _map_unique(
        judge, CRITIC_STAGE, critic,
        [{"persona": render_without(pairs[i].persona), "question": pairs[i].question.text,
          "answer": answers[i][0]} for i in to_judge], desc=f"bench: {mode} critic"), strict=True))
    rows = []
    for i, (pair, (answer, failure)) in enumerate(zip(pairs, answers, strict=True)):
        verdict = verdicts.get(i)
        if failure is None and verdict is not None and not verdict.ok:
            failure = verdict.failure
        rows.append(BenchRow(
            analysis=analysis, mode=mode, persona_id=pair.persona.persona_id, question_id=pair.question.question_id,
            sample_index=sample_index, answer=answer or "", generator_model=generator.client.model_id,
            judge_model=judge.client.model_id, failure=failure, **_verdict(verdict)))
    return rows


def _failures(rows: Sequence[BenchRow]) -> dict[str, int]:
    answer = sum(1 for r in rows if r.failure is not None and not r.failure.stage.startswith(CRITIC_STAGE))
    critic = sum(1 for r in rows if r.failure is not None and r.failure.stage.startswith(CRITIC_STAGE))
    return {"answer": answer, "critic": critic}


def _accuracy(passed: Sequence[bool], n_boot: int, seed: int) -> dict[str, float | None]:
    if not passed:
        return {"accuracy": None, "std": None}
    res = accuracy_with_std(list(passed), n_boot=n_boot, seed=seed)
    return {"accuracy": res.accuracy, "std": res.std}


# Below this many items an accuracy or a kappa is reported with a warning, not as a bare number.
SMALL_SAMPLE = 30


def small_sample_warning(n: int, what: str = "items") -> str | None:
    """The warning a number computed over ``n`` items carries when ``n`` < ``SMALL_SAMPLE`` (else None)."""
    if n >= SMALL_SAMPLE:
        return None
    return f"small sample: {n} {what} (< {SMALL_SAMPLE}); read it as a rough indication, not a measurement"


def accuracy_summary(rows: Sequence[BenchRow], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy (share of answers needing no revision) with its bootstrap std, over the scored rows.

    Returns:
        ``accuracy``, ``std`` (None when nothing was scored), ``n_items``, ``n_scored``, the ``failures``
        by step (``answer``: the method failed; ``critic``: the critic's verdict failed) and ``warning`` (a
        small-sample note, or None).
    """
    passed = [r.passed for r in rows if r.passed is not None]
    return {**_accuracy(passed, n_boot, seed), "n_items": len(rows), "n_scored": len(passed),
            "failures": _failures(rows), "warning": small_sample_warning(len(passed), "scored items")}


def _condition(test: Any, *, name: str, column: str) -> Any:
    """A YAML condition as ``filter_intersection`` reads it; persona values are strings, so values are too."""
    if isinstance(test, Mapping):
        op, value = test.get("op"), test.get("value")
        if op in ("<", "<=", ">", ">=") and isinstance(value, int | float) and not isinstance(value, bool):
            compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
            # Ordered comparisons are numeric ('age >= 65'); a persona value that is no number matches nothing.
            return lambda s: compare(pd.to_numeric(s, errors="coerce"), float(value)).fillna(False).to_numpy(bool)
        if op in ("==", "!="):
            return (op, str(value))
        if op in ("in", "not in") and isinstance(value, list | tuple):
            return (op, [str(v) for v in value])
        raise ConfigError(format_error(
            f"bench.intersectionality.filters.{name}.{column}", expected="{op: <, <=, >, >= with a number, or ==, "
            "!=, in, not in with a value}", got=dict(test), where="command line or conf/bench/",
            fix="e.g. {op: '>=', value: 65}"))
    if isinstance(test, list | tuple):
        return [str(v) for v in test]
    return str(test)


def intersectionality(rows: Sequence[BenchRow], personas: Mapping[str, Persona], *,
                      filters: Mapping[str, Mapping[str, Any]], breakdown_by: Sequence[str] = (),
                      min_group_size: int = 1, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy of each mode on personas matching each filter (an intersectional subgroup), and per value of each
    ``breakdown_by`` attribute (with Wilson intervals).

    Raises:
        ConfigError: When a filter or breakdown names an attribute the personas do not have.
    """
    scored = [r for r in rows if r.passed is not None]
    records = [{"mode": r.mode, "correct": bool(r.passed), **personas[r.persona_id].attributes} for r in scored]
    frame = pd.DataFrame(records)
    known = [k for k in PERSONA_KEYS if any(k in p.attributes for p in personas.values())] or \
        sorted({k for p in personas.values() for k in p.attributes})
    for name, conditions in filters.items():
        for column in conditions:
            if column not in known:
                raise ConfigError(format_error(
                    f"bench.intersectionality.filters.{name}", expected="conditions on persona attributes",
                    got=column, where="command line or conf/bench/", fix=f"use keys among {known}"))
    for column in breakdown_by:
        if column not in known:
            raise ConfigError(format_error("bench.intersectionality.breakdown_by", expected="persona attributes",
                                           got=column, where="command line or conf/bench/",
                                           fix=f"use keys among {known}"))
    out: dict[str, Any] = {}
    modes = list(dict.fromkeys(r.mode for r in rows))
    for mode in modes:
        mode_frame = frame[frame["mode"] == mode] if len(frame) else frame
        subgroups = {}
        for name, conditions in filters.items():
            tests = {c: _condition(t, name=name, column=c) for c, t in conditions.items()}
            subset = filter_intersection(mode_frame, tests) if len(mode_frame) else mode_frame
            subgroups[name] = {"conditions": dict(conditions), "n": len(subset),
                               **_accuracy(subset["correct"].tolist() if len(subset) else [], n_boot, seed),
                               "warning": "no persona matched" if not len(subset) else
                               small_sample_warning(len(subset), "scored items")}
        groups: dict[str, list[dict[str, Any]]] = {}
        for column in breakdown_by:
            if not len(mode_frame):
                groups[column] = []
                continue
            table = breakdown(mode_frame, column, metric="accuracy", column="correct", min_size=min_group_size)
            groups[column] = [{"value": str(value), "n": int(row["n"]), "accuracy": float(row["value"]),
                               "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
                               "warning": small_sample_warning(int(row["n"]), "scored items")}
                              for value, row in table.iterrows()]
        out[mode] = {"filters": subgroups, "breakdown": groups}
    return out


def leave_one_out(rows: Sequence[BenchRow], pairs: Mapping[tuple[str, str], BenchPair], *, attributes: Sequence[str],
                  judge: Caller, critic: dspy.Module) -> tuple[pd.DataFrame, list[BenchRow]]:
    """Rejudge the same answers with one persona attribute removed at a time.

    Only rows with a full-persona verdict take part. For each attribute, Cohen's kappa of ``needs_revision``
    with the full persona vs without the attribute (``metrics.loo_attribute_influence``): the lower, the more
    the attribute mattered to the critic.

    Returns:
        The influence table (``attribute``, ``kappa``, ``agreement``, ``n``, ``accuracy_without``), most
        influential first, and the rejudged rows (failures kept).
    """
    items = [r for r in rows if r.passed is not None]
    if not items:
        return pd.DataFrame(columns=["attribute", "kappa", "agreement", "n", "accuracy_without"]), []
    full = [bool(r.needs_revision) for r in items]
    without: dict[str, list[bool | None]] = {}
    loo_rows: list[BenchRow] = []
    for attribute in attributes:
        inputs = [{"persona": render_without(pairs[(r.persona_id, r.question_id)].persona, attribute),
                   "question": pairs[(r.persona_id, r.question_id)].question.text, "answer": r.answer} for r in items]
        results = _map_unique(judge, LOO_CRITIC_STAGE, critic, inputs, desc=f"bench: without {attribute}")
        for r, res in zip(items, results, strict=True):
            loo_rows.append(r.model_copy(update={
                "analysis": "leave_one_out", "dropped_attribute": attribute, "failure": res.failure,
                "judge_model": judge.client.model_id, "reason": "", "personalization_ok": None, "helpful": None,
                "needs_revision": None, **_verdict(res)}))
        without[attribute] = [bool((res.outputs or {})["needs_revision"]) if res.ok else None for res in results]
    table = loo_attribute_influence(full, without)
    accuracy_without = {a: _mean_not([v for v in vals if v is not None]) for a, vals in without.items()}
    table["accuracy_without"] = table["attribute"].map(accuracy_without)
    return table, loo_rows


def _mean_not(values: Sequence[bool]) -> float:
    return float(sum(not v for v in values) / len(values)) if values else math.nan


def pass_at_k_samples(pairs: Sequence[BenchPair], method: dspy.Module, *, mode: str, num_samples: int,
                      generator: Caller, judge: Caller, critic: dspy.Module, stage: str) -> list[BenchRow]:
    """``num_samples`` answers per pair (``sample_index`` 0..n-1, sampled at the generator's temperature),
    each judged by the critic."""
    rows: list[BenchRow] = []
    for index in range(num_samples):
        rows += score_pairs(pairs, method, mode=mode, generator=generator, judge=judge, critic=critic, stage=stage,
                            analysis="pass_at_k", sample_index=index)
    return rows


def pass_at_k_summary(rows: Sequence[BenchRow], *, max_k: int) -> dict[str, Any]:
    """The pass@k curve over (persona, question) problems: ``n`` judged samples, ``c`` of them needing no revision.

    Failed samples are left out of ``n`` (and counted); a problem with no judged sample is left out; the curve
    runs to ``min(max_k, smallest n)``.
    """
    per: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        per.setdefault((r.persona_id, r.question_id), [])
        if r.passed is not None:
            per[(r.persona_id, r.question_id)].append(bool(r.passed))
    judged = {k: v for k, v in per.items() if v}
    summary: dict[str, Any] = {"problems": len(per), "problems_scored": len(judged), "samples": len(rows),
                               "failures": _failures(rows), "curve": []}
    if not judged:
        return summary
    n = [len(v) for v in judged.values()]
    c = [sum(v) for v in judged.values()]
    top = min(max_k, min(n))
    curve = pass_at_k_curve(n, c, ks=range(1, top + 1))
    summary["curve"] = [{"k": int(k), "pass_at_k": float(p)} for k, p in zip(curve["k"], curve["pass_at_k"],
                                                                              strict=True)]
    return summary
