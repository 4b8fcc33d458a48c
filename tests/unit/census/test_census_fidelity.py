"""Fidelity of sampled personas to the weighted six-state ACS population (PERSONA's population histograms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from persona_gen.census import CENSUS_KEYS, DERIVED_KEYS, CensusSource, fidelity_report, write_fidelity
from persona_gen.census.fidelity import coarsen, population_statement, run_fidelity
from persona_gen.core.errors import CensusError

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


# ----------------------------------------------------------------------------------------------- target population


def test_population_statement_follows_where(six_states: CensusSource) -> None:
    everyone = population_statement(six_states)
    adults = population_statement(six_states, where="age >= 18")
    hawaii = population_statement(six_states, where="state in ['Hawaii']")
    assert everyone["minors_included"] and 0.15 < everyone["minor_share"] < 0.3
    assert not adults["minors_included"] and adults["minor_share"] == 0
    assert "minors (under 18): not included" in adults["text"] and "filter: age >= 18" in adults["text"]
    assert len(everyone["states"]) == 6 and hawaii["states"] == ["Hawaii"]
    assert adults["population"] < everyone["population"] and adults["records"] < everyone["records"]


def test_target_weights_scale_strata_to_their_quota_shares(six_states: CensusSource) -> None:
    quotas = {"sex": {"Male": 0.3, "Female": 0.7}}
    weights = six_states.target_weights("age >= 18", quotas)
    male = (six_states.pool["sex"] == "Male").to_numpy()
    adult = (six_states.pool["age"] >= 18).to_numpy()
    assert weights[~adult].sum() == 0
    assert weights[male].sum() / weights.sum() == pytest.approx(0.3)
    # Within a stratum the PWGTP proportions are kept.
    ratio = weights[male & adult] / six_states.weights[male & adult]
    assert np.allclose(ratio, ratio[0])


def test_run_fidelity_reports_the_filtered_population_not_the_source(six_states: CensusSource,
                                                                     tmp_path: Path) -> None:
    everyone = run_fidelity(six_states, seed=1, sample_size=3000, out_dir=tmp_path / "all")
    adults = run_fidelity(six_states, where="age >= 18", seed=1, sample_size=3000, out_dir=tmp_path / "adults")
    groups = adults["report"]["one_way"]["age"]["groups"]
    shares = dict(zip(groups, adults["report"]["one_way"]["age"]["census"], strict=True))
    assert shares.get("0 to 4 years", 0) == 0 and shares.get("5 to 17 years", 0) == 0
    assert adults["report"]["one_way"]["age"]["tvd"] < 0.05  # the draw honours the filter it is compared with
    assert adults["population"]["minors_included"] is False and everyone["population"]["minors_included"] is True
    png = [Path(r["paths"]["png"]).read_bytes() for r in (everyone, adults)]
    assert png[0] != png[1]
    written = json.loads(Path(adults["paths"]["json"]).read_text())
    assert written["report"]["where"] == "age >= 18" and written["population"]["where"] == "age >= 18"


def test_run_fidelity_reports_published_personas_with_their_size(six_states: CensusSource, tmp_path: Path) -> None:
    # Published personas as the pipeline holds them: attribute text (age "34"); here a filter that kept only men.
    drawn = six_states.sample(400, seed=5, where="age >= 18")
    published = [{key: str(row[key]) for key in CENSUS_KEYS} for row in drawn.to_dict(orient="records")
                 if row["sex"] == "Male"]
    result = run_fidelity(six_states, where="age >= 18", seed=2, sample_size=2000, published=published,
                          out_dir=tmp_path)
    report = result["published"]
    assert report["sample_size"] == len(published) and report["label"] == "published personas"
    # Ages compare as numbers: the published ages fall in the adult bands, none in "Other".
    age = dict(zip(report["one_way"]["age"]["groups"], report["one_way"]["age"]["sample"], strict=True))
    assert age.get("Other", 0) == 0 and sum(age.values()) == pytest.approx(1.0)
    # The selection on sex shows: the published sample is far from the population on sex, the target draw is not.
    assert report["one_way"]["sex"]["tvd"] > 0.4 > result["report"]["one_way"]["sex"]["tvd"]


def test_run_fidelity_rejects_a_where_that_matches_nobody(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match="where expression matches no person record"):
        run_fidelity(demo, where="age > 200", sample_size=10)


def test_card_states_the_population_and_the_joints(six_states: CensusSource) -> None:
    from persona_gen.enrich.psychodemographics import describe_joints
    from persona_gen.publish.card import render_card

    context = {"census": {"population": population_statement(six_states, where="age >= 18"),
                          "psychodemographics": describe_joints()}}
    text = render_card({"personas": {"train": 3}}, context)
    section = text[text.index("## Population"):text.index("## Census fidelity")]
    assert "age >= 18" in section and "| minors (under 18) | not included |" in section
    assert "New Mexico (3" in section and "party_religion_gss.csv" in section
    everyone = render_card({"personas": {"train": 3}}, {"census": {"population": population_statement(six_states)}})
    assert "| minors (under 18) | included, " in everyone


def test_population_statement_gives_each_states_weighted_share(six_states: CensusSource) -> None:
    statement = population_statement(six_states)
    shares = statement["state_shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    new_mexico = six_states.weights[(six_states.pool["state"] == "New Mexico").to_numpy()].sum() / six_states.population
    assert shares["New Mexico"] == pytest.approx(new_mexico, abs=1e-6) and 0.3 < new_mexico < 0.35
    assert statement["states_text"].startswith("New Mexico (32.")
