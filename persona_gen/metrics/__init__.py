"""Metrics of persona_gen: kappa, agreement, fidelity, pass@k. Pure functions, no LM, no I/O."""

from __future__ import annotations

from persona_gen.metrics.agreement import (
    agreement_matrix,
    kappa_histogram_data,
    kappa_pairs,
    leave_one_out_majority,
    loo_attribute_influence,
)
from persona_gen.metrics.alpha import krippendorff_alpha
from persona_gen.metrics.breakdown import breakdown, filter_intersection
from persona_gen.metrics.errors import MetricError
from persona_gen.metrics.fidelity import summary_key_drops
from persona_gen.metrics.kappa import KappaResult, cohen_kappa, cohen_kappa_score, confusion_table, fleiss_kappa
from persona_gen.metrics.pass_at_k import pass_at_k, pass_at_k_curve
from persona_gen.metrics.rates import (
    AccuracyResult,
    RateResult,
    accuracy_with_std,
    order_consistency,
    position_bias,
    rate_with_ci,
)

__all__ = [
    "AccuracyResult",
    "KappaResult",
    "MetricError",
    "RateResult",
    "accuracy_with_std",
    "agreement_matrix",
    "breakdown",
    "cohen_kappa",
    "cohen_kappa_score",
    "confusion_table",
    "filter_intersection",
    "fleiss_kappa",
    "kappa_histogram_data",
    "kappa_pairs",
    "krippendorff_alpha",
    "leave_one_out_majority",
    "loo_attribute_influence",
    "order_consistency",
    "pass_at_k",
    "pass_at_k_curve",
    "position_bias",
    "rate_with_ci",
    "summary_key_drops",
]
