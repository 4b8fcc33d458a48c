"""The rule-based pre-check: each rule fires on a hand-made impossible persona, none on real census records."""

from __future__ import annotations

import pytest

import persona_gen.census as census
from persona_gen.enrich import rules
from persona_gen.enrich.rules import RULES, fired_rules, precheck

# A possible person in the census wording of the shipped ACS 2018 dictionary.
BASE = {
    "age": "34",
    "sex": "Female",
    "race": "White alone",
    "ancestry": "German",
    "household language": "English only",
    "education": "Bachelor's degree",
    "employment status": "Civilian employed, at work",
    "class of worker": "Local government employee (city, county, etc.)",
    "industry category": "EDU-Elementary And Secondary Schools",
    "occupation category": "EDU-Elementary And Middle School Teachers",
    "income": "41000",
    "marital status": "Married",
    "household type": "Married couple household with children of the householder less than 18",
    "family presence and age": "With related children 5 to 17 years only",
    "place of birth": "Vermont/VT",
    "citizenship": "Born in the U.S.",
    "veteran status": "Never served in the military",
    "disability": "Without a disability",
    "health insurance": "With health insurance coverage",
    "cognitive difficulty": "No",
    "ability to speak english": "Not applicable (less than 5 years old/speaks only English)",
    "vision difficulty": "No",
    "fertility": "No",
    "hearing difficulty": "No",
}
CHILD = {
    **BASE, "age": "10", "education": "Grade 4", "employment status": "Not applicable (less than 16 years old)",
    "class of worker": "Not applicable (less than 16 years old/NILF who last worked more than 5 years ago or never "
                       "worked)",
    "industry category": "Not applicable (less than 16 years old/NILF who last worked more than 5 years ago or never "
                         "worked)",
    "occupation category": "Not applicable (less than 16 years old/NILF who last worked more than 5 years ago or "
                           "never worked)",
    "income": "Not applicable (less than 15 years old)", "marital status": "Never married or under 15 years old",
    "veteran status": "Not applicable (less than 17 years old)",
    "fertility": "Not applicable (less than 15 years/greater than 50 years/ male)",
}  # fmt: skip
NILF = {**BASE, "employment status": "Not in labor force", "class of worker": CHILD["class of worker"],
        "industry category": CHILD["industry category"], "occupation category": CHILD["occupation category"]}

# (case, rule expected to fire, impossible persona)
CASES = [
    ("minor_with_doctorate", "minor_with_degree", {**CHILD, "age": "15", "education": "Doctorate degree"}),
    ("married_child", "child_married", {**CHILD, "marital status": "Married"}),
    ("toddler_in_school", "education_age_universe", {**CHILD, "age": "2", "education": "Grade 1"}),
    ("adult_without_schooling_answer", "education_age_universe",
     {**BASE, "education": "Not applicable (less than 3 years old)"}),
    ("employed_child", "employment_age_universe", {**CHILD, "employment status": "Civilian employed, at work"}),
    ("adult_employment_na", "employment_age_universe",
     {**NILF, "employment status": "Not applicable (less than 16 years old)"}),
    ("child_with_income", "income_age_universe", {**CHILD, "income": "3000"}),
    ("adult_income_na", "income_age_universe", {**BASE, "income": "Not applicable (less than 15 years old)"}),
    ("child_veteran", "veteran_age_universe", {**CHILD, "veteran status": "On active duty in the past, but not now"}),
    ("adult_veteran_na", "veteran_age_universe", {**BASE, "veteran status": "Not applicable (less than 17 years old)"}),
    ("infant_cognitive_answer", "cognitive_age_universe", {**CHILD, "age": "1", "cognitive difficulty": "Yes"}),
    ("adult_cognitive_na", "cognitive_age_universe",
     {**BASE, "cognitive difficulty": "Not applicable (less than 5 years old)"}),
    ("child_with_occupation", "young_worker",
     {**CHILD, "occupation category": "SAL-Cashiers", "class of worker": BASE["class of worker"]}),
    ("infant_english_answer", "young_speaks_english", {**CHILD, "age": "3", "ability to speak english": "Very well"}),
    ("man_with_fertility", "fertility_universe", {**BASE, "sex": "Male", "fertility": "Yes"}),
    ("woman_60_with_fertility", "fertility_universe", {**NILF, "age": "60", "fertility": "No"}),
    ("woman_30_fertility_na", "fertility_universe", {**BASE, "fertility": CHILD["fertility"]}),
    ("employed_without_class", "employed_without_job", {**BASE, "class of worker": CHILD["class of worker"]}),
    ("employed_long_unemployed", "employed_without_job",
     {**BASE, "class of worker": "Unemployed and last worked 5 years ago or earlier or never worked"}),
    ("soldier_never_served", "armed_forces_duty", {**BASE, "employment status": "Armed forces, at work",
                                                   "class of worker": "Federal government employee"}),
    ("civilian_on_active_duty", "armed_forces_duty", {**BASE, "veteran status": "Now on active duty"}),
    ("difficulty_without_disability", "disability_without_difficulty", {**BASE, "hearing difficulty": "Yes"}),
    ("us_born_abroad", "birthplace_citizenship", {**BASE, "place of birth": "Mexico"}),
    ("naturalized_state_born", "birthplace_citizenship",
     {**BASE, "citizenship": "U.S. citizen by naturalization"}),
    ("territory_born_in_country", "birthplace_citizenship", {
        **BASE, "place of birth": "Canada",
        "citizenship": "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or the Northern Marianas"}),
    ("alone_with_children", "alone_with_children",
     {**BASE, "household type": "Female householder, no spouse/partner present, living alone"}),
]


def test_rules_base_personas_pass():
    assert [fired_rules(p) for p in (BASE, CHILD, NILF)] == [{}, {}, {}]


@pytest.mark.parametrize(("case", "rule", "persona"), CASES, ids=[c[0] for c in CASES])
def test_rules_rule_fires_on_impossible_persona(case, rule, persona):
    fired = fired_rules(persona)
    assert rule in fired, f"{case}: {fired}"
    assert set(fired[rule]) <= set(persona)


def test_rules_every_rule_has_an_impossible_case():
    assert {rule for _, rule, _ in CASES} == set(RULES)


def test_rules_precheck_names_first_rule_and_fields():
    assert precheck(CASES[0][2]) == ("minor_with_degree", ["age", "education"])


def test_rules_abstain_when_source_lacks_the_keys():
    lacking = {k: census.NOT_AVAILABLE for k in BASE} | {"age": "10", "sex": "Male", "income": "5000"}
    lacking["income"] = census.NOT_AVAILABLE
    assert fired_rules(lacking) == {}


def test_rules_label_prefixes_match_census_wording():
    assert census.NOT_APPLICABLE.startswith(rules.NOT_APPLICABLE)
    assert census.NOT_AVAILABLE.startswith(rules.NOT_AVAILABLE)


def test_rules_fire_on_no_real_census_record():
    source = census.load_source("package:source.yaml")  # conf/sampler/census_demo.yaml
    frame = census.sample_personas(5_000, seed=20240725, source=source)
    records = frame[list(census.CENSUS_KEYS)].astype(str).to_dict(orient="records")
    false_positives = [(r["age"], fired) for r in records if (fired := fired_rules(r))]
    assert false_positives == []
