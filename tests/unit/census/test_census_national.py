"""The Bureau's national layout: one zip holding psam_pusa.csv and psam_pusb.csv, read as categoricals in chunks."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from persona_gen.census import CENSUS_KEYS, HOUSEHOLD_INCOME, STATE, CensusSource, parse_source_spec
from persona_gen.census import reader as census_reader
from persona_gen.census.spec import package_data, read_config_file
from tests.helpers import read_wyoming_csv

CONF = Path(__file__).resolve().parents[3] / "conf" / "sampler"


def _vermont_csv() -> pd.DataFrame:
    with zipfile.ZipFile(package_data("csv_pvt.zip")) as archive, archive.open("psam_p50.csv") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def national_zip(tmp_path_factory) -> Path:
    """A small zip of the national file's shape: two person CSVs (states split between them) and the README."""
    path = tmp_path_factory.mktemp("national") / "csv_pus.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, frame in (("psam_pusa.csv", read_wyoming_csv()), ("psam_pusb.csv", _vermont_csv())):
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False)
            archive.writestr(member, buffer.getvalue())
        archive.writestr("ACS2018_PUMS_README.pdf", b"%PDF-1.4 not a person file")
    return path


def _national_source(path: Path) -> CensusSource:
    config = read_config_file(CONF / "census_pums.yaml")
    config["source"]["files"] = [str(path)]
    config["source"]["dictionaries"] = [str(package_data("PUMS_Data_Dictionary_2018.csv")),
                                        str(package_data("PUMS_Data_Dictionary_2019.csv"))]
    return CensusSource.from_spec(parse_source_spec(config))


def test_national_zip_loads_both_person_files(national_zip: Path, demo: CensusSource) -> None:
    national = _national_source(national_zip)
    assert national.num_records == demo.num_records
    assert set(national.pool[STATE]) == {"Wyoming", "Vermont"}
    members = national.pool["source_record_id"].str.split(":").str[0]
    assert set(members) == {"csv_pus.zip/psam_pusa.csv", "csv_pus.zip/psam_pusb.csv"}


def test_national_zip_decodes_like_the_state_zips(national_zip: Path, demo: CensusSource) -> None:
    national = _national_source(national_zip)
    for key in (*CENSUS_KEYS, STATE):
        pd.testing.assert_series_equal(national.pool[key].astype(str), demo.pool[key].astype(str), check_names=False)
    pd.testing.assert_series_equal(national.pool[HOUSEHOLD_INCOME], demo.pool[HOUSEHOLD_INCOME])
    assert (national.weights == demo.weights).all()


def test_reader_keeps_only_the_needed_columns_as_categoricals(national_zip: Path) -> None:
    national = _national_source(national_zip)
    raw = census_reader.read_raw(national.spec)
    assert tuple(raw.frame.columns) == national.spec.file_variables()
    assert len(raw.frame.columns) < 40  # of the file's 286
    identifiers = {"SERIALNO", "SPORDER"}  # one value per household: compact Arrow strings, not categories
    assert all(isinstance(raw.frame[c].dtype, pd.StringDtype) for c in identifiers)
    assert all(isinstance(raw.frame[c].dtype, pd.CategoricalDtype) for c in raw.frame.columns if c not in identifiers)


def test_reader_chunks_give_the_same_pool(national_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _national_source(national_zip)
    monkeypatch.setattr(census_reader, "BLOCK_BYTES", 1 << 16)  # block borders fall inside households
    chunked = _national_source(national_zip)
    pd.testing.assert_frame_equal(whole.pool, chunked.pool)
