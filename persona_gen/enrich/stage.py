"""Enrichment: census skeletons -> full 33-key PERSONA personas.

1. procedural psychodemographics (Big Five, ideology, political views, religion) from sourced tables;
2. a rule-based pre-check (no LM) rejects impossible combinations early;
3. an LM writes the idiosyncratic fields, guided by a few curated categories per persona;
4. an LM checks self-consistency; rejected candidates are replaced by the next census candidate.
Every rejection is kept (reason, offending fields, raw LM text) and the drop rate is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
import numpy as np
import pandas as pd

from persona_gen.core.calls import Caller
from persona_gen.core.lm import signature_hash
from persona_gen.core.records import LM_KEYS, PERSONA_KEYS, PSYCHO_KEYS, Failure, Persona
from persona_gen.enrich.rules import precheck
from persona_gen.signatures import CheckPersonaConsistency, WritePersonaDetails

__all__ = ["ConsistencyChecker", "EnrichResult", "PersonaEnricher", "Rejection", "run_enrich"]

# Output field of WritePersonaDetails -> PERSONA key.
_DETAIL_KEYS = {k.replace(" ", "_"): k for k in LM_KEYS}


class PersonaEnricher(dspy.Module):
    """Writes the five idiosyncratic fields of a persona."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(WritePersonaDetails)

    def forward(self, persona: str, categories: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(persona=persona, categories=categories, **kwargs)


class ConsistencyChecker(dspy.Module):
    """Judges whether a persona is self-consistent, naming offending fields."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(CheckPersonaConsistency)

    def forward(self, persona: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(persona=persona, **kwargs)


@dataclass(frozen=True)
class Rejection:
    """A candidate persona that was not kept, and why."""

    persona_id: str
    source_record_id: str
    reason: str  # rule:<name> | inconsistent | lm_failure
    offending_fields: tuple[str, ...]
    message: str
    raw: str | None = None


@dataclass
class EnrichResult:
    personas: list[Persona]
    rejections: list[Rejection] = field(default_factory=list)
    candidates_used: int = 0

    @property
    def drop_rate(self) -> float:
        return len(self.rejections) / self.candidates_used if self.candidates_used else 0.0


def _pick_categories(persona_id: str, seed: int, categories: Sequence[str], k: int) -> list[str]:
    # Seeded per persona so one persona's categories do not depend on which others are in the run.
    entropy = int(hashlib.sha256(f"{seed}:{persona_id}".encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    idx = rng.choice(len(categories), size=min(k, len(categories)), replace=False)
    return [categories[i] for i in sorted(idx)]


def _ordered(attrs: dict[str, str]) -> dict[str, str]:
    return {k: attrs[k] for k in PERSONA_KEYS if k in attrs}


def _with_psychodemographics(candidates: Sequence[Persona], *, seed: int, tables: str) -> list[Persona]:
    from persona_gen.enrich.psychodemographics import sample_psychodemographics, table_provenance

    frame = pd.DataFrame([{"age": c.attributes.get("age"), "sex": c.attributes.get("sex"),
                           "race": c.attributes.get("race"), "income": c.attributes.get("income")}
                          for c in candidates])
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").fillna(0).astype(int)
    frame["income"] = pd.to_numeric(frame["income"], errors="coerce")
    psycho = sample_psychodemographics(frame, seed=seed, tables=tables)
    prov = {k: _prov_text(v) for k, v in table_provenance(tables).items() if k in PSYCHO_KEYS}
    out = []
    for cand, (_, row) in zip(candidates, psycho.iterrows(), strict=True):
        attrs = {**cand.attributes, **{k: str(row[k]) for k in PSYCHO_KEYS}}
        out.append(cand.model_copy(update={"attributes": _ordered(attrs),
                                           "provenance": {**cand.provenance, **prov}}))
    return out


def _prov_text(entry: Any) -> str:
    if isinstance(entry, dict):
        return f"{entry.get('table', '?')}@{str(entry.get('sha256', ''))[:12]} ({entry.get('source', '')})"
    return str(entry)


def _render_partial(attrs: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in attrs.items())


def run_enrich(candidates: Sequence[Persona], *, num_personas: int, cfg: Any, caller: Caller,
               seed: int) -> EnrichResult:
    """Enrich candidates in order until ``num_personas`` consistent personas exist (or candidates run out)."""
    cands = _with_psychodemographics(candidates, seed=seed, tables=cfg.get("tables", "default"))
    enricher, checker = PersonaEnricher(), ConsistencyChecker()
    lm_prov = f"{caller.client.model_id}; WritePersonaDetails@{signature_hash(WritePersonaDetails)}"
    categories = list(cfg.categories)
    result = EnrichResult(personas=[])
    queue = list(cands)
    while queue and len(result.personas) < num_personas:
        batch, queue = queue[: num_personas - len(result.personas)], queue[num_personas - len(result.personas):]
        result.candidates_used += len(batch)
        passed = []
        for cand in batch:
            fired = precheck(cand.attributes)
            if fired:
                result.rejections.append(Rejection(cand.persona_id, cand.source_record_id, f"rule:{fired[0]}",
                                                   tuple(fired[1]), "rule-based pre-check failed"))
            else:
                passed.append(cand)
        picks = [_pick_categories(c.persona_id, seed, categories, int(cfg.num_categories)) for c in passed]
        details = caller.map("enrich", enricher, [
            {"persona": _render_partial(c.attributes), "categories": ", ".join(p)} for c, p in zip(passed, picks, strict=True)
        ], desc="enrich: details")
        written = []
        for cand, cats, res in zip(passed, picks, details, strict=True):
            if not res.ok:
                f = res.failure
                result.rejections.append(Rejection(cand.persona_id, cand.source_record_id, "lm_failure", (),
                                                   f.message if f else "no output", f.raw if f else None))
                continue
            fields = res.outputs["details"]
            attrs = {**cand.attributes, **{_DETAIL_KEYS[k]: str(v).strip() for k, v in fields.items()
                                            if k in _DETAIL_KEYS}}
            prov = {**cand.provenance, **{k: lm_prov for k in LM_KEYS}, "categories": ", ".join(cats)}
            written.append(cand.model_copy(update={"attributes": _ordered(attrs), "provenance": prov}))
        if cfg.get("consistency_check", True):
            verdicts = caller.map("consistency", checker, [{"persona": p.render()} for p in written],
                                  desc="enrich: consistency")
        else:
            verdicts = [None] * len(written)
        for persona, res in zip(written, verdicts, strict=True):
            if res is None:
                result.personas.append(persona)
                continue
            if not res.ok:
                f = res.failure
                # An unreadable verdict is not evidence of inconsistency: keep the persona, record the failure.
                result.personas.append(persona.model_copy(update={"failures": (*persona.failures, f)}))
                continue
            verdict = res.outputs["verdict"]
            if verdict.get("consistent", True):
                result.personas.append(persona)
            else:
                result.rejections.append(Rejection(persona.persona_id, persona.source_record_id, "inconsistent",
                                                   tuple(verdict.get("offending_fields") or ()),
                                                   str(verdict.get("reason", ""))))
    return result


def failure_of(rejection: Rejection) -> Failure:
    return Failure(stage="enrich", kind=rejection.reason, message=rejection.message, raw=rejection.raw)
