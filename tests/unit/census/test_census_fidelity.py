"""Fidelity of sampled personas to the weighted six-state ACS population (PERSONA's population histograms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from persona_gen.census import CENSUS_KEYS, DERIVED_KEYS, CensusSource, fidelity_report, write_fidelity
from persona_gen.census.fidelity import coarsen

SIZE = 100_000
REFERENCE_DRAWS = 20


@pytest.fixture(scope="module")
def sample(six_states: CensusSource) -> pd.DataFrame:
    return six_states.sample(SIZE, seed=2024)


@pytest.fixture(scope="module")
def report(sample: pd.DataFrame, six_states: CensusSource) -> dict[str, Any]:
    return fidelity_report(sample, six_states, reference_draws=REFERENCE_DRAWS)


def _noise_bound(item: dict[str, Any]) -> float:
    # An exact sampler's TVD has the same distribution as an ideal draw's, so the noise sets the floor. On a
    # 2x2 table the TVD is nearly half-normal (sd ~ 0.75 x mean): 1.5x the ideal mean alone is crossed by 2-22 of
    # the 276 pairs of an exact sampler, depending on the seed. Four ideal sds (from 20 draws) on top keep that
    # below ~1e-3 a pair, while a sample with its joint structure broken crosses the bound on most pairs.
    return 1.5 * item["reference_tvd"] + 4 * item["reference_tvd_sd"]


def test_fidelity_one_way_tvd_below_one_percent(report: dict[str, Any]) -> None:
    assert set(report["attributes"]) == set(CENSUS_KEYS)
    worst = max(report["one_way"].items(), key=lambda kv: kv[1]["tvd"])
    assert report["one_way_max_tvd"] <= 0.01, worst


def test_fidelity_two_way_tvd_within_noise_of_ideal_draw(report: dict[str, Any]) -> None:
    assert len(report["two_way"]) == len(CENSUS_KEYS) * (len(CENSUS_KEYS) - 1) // 2
    over = [(item["pair"], item["tvd"], _noise_bound(item)) for item in report["two_way"]
            if item["tvd"] > _noise_bound(item)]
    assert over == []


def test_fidelity_two_way_tvd_matches_ideal_on_average(report: dict[str, Any]) -> None:
    ratios = [item["tvd"] / item["reference_tvd"] for item in report["two_way"]]
    assert 0.8 < float(np.mean(ratios)) < 1.2


def test_fidelity_catches_broken_joint_structure(sample: pd.DataFrame, six_states: CensusSource,
                                                 report: dict[str, Any]) -> None:
    # Shuffling each column on its own keeps every marginal but breaks the joint: the 2-way check must see it.
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame({key: sample[key].to_numpy()[rng.permutation(SIZE)] for key in CENSUS_KEYS})
    broken = fidelity_report(shuffled, six_states, reference_draws=0)
    bounds = {tuple(item["pair"]): _noise_bound(item) for item in report["two_way"]}
    assert broken["one_way_max_tvd"] <= 0.01
    assert sum(item["tvd"] > bounds[tuple(item["pair"])] for item in broken["two_way"]) > 100


def test_fidelity_unemployed_share_matches_census(sample: pd.DataFrame, six_states: CensusSource) -> None:
    # PERSONA's first release had 13.3% unemployed personas against 2.2% in the ACS: check ours is the census'.
    unemployed = (six_states.pool["employment status"] == "Unemployed").to_numpy()
    census_share = six_states.weights[unemployed].sum() / six_states.weights.sum()
    sample_share = (sample["employment status"] == "Unemployed").mean()
    assert abs(sample_share - census_share) <= 4 * np.sqrt(census_share * (1 - census_share) / SIZE)
    assert 0.01 < census_share < 0.04


def test_fidelity_marks_derived_attributes(report: dict[str, Any]) -> None:
    assert set(report["derived_attributes"]) == set(DERIVED_KEYS)
    assert all(report["one_way"][key]["derived"] for key in DERIVED_KEYS)


def test_fidelity_coarsens_to_thirty_groups(report: dict[str, Any]) -> None:
    assert max(len(entry["groups"]) for entry in report["one_way"].values()) <= 30
    assert "MGR" in report["one_way"]["occupation category"]["groups"]
    assert "25 to 34 years" in report["one_way"]["age"]["groups"]


def test_fidelity_counts_rare_combinations(report: dict[str, Any]) -> None:
    k_anonymity = report["k_anonymity"]
    assert k_anonymity["k"] == 5
    assert 0 < k_anonymity["sample_personas_below_k"] <= SIZE
    assert k_anonymity["source_combinations_below_k"] <= k_anonymity["source_combinations"]


def test_coarsen_keeps_largest_groups_and_other() -> None:
    labels = [f"label {i}" for i in range(40)]
    mapping = coarsen("ancestry", labels, np.arange(40, 0, -1), max_categories=30)
    assert len(set(mapping.values())) == 30 and mapping["label 0"] == "label 0" and mapping["label 39"] == "Other"


def test_coarsen_bands_income() -> None:
    mapping = coarsen("income", ["-500", "0", "62000", "Not applicable (less than 15 years old)"], [1, 1, 1, 1])
    assert list(mapping.values()) == ["Loss", "None", "$50,000 to $74,999", "Not applicable (less than 15 years old)"]


def test_write_fidelity_writes_json_and_png(demo: CensusSource, tmp_path: Path) -> None:
    small = fidelity_report(demo.sample(2000, seed=1), demo, reference_draws=2)
    paths = write_fidelity(small, tmp_path / "fidelity")
    assert json.loads(paths["json"].read_text())["sample_size"] == 2000
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in paths["json"].parent.iterdir()) == ["fidelity.json", "fidelity.png"]
