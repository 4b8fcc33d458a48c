"""The drawn psychodemographic block keeps the survey joints: checked against the raw survey files.

1,200 personas of the six-state census source go through the enrichment stage with the fake LM, as the pipeline
runs it (household income included). Every reference below is computed here from the raw files in the shared data
folder (``distributions/``), never from the derived tables the package ships, so a wrong derivation fails.
"""

from __future__ import annotations

import json
import math
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from persona_gen.census import HOUSEHOLD_INCOME, load_source
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.core.records import CENSUS_KEYS, Persona, stable_id
from persona_gen.enrich.stage import run_enrich

stats = pytest.importorskip("scipy.stats")

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO.parent / "shared" / "data"))
NUM_PERSONAS = 1_200
SEED = 16
PARTY = ("Strong Democrat", "Not very strong Democrat", "Independent, close to Democrat", "Independent",
         "Independent, close to Republican", "Not very strong Republican", "Strong Republican")
IDEOLOGY = ("Extremely liberal", "Liberal", "Slightly liberal", "Moderate", "Slightly conservative", "Conservative",
            "Extremely conservative")
LEVELS = ("Extremely Low", "Low", "Average", "High", "Extremely High")
# GSS partyid -> the persona wording; ANES PID 0-6 in the same order.
GSS_PARTY = {"Strong democrat": PARTY[0], "Not str democrat": PARTY[1], "Ind,near dem": PARTY[2],
             "Independent": PARTY[3], "Ind,near rep": PARTY[4], "Not str republican": PARTY[5],
             "Strong republican": PARTY[6], "Other party": "Other party"}


def _raw(name: str) -> pd.DataFrame:
    path = SHARED / "distributions" / name
    if not path.is_file():
        pytest.skip(f"raw survey file {path} is absent: set PERSONA_GEN_SHARED_DATA")
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def personas(tmp_path_factory) -> pd.DataFrame:
    if not (SHARED / "pums" / "csv_phi.zip").is_file():
        pytest.skip("six-state PUMS files are absent: set PERSONA_GEN_SHARED_DATA")
    source = load_source(REPO / "conf" / "sampler" / "census_six_states.yaml")
    frame = source.sample(NUM_PERSONAS * 2, seed=SEED)
    candidates = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        rid = str(row["source_record_id"])
        attributes = {k: str(row[k]) for k in CENSUS_KEYS} | {HOUSEHOLD_INCOME: str(row[HOUSEHOLD_INCOME])}
        candidates.append(Persona(persona_id=stable_id("p", SEED, i, rid), attributes=attributes,
                                  source_record_id=rid, provenance={"census": source.name}))
    path = resources.files("persona_gen.conf").joinpath("stage", "enrich", "default.yaml")
    cfg = OmegaConf.create(path.read_text(encoding="utf-8"))
    client = build_lm(OmegaConf.create({"kind": "fake", "name": "fake-v1", "temperature": 0.0, "max_tokens": 256,
                                        "concurrency": 2}))
    caller = Caller(client, CallCache(tmp_path_factory.mktemp("cache")), progress=False)
    result = run_enrich(candidates, num_personas=NUM_PERSONAS, cfg=cfg, caller=caller, seed=SEED)
    assert len(result.personas) == NUM_PERSONAS
    return pd.DataFrame([p.attributes for p in result.personas])


def _adults(personas: pd.DataFrame) -> pd.DataFrame:
    return personas[pd.to_numeric(personas["age"]) >= 18]


def _age_band(age: pd.Series) -> pd.Series:
    return pd.cut(age, [18, 30, 45, 65, np.inf], right=False, labels=["18-29", "30-44", "45-64", "65+"]).astype(str)


def _gss_race(acs_race: pd.Series) -> pd.Series:
    return acs_race.map(lambda r: {"White alone": "White", "Black or African American alone": "Black"}.get(r, "Other"))


def _religion_group(label: str) -> str:
    """Coarse religion of a persona label or of a raw GSS relig value."""
    if label.startswith("Protestant"):
        return "Protestant"
    if label == "Catholic":
        return "Catholic"
    if label in ("No religion", "None"):
        return "None"
    return "Other"


def _party_group(label: str) -> str:
    if label in PARTY[:2]:
        return "Democrat"
    if label in PARTY[5:]:
        return "Republican"
    return "Independent or other"


def _gss_reference(adults: pd.DataFrame) -> pd.DataFrame:
    """GSS respondents post-stratified to the personas' age band x race mix: the survey's joint for this population."""
    gss = _raw("gss_cat.csv")
    gss = gss[gss["partyid"].isin(GSS_PARTY) & ~gss["relig"].isin(["No answer", "Don't know"]) & gss["age"].notna()]
    gss = gss.assign(cell=_age_band(gss["age"].astype(float)) + "/" + gss["race"])
    target = (_age_band(pd.to_numeric(adults["age"]).astype(float)) + "/" + _gss_race(adults["race"])).value_counts(
        normalize=True)
    share = gss["cell"].value_counts(normalize=True)
    return gss.assign(weight=gss["cell"].map(target / share).fillna(0.0),
                      party=gss["partyid"].map(GSS_PARTY))


def test_party_and_ideology_are_coherent_among_adults(personas: pd.DataFrame) -> None:
    adults = _adults(personas)
    partisan = adults[adults["political views"].isin(PARTY)]
    rho = stats.spearmanr(partisan["political views"].map(PARTY.index), partisan["ideology"].map(IDEOLOGY.index))[0]
    anes = _raw("anes96.csv")
    anes_rho = stats.spearmanr(anes["PID"], anes["selfLR"])[0]
    assert anes_rho > 0.6  # the survey's own coherence, from the raw file
    assert rho >= 0.45, (rho, anes_rho)


def test_strong_republicans_are_rarely_liberal(personas: pd.DataFrame) -> None:
    adults = _adults(personas)
    strong = adults[adults["political views"] == "Strong Republican"]
    liberal = strong["ideology"].isin(IDEOLOGY[:3]).mean()
    anes = _raw("anes96.csv")
    reference = (anes.loc[anes["PID"] == 6, "selfLR"] <= 3).mean()
    assert len(strong) >= 50
    assert liberal <= 0.08
    se = math.sqrt(max(reference * (1 - reference), 0.01) / len(strong))
    assert abs(liberal - reference) <= 4 * se, (liberal, reference, len(strong))


def test_strong_democrats_ideology_matches_anes(personas: pd.DataFrame) -> None:
    adults = _adults(personas)
    strong = adults[adults["political views"] == "Strong Democrat"]
    conservative = strong["ideology"].isin(IDEOLOGY[4:]).mean()
    anes = _raw("anes96.csv")
    reference = (anes.loc[anes["PID"] == 0, "selfLR"] >= 5).mean()
    se = math.sqrt(reference * (1 - reference) / len(strong) + reference * (1 - reference) / 200)
    assert abs(conservative - reference) <= 4 * se, (conservative, reference, len(strong))


def test_religion_by_party_matches_gss_joint(personas: pd.DataFrame) -> None:
    adults = _adults(personas)
    gss = _gss_reference(adults)
    reference = (gss.assign(party=gss["party"].map(_party_group), relig=gss["relig"].map(_religion_group))
                 .groupby(["party", "relig"])["weight"].sum())
    reference = reference / reference.sum()
    drawn = (adults.assign(party=adults["political views"].map(_party_group),
                           relig=adults["religion"].map(_religion_group))
             .groupby(["party", "relig"]).size().reindex(reference.index, fill_value=0))
    assert drawn.sum() == len(adults)
    result = stats.chisquare(drawn.to_numpy(), reference.to_numpy() * len(adults))
    assert result.pvalue > 0.001, pd.DataFrame({"drawn": drawn / len(adults), "gss": reference})


def test_strong_republicans_are_rare_among_the_nonreligious(personas: pd.DataFrame) -> None:
    adults = _adults(personas)
    gss = _gss_reference(adults)
    none = gss[gss["relig"] == "None"]
    reference = none.loc[none["party"] == "Strong Republican", "weight"].sum() / none["weight"].sum()
    drawn_none = adults[adults["religion"] == "No religion"]
    share = (drawn_none["political views"] == "Strong Republican").mean()
    assert len(drawn_none) >= 100
    assert abs(share - reference) <= 4 * math.sqrt(reference * (1 - reference) / len(drawn_none)), (share, reference)


def _sapa_levels() -> pd.DataFrame:
    """Big Five levels of the SAPA BFI respondents, scored here from the raw items and scoring keys."""
    items = _raw("bfi.csv")
    keys = json.loads((SHARED / "distributions" / "bfi_keys.json").read_text())
    names = {"openness": "Openness", "conscientious": "Conscientiousness", "extraversion": "Extraversion",
             "agree": "Agreeableness", "neuroticism": "Neuroticism"}
    items = items[(items["age"] >= 11) & items["gender"].isin([1, 2])]
    scores = {}
    for key, trait in names.items():
        keyed = pd.concat([7 - items[k[1:]] if k.startswith("-") else items[k] for k in keys[key]], axis=1)
        scores[trait] = keyed.mean(axis=1).where(keyed.notna().sum(axis=1) >= 3)
    frame = pd.DataFrame(scores)
    percentile = (frame.rank(method="average") - 0.5) / frame.notna().sum()
    return percentile.apply(lambda p: pd.cut(p, [0, 0.05, 0.25, 0.75, 0.95, 1], labels=False, right=False))


def test_big_five_trait_correlations_match_sapa(personas: pd.DataFrame) -> None:
    parsed = personas["big five scores"].str.extractall(r"(?P<trait>[A-Za-z]+): (?P<level>[A-Za-z ]+)")
    drawn = parsed.reset_index().pivot(index="level_0", columns="trait", values="level").apply(
        lambda c: c.map(LEVELS.index))
    sapa = _sapa_levels().dropna()
    drawn_corr = drawn.corr(method="spearman")
    sapa_corr = sapa.corr(method="spearman")
    assert sapa_corr.loc["Extraversion", "Agreeableness"] > 0.35  # the survey's joint, from the raw items
    tolerance = 4 * math.sqrt(1.06 / (len(drawn) - 3) + 1.06 / (len(sapa) - 3))  # Fisher z, Spearman variance
    traits = list(sapa.columns)
    for i, a in enumerate(traits):
        for b in traits[i + 1:]:
            gap = abs(math.atanh(drawn_corr.loc[a, b]) - math.atanh(sapa_corr.loc[a, b]))
            assert gap <= tolerance, (a, b, drawn_corr.loc[a, b], sapa_corr.loc[a, b])
