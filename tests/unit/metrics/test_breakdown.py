"""Demographic breakdowns and intersectional filters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from persona_gen.metrics import MetricError, breakdown, cohen_kappa, filter_intersection


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame({
        "sex": ["Female", "Male", "Female", "Female", "Male", None],
        "age": [70, 70, 30, 65, 20, 80],
        "race": ["Asian", "White", "Black", "White", "Asian", "White"],
        "correct": [True, False, True, False, True, True],
        "human": ["A", "B", "A", "B", "A", "A"],
        "model": ["A", "B", "B", "B", "A", "A"],
    })


def test_filter_intersection_combines_equality_and_operator_conditions(people: pd.DataFrame) -> None:
    assert filter_intersection(people, {"sex": "Female", "age": (">=", 65)}).index.tolist() == [0, 3]


def test_filter_intersection_treats_a_list_as_membership(people: pd.DataFrame) -> None:
    assert filter_intersection(people, {"race": ["Asian", "Black"]}).index.tolist() == [0, 2, 4]


def test_filter_intersection_supports_not_in(people: pd.DataFrame) -> None:
    assert filter_intersection(people, {"race": ("not in", ["White"])}).index.tolist() == [0, 2, 4]


def test_filter_intersection_supports_a_callable(people: pd.DataFrame) -> None:
    assert filter_intersection(people, {"age": lambda s: s < 40}).index.tolist() == [2, 4]


def test_filter_intersection_missing_value_fails_equality_but_passes_not_equal(people: pd.DataFrame) -> None:
    assert 5 not in filter_intersection(people, {"sex": "Female"}).index
    assert 5 in filter_intersection(people, {"sex": ("!=", "Female")}).index


def test_filter_intersection_with_no_conditions_keeps_every_row(people: pd.DataFrame) -> None:
    assert len(filter_intersection(people, {})) == len(people)


def test_filter_intersection_rejects_an_unknown_column(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"condition column 'gender' must be a column of df.*use one of \['sex'"):
        filter_intersection(people, {"gender": "Female"})


def test_filter_intersection_rejects_a_tuple_without_an_operator(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"condition on 'race' must be \(op, value\).*use a list, not a tuple"):
        filter_intersection(people, {"race": ("Asian", "Black")})


def test_filter_intersection_rejects_a_scalar_for_membership(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"membership condition on 'race' must be a collection of values"):
        filter_intersection(people, {"race": ("in", "Asian")})


def test_filter_intersection_rejects_an_incomparable_value(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"condition on 'race' must be comparable with 3"):
        filter_intersection(people, {"race": (">", 3)})


def test_breakdown_accuracy_reports_size_and_wilson_interval(people: pd.DataFrame) -> None:
    result = breakdown(people, "race")
    assert result.index.tolist() == ["Asian", "Black", "White"]
    assert result["n"].tolist() == [2, 1, 3]
    assert result["value"].tolist() == pytest.approx([1.0, 1.0, 1 / 3])
    low, high = proportion_confint(1, 3, alpha=0.05, method="wilson")
    assert (result.loc["White", "ci_low"], result.loc["White", "ci_high"]) == pytest.approx((low, high), abs=1e-9)


def test_breakdown_kappa_equals_cohen_kappa_per_group(people: pd.DataFrame) -> None:
    result = breakdown(people, "race", metric="kappa", pair=("human", "model"))
    white = people[people["race"] == "White"]
    expected = cohen_kappa(white["human"].tolist(), white["model"].tolist())
    assert result.loc["White", "value"] == pytest.approx(expected.kappa)
    assert result.loc["White", "ci_low"] == pytest.approx(expected.ci_low)


def test_breakdown_groups_on_several_attributes(people: pd.DataFrame) -> None:
    result = breakdown(people, ["sex", "race"])
    assert ("Female", "White") in result.index
    assert result["n"].sum() == 5  # the row with a missing sex is left out


def test_breakdown_keeps_missing_groups_when_asked(people: pd.DataFrame) -> None:
    assert breakdown(people, "sex", dropna=False)["n"].sum() == 6


def test_breakdown_drops_groups_below_min_size(people: pd.DataFrame) -> None:
    assert breakdown(people, "race", min_size=2).index.tolist() == ["Asian", "White"]


def test_breakdown_accepts_a_callable_metric(people: pd.DataFrame) -> None:
    result = breakdown(people, "sex", metric=lambda g: float(g["age"].mean()))
    assert result.loc["Female", "value"] == pytest.approx((70 + 30 + 65) / 3)
    assert math.isnan(result.loc["Female", "ci_low"])


def test_breakdown_rejects_a_missing_column(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"columns must be present in df, but got \['education'\] missing"):
        breakdown(people, "education")


def test_breakdown_rejects_a_non_boolean_accuracy_column(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"column 'human' must be boolean"):
        breakdown(people, "race", column="human")


def test_breakdown_rejects_an_unknown_metric(people: pd.DataFrame) -> None:
    with pytest.raises(MetricError, match=r"metric must be 'accuracy', 'kappa' or a callable, but got 'f1'"):
        breakdown(people, "race", metric="f1")  # type: ignore[arg-type]


def test_breakdown_accepts_zero_one_accuracy_column(people: pd.DataFrame) -> None:
    frame = people.assign(correct=people["correct"].astype(int))
    assert breakdown(frame, "race")["value"].tolist() == pytest.approx(breakdown(people, "race")["value"].tolist())


def test_breakdown_accuracy_values_match_groupby_mean_on_random_data() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": rng.choice(list("abcd"), 500), "correct": rng.random(500) < 0.6})
    result = breakdown(frame, "g")
    expected = frame.groupby("g")["correct"].mean()
    np.testing.assert_allclose(result["value"].to_numpy(), expected.to_numpy(), atol=1e-12)
