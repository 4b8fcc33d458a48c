"""Krippendorff's alpha: his own worked example, and a brute-force pairwise definition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from persona_gen.metrics import MetricError, krippendorff_alpha

NAN = math.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12
# units with missing values.
RELIABILITY_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def test_krippendorff_alpha_nominal_matches_hand_computation() -> None:
    # By hand. Unit 12 has one value and is not pairable, so n = 3 + 8 * 4 + 3 + 2 = 40 values.
    # Observed disagreement, ordered pairs of unequal values over (m_u - 1), per unit:
    #   unit 2 {2,2,2,3}: 6/3 = 2;  unit 6 {1,2,3,4}: 12/3 = 4;  unit 8 {1,1,1,2}: 6/3 = 2;  others 0.
    #   D_o = (2 + 4 + 2) / 40 = 0.2
    # Value totals: n_1 = 9, n_2 = 13, n_3 = 10, n_4 = 5, n_5 = 3 (sum 40), so the ordered pairs of
    # unequal values number 40^2 - (81 + 169 + 100 + 25 + 9) = 1216 and D_e = 1216 / (40 * 39).
    #   alpha = 1 - D_o / D_e = 1 - 0.2 * 1560 / 1216 = 1 - 312 / 1216 = 113 / 152 = 0.743421...
    # Krippendorff reports 0.743.
    assert krippendorff_alpha(RELIABILITY_DATA, level="nominal") == pytest.approx(113 / 152, abs=1e-12)


@pytest.mark.parametrize(("level", "published"), [("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_alpha_matches_published_values_at_other_levels(level: str, published: float) -> None:
    assert krippendorff_alpha(RELIABILITY_DATA, level=level) == pytest.approx(published, abs=5e-4)  # type: ignore[arg-type]


def _brute_force_alpha(ratings: np.ndarray, level: str) -> float:
    """Alpha from its pairwise definition: 1 - D_o / D_e over ordered pairs of pairable values."""
    units = [[v for v in ratings[:, u] if not math.isnan(v)] for u in range(ratings.shape[1])]
    units = [u for u in units if len(u) >= 2]
    pooled = [v for u in units for v in u]
    n = len(pooled)
    counts = {v: pooled.count(v) for v in set(pooled)}

    def delta(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        if level == "ratio":
            return 0.0 if c + k == 0 else ((c - k) / (c + k)) ** 2
        lo, hi = min(c, k), max(c, k)  # ordinal
        return (sum(m for g, m in counts.items() if lo <= g <= hi) - (counts[c] + counts[k]) / 2) ** 2

    d_o = sum(sum(delta(a, b) for a, b in itertools.permutations(u, 2)) / (len(u) - 1) for u in units) / n
    d_e = sum(delta(a, b) for a, b in itertools.permutations(pooled, 2)) / (n * (n - 1))
    return 1 - d_o / d_e


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize(("n_raters", "n_units"), [(2, 5), (3, 12), (5, 20)])
def test_krippendorff_alpha_equals_brute_force_definition(level: str, n_raters: int, n_units: int) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        truth = rng.integers(1, 5, n_units)
        ratings = np.where(rng.random((n_raters, n_units)) < 0.7, truth, rng.integers(1, 5, (n_raters, n_units)))
        ratings = np.where(rng.random((n_raters, n_units)) < 0.2, np.nan, ratings.astype(float))
        expected = _brute_force_alpha(ratings, level)
        assert krippendorff_alpha(ratings, level=level) == pytest.approx(expected, abs=1e-9)  # type: ignore[arg-type]


def test_krippendorff_alpha_accepts_string_labels_and_none() -> None:
    as_text = [[None if math.isnan(v) else f"v{int(v)}" for v in row] for row in RELIABILITY_DATA]
    assert krippendorff_alpha(as_text) == pytest.approx(113 / 152, abs=1e-12)


def test_krippendorff_alpha_accepts_a_dataframe() -> None:
    assert krippendorff_alpha(pd.DataFrame(RELIABILITY_DATA)) == pytest.approx(113 / 152, abs=1e-12)


def test_krippendorff_alpha_is_one_on_perfect_agreement() -> None:
    assert krippendorff_alpha([[1, 2, 3, None], [1, 2, 3, 3]]) == 1.0


def test_krippendorff_alpha_is_nan_when_every_value_is_the_same() -> None:
    assert math.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]]))


def test_krippendorff_alpha_rejects_unknown_level() -> None:
    with pytest.raises(MetricError, match=r"level must be one of 'nominal', .* but got 'cardinal'"):
        krippendorff_alpha(RELIABILITY_DATA, level="cardinal")  # type: ignore[arg-type]


def test_krippendorff_alpha_rejects_data_without_pairable_units() -> None:
    with pytest.raises(MetricError, match=r"at least one unit rated by two or more raters, but got no pairable unit"):
        krippendorff_alpha([[1, None], [None, 2]])


def test_krippendorff_alpha_rejects_all_missing_ratings() -> None:
    with pytest.raises(MetricError, match=r"ratings must be non-empty"):
        krippendorff_alpha([[None, None], [None, None]])


def test_krippendorff_alpha_rejects_empty_input() -> None:
    with pytest.raises(MetricError, match=r"ratings must be a non-empty raters x units table"):
        krippendorff_alpha([])


def test_krippendorff_alpha_rejects_text_at_interval_level() -> None:
    with pytest.raises(MetricError, match=r"ratings must be numeric at level 'interval'.*level='nominal'"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], level="interval")


def test_krippendorff_alpha_rejects_negative_values_at_ratio_level() -> None:
    with pytest.raises(MetricError, match=r"ratings must be non-negative at level 'ratio'"):
        krippendorff_alpha([[-1, 2], [-1, 3]], level="ratio")
