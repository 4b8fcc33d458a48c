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

import contextlib
import functools
import hashlib
import inspect
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
import numpy as np
import pandas as pd

from persona_gen.core.cache import canonical_json
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import signature_hash
from persona_gen.core.records import LM_KEYS, PERSONA_KEYS, PSYCHO_KEYS, Failure, Persona, Rejection
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
    from persona_gen.enrich.psychodemographics import HOUSEHOLD_INCOME

    known = {k: attrs[k] for k in PERSONA_KEYS if k in attrs}
    return {**known, **{k: v for k, v in attrs.items() if k not in known and k != HOUSEHOLD_INCOME}}


def _table_prov(entry: Any) -> str:
    if isinstance(entry, dict):
        return f"table:{entry.get('table', '?')}@{str(entry.get('sha256', ''))[:12]} ({entry.get('source', '')})"
    return f"table:{entry}"


def _census_prov(cand: Persona) -> dict[str, str]:
    """Every census key says the census source; a key the candidate already traced keeps its own entry."""
    source = str(cand.provenance.get("census", "")).strip() or "unnamed source"
    from persona_gen.enrich.psychodemographics import HOUSEHOLD_INCOME

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
               seed: int, signature: Any = None,
               emit: Callable[[int, Persona], None] | None = None) -> EnrichResult:
    """Enrich candidates in order until ``num_personas`` consistent personas exist (or candidates run out).

    Args:
        candidates: Census personas (the 24 census keys; ``provenance["census"]`` names their source), in the
            order they are used: a rejected candidate is replaced by the next one.
        num_personas: How many personas to keep.
        cfg: The ``stage.enrich`` config node (``tables``, ``categories``, ``num_categories``,
            ``consistency_check``).
        caller: Runs every LM call through the cache and records failures.
        seed: The stage's seed (psychodemographic draws and category picks).
        emit: With a caller that can ``submit`` single calls (a step streaming through the scheduler:
            ``persona_gen.core.scheduler.ScheduledCaller``), each candidate is checked the moment its details are
            written and a rejected one is replaced at once, and ``emit(index, persona)`` gets each kept persona as
            soon as its place in the list is final, so the rows that use it can start. The calls, personas and
            rejections are those of the batch rounds: the rounds are replayed over the same answers.

    Returns:
        The kept personas (all 33 keys, provenance for each) and every rejection; ``drop_rate`` is
        rejected / used.

    Raises:
        ConfigError: If the categories or ``num_categories`` are unusable, or ``tables`` is unknown.
    """
    _check_cfg(cfg)
    plan = _EnrichPlan(candidates, num_personas=num_personas, cfg=cfg, caller=caller, seed=seed,
                       signature=signature)
    if emit is None or not hasattr(caller, "submit"):
        return plan.rounds(caller)
    streamed, answers = plan.stream(caller, emit)
    result = plan.rounds(_Replay(caller, answers))
    if result.personas != streamed:  # cannot happen unless the two paths disagree: the run stops, nothing is made
        raise RuntimeError("enrichment: the streamed personas differ from the replayed rounds")
    return result


def _key(inputs: Mapping[str, Any]) -> str:
    return canonical_json(dict(inputs))


class _Replay:
    """A caller that answers from the answers a streamed enrichment got (their stats are counted already)."""

    def __init__(self, caller: Any, answers: dict[tuple[str, str], Any]) -> None:
        self.client, self.stats, self.answers = caller.client, caller.stats, answers

    def map(self, stage: str, module: Any, inputs: Sequence[dict[str, Any]], **_: Any) -> list[Any]:
        return [self.answers[(stage, _key(item))] for item in inputs]


class _EnrichPlan:
    """One enrichment: the candidates with their psychodemographics, the modules, provenance and the per-candidate
    steps, run either as rounds (``rounds``) or streamed (``stream``)."""

    def __init__(self, candidates: Sequence[Persona], *, num_personas: int, cfg: Any, caller: Any, seed: int,
                 signature: Any) -> None:
        self.cands = _with_psychodemographics(candidates, seed=seed, tables=cfg.get("tables", "default"))
        self.num_personas, self.seed = num_personas, seed
        signature = signature or WritePersonaDetails
        self.keys = detail_keys(signature)
        self.enricher, self.checker = PersonaEnricher(signature), ConsistencyChecker()
        identity = caller.client.identity
        model = f"lm:{caller.client.model_id}@{identity.get('revision') or 'unversioned'}"
        self.details_prov = f"{model}; signature:{signature.__name__}@{signature_hash(signature)}"
        self.check = bool(cfg.get("consistency_check", True))
        self.run_prov = {
            "precheck": f"rules:persona_gen.enrich.rules@{_source_hash(rules)} ({len(rules.RULES)} rules)",
            "consistency": (f"{model}; signature:CheckPersonaConsistency@{signature_hash(CheckPersonaConsistency)}"
                            if self.check else "not checked (stage.enrich.consistency_check=false)"),
        }
        self.categories = [str(c) for c in cfg.categories]
        self.num_categories = int(cfg.num_categories)

    # -- one candidate ----------------------------------------------------------------------------------------

    def precheck(self, cand: Persona) -> Rejection | None:
        fired = rules.precheck(cand.attributes)
        if not fired:
            return None
        name, fields = fired
        values = "; ".join(f"{k}: {cand.attributes.get(k, '')}" for k in fields)
        return Rejection(persona_id=cand.persona_id, source_record_id=cand.source_record_id, reason=f"rule:{name}",
                         offending_fields=tuple(fields), message=f"rule-based pre-check {name} failed: {values}")

    def details_inputs(self, cand: Persona) -> tuple[list[str], dict[str, str]]:
        picks = _pick_categories(cand.persona_id, self.seed, self.categories, self.num_categories)
        return picks, {"persona": render_attributes(cand.attributes), "categories": ", ".join(picks)}

    def written(self, cand: Persona, cats: Sequence[str], res: Any) -> tuple[Persona | None, Failure | None, bool]:
        """(the written persona, or None and the rejection's failure; whether it is an empty/echo answer)."""
        failure = res.failure
        detail = False
        if res.ok:
            failure = _detail_failure(res.outputs["details"], self.keys)
            detail = failure is not None
        if failure is not None or not res.ok:
            return None, failure or Failure(stage="enrich", kind="lm_error", message="no output"), detail
        fields = res.outputs["details"]
        attrs = {**cand.attributes, **{self.keys[k]: str(v).strip() for k, v in fields.items() if k in self.keys}}
        prov = {**cand.provenance, **{k: self.details_prov for k in self.keys.values()}, **self.run_prov,
                "categories": ", ".join(cats)}
        return cand.model_copy(update={"attributes": _ordered(attrs), "provenance": prov}), None, False

    @staticmethod
    def lm_rejection(cand: Persona, f: Failure) -> Rejection:
        return Rejection(persona_id=cand.persona_id, source_record_id=cand.source_record_id, reason="lm_failure",
                         message=f.message, raw=f.raw, failure_kind=f.kind)

    @staticmethod
    def verdict(persona: Persona, res: Any) -> tuple[Persona | None, Rejection | None]:
        """(the kept persona, or None and the rejection) for a consistency verdict (None: not checked)."""
        if res is None:
            return persona, None
        if not res.ok:
            f = res.failure or Failure(stage="consistency", kind="lm_error", message="no output")
            # An unreadable verdict is not evidence of inconsistency: keep the persona, record the failure.
            return persona.model_copy(update={"failures": (*persona.failures, f)}), None
        verdict = res.outputs["verdict"]
        if verdict.get("consistent", True):
            return persona, None
        return None, Rejection(
            persona_id=persona.persona_id, source_record_id=persona.source_record_id, reason="inconsistent",
            offending_fields=_offending(verdict.get("offending_fields") or ()),
            message=str(verdict.get("reason", "")), raw=json.dumps(verdict, ensure_ascii=False, sort_keys=True))

    # -- rounds: each round's details, then its verdicts; the rejected are replaced in the next round -----------

    def rounds(self, caller: Any) -> EnrichResult:
        result = EnrichResult(personas=[])
        queue = list(self.cands)
        while queue and len(result.personas) < self.num_personas:
            need = self.num_personas - len(result.personas)
            batch, queue = queue[:need], queue[need:]
            result.candidates_used += len(batch)
            passed = []
            for cand in batch:
                rejected = self.precheck(cand)
                if rejected is not None:
                    result.rejections.append(rejected)
                else:
                    passed.append(cand)
            asked = [self.details_inputs(c) for c in passed]
            details = caller.map("enrich", self.enricher, [inputs for _, inputs in asked], desc="enrich: details")
            written = []
            for cand, (cats, _), res in zip(passed, asked, details, strict=True):
                persona, failure, detail = self.written(cand, cats, res)
                if detail:
                    _count_failure(caller, "enrich", failure.kind)
                if persona is None:
                    result.rejections.append(self.lm_rejection(cand, failure))
                else:
                    written.append(persona)
            if self.check:
                verdicts = caller.map("consistency", self.checker, [{"persona": p.render()} for p in written],
                                      desc="enrich: consistency")
            else:
                verdicts = [None] * len(written)
            for persona, res in zip(written, verdicts, strict=True):
                kept, rejected = self.verdict(persona, res)
                if kept is not None:
                    result.personas.append(kept)
                else:
                    result.rejections.append(rejected)
        return result

    # -- streamed: a candidate's verdict is asked the moment its details are in, a rejected one replaced at once -

    def stream(self, caller: Any, emit: Callable[[int, Persona], None]) -> tuple[list[Persona],
                                                                                dict[tuple[str, str], Any]]:
        """The kept personas and every answer, keyed by (stage, inputs); ``emit`` gets each kept persona once all
        candidates before it are settled. The same candidates are used as in ``rounds``: each rejection starts
        exactly one more candidate, so both use the shortest prefix of the candidates holding
        ``num_personas`` kept ones, and the kept ones keep the candidates' order."""
        run = _Streamed(self, caller, emit)
        with contextlib.ExitStack() as bars:
            bars.enter_context(caller.reporting("enrich", self.num_personas, desc="enrich: details"))
            if self.check:
                bars.enter_context(caller.reporting("consistency", self.num_personas, desc="enrich: consistency"))
            run.run()
        return run.kept, run.answers


class _Streamed:
    """One streamed enrichment: candidates in flight, their outcomes, the personas emitted so far."""

    def __init__(self, plan: _EnrichPlan, caller: Any, emit: Callable[[int, Persona], None]) -> None:
        self.plan, self.caller, self.emit = plan, caller, emit
        self.todo = iter(plan.cands)
        self.started = 0
        self.outcome: dict[int, Persona | None] = {}  # candidate position -> kept persona, or None (rejected)
        self.settled = 0
        self.kept: list[Persona] = []
        self.answers: dict[tuple[str, str], Any] = {}
        # future -> (stage, candidate position, what the answer is for, the call's inputs, first persona's call)
        self.pending: dict[Any, tuple[str, int, Any, dict[str, str], bool]] = {}

    def start_next(self) -> None:
        """Start the next candidate that reaches the LM (one rejected by the rules is replaced at once)."""
        for cand in self.todo:
            i, self.started = self.started, self.started + 1
            if self.plan.precheck(cand) is not None:
                self.outcome[i] = None
                continue
            cats, inputs = self.plan.details_inputs(cand)
            # Until a persona is kept, the first candidate's calls go first (the rows wait for a persona).
            first = not self.kept and not any(p[1] < i for p in self.pending.values())
            future = self.caller.submit("enrich", self.plan.enricher, inputs, first=first, report=True)
            self.pending[future] = ("enrich", i, (cand, cats), inputs, first)
            return

    def settle(self) -> None:
        """Emit the kept personas whose place is final (every candidate before them is settled)."""
        while self.settled < self.started and self.settled in self.outcome:
            persona = self.outcome[self.settled]
            self.settled += 1
            if persona is not None:
                self.emit(len(self.kept), persona)
                self.kept.append(persona)

    def run(self) -> None:
        for _ in range(self.plan.num_personas):
            self.start_next()
        while self.pending:
            for future in self.caller.wait_any(list(self.pending)):
                stage, i, data, inputs, first = self.pending.pop(future)
                res = future.result()
                self.answers[(stage, _key(inputs))] = res
                if stage == "enrich":
                    persona, _, _ = self.plan.written(*data, res)
                    if persona is not None and self.plan.check:
                        ask = {"persona": persona.render()}
                        check = self.caller.submit("consistency", self.plan.checker, ask, first=first, report=True)
                        self.pending[check] = ("consistency", i, persona, ask, first)
                        continue
                    kept = persona
                else:
                    kept, _ = self.plan.verdict(data, res)
                self.outcome[i] = kept
                if kept is None:
                    self.start_next()
            self.settle()
        self.settle()


def failure_of(rejection: Rejection) -> Failure:
    """A rejection as a ``Failure`` record (kind: the LM failure kind, else the reason)."""
    return Failure(stage="enrich", kind=rejection.failure_kind or rejection.reason, message=rejection.message,
                   raw=rejection.raw)
