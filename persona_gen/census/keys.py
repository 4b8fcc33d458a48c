"""Names shared by the census stage: the persona keys it fills and how its extra columns are named."""

from __future__ import annotations

__all__ = [
    "CENSUS_KEYS",
    "CODE_PREFIX",
    "DERIVED_KEYS",
    "HOUSEHOLD_INCOME",
    "NOT_APPLICABLE",
    "NOT_AVAILABLE",
    "RECORD_ID",
    "STATE",
]

# The census part of a PERSONA persona, in the order of the paper's attribute list (arXiv 2407.17387, App. A).
CENSUS_KEYS: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "ancestry",
    "household language",
    "education",
    "employment status",
    "class of worker",
    "industry category",
    "occupation category",
    "income",
    "marital status",
    "household type",
    "family presence and age",
    "place of birth",
    "citizenship",
    "veteran status",
    "disability",
    "health insurance",
    "cognitive difficulty",
    "ability to speak english",
    "vision difficulty",
    "fertility",
    "hearing difficulty",
)

# Housing-level variables that PUMS person files do not carry: we derive them from the persons who share a
# SERIALNO (see household.py), so the dataset card must say they are derived.
DERIVED_KEYS: frozenset[str] = frozenset({"household language", "household type", "family presence and age"})

# Household income: the sum of the household members' (adjusted) personal incomes, the Bureau's HINCP rebuilt
# from the person file; NaN in group quarters. Not a persona key: the enrichment conditions on it (surveys such as
# ANES ask family income) and drops it, so it never reaches the published persona.
HOUSEHOLD_INCOME = "household income"

# Raw codes travel beside the labels as ``code.<VARIABLE>`` so a persona can be traced back to the microdata.
CODE_PREFIX = "code."
STATE = "state"
RECORD_ID = "source_record_id"

# One spelling for every "N/A (...)" label of the Bureau's dictionaries.
NOT_APPLICABLE = "Not applicable"
# A key the configured source does not have (e.g. ancestry in the NIST excerpt): explicit, never NaN.
NOT_AVAILABLE = "Not available (not in this census source)"
