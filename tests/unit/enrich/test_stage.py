"""The enrichment stage with the fake LM: 33 keys, provenance, resampling, recorded failures, signatures, text."""

from __future__ import annotations

from importlib import resources

import dspy
import pytest

import persona_gen.census as census
from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError
from persona_gen.core.records import CENSUS_KEYS, LM_KEYS, PERSONA_KEYS, PSYCHO_KEYS, Persona
from persona_gen.enrich.psychodemographics import TABLE_SETS
from persona_gen.enrich.render import render_attributes, summarize
from persona_gen.enrich.stage import Rejection, _offending, echoed_source, failure_of, run_enrich
from persona_gen.signatures import CheckPersonaConsistency, ConsistencyVerdict, Idiosyncrasies, WritePersonaDetails
from persona_gen.signatures.enrich import DETAIL_GUIDE
from persona_gen.testing import FakeEngine
from tests.helpers import compose_run
from tests.unit.enrich.conftest import adult_candidates, fake_caller

SEED = 7
ENRICH_OPTIONS = sorted(p.name[:-5] for p in resources.files("persona_gen.conf").joinpath("stage", "enrich").iterdir()
                        if p.name.endswith(".yaml"))
CONSISTENCY_PROMPT = "Decide whether one real person"  # first words of CheckPersonaConsistency's instructions


@pytest.fixture(scope="module")
def source():
    return census.load_source("package:source.yaml")  # the packaged source of conf/sampler/census_demo.yaml


@pytest.fixture(scope="module")
def candidates(source):
    """Real census candidates of adults, built the way the pipeline builds them."""
    return adult_candidates(8, SEED)


def _caller(tmp_path, engine: FakeEngine | None = None) -> Caller:
    return fake_caller(tmp_path, engine)


def _poisoned(cands, index: int, key: str, value: str):
    """``cands`` with one candidate's ``key`` set to ``value``."""
    bad = cands[index]
    bad = bad.model_copy(update={"attributes": {**bad.attributes, key: value}})
    return [*cands[:index], bad, *cands[index + 1:]]


def _echo_rule(marker: str):
    def rule(prompt: str, schema: dict) -> dict | None:
        if "Idiosyncrasies" not in schema.get("$defs", {}) or marker not in prompt.rsplit("[[ ## persona ## ]]")[-1]:
            return None
        copied = DETAIL_GUIDE["lifestyle"]
        return {"details": {name: copied for name in Idiosyncrasies.model_fields}}

    return rule


# ----------------------------------------------------------------------------------------------- the stage


def test_run_enrich_personas_have_all_33_keys_in_order(tmp_path, candidates, cfg):
    result = run_enrich(candidates[:4], num_personas=4, cfg=cfg, caller=_caller(tmp_path), seed=SEED)
    assert len(result.personas) == 4
    for persona in result.personas:
        assert list(persona.attributes) == list(PERSONA_KEYS)
        assert all(v.strip() for v in persona.attributes.values())
        assert [line.split(": ", 1)[0] for line in persona.render().splitlines()] == list(PERSONA_KEYS)


def test_run_enrich_provenance_names_the_maker_of_every_key(tmp_path, candidates, cfg, source):
    caller = _caller(tmp_path)
    persona = run_enrich(candidates[:1], num_personas=1, cfg=cfg, caller=caller, seed=SEED).personas[0]
    prov = persona.provenance
    assert set(PERSONA_KEYS) <= set(prov)
    assert all(prov[k] == f"census:{source.name}" for k in CENSUS_KEYS)
    assert all(prov[k].startswith("table:") for k in PSYCHO_KEYS)
    assert all(caller.client.model_id in prov[k] and "WritePersonaDetails@" in prov[k] for k in LM_KEYS)
    assert "CheckPersonaConsistency@" in prov["consistency"]


def test_run_enrich_gives_each_persona_categories_from_the_curated_set(tmp_path, candidates, cfg):
    personas = run_enrich(candidates[:3], num_personas=3, cfg=cfg, caller=_caller(tmp_path), seed=SEED).personas
    picked = [p.provenance["categories"].split(", ") for p in personas]
    assert all(len(p) == cfg.num_categories and set(p) <= set(cfg.categories) for p in picked)


def test_run_enrich_replaces_inconsistent_persona_with_next_candidate(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 1, "ancestry", "contradiction")
    result = run_enrich(cands, num_personas=3, cfg=cfg, caller=_caller(tmp_path), seed=SEED)
    assert [p.source_record_id for p in result.personas] == [cands[i].source_record_id for i in (0, 2, 3)]


def test_run_enrich_records_inconsistent_persona_with_offending_fields(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 1, "ancestry", "contradiction")
    result = run_enrich(cands, num_personas=3, cfg=cfg, caller=_caller(tmp_path), seed=SEED)
    assert [(r.source_record_id, r.reason, r.offending_fields) for r in result.rejections] == [
        (cands[1].source_record_id, "inconsistent", ("ancestry",))]


def test_run_enrich_drop_rate_is_rejected_over_used(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 1, "ancestry", "contradiction")
    result = run_enrich(cands, num_personas=3, cfg=cfg, caller=_caller(tmp_path), seed=SEED)
    assert (result.candidates_used, len(result.rejections)) == (4, 1)
    assert result.drop_rate == pytest.approx(1 / 4)


def test_run_enrich_keeps_unparseable_answer_as_rejection_with_raw_text(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 0, "ancestry", "Zzyzx")
    engine = FakeEngine(fail_when=lambda prompt: "Zzyzx" in prompt)
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=_caller(tmp_path, engine), seed=SEED)
    (rejection,) = result.rejections
    assert (rejection.reason, rejection.failure_kind) == ("lm_failure", "parse")
    assert "not json" in (rejection.raw or "")
    assert [p.source_record_id for p in result.personas] == [cands[1].source_record_id, cands[2].source_record_id]


def test_run_enrich_counts_lm_failures(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 0, "ancestry", "Zzyzx")
    caller = _caller(tmp_path, FakeEngine(fail_when=lambda prompt: "Zzyzx" in prompt))
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=caller, seed=SEED)
    assert caller.stats["enrich"].by_kind == {"parse": 1}
    assert result.failures_by_kind == {"parse": 1}


def test_run_enrich_rejects_echoed_description_as_counted_echo_failure(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 0, "ancestry", "Zzyzx")
    caller = _caller(tmp_path, FakeEngine([_echo_rule("Zzyzx")]))
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=caller, seed=SEED)
    assert [(r.reason, r.failure_kind) for r in result.rejections] == [("lm_failure", "echo")]
    assert "description of lifestyle" in result.rejections[0].message
    assert caller.stats["enrich"].by_kind == {"echo": 1}


def test_run_enrich_keeps_persona_whose_verdict_is_unreadable(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 0, "ancestry", "Zzyzx")
    engine = FakeEngine(fail_when=lambda prompt: "Zzyzx" in prompt and CONSISTENCY_PROMPT in prompt)
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=_caller(tmp_path, engine), seed=SEED)
    assert result.rejections == []
    assert [(f.stage, f.kind) for f in result.personas[0].failures] == [("consistency", "parse")]


def test_run_enrich_precheck_rejects_before_any_lm_call(tmp_path, candidates, cfg):
    cands = _poisoned(candidates, 0, "citizenship", "Not a citizen of the U.S.")
    cands = _poisoned(cands, 0, "place of birth", "Vermont/VT")
    caller = _caller(tmp_path)
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=caller, seed=SEED)
    assert [(r.reason, r.offending_fields) for r in result.rejections] == [
        ("rule:birthplace_citizenship", ("citizenship", "place of birth"))]
    assert caller.client.engine.calls == 2 * 2  # details + verdict for the two kept personas only


def test_run_enrich_same_seed_same_personas(tmp_path, candidates, cfg):
    first = run_enrich(candidates[:3], num_personas=3, cfg=cfg, caller=_caller(tmp_path / "a"), seed=SEED)
    second = run_enrich(candidates[:3], num_personas=3, cfg=cfg, caller=_caller(tmp_path / "b"), seed=SEED)
    assert [p.model_dump() for p in first.personas] == [p.model_dump() for p in second.personas]


def test_run_enrich_stops_when_candidates_run_out(tmp_path, candidates, cfg):
    cands = _poisoned(candidates[:2], 1, "ancestry", "contradiction")
    result = run_enrich(cands, num_personas=2, cfg=cfg, caller=_caller(tmp_path), seed=SEED)
    assert (len(result.personas), result.candidates_used) == (1, 2)


@pytest.mark.parametrize("option", ENRICH_OPTIONS)
def test_run_enrich_fills_psychodemographics_from_the_options_tables(tmp_path, candidates, option):
    cfg = compose_run(tmp_path / "out", tmp_path / "cache", [f"stage/enrich={option}"]).stage.enrich
    persona = run_enrich(candidates[:1], num_personas=1, cfg=cfg, caller=_caller(tmp_path), seed=SEED).personas[0]
    assert [persona.provenance[k].split("@")[0] for k in PSYCHO_KEYS] == [
        f"table:{TABLE_SETS[cfg.tables][k]}" for k in PSYCHO_KEYS]


def test_run_enrich_rejects_num_categories_beyond_the_curated_set(tmp_path, candidates, cfg):
    cfg.num_categories = len(cfg.categories) + 1
    with pytest.raises(ConfigError, match=r"stage\.enrich\.num_categories must be an int in \[1, 18\]"):
        run_enrich(candidates[:1], num_personas=1, cfg=cfg, caller=_caller(tmp_path), seed=SEED)


def test_run_enrich_rejects_empty_categories(tmp_path, candidates, cfg):
    cfg.categories = []
    with pytest.raises(ConfigError, match=r"stage\.enrich\.categories must be a non-empty list"):
        run_enrich(candidates[:1], num_personas=1, cfg=cfg, caller=_caller(tmp_path), seed=SEED)


def test_failure_of_keeps_the_lm_failure_kind():
    rejection = Rejection(persona_id="p-1", source_record_id="r-1", reason="lm_failure", message="copied", raw="{}",
                          failure_kind="echo")
    assert (failure_of(rejection).kind, failure_of(rejection).raw) == ("echo", "{}")


def test_offending_fields_map_onto_persona_keys():
    assert _offending(["Big_Five_Scores", " Age ", "age", "Family_Presence_And_Age", "job"]) == (
        "big five scores", "age", "family presence and age", "job")


# ----------------------------------------------------------------------------------------------- echo check


def test_echoed_source_flags_a_copied_description():
    description = DETAIL_GUIDE["personal_time"]
    assert echoed_source(f"{description} {description}", {"description of personal_time": description}) == (
        "description of personal_time")


def test_echoed_source_passes_an_answer_about_a_person():
    sources = dict(DETAIL_GUIDE)
    assert echoed_source("Spends free time fly fishing on the Bighorn River with her brother.", sources) is None


def test_echoed_source_ignores_short_answers_below_min_words():
    assert echoed_source("Family, religion.", {"s": "household and family, religion"}, min_words=3) is None


# ----------------------------------------------------------------------------------------------- signatures


def _schema_sent(signature, **inputs) -> dict:
    seen: list[dict] = []
    engine = FakeEngine([lambda prompt, schema: seen.append(schema)])
    with dspy.context(lm=dspy.LM("local/schema", engine=engine, cache=False), adapter=dspy.JSONAdapter()):
        dspy.Predict(signature)(**inputs)
    return seen[0]


def test_signature_offending_fields_bound_reaches_json_schema_as_max_items():
    schema = _schema_sent(CheckPersonaConsistency, persona="age: 40")
    field = schema["$defs"]["ConsistencyVerdict"]["properties"]["offending_fields"]
    assert (field["maxItems"], field["items"]["maxLength"]) == (6, 80)


def test_signature_detail_bounds_reach_json_schema_as_max_length():
    schema = _schema_sent(WritePersonaDetails, persona="age: 40", categories="Travel")
    props = schema["$defs"]["Idiosyncrasies"]["properties"]
    assert all(p["minLength"] == 1 and p["maxLength"] >= 1500 for p in props.values())


def test_signature_detail_guide_is_what_the_instructions_say():
    instructions = " ".join(WritePersonaDetails.instructions.split())
    assert all(f"- {name}: {text}" in instructions for name, text in DETAIL_GUIDE.items())
    assert set(DETAIL_GUIDE) == set(Idiosyncrasies.model_fields)


def test_signature_bounds_accept_a_long_server_answer():
    three_sentences = ("She runs the night shift at a regional hospital's intensive care unit, twelve hours at a "
                       "time, three nights a week. ") * 4
    details = Idiosyncrasies(**{name: three_sentences for name in Idiosyncrasies.model_fields})
    verdict = ConsistencyVerdict(reason=three_sentences, offending_fields=["detailed job description", "age"],
                                 consistent=False)
    assert len(details.lifestyle) > 400 and not verdict.consistent


# ----------------------------------------------------------------------------------------------- rendering


ATTRS = {"age": "45", "sex": "Female", "race": "White alone", "education": "Bachelor's degree",
         "employment status": "Civilian employed, at work", "occupation category": "MED-Registered Nurses",
         "income": "52000", "marital status": "Married", "place of birth": "Vermont/VT", "ideology": "Liberal",
         "political views": "Strong Democrat", "religion": "Catholic"}


def test_render_attributes_matches_persona_render():
    persona = Persona(persona_id="p", attributes=ATTRS, source_record_id="r")
    assert render_attributes(ATTRS) == persona.render()


def test_render_attributes_follows_persona_key_order():
    shuffled = dict(reversed(list(ATTRS.items())))
    assert [line.split(": ")[0] for line in render_attributes(shuffled).splitlines()] == [
        k for k in PERSONA_KEYS if k in ATTRS]


def test_summarize_reads_as_one_compact_line():
    assert summarize(ATTRS) == ("45-year-old White woman, born in Vermont; Bachelor's degree; works as Registered "
                                "Nurses; income $52,000; married; Liberal, Strong Democrat; Catholic")


def test_summarize_leaves_out_not_applicable_labels():
    child = {**ATTRS, "age": "9", "sex": "Male", "education": "Grade 3", "income": census.NOT_APPLICABLE + " (x)",
             "employment status": "Not applicable (less than 16 years old)",
             "marital status": "Never married or under 15 years old", "ideology": "Too young to have political views",
             "political views": "Too young to have political views"}
    assert summarize(child) == "9-year-old White boy, born in Vermont; Grade 3; Catholic"
