"""Cohen's and Fleiss' kappa against scikit-learn and statsmodels."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score as sk_cohen_kappa
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from persona_gen.core.errors import PersonaGenError
from persona_gen.metrics import KappaResult, MetricError, cohen_kappa, cohen_kappa_score, confusion_table, fleiss_kappa

SIZES = [1, 2, 7, 50, 400]
N_CLASSES = [1, 2, 3, 6]


def _pairs(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated raters: b copies a with probability 0.6, else draws at random."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
    return a, b


def _sklearn(a: object, b: object) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning on the degenerate inputs
        return float(sk_cohen_kappa(a, b))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("k", N_CLASSES)
def test_cohen_kappa_equals_sklearn_on_random_inputs(n: int, k: int) -> None:
    for seed in range(10):
        a, b = _pairs(seed, n, k)
        expected = _sklearn(a, b)
        got = cohen_kappa(a.tolist(), b.tolist()).kappa
        assert got == pytest.approx(expected, abs=1e-9, nan_ok=True)


@pytest.mark.parametrize("n", [5, 50, 400])
@pytest.mark.parametrize("k", [2, 3, 6])
def test_cohen_kappa_interval_equals_statsmodels(n: int, k: int) -> None:
    for seed in range(10):
        a, b = _pairs(seed, n, k)
        table, _ = confusion_table(a.tolist(), b.tolist())
        with np.errstate(all="ignore"):
            ref = sm_cohens_kappa(table)
        got = cohen_kappa(a.tolist(), b.tolist())
        if math.isnan(got.kappa):
            continue
        assert got.se == pytest.approx(ref.std_kappa, abs=1e-9)
        assert got.ci_low == pytest.approx(ref.kappa_low, abs=1e-9)
        assert got.ci_high == pytest.approx(ref.kappa_upp, abs=1e-9)


def test_cohen_kappa_score_equals_sklearn_on_string_labels() -> None:
    a = ["negative", "positive", "negative", "neutral", "positive"]
    b = ["negative", "positive", "negative", "neutral", "negative"]
    assert cohen_kappa_score(a, b) == pytest.approx(sk_cohen_kappa(a, b), abs=1e-12)  # 0.6875


def test_cohen_kappa_is_nan_when_both_raters_use_one_label() -> None:
    # Observed and chance agreement are both 1: 0/0. scikit-learn >= 1.9 returns NaN too.
    assert math.isnan(_sklearn(["A"] * 4, ["A"] * 4))
    result = cohen_kappa(["A"] * 4, ["A"] * 4)
    assert math.isnan(result.kappa) and math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_cohen_kappa_undefined_value_is_configurable() -> None:
    assert cohen_kappa_score(["A"] * 4, ["A"] * 4, undefined=1.0) == 1.0


def test_cohen_kappa_is_zero_when_constant_raters_disagree() -> None:
    assert _sklearn(["A"] * 4, ["B"] * 4) == 0.0
    assert cohen_kappa(["A"] * 4, ["B"] * 4).kappa == 0.0


def test_cohen_kappa_is_one_when_raters_agree_on_two_labels() -> None:
    result = cohen_kappa(["A", "B", "A", "B"], ["A", "B", "A", "B"])
    assert (result.kappa, result.ci_low, result.ci_high) == pytest.approx((1.0, 1.0, 1.0))


def test_cohen_kappa_float_is_the_kappa() -> None:
    result = cohen_kappa([0, 1, 1, 0, 1], [0, 1, 0, 0, 1])
    assert isinstance(result, KappaResult)
    assert float(result) == result.kappa


def test_cohen_kappa_ci_level_scales_the_half_width() -> None:
    a, b = _pairs(3, 200, 3)
    r90 = cohen_kappa(a.tolist(), b.tolist(), ci=0.90)
    r95 = cohen_kappa(a.tolist(), b.tolist(), ci=0.95)
    ratio = (r90.ci_high - r90.kappa) / (r95.ci_high - r95.kappa)
    assert ratio == pytest.approx(stats.norm.isf(0.05) / stats.norm.isf(0.025), abs=1e-12)


def test_cohen_kappa_bootstrap_is_reproducible_with_a_seed() -> None:
    a, b = _pairs(1, 80, 3)
    first = cohen_kappa(a.tolist(), b.tolist(), method="bootstrap", n_boot=500, seed=7)
    second = cohen_kappa(a.tolist(), b.tolist(), method="bootstrap", n_boot=500, seed=7)
    assert first == second
    assert first.ci_low < first.kappa < first.ci_high


def test_cohen_kappa_bootstrap_interval_is_close_to_asymptotic_on_large_samples() -> None:
    a, b = _pairs(2, 2000, 3)
    boot = cohen_kappa(a.tolist(), b.tolist(), method="bootstrap", n_boot=2000, seed=0)
    asym = cohen_kappa(a.tolist(), b.tolist())
    assert boot.se == pytest.approx(asym.se, rel=0.1)


def test_cohen_kappa_accepts_a_superset_of_labels() -> None:
    a, b = ["x", "y", "x", "x"], ["x", "y", "y", "x"]
    assert cohen_kappa(a, b, labels=["z", "y", "x"]).kappa == pytest.approx(_sklearn(a, b), abs=1e-12)


def test_cohen_kappa_rejects_labels_outside_the_label_set() -> None:
    with pytest.raises(MetricError, match=r"labels must be a superset .* \['y'\] missing.*add them to labels"):
        cohen_kappa(["x", "y"], ["x", "x"], labels=["x"])


def test_cohen_kappa_rejects_mismatched_lengths() -> None:
    expected = r"a and b must be of the same length .* len\(a\)=3, len\(b\)=2 \(cohen_kappa\); align"
    with pytest.raises(MetricError, match=expected):
        cohen_kappa([1, 2, 3], [1, 2])


def test_cohen_kappa_rejects_empty_input() -> None:
    with pytest.raises(MetricError, match=r"a must be non-empty, but got 0 items \(cohen_kappa\); pass at least one"):
        cohen_kappa([], [])


def test_cohen_kappa_rejects_missing_labels() -> None:
    with pytest.raises(MetricError, match=r"b must be free of missing labels .* 1 missing at positions \[1\]"):
        cohen_kappa(["A", "B"], ["A", None])


def test_cohen_kappa_rejects_a_string_as_labels() -> None:
    with pytest.raises(MetricError, match=r"a must be a sequence of labels .* but got str"):
        cohen_kappa("AB", ["A", "B"])


def test_cohen_kappa_rejects_ci_outside_unit_interval() -> None:
    with pytest.raises(MetricError, match=r"ci must be a confidence level in \(0, 1\), but got 95"):
        cohen_kappa([1, 2], [1, 2], ci=95)


def test_cohen_kappa_rejects_unknown_method() -> None:
    with pytest.raises(MetricError, match=r"method must be 'asymptotic' or 'bootstrap', but got 'exact'"):
        cohen_kappa([1, 2], [1, 2], method="exact")  # type: ignore[arg-type]


def test_metric_error_is_a_persona_gen_error_and_a_value_error() -> None:
    assert issubclass(MetricError, PersonaGenError) and issubclass(MetricError, ValueError)


def _random_table(seed: int, n_subjects: int, n_categories: int, n_raters: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Skewed category shares so some tables have empty categories.
    shares = rng.dirichlet(np.full(n_categories, 0.7))
    return np.stack([rng.multinomial(n_raters, shares) for _ in range(n_subjects)])


@pytest.mark.parametrize("shape", [(1, 2, 2), (5, 2, 3), (20, 3, 4), (100, 5, 7), (300, 4, 2)])
@pytest.mark.parametrize("method", ["fleiss", "randolph"])
def test_fleiss_kappa_equals_statsmodels_on_random_tables(shape: tuple[int, int, int], method: str) -> None:
    for seed in range(10):
        table = _random_table(seed, *shape)
        with np.errstate(all="ignore"):
            expected = sm_fleiss_kappa(table, method=method)
        got = fleiss_kappa(table, method=method)  # type: ignore[arg-type]
        assert got == pytest.approx(expected, abs=1e-9, nan_ok=True)


def test_fleiss_kappa_matches_fleiss_1971_example() -> None:
    # Wikipedia's worked example (10 subjects, 14 raters, 5 categories): kappa = 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_is_nan_when_every_rating_is_one_category() -> None:
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))


def test_fleiss_kappa_is_one_on_unanimous_subjects_across_categories() -> None:
    assert fleiss_kappa([[3, 0], [0, 3]]) == pytest.approx(1.0)


def test_fleiss_kappa_rejects_unequal_rater_counts() -> None:
    with pytest.raises(MetricError, match=r"table row sums must be equal and >= 2 .* but got row sums from 2 to 3"):
        fleiss_kappa([[1, 1], [2, 1]])


def test_fleiss_kappa_rejects_negative_counts() -> None:
    with pytest.raises(MetricError, match=r"table must be non-negative counts"):
        fleiss_kappa([[3, -1], [1, 1]])


def test_fleiss_kappa_rejects_a_one_dimensional_table() -> None:
    with pytest.raises(MetricError, match=r"table must be 2-D \(subjects x categories\), but got shape \(3,\)"):
        fleiss_kappa([1, 2, 3])


def test_fleiss_kappa_rejects_an_empty_table() -> None:
    with pytest.raises(MetricError, match=r"table must be non-empty"):
        fleiss_kappa(np.zeros((0, 3)))
