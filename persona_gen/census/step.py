"""The census step: draw candidate personas from the census source (no LM) and report fidelity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from persona_gen.core.records import CENSUS_KEYS, Persona, stable_id
from persona_gen.core.steps import Step, StepContext

__all__ = ["CensusStep"]


class CensusStep(Step):
    """Census: whole PUMS person records drawn jointly, weighted by PWGTP, decoded with the Bureau's dictionary."""

    default_scope = "run"
    outputs = ("candidates", "source", "fidelity")
    extra_keys = ("candidate_factor",)
    what = "personas drawn jointly from whole PUMS person records, weighted by PWGTP"

    def check(self) -> None:
        if self.scope != "run":
            raise self.error("scope", "run", self.scope, "the census is drawn once per run")

    def num_candidates(self) -> int:
        factor = float(self.spec.get("candidate_factor") or 2.0)
        return math.ceil(int(self.cfg.scale.num_personas) * factor) + 2

    def run_once(self, ctx: StepContext, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        from persona_gen.census import load_source, sample_personas

        sampler = self.settings
        seed = self.seed()
        source = load_source(sampler)
        self._source_name = source.name
        quotas = OmegaConf.to_container(sampler.quotas) if sampler.get("quotas") else None
        frame = sample_personas(self.num_candidates(), seed=seed, source=source, where=sampler.get("where"),
                                quotas=quotas)
        candidates = []
        for i, row in enumerate(frame.to_dict(orient="records")):
            attrs = {k: str(row[k]) for k in CENSUS_KEYS}
            rid = str(row["source_record_id"])
            candidates.append(Persona(persona_id=stable_id("p", seed, i, rid), attributes=attrs, source_record_id=rid,
                                      provenance={k: f"census:{source.name}" for k in CENSUS_KEYS}))
        return {"candidates": candidates, "source": source,
                "fidelity": self._fidelity(source, self.seed("fidelity"), ctx)}

    def _fidelity(self, source: Any, seed: int, ctx: StepContext) -> dict[str, Any] | None:
        from persona_gen.census import sample_personas
        from persona_gen.census.fidelity import fidelity_report, write_fidelity

        size = int(self.settings.get("fidelity_sample_size", 20_000) or 0)
        if size <= 0:
            return None
        sample = sample_personas(size, seed=seed, source=source)
        report = fidelity_report(sample, source)
        paths = write_fidelity(report, ctx.out_dir / "fidelity")
        return {"report": report, "paths": {k: str(v) for k, v in paths.items()}}

    def made_by(self, runtime: Any) -> str:
        return getattr(self, "_source_name", None) or f"census source {self.settings.get('source')}"

    def credits(self) -> list[tuple[str, str]]:
        return [("US Census Bureau, American Community Survey {year} 1-Year PUMS, person records ({states})",
                 "public domain (17 USC 105)")]

    def info(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """What the card and manifest say of the census draw (the enrich step keeps exactly num_personas)."""
        source = outputs["source"]
        return {"census": {"num_personas": int(self.cfg.scale.num_personas), "source": source.name,
                           "description": source.describe(),
                           "year": source.spec.year or "",
                           "states": ", ".join(sorted(map(str, source.pool["state"].unique())))},
                "fidelity": fidelity_summary(outputs["fidelity"])}

    def plots(self, outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        fid = outputs["fidelity"]
        if fid and fid["paths"].get("png"):
            from pathlib import Path

            return [("population_vs_census.png", Path(fid["paths"]["png"]))]
        return []


def fidelity_summary(fidelity: dict[str, Any] | None) -> dict[str, Any] | None:
    if not fidelity:
        return None
    rep = fidelity["report"]
    one = {k: v["tvd"] for k, v in rep["one_way"].items()}
    ref = {k: v.get("reference_tvd") for k, v in rep["one_way"].items()}
    worst = max(one, key=one.get) if one else None
    return {"sample_size": rep["sample_size"], "source": rep["source"], "source_records": rep["source_records"],
            "max_tvd_1way": round(float(rep["one_way_max_tvd"]), 5), "worst_1way": worst,
            "worst_1way_reference_tvd": None if worst is None or ref[worst] is None else round(float(ref[worst]), 5),
            "max_tvd_2way": round(float(rep["two_way_max_tvd"]), 5),
            "worst_pairs": rep.get("worst_pairs", [])[:5], "k_anonymity": rep.get("k_anonymity"),
            "plot": "plots/population_vs_census.png"}
