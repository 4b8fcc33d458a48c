"""Bad input: one clear CensusError each, naming the file, column or code and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from persona_gen.census import CensusSource, load_source, parse_source_spec, write_fidelity
from persona_gen.census.spec import package_data
from persona_gen.core.errors import CensusError, ConfigError


def test_load_source_missing_zip_raises(tmp_path: Path, source_config) -> None:
    with pytest.raises(CensusError, match=r"census data file is missing.*csv_pzz\.zip.*download it"):
        load_source(source_config([tmp_path / "csv_pzz.zip"]))


def test_load_source_corrupt_zip_raises(tmp_path: Path, source_config) -> None:
    corrupt = tmp_path / "csv_pwy.zip"
    corrupt.write_bytes(package_data("csv_pwy.zip").read_bytes()[:50_000])
    with pytest.raises(CensusError, match=r"not a readable zip archive.*csv_pwy\.zip.*download the zip again"):
        load_source(source_config([corrupt]))


def test_load_source_zip_without_csv_raises(tmp_path: Path, source_config) -> None:
    import zipfile

    empty = tmp_path / "csv_pwy.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.txt", "no data")
    with pytest.raises(CensusError, match=r"holds no CSV person file.*csv_pwy\.zip"):
        load_source(source_config([empty]))


def test_load_source_missing_column_raises(tmp_path: Path, source_config, write_zip, wyoming_csv) -> None:
    path = write_zip(tmp_path / "csv_pwy.zip", wyoming_csv.drop(columns=["DEAR"]))
    with pytest.raises(CensusError, match=r"lacks column\(s\) DEAR.*csv_pwy\.zip/psam_p56\.csv.*source\.columns"):
        load_source(source_config([path]))


def test_load_source_code_absent_from_dictionary_raises(tmp_path: Path, source_config, write_zip,
                                                        wyoming_csv: pd.DataFrame) -> None:
    broken = wyoming_csv.copy()
    broken.loc[41, "SEX"] = "7"
    path = write_zip(tmp_path / "csv_pwy.zip", broken)
    with pytest.raises(CensusError, match=r"code '7' of column SEX is not in the data dictionary.*"
                                          r"psam_p56\.csv line 43.*source\.dictionaries"):
        load_source(source_config([path]))


def test_load_source_age_out_of_range_raises(tmp_path: Path, source_config, write_zip,
                                             wyoming_csv: pd.DataFrame) -> None:
    broken = wyoming_csv.copy()
    broken.loc[0, "AGEP"] = "130"
    path = write_zip(tmp_path / "csv_pwy.zip", broken)
    with pytest.raises(CensusError, match=r"code '130' of column AGEP"):
        load_source(source_config([path]))


def test_load_source_year_mismatch_raises(source_config) -> None:
    config = source_config([package_data("csv_pwy.zip")])
    config["year"] = 2019
    with pytest.raises(CensusError, match=r"source\.year must be the files' ACS year 2018, but got 2019 \(SERIALNO"):
        load_source(config)


def test_load_source_missing_dictionary_raises(tmp_path: Path, source_config) -> None:
    config = source_config([package_data("csv_pwy.zip")])
    config["dictionaries"] = [str(tmp_path / "PUMS_Data_Dictionary_2017.csv")]
    with pytest.raises(CensusError, match=r"data dictionary file is missing.*PUMS_Data_Dictionary_2017\.csv"):
        load_source(config)


def test_load_source_dictionary_without_derived_variable_raises(source_config) -> None:
    config = source_config([package_data("csv_pwy.zip")])
    config["dictionaries"] = [str(package_data("PUMS_Data_Dictionary_2018.csv"))]
    with pytest.raises(CensusError, match=r"variable HHT2 is not in the data dictionary.*add the dictionary"):
        load_source(config)


def test_parse_source_spec_unknown_key_raises(source_config) -> None:
    config = source_config([package_data("csv_pwy.zip")])
    config["n"] = 3
    with pytest.raises(ConfigError, match=r"source has unknown keys.*\['n'\]"):
        parse_source_spec(config)


def test_parse_source_spec_unknown_persona_key_raises(source_config) -> None:
    config = source_config([package_data("csv_pwy.zip")])
    config["columns"] = {"religion": "RELP"}
    with pytest.raises(ConfigError, match=r"source\.columns key 'religion' must be a persona attribute name that "
                                          r"no other stage writes"):
        parse_source_spec(config)


def test_sample_personas_where_matching_nobody_raises(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"where expression matches no person record.*state of this source is one "
                                          r"of \['Vermont', 'Wyoming'\]"):
        demo.sample(10, seed=0, where="state in ['Hawaii']")


def test_sample_personas_unparsable_where_raises(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"where expression cannot be parsed"):
        demo.sample(10, seed=0, where="age >=")


@pytest.mark.parametrize("count", [0, -3])
def test_sample_personas_count_below_one_raises(demo: CensusSource, count: int) -> None:
    with pytest.raises(CensusError, match=r"census sample size \(scale\.num_personas x stage\.enrich\.candidate_fac"
                                          r"tor.* must be an integer >= 1, but got"):
        demo.sample(count, seed=0)


def test_sample_personas_negative_seed_raises(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"seed must be a non-negative integer"):
        demo.sample(3, seed=-1)


def test_sample_personas_unknown_quota_label_raises(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"quotas\.sex label 'male' is not a value of sex.*'Male'"):
        demo.sample(10, seed=0, quotas={"sex": {"male": 1.0}})


def test_sample_personas_quota_shares_must_sum_to_one_raises(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"quotas\.sex shares must be non-negative numbers that sum to 1"):
        demo.sample(10, seed=0, quotas={"sex": {"Male": 0.5, "Female": 0.6}})


def test_sample_personas_empty_quota_stratum_raises(demo: CensusSource) -> None:
    quotas = {"employment status": {"Unemployed": 1.0}}
    with pytest.raises(CensusError, match=r"quota stratum employment status='Unemployed' has no person record"):
        demo.sample(10, seed=0, where="age < 10", quotas=quotas)


def test_write_fidelity_writes_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        write_fidelity({"source": "x"}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_source_truncated_csv_raises(tmp_path: Path, source_config, wyoming_csv) -> None:
    import io
    import zipfile

    text = io.StringIO()
    wyoming_csv.to_csv(text, index=False)
    path = tmp_path / "csv_pwy.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("psam_p56.csv", text.getvalue()[: len(text.getvalue()) // 2])  # cut mid-record
    with pytest.raises(CensusError, match=r"census data file('s last row| cannot be parsed).*"
                       r"csv_pwy\.zip/psam_p56\.csv.*truncated"):
        load_source(source_config([path]))


def _wyoming_bytes() -> bytes:
    from tests.helpers import read_wyoming_csv

    return read_wyoming_csv().to_csv(index=False).encode()


class _Spec:
    origin = "source.yaml"
    record_id = ("SERIALNO", "SPORDER")
    household = None


def test_non_utf8_census_bytes_name_the_file_and_line() -> None:
    import io

    from persona_gen.census.reader import _read_one

    lines = _wyoming_bytes().split(b"\n")
    lines[40] = lines[40].replace(b",", b",\xe9", 1)  # a latin-1 byte in data row 40 (line 41)
    with pytest.raises(CensusError, match=r"census data file must be UTF-8 .*byte 0xe9 .*\(psam_p56\.csv line 41\)"):
        _read_one("psam_p56.csv", io.BytesIO(b"\n".join(lines)), _Spec(), ("SERIALNO", "AGEP"))


def test_census_file_cut_mid_row_says_so_with_the_line() -> None:
    import io

    from persona_gen.census.reader import _read_one

    data = _wyoming_bytes().rstrip(b"\n")[:-7]
    rows = data.count(b"\n")
    with pytest.raises(CensusError, match=rf"last row must be \d+ fields like the header, but got '\d+ fields and no "
                                          rf"line end \(the file is cut mid-row\)' \(psam_p56\.csv line {rows + 1}\)"):
        _read_one("psam_p56.csv", io.BytesIO(data), _Spec(), ("SERIALNO", "AGEP"))
