"""Fixtures of the census tests: the shipped ACS copy, the six-state pool from shared data, tiny bad sources."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from persona_gen.census import CensusSource, load_source
from persona_gen.census.spec import package_data, read_config_file
from tests.helpers import read_wyoming_csv
from tests.helpers import write_zip as write_zip_file

REPO = Path(__file__).resolve().parents[3]
CONF = REPO / "conf" / "sampler"


def shared_data() -> Path:
    """The shared data folder: ``$PERSONA_GEN_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared(*parts: str) -> Path:
    """A shared data file, or skip the test with the reason."""
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is absent: set PERSONA_GEN_SHARED_DATA to the folder holding pums/")
    return path


@pytest.fixture(scope="session")
def demo() -> CensusSource:
    """The ACS 2018 copy shipped in the package (Wyoming and Vermont)."""
    return load_source()


@pytest.fixture(scope="session")
def six_states() -> CensusSource:
    """ACS 2018 PUMS of six states, from the shared data folder."""
    require_shared("pums", "csv_phi.zip")
    return load_source(CONF / "census_six_states.yaml")


@pytest.fixture(scope="session")
def nist() -> CensusSource:
    """The NIST excerpt, through its own config."""
    require_shared("pums_nist_excerpt", "national2019.csv")
    require_shared("pums", "PUMS_Data_Dictionary_2019.csv")
    return load_source(CONF / "nist_excerpt.yaml")


@pytest.fixture(scope="session")
def wyoming_csv() -> pd.DataFrame:
    """The shipped Wyoming person file as text, to build broken copies from."""
    return read_wyoming_csv()


def _source_config(files: list[Path]) -> dict[str, Any]:
    config = read_config_file(package_data("source.yaml"))
    config["files"] = [str(f) for f in files]
    return config


@pytest.fixture
def source_config() -> Callable[[list[Path]], dict[str, Any]]:
    """Build the shipped source config reading other files."""
    return _source_config


@pytest.fixture
def write_zip() -> Callable[..., Path]:
    """Write a frame as a Bureau-style zip: ``write_zip(path, frame)``."""
    return write_zip_file


@pytest.fixture
def shared_file() -> Callable[..., Path]:
    """``shared_file("pums", "x.zip")``: a shared data file, or skip the test."""
    return require_shared
