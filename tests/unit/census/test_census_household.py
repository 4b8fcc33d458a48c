"""Household attributes derived from the persons who share a SERIALNO."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona_gen.census import DERIVED_KEYS, RECORD_ID, CensusSource, DataDictionary, derive_household_codes
from persona_gen.census.spec import HouseholdSpec, package_data

RELP_ROLES = (
    ("householder", ("00",)), ("spouse", ("01",)), ("partner", ("13",)), ("own_child", ("02", "03", "04")),
    ("relative", ("05", "06", "07", "08", "09", "10")), ("nonrelative", ("11", "12", "14", "15")),
    ("group_quarters", ("16", "17")),
)

# household, RELP, age, sex, LANX, LANP
PEOPLE = [
    (0, "00", 40, "1", "1", 1200), (0, "01", 38, "2", "1", 1200), (0, "02", 3, "1", "1", 1200),
    (0, "03", 10, "2", "1", 1200),                                   # married, children <5 and 5-17, Spanish
    (1, "00", 70, "2", "2", np.nan),                                 # woman living alone, English only
    (2, "00", 30, "1", "1", 2050), (2, "13", 29, "2", "1", 2050),    # cohabiting, no children, Cantonese
    (3, "00", 25, "1", "1", 1110), (3, "12", 26, "1", "2", np.nan),  # man with a roommate, German
    (4, "00", 50, "2", "1", 4500), (4, "06", 80, "2", "1", 4500),    # woman with her mother, Arabic
    (5, "16", 19, "1", "2", np.nan),                                 # group quarters
    (6, "00", 35, "2", "2", np.nan), (6, "04", 12, "1", "2", np.nan),  # woman with a stepchild of 12
    (7, "00", 60, "1", "2", np.nan), (7, "07", 4, "2", "2", np.nan),  # man with a grandchild of 4
]


@pytest.fixture(scope="module")
def derived() -> pd.DataFrame:
    household, relp, age, sex, lanx, lanp = zip(*PEOPLE, strict=True)
    codes = derive_household_codes(np.asarray(household), np.asarray(relp), np.asarray(age, dtype=float),
                                   np.asarray(sex), np.asarray(lanx), np.asarray(lanp, dtype=float),
                                   HouseholdSpec(roles=RELP_ROLES), ("HHT2", "HHT", "FPARC", "HHL"))
    frame = pd.DataFrame(codes)
    frame["household"] = household
    return frame.groupby("household").first()


def test_household_type_of_tiny_households(derived: pd.DataFrame) -> None:
    assert derived["HHT2"].tolist() == ["01", "05", "04", "12", "07", "", "06", "11"]


def test_household_type_2018_scheme_of_tiny_households(derived: pd.DataFrame) -> None:
    assert derived["HHT"].tolist() == ["1", "6", "5", "5", "3", "", "3", "2"]


def test_family_presence_and_age_of_tiny_households(derived: pd.DataFrame) -> None:
    assert derived["FPARC"].tolist() == ["3", "", "", "", "4", "", "2", "1"]


def test_household_language_of_tiny_households(derived: pd.DataFrame) -> None:
    assert derived["HHL"].tolist() == ["2", "1", "4", "3", "5", "", "1", "1"]


def test_household_codes_decode_to_acs_wording() -> None:
    dictionary = DataDictionary.from_files([package_data("PUMS_Data_Dictionary_2019.csv")])
    assert dictionary["HHT2"].codes["04"] == "Cohabiting couple household, no children of the householder less than 18"
    assert dictionary["FPARC"].codes["3"] == "With related children under 5 years and 5 to 17 years"
    assert dictionary["HHL"].codes[""] == "Not applicable (GQ/vacant)"


def test_household_attributes_are_shared_by_household_members(demo: CensusSource) -> None:
    serial = demo.pool[RECORD_ID].str.rsplit("-", n=1).str[0]
    frame = demo.pool[sorted(DERIVED_KEYS)].astype(str).assign(serial=serial)
    assert (frame.groupby("serial").nunique() == 1).all().all()


def test_household_labels_come_from_the_dictionary(demo: CensusSource) -> None:
    dictionary = DataDictionary.from_files([package_data("PUMS_Data_Dictionary_2019.csv")])
    for key, variable in (("household type", "HHT2"), ("family presence and age", "FPARC"),
                          ("household language", "HHL")):
        assert set(demo.pool[key].astype(str)) <= set(dictionary[variable].codes.values())


# The Bureau's household-language order (Census 2000 SF3 / ACS "Household language"), by RELP 2018 codes.
BUREAU_ORDER = ["00", "01", "06", "05", "02", "03", "07", "08", "09", "10", "04", "13", "12", "11", "14", "15"]


def _hhl_group(lanp: int) -> str:
    """HHL code of one LANP code, written out from the Bureau's language groups (an independent reading)."""
    if lanp == 1200:
        return "2"
    if 1000 <= lanp <= 1564:
        return "3"
    if 1690 <= lanp <= 3999:
        return "4"
    return "5"


def _bureau_hhl(members: pd.DataFrame) -> str:
    """The household language of one household, member by member: a plain loop, not the vectorised code."""
    if members["RELP"].isin(["16", "17"]).any() or not (members["RELP"] == "00").any():
        return ""
    ranked = sorted(members.itertuples(), key=lambda m: (BUREAU_ORDER.index(m.RELP), int(m.SPORDER)))
    for member in ranked:
        if member.LANX == "1":
            return _hhl_group(int(member.LANP)) if member.LANP else "5"
    return "1"


def test_household_language_of_a_household_whose_householder_speaks_only_english() -> None:
    # Householder English only, spouse Spanish, child Vietnamese: the spouse comes first in the Bureau's order.
    codes = derive_household_codes(
        np.zeros(3, dtype=np.intp), np.asarray(["00", "01", "02"]), np.asarray([40.0, 38.0, 10.0]),
        np.asarray(["1", "2", "1"]), np.asarray(["2", "1", "1"]), np.asarray([np.nan, 1200.0, 1960.0]),
        HouseholdSpec(roles=RELP_ROLES, language_order=tuple(BUREAU_ORDER)), ("HHL",))
    assert codes["HHL"].tolist() == ["2", "2", "2"]


def test_household_language_matches_an_independent_bureau_rule_on_every_six_state_household(shared_file) -> None:
    shared_file("pums", "csv_phi.zip")
    columns = ["SERIALNO", "SPORDER", "RELP", "LANX", "LANP"]
    frames = []
    for state in ("wy", "vt", "nd", "de", "hi", "nm"):
        with zipfile.ZipFile(shared_file("pums", f"csv_p{state}.zip")) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            with archive.open(name) as handle:
                frames.append(pd.read_csv(handle, usecols=columns, dtype=str, keep_default_na=False))
    people = pd.concat(frames, ignore_index=True)
    expected = {serial: _bureau_hhl(members) for serial, members in people.groupby("SERIALNO", sort=False)}
    from persona_gen.census import load_source

    pool = load_source(Path(__file__).resolve().parents[3] / "conf" / "sampler" / "census_six_states.yaml").pool
    serial = pool[RECORD_ID].str.split(":").str[1].str.rsplit("-", n=1).str[0]
    got = pool["code.HHL"].astype(object).fillna("").astype(str)
    assert len(expected) > 25_000
    assert got.tolist() == serial.map(expected).tolist()


def test_no_persona_who_speaks_another_language_lives_in_an_english_only_household(six_states) -> None:
    personas = six_states.sample(100_000, seed=3)
    speaks = personas["code.LANX"].astype(str) == "1"
    assert speaks.sum() > 10_000
    assert not (speaks & (personas["household language"] == "English only")).any()
