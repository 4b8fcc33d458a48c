"""Agreement of people and judges on labeled items: human vs human, judge vs the human majority.

Pure functions over records (no LM, no I/O). Labels live in the dataset's answer space
(``original``/``revision``/``tie``; a judge's failed call is ``abstain`` and counts as a disagreement,
never dropped). A judge is asked every item in both orders, so its two answers to an item are not
independent: confidence intervals resample *items* (both orders together), not answers.

* human vs human: each rater against the majority of the other raters (``leave_one_out_majority``,
  ties dropped), as in the paper's human baseline.
* judge vs humans: the judge's answer in each order against the majority of all raters of the item.
  The judge's reference holds every rater, a human's one rater fewer; with few raters per item this
  favours the judge slightly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from persona_gen.annotate.records import LabeledItem
from persona_gen.core.records import Feedback, Judgment
from persona_gen.metrics import cohen_kappa_score, leave_one_out_majority

__all__ = ["SMALL_SAMPLE", "agreement_report", "feedback_rows", "human_vs_human", "kappa_change",
           "kappa_vs_majority", "small_sample_warning"]

CI_METHOD = "percentile bootstrap over items (both orders of an item resampled together)"


def _num(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), digits)


def feedback_rows(items: Iterable[LabeledItem]) -> list[Feedback]:
    """Items as the feedback rows ``run_judge`` reads (only persona, question and the two answers matter)."""
    return [Feedback(feedback_id=i.feedback_id, persona_id=i.persona_id, question_id=i.question_id, persona=i.persona,
                     instruction=i.question, original=i.original, critique="", data=i.revision,
                     question_type="train", seen=False, generator_model="annotation") for i in items]


# Below this many items a kappa carries a warning instead of standing as a bare number.
SMALL_SAMPLE = 30
_OVERLAP_FIX = ("serve the page with annotate.raters_per_item=2 (or more) and have at least that many raters "
                "per persona, so that items are labeled by several people")


def small_sample_warning(n: int) -> str | None:
    if n >= SMALL_SAMPLE:
        return None
    return f"small sample: {n} items (< {SMALL_SAMPLE}); read the kappa as a rough indication, not a measurement"


def human_vs_human(items: Sequence[LabeledItem]) -> dict[str, Any]:
    """Each rater's kappa against the majority of the other raters of the same items.

    When no kappa can be computed, ``note`` says why (one rater; no item shared by two raters; no variation in
    the labels) and how to get one.
    """
    raters = sorted({r.rater_id for i in items for r in i.ratings})
    shared = sum(1 for i in items if len({r.rater_id for r in i.ratings}) >= 2)
    if len(raters) < 2:
        return {"raters": len(raters), "mean_kappa": None, "per_rater": {}, "shared_items": shared,
                "note": f"not computed: {len(raters)} rater(s); it needs at least two raters on shared items; "
                        + _OVERLAP_FIX}
    if not shared:
        return {"raters": len(raters), "mean_kappa": None, "per_rater": {}, "shared_items": 0,
                "note": f"not computed: no item was labeled by two or more of the {len(raters)} raters (each "
                        f"played a different persona); " + _OVERLAP_FIX}
    ratings: dict[str, list[str | None]] = {name: [None] * len(items) for name in raters}
    for n, item in enumerate(items):
        for r in item.ratings:
            ratings[r.rater_id][n] = r.preferred
    frame = leave_one_out_majority(ratings, ties="drop")
    kappas = frame["kappa"].to_numpy(dtype=float)
    defined = kappas[~np.isnan(kappas)]
    note = None if defined.size else (
        f"undefined: on the {shared} shared items the ratings do not vary (every rater chose the same answer, "
        "or the other raters split evenly), so chance agreement is total and kappa is 0/0; label more items")
    return {
        "raters": len(raters),
        "mean_kappa": _num(float(defined.mean())) if defined.size else None,
        "median_kappa": _num(float(np.median(defined))) if defined.size else None,
        "raters_with_kappa": int(defined.size),
        "shared_items": shared,
        "note": note,
        "warning": small_sample_warning(shared) if defined.size else None,
        "ties": "dropped (items where the other raters split evenly)",
        "per_rater": {name: {"kappa": _num(row.kappa), "n_items": int(row.n_items), "n_ties": int(row.n_ties)}
                      for name, row in frame.iterrows()},
    }


def _pairs(judgments: Iterable[Judgment], items: Sequence[LabeledItem]) -> dict[tuple[str, str], tuple[str, str]]:
    """(feedback_id, order) -> (judge label, human majority) for items with a majority."""
    reference = {i.feedback_id: i.majority for i in items if i.majority is not None}
    return {(j.feedback_id, j.order): (j.preferred, reference[j.feedback_id])
            for j in judgments if j.feedback_id in reference}


def _tables(pairs: dict[tuple[str, str], tuple[str, str]], labels: list[str]) -> tuple[list[str], np.ndarray]:
    index = {label: n for n, label in enumerate(labels)}
    groups = sorted({fid for fid, _ in pairs})
    row = {fid: n for n, fid in enumerate(groups)}
    tables = np.zeros((len(groups), len(labels), len(labels)))
    for (fid, _), (judge, human) in pairs.items():
        tables[row[fid], index[judge], index[human]] += 1
    return groups, tables


def _kappas(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each ``k x k`` table in a ``(b, k, k)`` stack (NaN where undefined)."""
    n = tables.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_obs = np.trace(tables, axis1=1, axis2=2) / n
        p_exp = np.einsum("bi,bi->b", tables.sum(axis=2), tables.sum(axis=1)) / n**2
        return (p_obs - p_exp) / (1 - p_exp)


def _interval(reps: np.ndarray, ci: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(reps, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(low), float(high)


def _resample(n_items: int, n_boot: int, seed: int) -> np.ndarray:
    # Drawing n items with replacement = multinomial counts of how often each item is drawn.
    return np.random.default_rng(seed).multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot)


def kappa_vs_majority(judgments: Sequence[Judgment], items: Sequence[LabeledItem], *, ci: float = 0.95,
                      n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Cohen's kappa of one judge (one variant, both orders) against the human majority, with an item-bootstrap CI.

    Returns:
        ``kappa``, ``ci_low``/``ci_high`` (None when undefined), ``agreement`` (raw share), ``n_pairs``,
        ``n_items``, ``abstentions`` and ``split_items`` (items without a human majority, left out).
    """
    pairs = _pairs(judgments, items)
    split = sum(1 for i in items if i.majority is None)
    out: dict[str, Any] = {"ci": ci, "ci_method": CI_METHOD, "n_pairs": len(pairs), "split_items": split,
                           "abstentions": sum(1 for j, _ in pairs.values() if j == "abstain")}
    if not pairs:
        return {**out, "kappa": None, "ci_low": None, "ci_high": None, "agreement": None, "n_items": 0,
                "note": "not computed: no judged item has a human majority (unlabeled, or the raters split evenly)"}
    judge, human = zip(*pairs.values(), strict=True)
    labels = sorted(set(judge) | set(human))
    groups, tables = _tables(pairs, labels)
    kappa = cohen_kappa_score(list(judge), list(human), labels=labels)
    reps = _kappas(np.einsum("bi,ikl->bkl", _resample(len(groups), n_boot, seed), tables))
    low, high = _interval(reps, ci) if not math.isnan(kappa) else (math.nan, math.nan)
    return {**out, "kappa": _num(kappa), "ci_low": _num(low), "ci_high": _num(high), "n_items": len(groups),
            "agreement": _num(float(np.mean([a == b for a, b in zip(judge, human, strict=True)]))),
            "warning": small_sample_warning(len(groups))}


def kappa_change(before: Sequence[Judgment], after: Sequence[Judgment], items: Sequence[LabeledItem], *,
                 ci: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Kappa before and after (e.g. optimization) on the same items, and the paired difference with its CI.

    The difference's interval resamples the same items for both judges, so it is narrower than the two
    separate intervals suggest when the judges err on the same items.
    """
    b_pairs, a_pairs = _pairs(before, items), _pairs(after, items)
    shared = sorted(set(b_pairs) & set(a_pairs))
    b_pairs, a_pairs = {k: b_pairs[k] for k in shared}, {k: a_pairs[k] for k in shared}
    result: dict[str, Any] = {
        "before": kappa_vs_majority([j for j in before if (j.feedback_id, j.order) in b_pairs], items, ci=ci,
                                    n_boot=n_boot, seed=seed),
        "after": kappa_vs_majority([j for j in after if (j.feedback_id, j.order) in a_pairs], items, ci=ci,
                                   n_boot=n_boot, seed=seed),
    }
    if not shared:
        return {**result, "delta": {"kappa": None, "ci_low": None, "ci_high": None, "ci": ci}}
    labels = sorted({x for p in (*b_pairs.values(), *a_pairs.values()) for x in p})
    groups, b_tables = _tables(b_pairs, labels)
    _, a_tables = _tables(a_pairs, labels)
    draws = _resample(len(groups), n_boot, seed)
    reps = _kappas(np.einsum("bi,ikl->bkl", draws, a_tables)) - _kappas(np.einsum("bi,ikl->bkl", draws, b_tables))
    k_before, k_after = result["before"]["kappa"], result["after"]["kappa"]
    delta = None if k_before is None or k_after is None else k_after - k_before
    low, high = _interval(reps, ci) if delta is not None else (math.nan, math.nan)
    return {**result, "delta": {"kappa": _num(delta), "ci_low": _num(low), "ci_high": _num(high), "ci": ci,
                                "ci_method": "paired " + CI_METHOD}}


def agreement_report(items: Sequence[LabeledItem], judgments: Sequence[Judgment] = (), *, ci: float = 0.95,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The annotation report: label counts, human vs human, and every judge variant vs the human majority."""
    per_item = [len(i.ratings) for i in items]
    report: dict[str, Any] = {
        "items": len(items),
        "labels": int(sum(per_item)),
        "raters": len({r.rater_id for i in items for r in i.ratings}),
        "personas": len({i.persona_id for i in items}),
        "labels_per_item": {"min": min(per_item, default=0), "max": max(per_item, default=0),
                            "mean": _num(float(np.mean(per_item))) if per_item else None},
        "majority": {label: sum(1 for i in items if i.majority == label) for label in ("original", "revision", "tie")}
        | {"split": sum(1 for i in items if i.majority is None)},
        "human_vs_human": human_vs_human(items),
    }
    by_variant: dict[str, list[Judgment]] = {}
    for j in judgments:
        by_variant.setdefault(j.variant, []).append(j)
    report["human_vs_judge"] = {
        variant: {**kappa_vs_majority(js, items, ci=ci, n_boot=n_boot, seed=seed),
                  "judge_model": js[0].judge_model, "program_hash": js[0].program_hash}
        for variant, js in sorted(by_variant.items())}
    return report
