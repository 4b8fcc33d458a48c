"""Census stage: weighted joint sampling of decoded ACS PUMS person records (numpy, no LM)."""

from __future__ import annotations

from persona_gen.census.dictionary import DataDictionary, Variable, normalize_label
from persona_gen.census.fidelity import (
    fidelity_report,
    fidelity_summary,
    population_statement,
    run_fidelity,
    write_fidelity,
)
from persona_gen.census.household import derive_household_codes
from persona_gen.census.keys import (
    CENSUS_KEYS,
    CODE_PREFIX,
    DERIVED_KEYS,
    HOUSEHOLD_INCOME,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    RECORD_ID,
    STATE,
)
from persona_gen.census.sampler import sample_personas
from persona_gen.census.source import DEFAULT_SOURCE, CensusSource, load_source
from persona_gen.census.spec import HouseholdSpec, SourceSpec, parse_source_spec

__all__ = [
    "CENSUS_KEYS",
    "CODE_PREFIX",
    "DEFAULT_SOURCE",
    "DERIVED_KEYS",
    "HOUSEHOLD_INCOME",
    "NOT_APPLICABLE",
    "NOT_AVAILABLE",
    "RECORD_ID",
    "STATE",
    "CensusSource",
    "DataDictionary",
    "HouseholdSpec",
    "SourceSpec",
    "Variable",
    "derive_household_codes",
    "fidelity_report",
    "fidelity_summary",
    "load_source",
    "normalize_label",
    "parse_source_spec",
    "population_statement",
    "run_fidelity",
    "sample_personas",
    "write_fidelity",
]
