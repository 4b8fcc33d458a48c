"""Tests of persona_gen.enrich.psychodemographics and of scripts/derive_tables.py."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.enrich import psychodemographics as pg
from persona_gen.enrich.psychodemographics import (
    ACS_RACE_TO_TABLE_RACE,
    BIG_FIVE_LEVELS,
    BIG_FIVE_TRAITS,
    PSYCHO_KEYS,
    TABLE_SETS,
    TOO_YOUNG,
    load_table,
    sample_psychodemographics,
    table_provenance,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
TABLES_DIR = REPO_ROOT / "persona_gen" / "enrich" / "tables"
SHARED_DATA = Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
N = 20_000  # identical personas per frequency test: one cell, so the draw is a plain multinomial
ACS_RACES = (
    "White alone",
    "Black or African American alone",
    "American Indian alone",
    "Alaska Native alone",
    "American Indian and Alaska Native tribes specified; or American Indian or Alaska Native, not specified and no "
    "other races",
    "Asian alone",
    "Native Hawaiian and Other Pacific Islander alone",
    "Some Other Race alone",
    "Two or More Races",
)


def _personas(n: int = N, *, age: object = 40, sex: object = "Male", race: object = "White alone",
              income: object = 60_000) -> pd.DataFrame:
    return pd.DataFrame({"age": [age] * n, "sex": [sex] * n, "race": [race] * n, "income": [income] * n})


def _mixed_personas() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 2_000
    incomes: list[object] = list(rng.choice([-20_000, 0, 8_000, 30_000, 70_000, 250_000, 2_000_000], size=n))
    incomes[:50] = ["N/A (less than 15 years old)"] * 25 + [float("nan")] * 25
    return pd.DataFrame({
        "age": rng.integers(0, 96, size=n),
        "sex": rng.choice(["Male", "Female"], size=n),
        "race": rng.choice(ACS_RACES, size=n),
        "income": incomes,
    }, index=pd.RangeIndex(100, 100 + n))


def _cell(field: str, tables: str = "default", **where: str) -> pd.DataFrame:
    """One cell of the table that fills ``field``, as ``value, probability`` (a joint table summed to ``field``)."""
    table = load_table(field, tables)
    if "value" not in table.columns:  # the joint party x religion table: the field's margin
        table = table.rename(columns={field: "value"})
        conditions = [c for c in pg._manifest()["tables"][TABLE_SETS[tables][field]]["conditions"]]
        table = table.groupby([*conditions, "value"], as_index=False, sort=False)[["probability", "count"]].sum()
        table["basis"] = ""
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= table[column].to_numpy() == value
    cell = table.loc[mask]
    assert len(cell) == table["value"].nunique(), f"{where} does not select exactly one cell"
    return cell


def _assert_matches(sampled: pd.Series, cell: pd.DataFrame) -> None:
    """Every value's sampled share lies within 4 standard errors of the table; zeros are never drawn."""
    n = len(sampled)
    observed = sampled.value_counts().reindex(cell["value"], fill_value=0).to_numpy()
    assert observed.sum() == n, f"drew values outside the cell's vocabulary: {set(sampled) - set(cell['value'])}"
    p = cell["probability"].to_numpy() / cell["probability"].sum()
    se = np.sqrt(p * (1 - p) / n)
    share = observed / n
    off = np.abs(share - p) > 4 * se + 1e-12
    assert not off.any(), dict(zip(cell["value"][off], zip(share[off], p[off], strict=True), strict=True))


# ----------------------------------------------------------------------------------------------- frequencies


def test_sample_psychodemographics_reproduces_big_five_cell() -> None:
    out = sample_psychodemographics(_personas(age=40, sex="Female"), seed=11)
    parsed = out["big five scores"].str.extractall(r"(?P<trait>[A-Za-z]+): (?P<level>[A-Za-z ]+)")
    for trait in BIG_FIVE_TRAITS:
        levels = parsed.loc[parsed["trait"] == trait, "level"]
        _assert_matches(levels, _cell("big five scores", trait=trait, age_band="30-44", sex="Female"))


@pytest.mark.parametrize("party", ["Strong Democrat", "Independent", "Strong Republican"])
def test_sample_psychodemographics_reproduces_ideology_cell_given_party(party: str) -> None:
    stats = pytest.importorskip("scipy.stats")
    # $60,000 of 2018 is $37,490 of 1996: the $25k-$50k band.
    out = sample_psychodemographics(_personas(age=40, income=60_000), seed=12)
    drawn = out.loc[out["political views"] == party, "ideology"]
    cell = _cell("ideology", **{"political views": party}, age_band="30-44", income_band="$25k-$50k")
    _assert_matches(drawn, cell)
    observed = drawn.value_counts().reindex(cell["value"], fill_value=0).to_numpy()
    expected = cell["probability"].to_numpy() / cell["probability"].sum() * len(drawn)
    keep = expected > 0
    assert stats.chisquare(observed[keep], expected[keep]).pvalue > 0.001


def test_sample_psychodemographics_prefers_household_income() -> None:
    # Personal income $10,000, household income $120,000 (2018): the household's band ($50k+ of 1996) is used.
    personas = _personas(age=40, income=10_000).assign(**{pg.HOUSEHOLD_INCOME: 120_000.0})
    out = sample_psychodemographics(personas, seed=12)
    drawn = out.loc[out["political views"] == "Strong Democrat", "ideology"]
    _assert_matches(drawn, _cell("ideology", **{"political views": "Strong Democrat"}, age_band="30-44",
                                 income_band="$50k+"))


def test_sample_psychodemographics_reproduces_political_views_cell() -> None:
    out = sample_psychodemographics(_personas(age=70, race="Black or African American alone"), seed=13)
    _assert_matches(out["political views"], _cell("political views", age_band="65+", race="Black"))


def test_sample_psychodemographics_draws_party_and_religion_jointly() -> None:
    out = sample_psychodemographics(_personas(age=50), seed=13)
    table = load_table("religion")
    cell = table[(table["age_band"] == "45-64") & (table["race"] == "White")]
    pairs = (out["political views"] + " | " + out["religion"]).rename("pair")
    _assert_matches(pairs, cell.assign(value=cell["political views"] + " | " + cell["religion"]))


def test_sample_psychodemographics_reproduces_religion_cell() -> None:
    out = sample_psychodemographics(_personas(age=25, race="Two or More Races"), seed=14)
    _assert_matches(out["religion"], _cell("religion", age_band="18-29", race="Other"))


def test_sample_psychodemographics_reproduces_pew_religion_income_band() -> None:
    # $100,000 of 2018 is $82,571 of 2007: Pew's $75-100k column.
    out = sample_psychodemographics(_personas(income=100_000), seed=15, tables="pew_religion")
    _assert_matches(out["religion"], _cell("religion", "pew_religion", income_band="$75-100k"))


def test_sample_psychodemographics_draws_minor_religion_from_youngest_band() -> None:
    out = sample_psychodemographics(_personas(age=9, income="N/A (less than 15 years old)"), seed=16)
    _assert_matches(out["religion"], _cell("religion", age_band="18-29", race="White"))


def test_sample_psychodemographics_uses_party_alone_for_unknown_income() -> None:
    out = sample_psychodemographics(_personas(age=50, income=float("nan")), seed=17)
    cell = _cell("ideology", **{"political views": "Strong Republican"}, age_band="45-64", income_band="Unknown")
    assert set(cell["basis"]) == {"political views"}
    _assert_matches(out.loc[out["political views"] == "Strong Republican", "ideology"], cell)


def test_sample_psychodemographics_big_five_levels_follow_the_copula() -> None:
    out = sample_psychodemographics(_personas(age=40, sex="Female"), seed=18)
    parsed = out["big five scores"].str.extractall(r"(?P<trait>[A-Za-z]+): (?P<level>[A-Za-z ]+)")
    codes = parsed.reset_index().pivot(index="level_0", columns="trait", values="level").apply(
        lambda c: c.map(BIG_FIVE_LEVELS.index))
    latent = pg.load_correlation()
    # Levels are coarsened normals: their correlation has the latent one's sign and is no stronger.
    for a, b in (("Extraversion", "Agreeableness"), ("Conscientiousness", "Neuroticism")):
        drawn = codes[a].corr(codes[b])
        assert np.sign(drawn) == np.sign(latent.loc[a, b]) and 0.6 * abs(latent.loc[a, b]) < abs(drawn)
        assert abs(drawn) <= abs(latent.loc[a, b]) + 4 / np.sqrt(N)


# ----------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("tables", sorted(TABLE_SETS))
def test_sample_psychodemographics_labels_are_in_table_vocabulary(tables: str) -> None:
    out = sample_psychodemographics(_mixed_personas(), seed=3, tables=tables)
    pattern = re.compile(
        "^" + ", ".join(f"{t}: ({'|'.join(BIG_FIVE_LEVELS)})" for t in BIG_FIVE_TRAITS) + "$"
    )
    assert out["big five scores"].map(lambda s: bool(pattern.match(s))).all()
    for field in ("ideology", "political views", "religion"):
        table = load_table(field, tables)
        vocabulary = set(table["value"] if "value" in table.columns else table[field])
        if field != "religion":
            vocabulary.add(TOO_YOUNG)
        assert set(out[field]) <= vocabulary, field


def test_sample_psychodemographics_keeps_index_and_columns() -> None:
    personas = _mixed_personas()
    out = sample_psychodemographics(personas, seed=4)
    assert out.index.equals(personas.index)
    assert tuple(out.columns) == PSYCHO_KEYS
    assert out.notna().all().all()


def test_sample_psychodemographics_is_deterministic_for_seed() -> None:
    personas = _mixed_personas()
    seed = np.random.SeedSequence(2024)
    first = sample_psychodemographics(personas, seed=seed)
    # The same SeedSequence object twice: the sampler must not consume it.
    pd.testing.assert_frame_equal(first, sample_psychodemographics(personas, seed=seed))
    pd.testing.assert_frame_equal(first, sample_psychodemographics(personas, seed=np.random.SeedSequence(2024)))
    pd.testing.assert_frame_equal(sample_psychodemographics(personas, seed=7),
                                  sample_psychodemographics(personas, seed=7))


def test_sample_psychodemographics_changes_with_seed() -> None:
    personas = _mixed_personas()
    first = sample_psychodemographics(personas, seed=1)
    second = sample_psychodemographics(personas, seed=2)
    assert (first["big five scores"] != second["big five scores"]).mean() > 0.5


def test_sample_psychodemographics_keeps_other_fields_when_one_table_changes() -> None:
    personas = _mixed_personas()
    default = sample_psychodemographics(personas, seed=5)
    spi = sample_psychodemographics(personas, seed=5, tables="spi_big_five")
    pew = sample_psychodemographics(personas, seed=5, tables="pew_religion")
    pd.testing.assert_frame_equal(default.drop(columns="big five scores"), spi.drop(columns="big five scores"))
    pd.testing.assert_series_equal(default["big five scores"], pew["big five scores"])


def test_religion_uses_one_readable_vocabulary_across_table_sets() -> None:
    gss = set(load_table("religion")["religion"])
    pew = set(load_table("religion", "pew_religion")["value"])
    for labels in (gss, pew):
        assert "No religion" in labels and "Muslim" in labels and "Catholic" in labels
        assert not {"None", "Unaffiliated", "Moslem/islam"} & labels
        assert not [label for label in labels if re.search(r"-dk|Prot\b|\bluth\b|\bbapt\b", label)]


def test_sample_psychodemographics_gives_minors_too_young_values() -> None:
    personas = _mixed_personas()
    out = sample_psychodemographics(personas, seed=6)
    minor = personas["age"] < 18
    assert minor.any() and (~minor).any()
    for field in ("ideology", "political views"):
        assert (out.loc[minor, field] == TOO_YOUNG).all()
        assert (out.loc[~minor, field] != TOO_YOUNG).all()
    assert out.loc[minor, "religion"].notna().all()


def test_sample_psychodemographics_reads_dollar_text_income() -> None:
    numeric = _personas(50, income=60_000)
    text = _personas(50, income="$60,000")
    pd.testing.assert_frame_equal(sample_psychodemographics(numeric, seed=8, tables="pew_religion"),
                                  sample_psychodemographics(text, seed=8, tables="pew_religion"))


def test_sample_psychodemographics_handles_empty_frame() -> None:
    out = sample_psychodemographics(_personas(0), seed=0)
    assert len(out) == 0 and tuple(out.columns) == PSYCHO_KEYS


def test_income_band_deflates_persona_income_to_table_dollars() -> None:
    # CPI-U 1996 / 2018 = 156.9 / 251.107: $40,000 (2018) is $24,993 (1996), $40,200 is $25,119.
    income = np.array([40_000.0, 40_200.0, -5_000.0, 0.0, np.nan, 1e7])
    minor = np.array([False, False, False, False, False, True])
    bands = pg._income_band("ideology_anes96", income, minor, 2018)
    assert bands.tolist() == ["<$25k", "$25k-$50k", "<$25k", "<$25k", "Unknown", "Unknown"]


# ----------------------------------------------------------------------------------------------- errors


def test_sample_psychodemographics_rejects_unknown_table_set() -> None:
    with pytest.raises(ConfigError, match=r"tables must be one of .*but got 'gss_only'.*pick a listed table set"):
        sample_psychodemographics(_personas(3), seed=0, tables="gss_only")


def test_sample_psychodemographics_rejects_missing_column() -> None:
    with pytest.raises(ConfigError, match=r"personas columns must be .*add the missing column\(s\) \['race'\]"):
        sample_psychodemographics(_personas(3).drop(columns="race"), seed=0)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("race", "Martian alone", r"personas\['race'\] must be an ACS RAC1P label.*Martian alone"),
        ("sex", "M", r"personas\['sex'\] must be one of \['Male', 'Female'\], but got \['M'\]"),
        ("age", "forty", r"personas\['age'\] must be a number >= 0.*'forty'"),
        ("age", -1, r"personas\['age'\] must be a number >= 0.*-1"),
    ],
)
def test_sample_psychodemographics_rejects_bad_values(column: str, value: object, message: str) -> None:
    personas = _personas(3)
    personas[column] = personas[column].astype(object)
    personas.loc[1, column] = value
    with pytest.raises(ConfigError, match=message):
        sample_psychodemographics(personas, seed=0)


def test_sample_psychodemographics_rejects_unknown_income_year() -> None:
    with pytest.raises(ConfigError, match=r"income_dollar_year must be a year in cpi_u.csv .*but got 1850"):
        sample_psychodemographics(_personas(3), seed=0, income_dollar_year=1850)


def test_sample_psychodemographics_rejects_bad_seed() -> None:
    with pytest.raises(ConfigError, match=r"seed must be an int >= 0 or a numpy.random.SeedSequence"):
        sample_psychodemographics(_personas(3), seed=-1)


# ----------------------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("tables", sorted(TABLE_SETS))
def test_table_provenance_names_table_and_source_for_each_field(tables: str) -> None:
    provenance = table_provenance(tables)
    assert tuple(provenance) == PSYCHO_KEYS
    for field, record in provenance.items():
        assert record["table"] == TABLE_SETS[tables][field]
        assert (REPO_ROOT / record["file"]).is_file()
        assert record["citation"] and record["license"] and record["year"] and record["sha256"]
    assert "income_deflator" in provenance["ideology"]
    assert "political views" in provenance["ideology"]["conditions"]
    assert all(record["joint"] for record in provenance.values())


def test_describe_joints_names_the_joint_tables() -> None:
    joints = pg.describe_joints()
    assert "jointly with religion" in joints["political views"] and "party_religion_gss" in joints["religion"]
    assert "party" in joints["ideology"] and "_correlation.csv" in joints["big five scores"]
    assert "independently of party" in pg.describe_joints("pew_religion")["religion"]


def test_table_provenance_rejects_unknown_table_set() -> None:
    with pytest.raises(ConfigError, match="tables must be one of"):
        table_provenance("nope")


@pytest.mark.parametrize("field", PSYCHO_KEYS)
def test_load_table_cells_are_complete_distributions(field: str) -> None:
    table = load_table(field)
    meta = pg._manifest()["tables"][TABLE_SETS["default"][field]]
    conditions, values = list(meta["conditions"]), list(meta["value_columns"])
    sums = table.groupby(conditions)["probability"].sum()
    # Each probability is rounded to 6 decimals: a cell's sum is off by at most half a unit per value.
    assert np.allclose(sums, 1.0, atol=5e-7 * len(table[values].drop_duplicates()) + 1e-9)
    per_cell = table.groupby(conditions)[values].apply(lambda g: len(g.drop_duplicates()))
    assert (per_cell == len(table[values].drop_duplicates())).all()
    assert (table["count"] >= 0).all()


def test_big_five_correlation_is_a_correlation_matrix() -> None:
    matrix = pg.load_correlation("default").to_numpy()
    assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T)
    assert np.all(np.linalg.eigvalsh(matrix) > 0)


def test_race_mapping_covers_every_acs_rac1p_label() -> None:
    labels = set(ACS_RACES)
    dictionary = SHARED_DATA / "pums" / "PUMS_Data_Dictionary_2018.csv"
    if dictionary.is_file():
        with dictionary.open(encoding="utf-8") as handle:
            labels |= {row[6] for row in csv.reader(handle) if row[:2] == ["VAL", "RAC1P"]}
    assert labels <= set(ACS_RACE_TO_TABLE_RACE)
    assert set(ACS_RACE_TO_TABLE_RACE.values()) == {"White", "Black", "Other"}


def test_derive_tables_regenerates_shipped_tables_byte_identical(tmp_path: Path) -> None:
    if not (SHARED_DATA / "distributions").is_dir():
        pytest.skip(f"raw data not found at {SHARED_DATA} (set PERSONA_GEN_SHARED_DATA)")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "derive_tables.py"), "--data", str(SHARED_DATA),
         "--out", str(tmp_path)],
        check=True, capture_output=True,
    )
    shipped = {p.name for p in TABLES_DIR.iterdir() if p.is_file() and p.suffix in {".csv", ".json", ".md"}}
    regenerated = {p.name for p in tmp_path.iterdir()}
    assert regenerated == shipped
    for name in sorted(regenerated):
        assert (tmp_path / name).read_bytes() == (TABLES_DIR / name).read_bytes(), name
