"""The enrich step: psychodemographics from sourced tables, LM-written idiosyncrasies, the consistency filter."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from persona_gen.core.errors import PersonaGenError, format_error
from persona_gen.core.records import PERSONA_KEYS, Persona
from persona_gen.core.steps import Step, StepContext

__all__ = ["EnrichStep", "check_enrich_settings", "personas_frame", "rejections_frame"]


class EnrichStep(Step):
    """Enrich: Big Five, ideology, political views, religion from tables; LM idiosyncrasies; LM consistency check."""

    default_scope = "run"
    needs_role = True
    outputs = ("personas", "rejections")
    # ``signature``: the signature that writes the idiosyncrasies (default WritePersonaDetails); every field of its
    # ``details`` output becomes a persona attribute.
    extra_keys = ("signature",)
    what = ("psychodemographics from sourced survey tables; LM-written job detail, quirks, mannerisms, personal "
            "time, lifestyle; rule pre-check + LM consistency check, inconsistent candidates replaced")

    def required_inputs(self) -> tuple[str, ...]:
        return ("candidates",)

    def check(self) -> None:
        from persona_gen.enrich.stage import _check_cfg

        if self.scope != "run":
            raise self.error("scope", "run", self.scope, "personas are enriched once per run")
        check_enrich_settings(self.settings)
        _check_cfg(self.settings)
        self.details_signature()

    def stats_keys(self) -> tuple[str, ...]:
        return ("enrich", "consistency") if self.settings.get("consistency_check", True) else ("enrich",)

    def details_signature(self) -> type:
        from persona_gen.core.steps import import_object
        from persona_gen.signatures import WritePersonaDetails

        path = self.spec.get("signature")
        if not path:
            return WritePersonaDetails
        sig = import_object(str(path), where=f"pipeline.steps.{self.name}.signature", search=self.search)
        details = getattr(sig, "output_fields", {}).get("details")
        fields = getattr(getattr(details, "annotation", None), "model_fields", None)
        if not fields or "persona" not in getattr(sig, "input_fields", {}):
            raise self.error("signature", "a dspy.Signature with input `persona` (and `categories`) and an output "
                             "`details` that is a pydantic model (one field per attribute)", path,
                             "subclass persona_gen.signatures.Idiosyncrasies for `details` and add your fields")
        return sig

    def signatures(self) -> list[type]:
        from persona_gen.signatures import CheckPersonaConsistency

        return [self.details_signature(), *([CheckPersonaConsistency] if self.settings.get("consistency_check", True)
                                             else [])]

    def credits(self) -> list[tuple[str, str]]:
        return [("SAPA Big Five items (R package psychTools), derived tables only", "GPL-2 | GPL-3"),
                ("ANES 1996 (statsmodels datasets), derived tables only", "public domain"),
                ("GSS 2000-2014 (R package forcats, gss_cat), derived tables only", "MIT"),
                ("Pew Religious Landscape Study 2007 (R package tidyr, relig_income), derived tables only", "MIT")]

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.enrich.stage import run_enrich

        want = int(self.cfg.scale.num_personas)
        caller = ctx.runtime.caller(self.role, stats=ctx.stats)
        emit = ctx.emit
        enriched = run_enrich(inputs["candidates"], num_personas=want, cfg=self.settings, caller=caller,
                              seed=self.seed(), signature=self.details_signature(),
                              emit=(lambda i, persona: emit("personas", i, persona)) if emit else None)
        if len(enriched.personas) < want:
            # An unreachable server shows up here as rejections: name it, not only "use a stronger model".
            lm_failure = next((r.message for r in enriched.rejections if r.reason == "lm_failure"), None)
            raise PersonaGenError(format_error(
                "consistent personas", expected=f"{want}", got=len(enriched.personas),
                where=f"{enriched.candidates_used} census candidates, {len(enriched.rejections)} rejected: "
                      f"{dict(sorted(Counter(r.reason for r in enriched.rejections).items()))}"
                      + (f", first LM failure: {lm_failure[:200]}" if lm_failure else ""),
                fix=f"raise pipeline.steps.census.candidate_factor or use a stronger model; on LM failures check "
                    f"models.{self.role} (server up, base_url, api_key_env)"))
        return {"personas": enriched.personas, "rejections": enriched}

    def planned_calls(self, plan: Any) -> list[Any]:
        """Details for each candidate that reaches the LM, a consistency verdict for each written persona.

        Candidates replace rejected ones until ``num_personas`` are kept, so the counts are estimates:
        ``num_personas / (1 - plan.enrich_drop_rate)`` (the paper dropped about 8.5%); exactly ``num_personas``
        when nothing is rejected. ``enrich.candidates`` / ``enrich.written`` in ``plan.known`` replace them.
        """
        import math

        from persona_gen.core.planning import PlannedCall
        from persona_gen.core.records import LM_KEYS, PERSONA_KEYS
        from persona_gen.enrich.stage import ConsistencyChecker, PersonaEnricher

        want = int(self.cfg.scale.num_personas)
        drop = plan.assumption("enrich_drop_rate", 0.085)
        estimate = math.ceil(want / (1.0 - drop)) if drop < 1 else want
        note = f"estimate: {want} personas / (1 - drop rate {drop:g})"
        calls, exact = plan.measured(f"{self.name}.candidates", estimate)
        categories = ", ".join(str(c) for c in list(self.settings.categories)[: int(self.settings.num_categories)])
        census_psycho = tuple(k for k in PERSONA_KEYS if k not in LM_KEYS)
        out = [PlannedCall("enrich", str(self.role), calls, PersonaEnricher(),
                           {"persona": plan.persona_text(census_psycho), "categories": categories},
                           exact=exact, note="" if exact else note, batches=(calls,))]
        if self.settings.get("consistency_check", True):
            written, exact_w = plan.measured(f"{self.name}.written", calls)
            out.append(PlannedCall("consistency", str(self.role), written, ConsistencyChecker(),
                                   {"persona": plan.persona_text()}, exact=exact and exact_w,
                                   note="" if exact and exact_w else note, batches=(written,)))
        return out

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        enriched = outputs["rejections"]
        reasons = Counter(r.reason for r in enriched.rejections)
        from persona_gen.enrich.psychodemographics import describe_joints

        return {"enrich": {"candidates": enriched.candidates_used, "rejected": len(enriched.rejections),
                           "drop_rate": enriched.drop_rate, "by_reason": dict(sorted(reasons.items())) or "none"},
                # Which survey joint each psychodemographic field is drawn from (card and manifest).
                "census": {"psychodemographics": describe_joints(self.settings.get("tables", "default"))}}

    def frame(self, output: str, value: Any) -> pd.DataFrame:
        return personas_frame(value) if output == "personas" else rejections_frame(value)


def personas_frame(personas: list[Persona]) -> pd.DataFrame:
    # PERSONA's 33 keys, then the attributes a census source or an enrichment signature adds (one column each).
    extra = list(dict.fromkeys(k for p in personas for k in p.attributes if k not in PERSONA_KEYS))
    rows = []
    for p in personas:
        rows.append({"persona_id": p.persona_id, "source_record_id": p.source_record_id, "persona": p.render(),
                     **{k: p.attributes.get(k, "") for k in (*PERSONA_KEYS, *extra)},
                     "provenance": json.dumps(p.provenance, sort_keys=True),
                     "failures": json.dumps([f.model_dump() for f in p.failures], sort_keys=True)})
    return pd.DataFrame(rows)


def rejections_frame(enriched: Any) -> pd.DataFrame:
    frame = pd.DataFrame([r.model_dump() for r in enriched.rejections],
                         columns=["persona_id", "source_record_id", "reason", "offending_fields", "message", "raw",
                                  "failure_kind"])
    frame["offending_fields"] = frame["offending_fields"].map(list)
    return frame


def check_enrich_settings(enrich: Any) -> None:
    """``stage.enrich``: table set, categories and their count, candidate factor (the enrich step calls it)."""
    from persona_gen.core.config import _fail, _int_in, _number_in
    from persona_gen.enrich.psychodemographics import TABLE_SETS

    where = "conf/stage/enrich/ or a stage.enrich.* override"
    if enrich.tables not in TABLE_SETS:
        raise _fail("stage.enrich.tables", f"one of {sorted(TABLE_SETS)}", enrich.tables,
                    "pick a listed table set, or add one to persona_gen.enrich.psychodemographics.TABLE_SETS", where)
    categories = list(enrich.categories)
    if not categories or any(not str(c).strip() for c in categories):
        raise _fail("stage.enrich.categories", "a non-empty list of category names", categories,
                    "list the curated categories in conf/stage/enrich/default.yaml", where)
    _int_in(enrich.num_categories, "stage.enrich.num_categories", 1, len(categories),
            "pick a few categories per persona, e.g. 3", where)
    # Below 1 the census would be asked for fewer candidates than personas (and a negative count).
    _number_in(enrich.candidate_factor, "stage.enrich.candidate_factor", 1.0, 1000.0,
               "use e.g. 2.0: census candidates drawn per persona asked for (rejected ones are replaced)")
