"""Cheap rule-based consistency pre-checks, run before any LM call.

Each rule reads census attributes only (in the decoded wording of the ACS PUMS data dictionary that
``persona_gen.census`` ships) and names the fields it finds in conflict. A rule encodes a combination that the
ACS cannot produce: a question's universe (who is asked: ESR and COW from age 16, MIL from 17, PINCP and MAR from
15, DREM and ENG from 5, FER for women 15 to 50), a recode's definition (DIS from the difficulty items, CIT from the
place of birth), or the Bureau's edits (no degree before 18). None fires on a real record: the unit tests run every
rule over a 5,000-person census sample.

A rule needs both of its attributes in ACS wording: a key that is missing, empty or ``Not available`` (a source
without it) makes the rule abstain, so sources with other wordings pass through unchecked rather than misjudged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["RULES", "fired_rules", "precheck"]

Rule = Callable[[Mapping[str, str]], list[str]]

# The census stage spells every N/A label as "Not applicable (...)" and a key its source lacks as
# "Not available (...)" (persona_gen.census.NOT_APPLICABLE / NOT_AVAILABLE; a test checks they agree).
NOT_APPLICABLE = "Not applicable"
NOT_AVAILABLE = "Not available"

_DEGREE = re.compile(r"bachelor's degree|master's degree|professional degree|doctorate degree", re.I)
_EVER_MARRIED = re.compile(r"^(married|widowed|divorced|separated)\b", re.I)
_EMPLOYED = re.compile(r"^(civilian employed|armed forces)", re.I)
_ARMED_FORCES = re.compile(r"^armed forces", re.I)
_NOW_ACTIVE = "Now on active duty"
_LONG_UNEMPLOYED = re.compile(r"^unemployed and last worked", re.I)
# POBP labels of the 50 states and DC end in their postal code ("Vermont/VT"); territories and countries do not.
_US_STATE = re.compile(r"/[A-Z]{2}$")
# The territories of CIT's "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or the Northern Marianas". American
# Samoa is not one of them: its natives are nationals, not citizens, and show up as naturalized.
_CITIZEN_TERRITORIES = frozenset({"Puerto Rico", "Guam", "US Virgin Islands",
                                  "Commonwealth of the Northern Mariana Islands"})
_BORN_IN_US = "Born in the U.S."
_BORN_IN_TERRITORY = re.compile(r"^born in puerto rico", re.I)
_JOB_KEYS = ("class of worker", "industry category", "occupation category")
_DIFFICULTIES = ("cognitive difficulty", "vision difficulty", "hearing difficulty")


def _value(a: Mapping[str, str], key: str) -> str | None:
    """The attribute in census wording, or None when it is absent or the source does not have it."""
    value = str(a.get(key, "") or "").strip()
    if not value or value.startswith(NOT_AVAILABLE):
        return None
    return value


def _age(a: Mapping[str, str]) -> int | None:
    value = _value(a, "age")
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _na(value: str) -> bool:
    return value.startswith(NOT_APPLICABLE)


def _universe(key: str, min_age: int) -> Rule:
    """Asked from ``min_age``: a younger person has the N/A label, an older one an answer."""

    def rule(a: Mapping[str, str]) -> list[str]:
        age, value = _age(a), _value(a, key)
        if age is None or value is None:
            return []
        return ["age", key] if (age < min_age) != _na(value) else []

    rule.__doc__ = f"{key!r} is asked from age {min_age}: N/A exactly below it."
    return rule


def _minor_with_degree(a: Mapping[str, str]) -> list[str]:
    """A bachelor's or higher degree before 18."""
    age, edu = _age(a), _value(a, "education")
    return ["age", "education"] if age is not None and edu and age < 18 and _DEGREE.search(edu) else []


def _child_married(a: Mapping[str, str]) -> list[str]:
    """Ever married under 15 (MAR codes everyone under 15 'Never married or under 15 years old')."""
    age, mar = _age(a), _value(a, "marital status")
    return ["age", "marital status"] if age is not None and mar and age < 15 and _EVER_MARRIED.match(mar) else []


def _young_speaks_english(a: Mapping[str, str]) -> list[str]:
    """An English-ability answer under 5 (ENG is asked from 5, and only of speakers of another language)."""
    age, eng = _age(a), _value(a, "ability to speak english")
    return ["age", "ability to speak english"] if age is not None and eng and age < 5 and not _na(eng) else []


def _fertility_universe(a: Mapping[str, str]) -> list[str]:
    """FER is asked of women 15 to 50 only, and all of them answer."""
    age, sex, fer = _age(a), _value(a, "sex"), _value(a, "fertility")
    if age is None or sex not in ("Male", "Female") or fer is None:
        return []
    asked = sex == "Female" and 15 <= age <= 50
    return ["age", "sex", "fertility"] if asked == _na(fer) else []


def _young_worker(a: Mapping[str, str]) -> list[str]:
    """A class of worker, industry or occupation under 16 (COW, INDP and OCCP are asked from 16)."""
    age = _age(a)
    if age is None or age >= 16:
        return []
    hit = [k for k in _JOB_KEYS if (v := _value(a, k)) is not None and not _na(v)]
    return ["age", *hit] if hit else []


def _employed_without_job(a: Mapping[str, str]) -> list[str]:
    """An employed person has a class of worker; 'unemployed and last worked 5 years ago' only with ESR unemployed."""
    esr, cow = _value(a, "employment status"), _value(a, "class of worker")
    if esr is None or cow is None:
        return []
    if _EMPLOYED.match(esr) and (_na(cow) or _LONG_UNEMPLOYED.match(cow)):
        return ["employment status", "class of worker"]
    if _LONG_UNEMPLOYED.match(cow) and esr != "Unemployed":
        return ["employment status", "class of worker"]
    return []


def _armed_forces_duty(a: Mapping[str, str]) -> list[str]:
    """On active duty now is exactly the armed forces (Reserves in training may also be in the armed forces)."""
    esr, mil = _value(a, "employment status"), _value(a, "veteran status")
    if esr is None or mil is None:
        return []
    if (mil == _NOW_ACTIVE) != bool(_ARMED_FORCES.match(esr)) and not (
            _ARMED_FORCES.match(esr) and mil.startswith("Only on active duty for training")):
        return ["employment status", "veteran status"]
    return []


def _disability_without_difficulty(a: Mapping[str, str]) -> list[str]:
    """DIS is a recode of the difficulty items: any difficulty means 'With a disability'."""
    dis = _value(a, "disability")
    if dis != "Without a disability":
        return []
    hit = [k for k in _DIFFICULTIES if _value(a, k) == "Yes"]
    return ["disability", *hit] if hit else []


def _birthplace_citizenship(a: Mapping[str, str]) -> list[str]:
    """CIT 'Born in the U.S.' is exactly a birth in a state or DC; 'Born in Puerto Rico, ...' one there."""
    cit, pob = _value(a, "citizenship"), _value(a, "place of birth")
    if cit is None or pob is None:
        return []
    in_state = bool(_US_STATE.search(pob))
    if (cit == _BORN_IN_US) != in_state or (_BORN_IN_TERRITORY.match(cit) and pob not in _CITIZEN_TERRITORIES):
        return ["citizenship", "place of birth"]
    return []


def _alone_with_children(a: Mapping[str, str]) -> list[str]:
    """A person living alone has no family, so no related children."""
    hht, fam = _value(a, "household type"), _value(a, "family presence and age")
    if hht and fam and "living alone" in hht and fam.startswith("With related children"):
        return ["household type", "family presence and age"]
    return []


RULES: dict[str, Rule] = {
    "minor_with_degree": _minor_with_degree,
    "child_married": _child_married,
    "education_age_universe": _universe("education", 3),
    "employment_age_universe": _universe("employment status", 16),
    "income_age_universe": _universe("income", 15),
    "veteran_age_universe": _universe("veteran status", 17),
    "cognitive_age_universe": _universe("cognitive difficulty", 5),
    "young_worker": _young_worker,
    "young_speaks_english": _young_speaks_english,
    "fertility_universe": _fertility_universe,
    "employed_without_job": _employed_without_job,
    "armed_forces_duty": _armed_forces_duty,
    "disability_without_difficulty": _disability_without_difficulty,
    "birthplace_citizenship": _birthplace_citizenship,
    "alone_with_children": _alone_with_children,
}


def fired_rules(attributes: Mapping[str, str]) -> dict[str, list[str]]:
    """Every rule that fires, with the fields it names, in ``RULES`` order."""
    return {name: fields for name, rule in RULES.items() if (fields := rule(attributes))}


def precheck(attributes: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """The first rule that fires, with the offending fields; None when the persona passes."""
    for name, rule in RULES.items():
        fields = rule(attributes)
        if fields:
            return name, fields
    return None
