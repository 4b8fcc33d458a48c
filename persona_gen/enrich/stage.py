"""Enrichment: census skeletons -> full 33-key PERSONA personas.

1. procedural psychodemographics (Big Five, ideology, political views, religion) from sourced tables;
2. a rule-based pre-check (no LM) rejects impossible combinations early;
3. an LM writes the idiosyncratic fields, guided by a few curated categories per persona; an answer that only
   echoes a field description (or is blank) is a failure, like one that does not parse;
4. an LM checks self-consistency; rejected candidates are replaced by the next census candidate.
Every rejection is kept (reason, offending fields, failure kind, raw LM text) and the drop rate is reported.
Every persona records what made each of its 33 fields (``Persona.provenance``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
import numpy as np
import pandas as pd

from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import signature_hash
from persona_gen.core.records import LM_KEYS, PERSONA_KEYS, PSYCHO_KEYS, Failure, Persona
from persona_gen.enrich import rules
from persona_gen.enrich.render import render_attributes
from persona_gen.signatures import CheckPersonaConsistency, Idiosyncrasies, WritePersonaDetails
from persona_gen.signatures.enrich import DETAIL_GUIDE

__all__ = [
    "ConsistencyChecker",
    "EnrichResult",
    "PersonaEnricher",
    "Rejection",
    "echoed_source",
    "failure_of",
    "run_enrich",
]

_WHERE = "stage.enrich (conf/stage/enrich/)"
# Output field of WritePersonaDetails -> PERSONA key.
_DETAIL_KEYS = {k.replace(" ", "_"): k for k in LM_KEYS}


def detail_keys(signature: Any = None) -> dict[str, str]:
    """Field of the signature's ``details`` output -> persona attribute (``favorite_food`` -> ``favorite food``).

    The default signature writes PERSONA's five LM keys; a signature of your own whose ``details`` model has more
    fields writes more attributes, with no list to edit.
    """
    if signature is None or signature is WritePersonaDetails:
        return dict(_DETAIL_KEYS)
    model = signature.output_fields["details"].annotation
    return {name: name.replace("_", " ") for name in model.model_fields}
# Share of an answer's words found in one description (or field name) that makes it an echo. Two sentences
# about a real person share a few words with a description ("free time"), never four in five.
ECHO_THRESHOLD = 0.8
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it its this that these those "
    "they them their he she his her who what which when if not no do does did will has have had s".split())


class PersonaEnricher(dspy.Module):
    """Writes the five idiosyncratic fields of a persona."""

    def __init__(self, signature: Any = None) -> None:
        super().__init__()
        self.predict = dspy.Predict(signature or WritePersonaDetails)

    def forward(self, persona: str, categories: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(persona=persona, categories=categories, **kwargs)

    async def aforward(self, persona: str, categories: str, **kwargs: Any) -> dspy.Prediction:
        return await self.predict.acall(persona=persona, categories=categories, **kwargs)


class ConsistencyChecker(dspy.Module):
    """Judges whether a persona is self-consistent, naming offending fields."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(CheckPersonaConsistency)

    def forward(self, persona: str, **kwargs: Any) -> dspy.Prediction:
        return self.predict(persona=persona, **kwargs)

    async def aforward(self, persona: str, **kwargs: Any) -> dspy.Prediction:
        return await self.predict.acall(persona=persona, **kwargs)


@dataclass(frozen=True)
class Rejection:
    """A candidate persona that was not kept, and why."""

    persona_id: str
    source_record_id: str
    reason: str  # rule:<name> | inconsistent | lm_failure
    offending_fields: tuple[str, ...]
    message: str
    raw: str | None = None
    failure_kind: str | None = None  # lm_failure only: parse | lm_error | echo | empty


@dataclass
class EnrichResult:
    personas: list[Persona]
    rejections: list[Rejection] = field(default_factory=list)
    candidates_used: int = 0

    @property
    def drop_rate(self) -> float:
        """Rejected candidates / candidates used (the paper reports about 8.5%)."""
        return len(self.rejections) / self.candidates_used if self.candidates_used else 0.0

    @property
    def by_reason(self) -> dict[str, int]:
        """Rejections per reason (``rule:<name>``, ``inconsistent``, ``lm_failure``)."""
        return dict(sorted(Counter(r.reason for r in self.rejections).items()))

    @property
    def failures_by_kind(self) -> dict[str, int]:
        """LM failures of this stage per kind: rejected candidates' and kept personas' (unreadable verdicts)."""
        kinds = [r.failure_kind for r in self.rejections if r.failure_kind]
        kinds += [f.kind for p in self.personas for f in p.failures if f.stage in ("enrich", "consistency")]
        return dict(sorted(Counter(kinds).items()))


def _check_cfg(cfg: Any) -> None:
    categories = cfg.get("categories")
    if not categories or any(not str(c).strip() for c in categories):
        raise ConfigError(format_error("stage.enrich.categories", expected="a non-empty list of category names",
                                       got=None if categories is None else list(categories), where=_WHERE,
                                       fix="list the curated categories in conf/stage/enrich/default.yaml"))
    k = cfg.get("num_categories")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(categories):
        raise ConfigError(format_error("stage.enrich.num_categories", expected=f"an int in [1, {len(categories)}]",
                                       got=k, where=_WHERE, fix="pick a few categories per persona, e.g. 3"))


def _pick_categories(persona_id: str, seed: int, categories: Sequence[str], k: int) -> list[str]:
    # Seeded per persona so one persona's categories do not depend on which others are in the run.
    entropy = int(hashlib.sha256(f"{seed}:{persona_id}".encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    idx = rng.choice(len(categories), size=min(k, len(categories)), replace=False)
    return [categories[i] for i in sorted(idx)]


def _ordered(attrs: Mapping[str, str]) -> dict[str, str]:
    """PERSONA's 33 keys in the released order, then any attribute a source or signature adds, in its order
    (household income conditions the psychodemographic draw only and is never an attribute)."""
    from persona_gen.census.keys import HOUSEHOLD_INCOME

    known = {k: attrs[k] for k in PERSONA_KEYS if k in attrs}
    return {**known, **{k: v for k, v in attrs.items() if k not in known and k != HOUSEHOLD_INCOME}}


def _table_prov(entry: Any) -> str:
    if isinstance(entry, dict):
        return f"table:{entry.get('table', '?')}@{str(entry.get('sha256', ''))[:12]} ({entry.get('source', '')})"
    return f"table:{entry}"


def _census_prov(cand: Persona) -> dict[str, str]:
    """Every census key says the census source; a key the candidate already traced keeps its own entry."""
    source = str(cand.provenance.get("census", "")).strip() or "unnamed source"
    from persona_gen.census.keys import HOUSEHOLD_INCOME

    keys = [k for k in PERSONA_KEYS if k not in PSYCHO_KEYS and k not in LM_KEYS]
    keys += [k for k in cand.attributes if k not in keys and k not in PERSONA_KEYS and k != HOUSEHOLD_INCOME]
    return {k: cand.provenance.get(k) or f"census:{source}" for k in keys}


def _with_psychodemographics(candidates: Sequence[Persona], *, seed: int, tables: str) -> list[Persona]:
    from persona_gen.enrich.psychodemographics import HOUSEHOLD_INCOME, sample_psychodemographics, table_provenance

    if not candidates:
        return []
    # Household income (the census stage's, not a persona key) conditions the income tables when every candidate has
    # it; _ordered below drops it from the persona.
    extra = (HOUSEHOLD_INCOME,) if all(HOUSEHOLD_INCOME in c.attributes for c in candidates) else ()
    frame = pd.DataFrame([{k: c.attributes.get(k) for k in ("age", "sex", "race", "income", *extra)}
                          for c in candidates])
    psycho = sample_psychodemographics(frame, seed=seed, tables=tables)
    prov = {k: _table_prov(v) for k, v in table_provenance(tables).items() if k in PSYCHO_KEYS}
    out = []
    for cand, (_, row) in zip(candidates, psycho.iterrows(), strict=True):
        attrs = {**cand.attributes, **{k: str(row[k]) for k in PSYCHO_KEYS}}
        provenance = {**cand.provenance, **_census_prov(cand), **prov}
        out.append(cand.model_copy(update={"attributes": _ordered(attrs), "provenance": provenance}))
    return out


def _words(text: str) -> list[str]:
    # Content words: numbers say nothing about copying ("1.1.1" is junk, but no echo of "1. `persona`").
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and not w.isdigit()]


@functools.cache
def _echo_tiers() -> tuple[tuple[dict[str, str], float, int], ...]:
    """What the prompt shows the model that an answer could copy: ``(sources by name, threshold, min_words)``.

    1. each field's guide (DETAIL_GUIDE) and name, and the output field's desc: any copy of one of them;
    2. each sentence of the prompt's fixed text (instructions, the adapter's framing), for answers of 3 or more
       content words; SmolLM2-135M copied "Outputs will be a JSON object with the following fields." into all
       five fields. The schema line is left out: it holds every description at once, too many words;
    3. all descriptions and names together, for answers of 5 or more content words at 90%: a run-on
       concatenation of several descriptions.
    """
    fields = {f"description of {name}": text for name, text in DETAIL_GUIDE.items()}
    fields.update({f"name of {name}": name.replace("_", " ") for name in Idiosyncrasies.model_fields})
    fields["description of details"] = str(WritePersonaDetails.output_fields["details"].json_schema_extra["desc"])
    adapter = dspy.JSONAdapter()
    prompt = "\n".join((adapter.format_field_description(WritePersonaDetails),
                        adapter.format_field_structure(WritePersonaDetails),
                        adapter.format_task_description(WritePersonaDetails)))
    text = " ".join(line.strip() for line in prompt.splitlines() if "{" not in line and "[[" not in line)
    sentences = {f"prompt sentence {s[:40]!r}": s for s in _SENTENCE.split(text) if _words(s)}
    together = {"field descriptions together": " ".join(fields.values())}
    return (fields, ECHO_THRESHOLD, 1), (sentences, ECHO_THRESHOLD, 3), (together, 0.9, 5)


def echoed_source(value: str, sources: Mapping[str, str], *, threshold: float = ECHO_THRESHOLD,
                  min_words: int = 1) -> str | None:
    """The name of the source that ``value`` merely echoes, or None.

    ``value`` echoes a source when at least ``threshold`` of its content words (stopwords left out) occur in
    that source: a small model that copies a field description or a sentence of the prompt (once, twice, with
    a word changed) is caught; a sentence about a person shares a word or two with a description, not 80%.
    A value of fewer than ``min_words`` content words is never an echo (for long sources, whose many words a
    terse but real answer may happen to fall in).
    """
    words = _words(value)
    if len(words) < max(1, min_words):
        return None
    for name, text in sources.items():
        vocabulary = set(_words(text))
        if vocabulary and sum(w in vocabulary for w in words) / len(words) >= threshold:
            return name
    return None


def _detail_failure(details: Mapping[str, Any], keys: Mapping[str, str] | None = None) -> Failure | None:
    """A failure of kind ``empty`` or ``echo`` for an answer that parsed but says nothing; None for a real one."""
    raw = json.dumps(dict(details), ensure_ascii=False, sort_keys=True)
    for name in keys or _DETAIL_KEYS:
        value = str(details.get(name, "")).strip()
        if not value:
            return Failure(stage="enrich", kind="empty", message=f"{name} is blank", raw=raw)
        echoed = next((found for sources, threshold, min_words in _echo_tiers()
                       if (found := echoed_source(value, sources, threshold=threshold, min_words=min_words))), None)
        if echoed:
            return Failure(stage="enrich", kind="echo", message=f"{name} echoes the {echoed}: {value[:120]!r}",
                           raw=raw)
    return None


def _count_failure(caller: Caller, stage: str, kind: str) -> None:
    # A parsed answer that says nothing is a failed call: count it where parse failures are counted, so the
    # run's max_failure_rate sees it. Called from the stage's own thread after Caller.map has returned.
    stats = caller.stats.setdefault(stage, CallStats())
    stats.failures += 1
    stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1


def _offending(names: Iterable[Any]) -> tuple[str, ...]:
    """The verdict's field names as PERSONA keys where they match one ('Big_Five_Scores' -> 'big five scores')."""
    out: dict[str, None] = {}
    for name in names:
        text = " ".join(_WORD.findall(str(name).lower().replace("_", " ")))
        key = text if text in PERSONA_KEYS else str(name).strip()
        if key:
            out[key] = None
    return tuple(out)


def _source_hash(module: Any) -> str:
    try:
        return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:12]
    except (OSError, TypeError):  # no source shipped: name the rules instead
        return hashlib.sha256(",".join(rules.RULES).encode()).hexdigest()[:12]


def run_enrich(candidates: Sequence[Persona], *, num_personas: int, cfg: Any, caller: Caller,
               seed: int, signature: Any = None) -> EnrichResult:
    """Enrich candidates in order until ``num_personas`` consistent personas exist (or candidates run out).

    Args:
        candidates: Census personas (the 24 census keys; ``provenance["census"]`` names their source), in the
            order they are used: a rejected candidate is replaced by the next one.
        num_personas: How many personas to keep.
        cfg: The ``stage.enrich`` config node (``tables``, ``categories``, ``num_categories``,
            ``consistency_check``).
        caller: Runs every LM call through the cache and records failures.
        seed: The stage's seed (psychodemographic draws and category picks).

    Returns:
        The kept personas (all 33 keys, provenance for each) and every rejection; ``drop_rate`` is
        rejected / used.

    Raises:
        ConfigError: If the categories or ``num_categories`` are unusable, or ``tables`` is unknown.
    """
    _check_cfg(cfg)
    cands = _with_psychodemographics(candidates, seed=seed, tables=cfg.get("tables", "default"))
    signature = signature or WritePersonaDetails
    keys = detail_keys(signature)
    enricher, checker = PersonaEnricher(signature), ConsistencyChecker()
    identity = caller.client.identity
    model = f"lm:{caller.client.model_id}@{identity.get('revision') or 'unversioned'}"
    details_prov = f"{model}; signature:{signature.__name__}@{signature_hash(signature)}"
    check = bool(cfg.get("consistency_check", True))
    run_prov = {
        "precheck": f"rules:persona_gen.enrich.rules@{_source_hash(rules)} ({len(rules.RULES)} rules)",
        "consistency": (f"{model}; signature:CheckPersonaConsistency@{signature_hash(CheckPersonaConsistency)}"
                        if check else "not checked (stage.enrich.consistency_check=false)"),
    }
    categories = [str(c) for c in cfg.categories]
    result = EnrichResult(personas=[])
    queue = list(cands)
    while queue and len(result.personas) < num_personas:
        need = num_personas - len(result.personas)
        batch, queue = queue[:need], queue[need:]
        result.candidates_used += len(batch)
        passed = []
        for cand in batch:
            fired = rules.precheck(cand.attributes)
            if fired:
                name, fields = fired
                values = "; ".join(f"{k}: {cand.attributes.get(k, '')}" for k in fields)
                result.rejections.append(Rejection(cand.persona_id, cand.source_record_id, f"rule:{name}",
                                                   tuple(fields), f"rule-based pre-check {name} failed: {values}"))
            else:
                passed.append(cand)
        picks = [_pick_categories(c.persona_id, seed, categories, int(cfg.num_categories)) for c in passed]
        details = caller.map("enrich", enricher, [
            {"persona": render_attributes(c.attributes), "categories": ", ".join(p)}
            for c, p in zip(passed, picks, strict=True)
        ], desc="enrich: details")
        written = []
        for cand, cats, res in zip(passed, picks, details, strict=True):
            failure = res.failure
            if res.ok:
                failure = _detail_failure(res.outputs["details"], keys)
                if failure is not None:
                    _count_failure(caller, "enrich", failure.kind)
            if failure is not None or not res.ok:
                f = failure or Failure(stage="enrich", kind="lm_error", message="no output")
                result.rejections.append(Rejection(cand.persona_id, cand.source_record_id, "lm_failure", (),
                                                   f.message, f.raw, f.kind))
                continue
            fields = res.outputs["details"]
            attrs = {**cand.attributes, **{keys[k]: str(v).strip() for k, v in fields.items() if k in keys}}
            prov = {**cand.provenance, **{k: details_prov for k in keys.values()}, **run_prov,
                    "categories": ", ".join(cats)}
            written.append(cand.model_copy(update={"attributes": _ordered(attrs), "provenance": prov}))
        if check:
            verdicts = caller.map("consistency", checker, [{"persona": p.render()} for p in written],
                                  desc="enrich: consistency")
        else:
            verdicts = [None] * len(written)
        for persona, res in zip(written, verdicts, strict=True):
            if res is None:
                result.personas.append(persona)
                continue
            if not res.ok:
                f = res.failure or Failure(stage="consistency", kind="lm_error", message="no output")
                # An unreadable verdict is not evidence of inconsistency: keep the persona, record the failure.
                result.personas.append(persona.model_copy(update={"failures": (*persona.failures, f)}))
                continue
            verdict = res.outputs["verdict"]
            if verdict.get("consistent", True):
                result.personas.append(persona)
            else:
                result.rejections.append(Rejection(
                    persona.persona_id, persona.source_record_id, "inconsistent",
                    _offending(verdict.get("offending_fields") or ()), str(verdict.get("reason", "")),
                    json.dumps(verdict, ensure_ascii=False, sort_keys=True)))
    return result


def failure_of(rejection: Rejection) -> Failure:
    """A rejection as a ``Failure`` record (kind: the LM failure kind, else the reason)."""
    return Failure(stage="enrich", kind=rejection.failure_kind or rejection.reason, message=rejection.message,
                   raw=rejection.raw)
