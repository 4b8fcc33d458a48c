"""Household attributes derived from the person records that share a SERIALNO.

PUMS ships household type (``HHT``/``HHT2``), family presence and age of related children (``FPARC``) and
household language (``HHL``) in the housing file only. We rebuild them from the person file with the Bureau's
definitions: the householder is the reference person; a family is a householder plus at least one person related
by birth, marriage or adoption; related children are relatives of the householder (spouse excluded) under 18; the
household language is the non-English language of the first member who speaks one, taking members in the Bureau's
relationship order (householder, spouse, parent, sibling, child, grandchild, in-laws, other relatives, stepchild,
unmarried partner, housemate or roommate, other nonrelatives; ``HouseholdSpec.language_order``) and, within one
relationship, in person-number order (``SPORDER``); a household where nobody speaks another language is "English
only" (Census 2000 SF3 and ACS technical documentation, "Household language"). The result is the Bureau's code,
decoded later with the dictionary's own wording, so derived and shipped variables share one vocabulary. Everything
here is vectorised over persons.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from persona_gen.census.spec import HouseholdSpec
from persona_gen.core.errors import ConfigError, format_error

__all__ = ["DERIVABLE", "derive_household_codes", "derive_household_income", "language_group", "language_rank"]

# Variables this module can derive, with the dictionary whose wording they use.
DERIVABLE: dict[str, str] = {
    "HHT2": "Household/family type (includes cohabiting), ACS 2019+ wording",
    "HHT": "Household/family type",
    "FPARC": "Family presence and age of related children",
    "HHL": "Household language",
}

# HHL groups from the 2016+ 4-digit language codes (LANP/HHLANP). Spanish is 1200; the Indo-European block ends at
# 1564 "Other Indo-European languages"; Uralic and Turkic (Finnish 1565 .. Turkish 1675) and everything from 4500
# (Arabic, Hebrew, African, Native American, 9999 unspecified) are "Other language"; 1690 (Mongolian) .. 3600
# (Eastern Malayo-Polynesian), Dravidian languages included, are "Asian and Pacific Island languages".
_SPANISH = 1200
_INDO_EUROPEAN = (1000, 1564)
_ASIAN_PACIFIC = (1690, 3999)


def language_group(codes: npt.NDArray[np.float64]) -> npt.NDArray[np.str_]:
    """Map 4-digit language codes to HHL codes: 2 Spanish, 3 Other Indo-European, 4 Asian/Pacific, 5 Other.

    Args:
        codes: Language codes (NaN where blank).

    Returns:
        HHL codes as strings; a blank code gives ``"1"`` (English only), the Bureau's reading of no language.
    """
    return np.select(
        [
            np.isnan(codes),
            codes == _SPANISH,
            (codes >= _INDO_EUROPEAN[0]) & (codes <= _INDO_EUROPEAN[1]),
            (codes >= _ASIAN_PACIFIC[0]) & (codes <= _ASIAN_PACIFIC[1]),
        ],
        ["1", "2", "3", "4"],
        default="5",
    ).astype(str)


def language_rank(relationship: npt.NDArray[np.str_], spec: HouseholdSpec) -> npt.NDArray[np.intp]:
    """Position of each person's relationship in the household-language order (unlisted codes come last)."""
    order = spec.language_order or _default_language_order(spec)
    rank = np.full(relationship.shape, len(order), dtype=np.intp)
    for position, code in enumerate(order):
        rank[relationship == code] = position
    return rank


def _default_language_order(spec: HouseholdSpec) -> tuple[str, ...]:
    # Without an explicit order: the roles in the Bureau's broad order (codes within a role as listed).
    names = ("householder", "spouse", "relative", "own_child", "partner", "nonrelative")
    return tuple(code for name in names for code in spec.role(name))


def _household_language(household: npt.NDArray[np.intp], relationship: npt.NDArray[np.str_],
                        lanx: npt.NDArray[np.str_], lanp: npt.NDArray[np.float64], spec: HouseholdSpec, size: int,
                        person_number: npt.ArrayLike | None) -> npt.NDArray[np.str_]:
    """HHL code of each household: the language group of its first member (in the Bureau's order) who speaks one."""
    # LANX is blank under 5 years old; a speaker without a language code speaks an unspecified "Other language".
    speaks = (lanx != spec.english_only_code) & (lanx != "")
    number = (np.arange(household.size, dtype=np.float64) if person_number is None
              else np.asarray(person_number, dtype=np.float64))
    codes = np.full(size, "1", dtype="<U1")
    rows = np.flatnonzero(speaks)
    if rows.size:
        # Sort speakers by household, then relationship rank, then person number: the first row per household wins.
        order = np.lexsort((number[rows], language_rank(relationship[rows], spec), household[rows]))
        ranked = rows[order]
        first = ranked[np.r_[True, household[ranked][1:] != household[ranked][:-1]]]
        codes[household[first]] = np.where(np.isnan(lanp[first]), "5", language_group(lanp[first]))
    return codes


def _any_by(household: npt.NDArray[np.intp], mask: npt.NDArray[np.bool_], size: int) -> npt.NDArray[np.bool_]:
    """Whether each household has at least one person for whom ``mask`` holds."""
    return np.bincount(household[mask], minlength=size) > 0


def derive_household_codes(
    household: npt.NDArray[np.intp],
    relationship: npt.ArrayLike,
    age: npt.ArrayLike,
    sex: npt.ArrayLike,
    speaks_other_language: npt.ArrayLike,
    language: npt.ArrayLike,
    spec: HouseholdSpec,
    variables: tuple[str, ...] = ("HHT2", "FPARC", "HHL"),
    person_number: npt.ArrayLike | None = None,
) -> dict[str, npt.NDArray[np.str_]]:
    """Derive household variables for every person, as dictionary codes (``""`` = blank, i.e. not applicable).

    Args:
        household: Household number of each person, ``0..H-1`` (persons sharing a SERIALNO share it).
        relationship: Relationship code of each person, as the dictionary spells it (``"00"``, ``"13"``, ...).
        age: Age in years.
        sex: Sex code (``spec.male_code`` for male).
        speaks_other_language: LANX code (``spec.english_only_code`` = speaks only English).
        language: Language spoken at home (LANP), numeric code or NaN.
        spec: The relationship roles and codes of this source (and the household-language order).
        variables: Which of :data:`DERIVABLE` to return.
        person_number: Person number within the household (``SPORDER``), the tie-break of the household-language
            order among members of one relationship; None: the order of the rows.

    Returns:
        Variable name → per-person code array.

    Raises:
        ConfigError: When asked for a variable this module cannot derive.
    """
    unknown = [v for v in variables if v not in DERIVABLE]
    if unknown:
        raise ConfigError(format_error(
            "source.columns asks to derive an unknown household variable",
            expected=f"one of {sorted(DERIVABLE)}",
            got=unknown,
            where="source.columns",
            fix="derive HHT2 (or HHT), FPARC or HHL",
        ))
    household = np.asarray(household, dtype=np.intp)
    rel = np.asarray(relationship).astype(str)
    age_arr = np.asarray(age, dtype=np.float64)
    sex_arr = np.asarray(sex).astype(str)
    lanx = np.asarray(speaks_other_language).astype(str)
    lanp = np.asarray(language, dtype=np.float64)
    size = int(household.max()) + 1 if household.size else 0

    role = {name: np.isin(rel, np.asarray(spec.role(name), dtype=str)) for name in
            ("householder", "spouse", "partner", "own_child", "relative", "group_quarters")}
    members = np.bincount(household, minlength=size)
    head = np.full(size, -1, dtype=np.intp)
    head[household[role["householder"]]] = np.flatnonzero(role["householder"])
    has_head = head >= 0
    head_row = np.where(has_head, head, 0)

    # Group quarters and households without a reference person have no household type: blank (N/A GQ/vacant).
    group_quarters = _any_by(household, role["group_quarters"], size) | ~has_head
    spouse = _any_by(household, role["spouse"], size)
    partner = _any_by(household, role["partner"], size)
    own_child_under_18 = _any_by(household, role["own_child"] & (age_arr < 18), size)
    relatives_besides_spouse = _any_by(household, role["own_child"] | role["relative"], size)
    family = spouse | relatives_besides_spouse
    related_child = role["own_child"] | role["relative"]
    child_under_5 = _any_by(household, related_child & (age_arr < 5), size)
    child_5_to_17 = _any_by(household, related_child & (age_arr >= 5) & (age_arr < 18), size)
    male = has_head & (sex_arr[head_row] == spec.male_code)
    alone = members == 1

    by_household: dict[str, npt.NDArray[np.str_]] = {}
    if "HHT2" in variables:
        by_household["HHT2"] = np.select(
            [
                group_quarters,
                spouse & own_child_under_18, spouse,
                partner & own_child_under_18, partner,
                ~male & alone, ~male & own_child_under_18, ~male & relatives_besides_spouse, ~male,
                male & alone, male & own_child_under_18, male & relatives_besides_spouse,
            ],
            ["", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11"],
            default="12",
        ).astype(str)
    if "HHT" in variables:
        by_household["HHT"] = np.select(
            [group_quarters, spouse, male & family, ~male & family, male & alone, male, ~male & alone],
            ["", "1", "2", "3", "4", "5", "6"],
            default="7",
        ).astype(str)
    if "FPARC" in variables:
        by_household["FPARC"] = np.select(
            [group_quarters | ~family, child_under_5 & child_5_to_17, child_under_5, child_5_to_17],
            ["", "3", "1", "2"],
            default="4",
        ).astype(str)
    if "HHL" in variables:
        by_household["HHL"] = np.where(group_quarters, "", _household_language(
            household, rel, lanx, lanp, spec, size, person_number)).astype(str)
    return {name: codes[household] for name, codes in by_household.items()}


def derive_household_income(household: npt.NDArray[np.intp], relationship: npt.ArrayLike,
                            income: npt.ArrayLike, spec: HouseholdSpec) -> npt.NDArray[np.float64]:
    """Each person's household income: the sum of the members' personal incomes (the Bureau's HINCP).

    Args:
        household: Household number of each person, ``0..H-1``.
        relationship: Relationship code of each person.
        income: Personal income in dollars (NaN where not applicable, i.e. under 15).
        spec: The relationship roles of this source.

    Returns:
        Household income per person; NaN in group quarters and households without a reference person.
    """
    household = np.asarray(household, dtype=np.intp)
    rel = np.asarray(relationship).astype(str)
    values = np.asarray(income, dtype=np.float64)
    size = int(household.max()) + 1 if household.size else 0
    total = np.bincount(household, weights=np.nan_to_num(values, nan=0.0), minlength=size)
    head = _any_by(household, np.isin(rel, np.asarray(spec.role("householder"), dtype=str)), size)
    group_quarters = _any_by(household, np.isin(rel, np.asarray(spec.role("group_quarters"), dtype=str)), size)
    return np.where(head & ~group_quarters, total, np.nan)[household]
