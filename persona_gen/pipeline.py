"""``run(cfg)``: the stages in order, from census to a Hub-ready folder.

Stages talk only through records (``persona_gen.core.records``). Each stage gets its own seed from
``numpy.random.SeedSequence(cfg.seed).spawn``; every LM call goes through the one cache, so an
interrupted run resumes where it stopped and a warm rerun makes no LM call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from persona_gen.core.cache import CallCache, canonical_json
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.config import to_plain, validate
from persona_gen.core.errors import PersonaGenError, format_error
from persona_gen.core.lm import build_lm, signature_hash
from persona_gen.core.records import CENSUS_KEYS, PERSONA_KEYS, Feedback, Judgment, Persona, Question, stable_id

__all__ = ["RunResult", "run"]

log = logging.getLogger(__name__)

STAGE_SEEDS = ("census", "enrich", "questions", "feedback", "judge", "fidelity")


@dataclass
class RunResult:
    output_dir: Path
    dataset_dir: Path
    card_path: Path
    manifest_path: Path
    plots: list[Path]
    content_hash: str
    lm_calls: int
    manifest: dict[str, Any]

    def summary_lines(self) -> list[str]:
        lines = [f"dataset:  {self.dataset_dir}", f"card:     {self.card_path}"]
        lines += [f"plot:     {p}" for p in self.plots]
        lines += [f"manifest: {self.manifest_path}", f"content hash: {self.content_hash}  (LM calls: {self.lm_calls})"]
        return lines


def stage_seeds(seed: int) -> dict[str, int]:
    children = np.random.SeedSequence(seed).spawn(len(STAGE_SEEDS))
    return {name: int(c.generate_state(1, dtype=np.uint32)[0]) for name, c in zip(STAGE_SEEDS, children, strict=True)}


def config_hash(cfg: DictConfig) -> str:
    plain = to_plain(cfg)
    plain.pop("paths", None)  # where files live does not change what is made
    return hashlib.sha256(canonical_json(plain).encode()).hexdigest()[:16]


def _census_candidates(cfg: DictConfig, n: int, seed: int) -> tuple[list[Persona], Any, pd.DataFrame]:
    from persona_gen.census import load_source, sample_personas

    source = load_source(cfg.sampler)
    frame = sample_personas(n, seed=seed, source=source, where=cfg.sampler.get("where"),
                            quotas=OmegaConf.to_container(cfg.sampler.quotas) if cfg.sampler.get("quotas") else None)
    candidates = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        attrs = {k: str(row[k]) for k in CENSUS_KEYS}
        rid = str(row["source_record_id"])
        candidates.append(Persona(persona_id=stable_id("p", seed, i, rid), attributes=attrs, source_record_id=rid,
                                  provenance={k: f"census:{source.name}" for k in CENSUS_KEYS}))
    return candidates, source, frame


def _fidelity(cfg: DictConfig, source: Any, seed: int, out_dir: Path) -> dict[str, Any] | None:
    from persona_gen.census import sample_personas
    from persona_gen.census.fidelity import fidelity_report, write_fidelity

    size = int(cfg.sampler.get("fidelity_sample_size", 20_000) or 0)
    if size <= 0:
        return None
    sample = sample_personas(size, seed=seed, source=source)
    report = fidelity_report(sample, source)
    paths = write_fidelity(report, out_dir)
    return {"report": report, "paths": {k: str(v) for k, v in paths.items()}}


def _frame(records: list[Any], *, json_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for r in records:
        d = r.model_dump(mode="json")
        for col in json_cols:
            d[col] = json.dumps(d[col], sort_keys=True, ensure_ascii=False)
        rows.append(d)
    return pd.DataFrame(rows)


def _personas_frame(personas: list[Persona]) -> pd.DataFrame:
    rows = []
    for p in personas:
        rows.append({"persona_id": p.persona_id, "source_record_id": p.source_record_id, "persona": p.render(),
                     **{k: p.attributes.get(k, "") for k in PERSONA_KEYS},
                     "provenance": json.dumps(p.provenance, sort_keys=True),
                     "failures": json.dumps([f.model_dump() for f in p.failures], sort_keys=True)})
    return pd.DataFrame(rows)


def _feedback_frame(rows: list[Feedback]) -> pd.DataFrame:
    df = _frame(rows, json_cols=("failures",))
    df = df.rename(columns={"question_type": "question type"})
    df["failure_count"] = [len(r.failures) for r in rows]
    return df


def _judge_scorecard(judgments: list[Judgment]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from persona_gen.metrics import cohen_kappa

    if not judgments:
        return [], {}
    df = _frame(judgments, json_cols=("failure",))
    cards = []
    for variant, g in df.groupby("variant", sort=True):
        wide = g.pivot(index="feedback_id", columns="order", values="preferred")
        consistent = (wide["original_first"] == wide["revision_first"]).mean()
        cards.append({
            "variant": variant, "pairs": len(wide),
            "order_consistency": round(float(consistent), 4),
            "first_position_rate": round(float((g["choice"] == "first").mean()), 4),
            "revision_preferred": round(float((g["preferred"] == "revision").mean()), 4),
            "abstentions": int((g["choice"] == "abstain").sum()),
        })
    agreement: dict[str, Any] = {}
    variants = sorted(df["variant"].unique())
    if len(variants) >= 2:
        a = df[df.variant == variants[0]].sort_values(["feedback_id", "order"])["preferred"].tolist()
        b = df[df.variant == variants[1]].sort_values(["feedback_id", "order"])["preferred"].tolist()
        k = cohen_kappa(a, b)
        value = float(k)
        agreement = {"raters": variants, "kappa": None if math.isnan(value) else round(value, 4), "n": len(a)}
    return cards, agreement


def _plot_judges(cards: list[dict[str, Any]], path: Path) -> Path | None:
    if not cards:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from persona_gen.publish.writer import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = ["order_consistency", "first_position_rate", "revision_preferred"]
    width = 0.8 / len(cards)
    for i, c in enumerate(cards):
        ax.bar([j + i * width for j in range(len(names))], [c[n] for n in names], width, label=c["variant"])
    ax.set_xticks([j + width * (len(cards) - 1) / 2 for j in range(len(names))], [n.replace("_", " ") for n in names])
    ax.set_ylim(0, 1)
    ax.set_title("Judge scorecard (both orders)")
    ax.legend()
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _check_failure_rate(stats: dict[str, CallStats], limit: float) -> None:
    for stage, s in stats.items():
        total = s.calls + s.cache_hits
        if total and s.failures / total > limit:
            raise PersonaGenError(format_error(
                f"failure rate of stage {stage!r}", expected=f"<= max_failure_rate={limit}",
                got=f"{s.failures}/{total}", where="LM answers (kept as recorded failures in the run dir)",
                fix="use a stronger model, or raise max_failure_rate to publish anyway"))


def run(cfg: DictConfig) -> RunResult:
    """Run every stage and write the dataset folder, the manifest and the plots under the output dir."""
    from persona_gen.enrich.stage import run_enrich
    from persona_gen.judge.stage import run_judge
    from persona_gen.publish.hub import publish_folder
    from persona_gen.questions.stage import run_questions
    from persona_gen.responses.stage import assign_questions, run_feedback

    validate(cfg)
    out_dir = Path(cfg.paths.output_dir)
    seeds = stage_seeds(int(cfg.seed))
    scale = cfg.scale
    cache = CallCache(cfg.cache.dir, enabled=bool(cfg.cache.enabled), size_limit_gb=float(cfg.cache.size_limit_gb))
    stats: dict[str, CallStats] = {}
    gen = Caller(build_lm(cfg.models.generator, role="generator"), cache, stats=stats)
    judge = Caller(build_lm(cfg.models.judge, role="judge"), cache, stats=stats)

    n_candidates = math.ceil(scale.num_personas * float(cfg.stage.enrich.get("candidate_factor", 2.0))) + 2
    candidates, source, _ = _census_candidates(cfg, n_candidates, seeds["census"])
    fidelity = _fidelity(cfg, source, seeds["fidelity"], out_dir / "fidelity")

    enriched = run_enrich(candidates, num_personas=int(scale.num_personas), cfg=cfg.stage.enrich, caller=gen,
                          seed=seeds["enrich"])
    personas = enriched.personas
    if len(personas) < scale.num_personas:
        raise PersonaGenError(format_error(
            "consistent personas", expected=f"{scale.num_personas}", got=len(personas),
            where=f"{enriched.candidates_used} census candidates, {len(enriched.rejections)} rejected",
            fix="raise stage.enrich.candidate_factor or use a stronger model"))

    qres = run_questions(cfg=cfg.stage.questions, caller=gen, seed=seeds["questions"],
                         max_candidates=scale.get("max_candidate_prompts"))
    assignments = assign_questions(
        personas, qres.questions, train_rows=int(scale.train_rows_per_persona),
        seen_rows=int(scale.test_seen_per_persona), unseen_rows=int(scale.test_unseen_per_persona),
        seed=seeds["feedback"])
    feedback = run_feedback(personas, assignments, cfg=cfg.stage.feedback, caller=gen)

    per_persona: Counter[str] = Counter()
    to_judge = []
    for row in feedback:
        if per_persona[row.persona_id] < int(scale.judge_rows_per_persona):
            per_persona[row.persona_id] += 1
            to_judge.append(row)
    judgments = run_judge(to_judge, cfg=cfg.stage.judge, caller=judge)
    _check_failure_rate(stats, float(cfg.max_failure_rate))
    scorecard, agreement = _judge_scorecard(judgments)

    tables = {
        "feedback": {split: g for split, g in _feedback_frame(feedback).groupby("question type", sort=True)},
        "personas": {"train": _personas_frame(personas)},
        "persona_rejections": {"train": pd.DataFrame([r.__dict__ for r in enriched.rejections],
                                                     columns=["persona_id", "source_record_id", "reason",
                                                              "offending_fields", "message", "raw"])},
        "questions": {"train": _frame(qres.questions)},
        "judgments": {"train": _frame(judgments, json_cols=("failure",))},
    }
    tables["persona_rejections"]["train"]["offending_fields"] = \
        tables["persona_rejections"]["train"]["offending_fields"].map(list)
    plots = []
    judge_plot = _plot_judges(scorecard, out_dir / "plots" / "judge_scorecard.png")
    if judge_plot:
        plots.append(judge_plot)
    if fidelity and fidelity["paths"].get("png"):
        import shutil

        dst = out_dir / "plots" / "population_vs_census.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fidelity["paths"]["png"], dst)
        plots.append(dst)

    from persona_gen.signatures import (
        AnswerQuestion,
        CheckPersonaConsistency,
        CritiqueInVoice,
        JudgeControversy,
        JudgeInVoice,
        ReviseForPersona,
        WritePersonaDetails,
    )

    sig_hashes = {s.__name__: signature_hash(s) for s in (WritePersonaDetails, CheckPersonaConsistency,
                                                            JudgeControversy, AnswerQuestion, CritiqueInVoice,
                                                            ReviseForPersona, JudgeInVoice)}
    reasons = Counter(r.reason for r in enriched.rejections)
    context = {
        "seed": int(cfg.seed), "config_hash": config_hash(cfg), "signature_hashes": sig_hashes,
        "generator_model": gen.client.model_id, "judge_model": judge.client.model_id,
        "embedded_model": "smollm2" in (cfg.models.generator.kind, cfg.models.judge.kind),
        "census": {"num_personas": len(personas), "source": source.name, "description": source.describe(),
                   "year": source.spec.year or "", "states": ", ".join(sorted(map(str, source.pool["state"].unique())))},
        "enrich": {"candidates": enriched.candidates_used, "rejected": len(enriched.rejections),
                   "drop_rate": enriched.drop_rate, "by_reason": dict(sorted(reasons.items())) or "none"},
        "filter_counts": qres.filter_counts, "min_words": cfg.stage.questions.min_words,
        "judge_variants": ", ".join(cfg.stage.judge.variants), "judge_scorecard": scorecard,
        "agreement": agreement or "not computed",
        # Answers per stage, not calls vs cache hits: a warm rerun must render the same card byte for byte.
        "stage_stats": {k: {"answers": v.calls + v.cache_hits, "failures": v.failures,
                            "failures_by_kind": dict(sorted(v.by_kind.items())) or "none"}
                        for k, v in sorted(stats.items())},
        "fidelity": _fidelity_summary(fidelity),
    }
    published = publish_folder(tables, out_dir / "dataset", context=context, plots=plots, publish_cfg=cfg.publish)
    lm_calls = sum(s.calls for s in stats.values())
    manifest = {
        "seed": int(cfg.seed), "config_hash": context["config_hash"], "content_hash": published.content_hash,
        "rows": {cfg_name: {split: len(df) for split, df in splits.items()} for cfg_name, splits in tables.items()},
        "lm_calls": lm_calls, "cache": cache.stats(), "stages": {k: v.as_dict() for k, v in sorted(stats.items())},
        "failures": {k: v.failures for k, v in sorted(stats.items())},
        "feedback_rows_with_failures": int(sum(1 for r in feedback if r.failures)),
        "enrich": context["enrich"], "question_filters": qres.filter_counts,
        "judge_scorecard": scorecard, "judge_agreement": agreement,
        "models": {"generator": gen.client.identity, "judge": judge.client.identity},
        "signature_hashes": sig_hashes, "fidelity": context["fidelity"],
        "dataset_dir": str(published.folder), "uploaded": published.uploaded,
    }
    from persona_gen.publish.writer import atomic_write_text, to_json

    manifest_path = out_dir / "manifest.json"
    atomic_write_text(manifest_path, to_json(manifest))
    cache.close()
    published_plots = [published.folder / "plots" / p.name for p in plots]
    return RunResult(out_dir, published.folder, published.card_path, manifest_path, published_plots,
                     published.content_hash, lm_calls, manifest)


def _fidelity_summary(fidelity: dict[str, Any] | None) -> dict[str, Any] | None:
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
