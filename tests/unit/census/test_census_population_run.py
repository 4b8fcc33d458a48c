"""A run states its population: the fidelity plot, the card and the manifest follow ``sampler.where``."""

from __future__ import annotations

import json

import pytest

from persona_gen.pipeline import run
from tests.helpers import compose_run

FAKE = ["model@models.generator=fake", "model@models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("population")
    everyone = run(compose_run(root / "all", root / "cache", FAKE))
    adults = run(compose_run(root / "adults", root / "cache", [*FAKE, "sampler.where='age >= 18'"]))
    return everyone, adults


def test_fidelity_plot_changes_with_where(runs) -> None:
    adults = runs[1]
    plots = [next(p for p in r.plots if p.name == "population_vs_census.png").read_bytes() for r in runs]
    assert plots[0] != plots[1]
    report = json.loads((adults.output_dir / "fidelity" / "fidelity.json").read_text())
    age = dict(zip(report["report"]["one_way"]["age"]["groups"], report["report"]["one_way"]["age"]["census"],
                   strict=True))
    assert age.get("0 to 4 years", 0) == 0 and age.get("5 to 17 years", 0) == 0
    assert report["published"]["sample_size"] == adults.manifest["fidelity"]["published_personas"] >= 1


def test_card_states_the_population_and_the_filter(runs) -> None:
    cards = [r.card_path.read_text(encoding="utf-8") for r in runs]
    assert "## Population" in cards[0] and "## Population" in cards[1]
    assert "| filter (`sampler.where`) | age >= 18 |" in cards[1] and "| minors (under 18) | not included |" in cards[1]
    assert "| minors (under 18) | included, " in cards[0]
    assert "party_religion_gss.csv" in cards[1]


def test_manifest_states_the_population(runs) -> None:
    _, adults = runs
    manifest = json.loads(adults.manifest_path.read_text())
    assert manifest["population"]["where"] == "age >= 18" and manifest["population"]["minors_included"] is False
    assert manifest["fidelity"]["published_personas"] >= 1
    assert manifest["fidelity"]["worst_published_reference_tvd"] is not None
