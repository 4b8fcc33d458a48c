"""The census step: draw candidate personas from the census source (no LM) and report fidelity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from persona_gen.core.records import Persona, stable_id
from persona_gen.core.steps import Step, StepContext

__all__ = ["CensusStep", "FidelityStep"]


class CensusStep(Step):
    """Census: whole PUMS person records drawn jointly, weighted by PWGTP, decoded with the Bureau's dictionary."""

    default_scope = "run"
    outputs = ("candidates", "source")
    extra_keys = ("candidate_factor",)
    what = "personas drawn jointly from whole PUMS person records, weighted by PWGTP"

    def check(self) -> None:
        if self.scope != "run":
            raise self.error("scope", "run", self.scope, "the census is drawn once per run")

    def num_candidates(self) -> int:
        factor = float(self.spec.get("candidate_factor") or 2.0)
        return math.ceil(int(self.cfg.scale.num_personas) * factor) + 2

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.census import HOUSEHOLD_INCOME, load_source, sample_personas

        sampler = self.settings
        seed = self.seed()
        source = load_source(sampler)
        self._source_name = source.name
        quotas = OmegaConf.to_container(sampler.quotas) if sampler.get("quotas") else None
        frame = sample_personas(self.num_candidates(), seed=seed, source=source, where=sampler.get("where"),
                                quotas=quotas)
        candidates = []
        keys = source.spec.persona_keys()  # PERSONA's census keys, then any the source config adds
        for i, row in enumerate(frame.to_dict(orient="records")):
            attrs = {k: str(row[k]) for k in keys}
            if HOUSEHOLD_INCOME in row:  # conditions the psychodemographic draw; enrich drops it from the persona
                attrs[HOUSEHOLD_INCOME] = str(row[HOUSEHOLD_INCOME])
            rid = str(row["source_record_id"])
            candidates.append(Persona(persona_id=stable_id("p", seed, i, rid), attributes=attrs, source_record_id=rid,
                                      provenance={k: f"census:{source.name}" for k in keys}))
        return {"candidates": candidates, "source": source}

    def made_by(self, runtime: Any) -> str:
        return getattr(self, "_source_name", None) or f"census source {self.settings.get('source')}"

    def credits(self) -> list[tuple[str, str]]:
        return [("US Census Bureau, American Community Survey {year} 1-Year PUMS, person records ({states})",
                 "public domain (17 USC 105)")]

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """What the card and manifest say of the census draw (the enrich step keeps exactly num_personas)."""
        from persona_gen.census.fidelity import population_statement

        source, sampler = outputs["source"], self.settings
        return {"census": {"num_personas": int(self.cfg.scale.num_personas), "source": source.name,
                           "description": source.describe(),
                           "year": source.spec.year or "",
                           "states": ", ".join(sorted(map(str, source.pool["state"].unique()))),
                           "population": population_statement(source, where=sampler.get("where"),
                                                              quotas=_quotas(sampler))}}


def _quotas(sampler: Any) -> Any:
    return OmegaConf.to_container(sampler.quotas) if sampler.get("quotas") else None


class FidelityStep(Step):
    """Fidelity: the filtered target population against a fresh weighted draw of it and the published personas."""

    default_scope = "run"
    outputs = ("fidelity",)
    what = "census fidelity of the target population (sampler.where, quotas): a fresh draw and the published personas"

    def required_inputs(self) -> tuple[str, ...]:
        return ("source", "personas")

    def made_by(self, runtime: Any) -> str:
        return "weighted census draw (no LM)"

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.census.fidelity import run_fidelity

        sampler = self.settings
        size = int(sampler.get("fidelity_sample_size", 20_000) or 0)
        if size <= 0:
            return {"fidelity": None}
        # The report and its figure are written with the card's facts (``plots``): drawing holds the interpreter for
        # seconds, which a streaming run keeps off the time its endpoints are busy.
        return {"fidelity": run_fidelity(inputs["source"], where=sampler.get("where"), quotas=_quotas(sampler),
                                         seed=self.seed(), sample_size=size,
                                         published=[p.attributes for p in inputs["personas"]]),
                "_out_dir": ctx.out_dir / "fidelity"}

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        from persona_gen.census.fidelity import fidelity_summary

        fid = outputs["fidelity"]
        return {"fidelity": fidelity_summary(fid, plot="plots/population_vs_census.png") if fid else None}

    def plots(self, outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Write ``fidelity.json`` and the figure; the figure is the card's ``population_vs_census.png``."""
        from persona_gen.census.fidelity import write_fidelity

        fid = outputs["fidelity"]
        if not fid:
            return []
        paths = write_fidelity(fid, outputs["_out_dir"])
        return [("population_vs_census.png", paths["png"])]
