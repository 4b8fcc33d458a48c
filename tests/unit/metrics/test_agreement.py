"""Kappa matrices, the leave-one-out human baseline and leave-one-out attribute influence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score as sk_cohen_kappa

from persona_gen.metrics import (
    MetricError,
    agreement_matrix,
    kappa_histogram_data,
    kappa_pairs,
    leave_one_out_majority,
    loo_attribute_influence,
)


def _raters(seed: int, n_raters: int, n_items: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["A", "B", "tie"], n_items)
    return {f"r{i}": np.where(rng.random(n_items) < 0.7, truth, rng.choice(["A", "B", "tie"], n_items)).tolist()
            for i in range(n_raters)}


def test_agreement_matrix_equals_sklearn_pairwise() -> None:
    ratings = _raters(0, 4, 60)
    matrix = agreement_matrix(ratings)
    for a in ratings:
        for b in ratings:
            assert matrix.loc[a, b] == pytest.approx(sk_cohen_kappa(ratings[a], ratings[b]), abs=1e-9)


def test_agreement_matrix_keeps_rater_order_and_is_symmetric() -> None:
    ratings = _raters(1, 3, 30)
    matrix = agreement_matrix({"z": ratings["r0"], "a": ratings["r1"], "m": ratings["r2"]})
    assert list(matrix.index) == list(matrix.columns) == ["z", "a", "m"]
    np.testing.assert_array_equal(matrix.to_numpy(), matrix.to_numpy().T)


def test_agreement_matrix_scores_each_pair_on_items_both_judged() -> None:
    ratings: dict[str, list[str | float | None]] = {
        "h1": ["A", "B", None, "A", "B"],
        "h2": ["A", "B", "A", math.nan, "A"],
    }
    expected = sk_cohen_kappa(["A", "B", "B"], ["A", "B", "A"])
    assert agreement_matrix(ratings).loc["h1", "h2"] == pytest.approx(expected, abs=1e-12)


def test_agreement_matrix_diagonal_is_nan_for_a_single_label_rater() -> None:
    matrix = agreement_matrix({"const": ["A", "A", "A"], "varied": ["A", "B", "A"]})
    assert math.isnan(matrix.loc["const", "const"])
    assert matrix.loc["varied", "varied"] == 1.0


def test_agreement_matrix_is_nan_below_min_overlap() -> None:
    ratings = {"h1": ["A", "B", None, None], "h2": [None, "B", "A", "B"]}
    assert math.isnan(agreement_matrix(ratings, min_overlap=2).loc["h1", "h2"])


def test_agreement_matrix_rejects_mismatched_lengths() -> None:
    with pytest.raises(MetricError, match=r"h1 and gpt must be of the same length .* len\(h1\)=2, len\(gpt\)=3"):
        agreement_matrix({"h1": ["A", "B"], "gpt": ["A", "B", "A"]})


def test_agreement_matrix_rejects_no_raters() -> None:
    with pytest.raises(MetricError, match=r"ratings must be non-empty .* but got no raters .*pass at least one rater"):
        agreement_matrix({})


def test_agreement_matrix_rejects_raters_without_items() -> None:
    with pytest.raises(MetricError, match=r"each rater's labels must be non-empty"):
        agreement_matrix({"h1": [], "h2": []})


def test_kappa_pairs_lists_each_unordered_pair_once() -> None:
    pairs = kappa_pairs(agreement_matrix(_raters(2, 4, 40)))
    assert len(pairs) == 6
    assert list(pairs.columns) == ["rater_a", "rater_b", "kappa"]
    assert (pairs["rater_a"] != pairs["rater_b"]).all()


def test_kappa_pairs_rejects_a_non_square_matrix() -> None:
    with pytest.raises(MetricError, match=r"matrix must be a square DataFrame"):
        kappa_pairs(pd.DataFrame(np.zeros((2, 3))))


def test_kappa_histogram_data_counts_every_defined_pair() -> None:
    hist = kappa_histogram_data(agreement_matrix(_raters(3, 5, 40)), bins=10)
    assert len(hist) == 10 and hist["count"].sum() == 10
    assert hist["bin_left"].iloc[0] == -1.0 and hist["bin_right"].iloc[-1] == 1.0


def test_leave_one_out_majority_scores_each_rater_against_the_others() -> None:
    ratings = {
        "h1": ["A", "B", "A", "B", "A"],
        "h2": ["A", "B", "A", "B", "B"],
        "h3": ["A", "B", "B", "B", "B"],
    }
    result = leave_one_out_majority(ratings)
    # h3 against the majority of h1 and h2: items 0, 1, 3 agree; items 2 (A, A -> A) and 4 (A/B tie) differ.
    # The tie on item 4 is dropped, so h3 is scored on 4 items: [A, B, B, B] vs [A, B, A, B].
    assert result.loc["h3", "kappa"] == pytest.approx(sk_cohen_kappa(["A", "B", "B", "B"], ["A", "B", "A", "B"]))
    assert result.loc["h3", "n_items"] == 4 and result.loc["h3", "n_ties"] == 1
    assert list(result.index) == ["h1", "h2", "h3"]


def test_leave_one_out_majority_smallest_policy_breaks_ties_by_sorted_label() -> None:
    ratings = {"h1": ["B", "A", "A"], "h2": ["A", "A", "B"], "h3": ["B", "B", "A"]}
    result = leave_one_out_majority(ratings, ties="smallest")
    # h1's references: item 0 {A, B} -> A, item 1 {A, B} -> A, item 2 {B, A} -> A.
    assert result.loc["h1", "n_items"] == 3 and result.loc["h1", "n_ties"] == 3
    assert result.loc["h1", "kappa"] == pytest.approx(sk_cohen_kappa(["B", "A", "A"], ["A", "A", "A"]))


def test_leave_one_out_majority_with_two_raters_compares_them_directly() -> None:
    ratings = {"h1": ["A", "B", "A", "B"], "h2": ["A", "B", "B", "B"]}
    result = leave_one_out_majority(ratings)
    assert result.loc["h1", "kappa"] == pytest.approx(sk_cohen_kappa(ratings["h1"], ratings["h2"]))


def test_leave_one_out_majority_skips_items_the_rater_did_not_judge() -> None:
    ratings: dict[str, list[str | None]] = {"h1": ["A", None, "B"], "h2": ["A", "B", "B"], "h3": ["A", "B", "B"]}
    assert leave_one_out_majority(ratings).loc["h1", "n_items"] == 2


def test_leave_one_out_majority_rejects_a_single_rater() -> None:
    with pytest.raises(MetricError, match=r"ratings must be at least two raters, but got 1 rater"):
        leave_one_out_majority({"h1": ["A", "B"]})


def test_leave_one_out_majority_rejects_unknown_tie_policy() -> None:
    with pytest.raises(MetricError, match=r"ties must be 'drop' or 'smallest', but got 'random'"):
        leave_one_out_majority({"h1": ["A"], "h2": ["A"]}, ties="random")  # type: ignore[arg-type]


def test_loo_attribute_influence_sorts_most_influential_first() -> None:
    full = ["A", "B", "A", "B", "A", "B"]
    without = {
        "age": ["A", "B", "A", "B", "A", "B"],  # unchanged: kappa 1
        "income": ["B", "A", "B", "A", "B", "A"],  # every judgment flips: kappa -1
        "sex": ["A", "B", "A", "B", "B", "A"],
    }
    result = loo_attribute_influence(full, without)
    assert result["attribute"].tolist() == ["income", "sex", "age"]
    assert result["kappa"].tolist() == pytest.approx([-1.0, sk_cohen_kappa(full, without["sex"]), 1.0])
    assert result["agreement"].tolist() == pytest.approx([0.0, 4 / 6, 1.0])


def test_loo_attribute_influence_puts_undefined_kappa_last() -> None:
    result = loo_attribute_influence(["A", "A"], {"x": ["A", "A"], "y": ["B", "A"]})
    assert result["attribute"].tolist() == ["y", "x"]
    assert math.isnan(result["kappa"].iloc[-1])


def test_loo_attribute_influence_drops_missing_judgments_per_attribute() -> None:
    result = loo_attribute_influence(["A", "B", None], {"age": ["A", "B", "A"]})
    assert result.loc[0, "n"] == 2


def test_loo_attribute_influence_rejects_mismatched_lengths() -> None:
    with pytest.raises(MetricError, match=r"full and without\['age'\] must be of the same length"):
        loo_attribute_influence(["A", "B"], {"age": ["A"]})


def test_loo_attribute_influence_rejects_no_attributes() -> None:
    with pytest.raises(MetricError, match=r"without must be non-empty \(attribute -> judgments\)"):
        loo_attribute_influence(["A", "B"], {})
