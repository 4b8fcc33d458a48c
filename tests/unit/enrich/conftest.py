"""Shared pieces of the enrichment tests: real census candidates, the default settings, a fake-LM caller."""

from __future__ import annotations

from importlib import resources

import dspy
import pytest
from omegaconf import OmegaConf

import persona_gen.census as census
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.records import CENSUS_KEYS, Persona, stable_id
from persona_gen.testing import FakeEngine, fake_client


def adult_candidates(count: int, seed: int) -> list[Persona]:
    """Real census candidates of adults (the packaged source), built the way the pipeline builds them."""
    source = census.load_source("package:source.yaml")  # the packaged source of conf/sampler/census_demo.yaml
    frame = census.sample_personas(count, seed=seed, source=source, where="age >= 18")
    out = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        rid = str(row["source_record_id"])
        out.append(Persona(persona_id=stable_id("p", seed, i, rid), attributes={k: str(row[k]) for k in CENSUS_KEYS},
                           source_record_id=rid, provenance={"census": source.name}))
    return out


def fake_caller(path, engine: FakeEngine | None = None) -> Caller:
    """A caller of the fake LM with its own cache under ``path``; ``engine`` replaces the default fake engine."""
    client = fake_client(max_tokens=256)
    if engine is not None:
        client.engine, client.async_engine = engine, None  # this LM has no async twin: calls run on threads
        client.lm = dspy.LM("local/fake-v1", engine=engine, cache=False)
    return Caller(client, CallCache(path / "cache"), progress=False)


@pytest.fixture
def cfg():
    path = resources.files("persona_gen.conf").joinpath("stage", "enrich", "default.yaml")
    return OmegaConf.create(path.read_text(encoding="utf-8"))
