"""Enrichment: psychodemographics from sourced tables, LM-written idiosyncrasies, consistency checks."""

from persona_gen.enrich.psychodemographics import (
    PSYCHO_KEYS,
    describe_joints,
    sample_psychodemographics,
    table_provenance,
)
from persona_gen.enrich.render import render_attributes, summarize
from persona_gen.enrich.rules import RULES, precheck
from persona_gen.enrich.stage import ConsistencyChecker, EnrichResult, PersonaEnricher, Rejection, run_enrich

__all__ = [
    "PSYCHO_KEYS",
    "RULES",
    "ConsistencyChecker",
    "EnrichResult",
    "PersonaEnricher",
    "Rejection",
    "describe_joints",
    "precheck",
    "render_attributes",
    "run_enrich",
    "sample_psychodemographics",
    "summarize",
    "table_provenance",
]
