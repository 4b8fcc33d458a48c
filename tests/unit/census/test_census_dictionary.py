"""Decoding against the Bureau's real data dictionaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from persona_gen.census import CODE_PREFIX, DataDictionary, normalize_label
from persona_gen.census.spec import package_data


@pytest.fixture(scope="module")
def dictionary_2018() -> DataDictionary:
    return DataDictionary.from_files([package_data("PUMS_Data_Dictionary_2018.csv")])


def test_dictionary_decodes_sex_codes(dictionary_2018: DataDictionary) -> None:
    assert dict(dictionary_2018["SEX"].codes) == {"1": "Male", "2": "Female"}


def test_dictionary_keeps_occupation_wording(dictionary_2018: DataDictionary) -> None:
    assert dictionary_2018["OCCP"].codes["0010"] == "MGR-Chief Executives And Legislators"


def test_dictionary_reads_age_as_numeric_range(dictionary_2018: DataDictionary) -> None:
    age = dictionary_2018["AGEP"]
    assert age.numeric and age.in_range("45") and age.in_range("0") and not age.in_range("100")


def test_dictionary_blank_code_is_not_applicable_label(dictionary_2018: DataDictionary) -> None:
    assert dictionary_2018["ESR"].codes[""] == "Not applicable (less than 16 years old)"


def test_dictionary_accepts_codes_without_leading_zeros(dictionary_2018: DataDictionary) -> None:
    assert dictionary_2018["SCHL"].canonical("1") == "01"


def test_dictionary_income_blank_is_not_applicable(dictionary_2018: DataDictionary) -> None:
    income = dictionary_2018["PINCP"]
    assert income.na_codes == {""} and income.in_range("-19998") and income.in_range("4209995")


def test_dictionary_reads_nist_json_layout(shared_file) -> None:
    path = shared_file("pums_nist_excerpt", "data_dictionary.json")
    nist = DataDictionary.from_files([path])
    assert nist["EDU"].codes["9"] == "Bachelors degree"
    assert nist["PINCP"].numeric and nist["PINCP"].na_codes == {"N"}
    assert "INDP" not in nist  # NIST defers INDP to the Bureau's dictionary


def test_dictionary_merges_files_first_wins() -> None:
    merged = DataDictionary.from_files([package_data("PUMS_Data_Dictionary_2018.csv"),
                                        package_data("PUMS_Data_Dictionary_2019.csv")])
    assert merged["SCHL"].origin == "PUMS_Data_Dictionary_2018.csv"
    assert merged["HHT2"].origin == "PUMS_Data_Dictionary_2019.csv"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("N/A (less than 16 years old)", "Not applicable (less than 16 years old)"),
        ("N/A (Less than 5 years old)", "Not applicable (less than 5 years old)"),
        ("N/A(GQ/vacant)", "Not applicable (GQ/vacant)"),
        ("N/A (GQ/vacant/non-family household", "Not applicable (GQ/vacant/non-family household)"),
        ("N/A", "Not applicable"),
        ("White  alone", "White alone"),
    ],
)
def test_normalize_label_spells_not_applicable_one_way(label: str, expected: str) -> None:
    assert normalize_label(label) == expected


def test_decoding_matches_dictionary_for_every_record(demo, dictionary_2018: DataDictionary) -> None:
    pool = demo.pool
    for key, column in demo.spec.columns:
        variable = dictionary_2018[column.variable] if column.variable in dictionary_2018 else None
        if column.derived or variable is None or variable.numeric:
            continue
        codes = pool[CODE_PREFIX + column.variable].astype(object).fillna("").astype(str)
        expected = codes.map({**variable.codes, **demo.spec.label_override(column.variable)})
        pd.testing.assert_series_equal(pool[key].astype(str), expected.astype(str), check_names=False)


def test_decoding_keeps_age_and_income_numbers(demo) -> None:
    pool = demo.pool
    assert pool["age"].dtype == np.int64
    assert np.array_equal(pool["age"].to_numpy(), pool[CODE_PREFIX + "AGEP"].to_numpy().astype(np.int64))
    has_income = pool[CODE_PREFIX + "PINCP"].notna()
    numbers = pd.to_numeric(pool.loc[has_income, "income"].astype(str))
    # Income is PINCP in the survey year's dollars: times ADJINC (6 implied decimals), rounded to dollars.
    factor = pd.to_numeric(pool.loc[has_income, CODE_PREFIX + "ADJINC"].astype(str)) / 1e6
    expected = np.round(pool.loc[has_income, CODE_PREFIX + "PINCP"].to_numpy() * factor.to_numpy())
    assert np.array_equal(numbers.to_numpy(), expected)
    assert (factor == 1.013097).all()
    assert set(pool.loc[~has_income, "income"].astype(str)) == {"Not applicable (less than 15 years old)"}
