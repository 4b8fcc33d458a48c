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
    table = load_table(field, tables)
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


def test_sample_psychodemographics_reproduces_ideology_cell() -> None:
    stats = pytest.importorskip("scipy.stats")
    # $60,000 of 2018 is $37,490 of 1996: the $25k-$50k band.
    out = sample_psychodemographics(_personas(age=40, income=60_000), seed=12)
    cell = _cell("ideology", age_band="30-44", income_band="$25k-$50k")
    _assert_matches(out["ideology"], cell)
    observed = out["ideology"].value_counts().reindex(cell["value"], fill_value=0).to_numpy()
    expected = cell["probability"].to_numpy() / cell["probability"].sum() * N
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_sample_psychodemographics_reproduces_political_views_cell() -> None:
    out = sample_psychodemographics(_personas(age=70, race="Black or African American alone"), seed=13)
    _assert_matches(out["political views"], _cell("political views", age_band="65+", race="Black"))


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


def test_sample_psychodemographics_uses_age_band_alone_for_unknown_income() -> None:
    out = sample_psychodemographics(_personas(age=50, income=float("nan")), seed=17)
    cell = _cell("ideology", age_band="45-64", income_band="Unknown")
    assert set(cell["basis"]) == {"age_band"}
    _assert_matches(out["ideology"], cell)


# ----------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("tables", sorted(TABLE_SETS))
def test_sample_psychodemographics_labels_are_in_table_vocabulary(tables: str) -> None:
    out = sample_psychodemographics(_mixed_personas(), seed=3, tables=tables)
    pattern = re.compile(
        "^" + ", ".join(f"{t}: ({'|'.join(BIG_FIVE_LEVELS)})" for t in BIG_FIVE_TRAITS) + "$"
    )
    assert out["big five scores"].map(lambda s: bool(pattern.match(s))).all()
    for field in ("ideology", "political views", "religion"):
        vocabulary = set(load_table(field, tables)["value"])
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
    pew = sample_psychodemographics(personas, seed=5, tables="pew_religion")
    pd.testing.assert_frame_equal(default.drop(columns="religion"), pew.drop(columns="religion"))


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


def test_table_provenance_rejects_unknown_table_set() -> None:
    with pytest.raises(ConfigError, match="tables must be one of"):
        table_provenance("nope")


@pytest.mark.parametrize("field", PSYCHO_KEYS)
def test_load_table_cells_are_complete_distributions(field: str) -> None:
    table = load_table(field)
    conditions = [c for c in table.columns if c not in ("table", "value", "probability", "count", "basis")]
    sums = table.groupby(conditions)["probability"].sum()
    assert np.allclose(sums, 1.0, atol=1e-5)
    assert (table.groupby(conditions)["value"].nunique() == table["value"].nunique()).all()
    assert (table["count"] >= 0).all()


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
