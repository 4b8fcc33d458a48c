"""``run(cfg)``: the stages in order, from census to a Hub-ready folder.

Stages talk only through records (``persona_gen.core.records``). Each stage gets its own seed from
``numpy.random.SeedSequence(cfg.seed).spawn``; every LM call goes through the one cache, so an
interrupted run resumes where it stopped and a warm rerun makes no LM call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from persona_gen.core.cache import CallCache, canonical_json
from persona_gen.core.calls import Caller, CallStats
from persona_gen.core.config import validate
from persona_gen.core.errors import PersonaGenError, format_error
from persona_gen.core.io import figure_png
from persona_gen.core.lm import build_lm, check_endpoints, signature_hash
from persona_gen.core.parts import (
    check_parts,
    part_status,
    parts_not_found,
    read_part_stats,
    retry_wanted,
    write_part_marker,
)
from persona_gen.core.records import CENSUS_KEYS, PERSONA_KEYS, Feedback, Judgment, Persona, stable_id

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


# Keys that do not change what a run makes: where files live, how it is split or published, other tasks.
_NOT_CONTENT = ("paths", "shard", "publish", "task", "cache", "bench", "optimize", "annotate", "hydra")


def config_hash(cfg: DictConfig) -> str:
    """Hash of what determines the data; unresolved, so machine paths and env values do not enter it."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    for key in _NOT_CONTENT:
        plain.pop(key, None)
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


def _judge_scorecard(df: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from persona_gen.metrics import cohen_kappa

    if df.empty:
        return [], {}
    from persona_gen.metrics import rate_with_ci

    cards = []
    for variant, g in df.groupby("variant", sort=True):
        wide = g.pivot(index="feedback_id", columns="order", values="preferred")
        consistent = (wide["original_first"] == wide["revision_first"]).mean()
        judged = g[g["choice"] != "abstain"]
        # The paper's verification pass: the persona-voiced judge prefers the revision (96% with GPT-4).
        verified = rate_with_ci(int((judged["preferred"] == "revision").sum()), len(judged)) if len(judged) else None
        cards.append({
            "variant": variant, "pairs": len(wide),
            "order_consistency": round(float(consistent), 4),
            "first_position_rate": round(float((g["choice"] == "first").mean()), 4),
            "revision_preferred": round(float((g["preferred"] == "revision").mean()), 4),
            "verification_rate": None if verified is None else round(float(verified.rate), 4),
            "verification_ci": None if verified is None else [round(float(verified.ci_low), 4),
                                                               round(float(verified.ci_high), 4)],
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
    atomic_write_bytes(path, figure_png(fig))
    return path


def _check_failure_rate(stats: dict[str, CallStats], limit: float, parts: Path | None = None) -> None:
    from persona_gen.core.parts import failure_files

    for stage, s in stats.items():
        total = s.calls + s.cache_hits
        if total and s.failures / total > limit:
            raise PersonaGenError(format_error(
                f"failure rate of stage {stage!r}", expected=f"<= max_failure_rate={limit}",
                got=f"{s.failures}/{total}", where=failure_files(stage, parts),
                fix="use a stronger model, or raise max_failure_rate to publish anyway; a rerun retries recorded "
                    "failures (cache.retry_failures) once the server is healthy"))


GLOBAL_STAGES = ("enrich", "consistency", "questions", "answer")


@dataclass
class Prepared:
    """What every shard computes in full (cached): personas, questions, pairings, no-persona answers."""

    cfg: DictConfig
    out_dir: Path
    cache: CallCache
    gen: Any
    judge: Any
    personas: list[Persona]
    assignments: list[Any]
    answers: dict[str, Any]
    global_info: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    plots: list[tuple[str, Path]]
    judges: dict[str, Any] | None = None
    assignments_of: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a in self.assignments:
            self.assignments_of.setdefault(a.persona_id, []).append(a)


def _prepare(cfg: DictConfig) -> Prepared:
    from persona_gen.enrich.stage import run_enrich
    from persona_gen.questions.stage import run_questions
    from persona_gen.responses.stage import answer_questions, assign_questions, candidate_model_configs, run_candidates

    out_dir = Path(cfg.paths.output_dir)
    seeds = stage_seeds(int(cfg.seed))
    scale = cfg.scale
    cache = CallCache.from_cfg(cfg.cache)
    stats: dict[str, CallStats] = {}
    gen_client = build_lm(cfg.models.generator, role="generator")
    judge_client = build_lm(cfg.models.judge, role="judge")
    gen = Caller(gen_client, cache, stats=stats)

    n_candidates = math.ceil(scale.num_personas * float(cfg.stage.enrich.get("candidate_factor", 2.0))) + 2
    candidates, source, _ = _census_candidates(cfg, n_candidates, seeds["census"])
    fidelity = _fidelity(cfg, source, seeds["fidelity"], out_dir / "fidelity")

    enriched = run_enrich(candidates, num_personas=int(scale.num_personas), cfg=cfg.stage.enrich, caller=gen,
                          seed=seeds["enrich"])
    personas = enriched.personas
    if len(personas) < scale.num_personas:
        # An unreachable server shows up here as rejections: name it, not only "use a stronger model".
        lm_failure = next((r.message for r in enriched.rejections if r.reason == "lm_failure"), None)
        raise PersonaGenError(format_error(
            "consistent personas", expected=f"{scale.num_personas}", got=len(personas),
            where=f"{enriched.candidates_used} census candidates, {len(enriched.rejections)} rejected: "
                  f"{dict(sorted(Counter(r.reason for r in enriched.rejections).items()))}"
                  + (f", first LM failure: {lm_failure[:200]}" if lm_failure else ""),
            fix="raise stage.enrich.candidate_factor or use a stronger model; on LM failures check models.generator "
                "(server up, base_url, api_key_env)"))
    qres = run_questions(cfg=cfg.stage.questions, caller=gen, seed=seeds["questions"],
                         max_candidates=scale.get("max_candidate_prompts"), plot_dir=out_dir / "questions")
    assignments = assign_questions(
        personas, qres.questions, train_rows=int(scale.train_rows_per_persona),
        seen_rows=int(scale.test_seen_per_persona), unseen_rows=int(scale.test_unseen_per_persona),
        seed=seeds["feedback"])
    answers = answer_questions([a.question for a in assignments], caller=gen)
    candidate_clients = [(name, build_lm(mcfg, role=f"candidate:{name}"))
                         for name, mcfg in candidate_model_configs(cfg.stage.feedback, cfg.models)]
    candidates = run_candidates([a.question for a in assignments], candidate_clients, cache=cache, stats=stats)

    plots: list[tuple[str, Path]] = []
    if fidelity and fidelity["paths"].get("png"):
        plots.append(("population_vs_census.png", Path(fidelity["paths"]["png"])))
    plots += [(Path(p).name, Path(p)) for p in getattr(qres, "plots", []) or []]
    reasons = Counter(r.reason for r in enriched.rejections)
    rejections = pd.DataFrame([r.__dict__ for r in enriched.rejections],
                              columns=["persona_id", "source_record_id", "reason", "offending_fields", "message", "raw",
                                       "failure_kind"])
    rejections["offending_fields"] = rejections["offending_fields"].map(list)
    global_info = {
        "seed": int(cfg.seed), "config_hash": config_hash(cfg),
        "generator": gen_client.identity, "judge": judge_client.identity,
        "generator_model": gen_client.model_id, "judge_model": judge_client.model_id,
        "embedded_model": "smollm2" in (cfg.models.generator.kind, cfg.models.judge.kind),
        "census": {"num_personas": len(personas), "source": source.name, "description": source.describe(),
                   "year": source.spec.year or "",
                   "states": ", ".join(sorted(map(str, source.pool["state"].unique())))},
        "enrich": {"candidates": enriched.candidates_used, "rejected": len(enriched.rejections),
                   "drop_rate": enriched.drop_rate, "by_reason": dict(sorted(reasons.items())) or "none"},
        "filter_counts": qres.filter_counts, "min_words": cfg.stage.questions.min_words,
        "judge_variants": list(cfg.stage.judge.variants),
        "fidelity": _fidelity_summary(fidelity),
        "global_stats": {k: v.as_dict() for k, v in sorted(stats.items())},
        "num_personas": len(personas), "chunk_personas": _chunk_size(cfg),
    }
    tables = {"personas": _personas_frame(personas), "persona_rejections": rejections,
              "questions": _frame(qres.questions)}
    if candidate_clients:
        tables["candidates"] = _frame(candidates, json_cols=("failure",))
    judges = None
    if cfg.stage.judge.get("program_path"):
        from persona_gen.optimize import load_judges

        judges = load_judges(cfg.stage.judge.program_path)
    return Prepared(cfg, out_dir, cache, gen_client, judge_client, personas, assignments, answers, global_info,
                    tables, plots, judges)


def _chunk_size(cfg: DictConfig) -> int:
    return int(cfg.scale.get("chunk_personas", 32) or 32)


def _chunks(num_personas: int, size: int) -> list[tuple[int, int, int]]:
    return [(i, lo, min(lo + size, num_personas)) for i, lo in enumerate(range(0, num_personas, size))]


def _shard_of(chunks: list[tuple[int, int, int]], index: int, count: int) -> list[tuple[int, int, int]]:
    """Contiguous ranges of persona chunks: shard ``index`` of ``count``."""
    per, extra = divmod(len(chunks), count)
    lo = index * per + min(index, extra)
    return chunks[lo: lo + per + (1 if index < extra else 0)]


def run_key(cfg: DictConfig) -> str:
    """What determines a run's rows: the config hash and both models' identities (weights revision included)."""
    idents = [build_lm(cfg.models[role], role=role).identity for role in ("generator", "judge")]
    return hashlib.sha256(canonical_json([config_hash(cfg), idents]).encode()).hexdigest()[:20]


def parts_dir_for(cfg: DictConfig) -> Path:
    """Where finished persona chunks go: ``shard.parts_dir`` if set, else beside the cache, keyed by ``run_key``.

    Parts are results like cache entries: a rerun, a resumed run and every shard of one config find the chunks
    already finished and skip them. With the cache disabled they stay in the run's own directory.
    """
    shard = cfg.get("shard") or {}
    if shard.get("parts_dir"):
        return Path(shard["parts_dir"])
    if not cfg.cache.get("enabled", True):
        return Path(cfg.paths.output_dir) / "parts"
    return Path(cfg.cache.dir) / "parts" / run_key(cfg)


def _check_parts_dir(cfg: DictConfig, parts: Path) -> None:
    """Refuse a parts dir that holds another config's chunks: they would be skipped as done and mixed in."""
    info_path = parts / "global" / "info.json"
    if not info_path.exists():
        return
    info = json.loads(info_path.read_text())
    mine = json.loads(json.dumps({"config_hash": config_hash(cfg), **{
        role: build_lm(cfg.models[role], role=role).identity for role in ("generator", "judge")}}, default=str))
    theirs = {key: info.get(key) for key in mine}
    if theirs != mine:
        differ = [key for key in mine if theirs[key] != mine[key]]
        raise PersonaGenError(format_error(
            f"shard.parts_dir {parts}", expected="empty, or holding the parts of this config and these models",
            got=f"parts made with another {' and '.join(differ)} ({info_path})", where="shard.parts_dir",
            fix="use a fresh folder for each config, or leave shard.parts_dir unset (the default is keyed by both)"))


def _write_frame(path: Path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from persona_gen.publish.writer import atomic_write_bytes

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), sink,
                   compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def _run_chunk(prep: Prepared, index: int, lo: int, hi: int, parts: Path) -> int:
    """Feedback and judgments of personas [lo, hi); the stats file, written last, marks the chunk complete.

    Returns the LM calls made (0 when an earlier run or another shard already finished the chunk).
    """
    from persona_gen.judge.stage import run_judge
    from persona_gen.responses.stage import run_feedback

    name = f"part-{index:06d}"
    if part_status(parts, index, retry_failures=retry_wanted(prep.cache, prep.gen, prep.judge)) is None:
        return 0  # done (checksums match) by an earlier, interrupted run or by another shard
    cfg = prep.cfg
    personas = prep.personas[lo:hi]
    assignments = [a for p in personas for a in prep.assignments_of.get(p.persona_id, [])]
    stats: dict[str, CallStats] = {}
    gen = Caller(prep.gen, prep.cache, stats=stats)
    judge = Caller(prep.judge, prep.cache, stats=stats)
    rows = run_feedback(personas, assignments, cfg=cfg.stage.feedback, caller=gen, answers=prep.answers)
    per_persona: Counter[str] = Counter()
    to_judge = []
    for row in rows:
        if per_persona[row.persona_id] < int(cfg.scale.judge_rows_per_persona):
            per_persona[row.persona_id] += 1
            to_judge.append(row)
    judgments = run_judge(to_judge, cfg=cfg.stage.judge, caller=judge, judges=prep.judges)
    _write_frame(parts / "feedback" / f"{name}.parquet", _feedback_frame(rows))
    _write_frame(parts / "judgments" / f"{name}.parquet", _judgment_frame(judgments))
    write_part_marker(parts, index, {k: v.as_dict() for k, v in sorted(stats.items())})
    return sum(s.calls for s in stats.values())


def _judgment_frame(judgments: list[Judgment]) -> pd.DataFrame:
    cols = list(Judgment.model_fields)
    return _frame(judgments, json_cols=("failure",)) if judgments else pd.DataFrame(columns=cols).astype(str)


_Task = TypeVar("_Task", bound=Callable[[DictConfig], Any])


def _no_partial_output(task: _Task) -> _Task:
    """On failure, remove what ``task`` added to the run dir; Hydra's ``.hydra/`` and log, and what was there before,
    stay.

    The fidelity report and plots land in the run dir before the dataset is published; a run that fails later
    must not leave them looking like a half-finished result. The dataset folder is swapped in only when
    complete (``publish_folder``), so it is kept: after a failed upload it is what a rerun uploads.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        out_dir = Path(cfg.paths.output_dir)
        before = set(out_dir.iterdir()) if out_dir.is_dir() else set()
        try:
            return task(cfg)
        except BaseException:
            added = (set(out_dir.iterdir()) if out_dir.is_dir() else set()) - before - {out_dir / "dataset"}
            for path in added:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise

    return cast(_Task, wrapper)


@_no_partial_output
def run(cfg: DictConfig) -> RunResult | ShardResult:
    """Run every stage; with ``shard.count`` > 1 only this shard's persona chunks, to be merged later."""
    from persona_gen.publish.hub import check_publish_config
    from persona_gen.publish.writer import atomic_write_text, to_json

    validate(cfg)
    shard = cfg.get("shard") or {}
    index, count = int(shard.get("index", 0)), int(shard.get("count", 1))
    if count == 1:
        check_publish_config(cfg.publish)  # a missing repo id or token must not wait for the LM work
    parts = parts_dir_for(cfg)
    _check_parts_dir(cfg, parts)
    check_endpoints({"generator": cfg.models.generator, "judge": cfg.models.judge})  # seconds, not retries
    prep = _prepare(cfg)
    # Every shard writes the same global tables (atomically): the merge needs one of them, any one.
    for name, frame in prep.tables.items():
        _write_frame(parts / "global" / f"{name}.parquet", frame)
    from persona_gen.publish.writer import atomic_write_bytes

    for name, plot in prep.plots:
        atomic_write_bytes(parts / "global" / "plots" / name, plot.read_bytes())
    atomic_write_text(parts / "global" / "info.json", to_json(prep.global_info))
    mine = _shard_of(_chunks(len(prep.personas), _chunk_size(cfg)), index, count)
    lm_calls = sum(v["lm_calls"] for v in prep.global_info["global_stats"].values())
    for chunk in mine:
        lm_calls += _run_chunk(prep, *chunk, parts)
    prep.cache.close()
    if count > 1:
        return ShardResult(index, count, parts, [c[0] for c in mine])
    return publish_parts(cfg, parts, lm_calls=lm_calls)


@dataclass
class ShardResult:
    index: int
    count: int
    parts_dir: Path
    chunks: list[int]

    def summary_lines(self) -> list[str]:
        return [f"shard {self.index} of {self.count}: persona chunks {self.chunks} written to {self.parts_dir}",
                f"merge with: persona-gen task=merge shard.count={self.count} shard.parts_dir={self.parts_dir}"]


@_no_partial_output
def merge(cfg: DictConfig) -> RunResult:
    """``task=merge``: publish the dataset from the parts all shards wrote (same bytes as one unsharded run)."""
    from persona_gen.publish.hub import check_publish_config

    check_publish_config(cfg.publish)
    return publish_parts(cfg, parts_dir_for(cfg))


def publish_parts(cfg: DictConfig, parts: Path, *, lm_calls: int = 0) -> RunResult:
    """Publish the dataset from finished parts; ``lm_calls`` is what this process spent making them."""
    from persona_gen.publish.hub import publish_folder
    from persona_gen.publish.writer import atomic_write_text, to_json

    info_path = parts / "global" / "info.json"
    if not info_path.exists():
        raise parts_not_found(parts, config_hash(cfg))
    info = json.loads(info_path.read_text())
    chunks = _chunks(int(info["num_personas"]), int(info["chunk_personas"]))
    missing = [i for i, _, _ in chunks if not (parts / "stats" / f"part-{i:06d}.json").exists()]
    if missing:
        raise PersonaGenError(format_error(
            "persona chunks", expected=f"all {len(chunks)} present", got=f"missing {missing[:10]}",
            where=str(parts), fix="rerun the shards that wrote them (finished chunks are skipped)"))
    count = int((cfg.get("shard") or {}).get("count", 1))
    check_parts(parts, [i for i, _, _ in chunks], shard_count=count, shard_of={
        c[0]: k for k in range(count) for c in _shard_of(chunks, k, count)})
    stats = {k: CallStats.from_dict(v) for k, v in info["global_stats"].items()}
    for i, _, _ in chunks:
        for k, v in read_part_stats(parts, i).items():
            stats.setdefault(k, CallStats()).merge(CallStats.from_dict(v))
    _check_failure_rate(stats, float(cfg.max_failure_rate), parts)
    part_files = {kind: [parts / kind / f"part-{i:06d}.parquet" for i, _, _ in chunks]
                  for kind in ("feedback", "judgments")}
    # Canonical order whatever the chunking: by variant, then feedback order, then presentation order.
    judgments = pd.concat([pd.read_parquet(p) for p in part_files["judgments"]], ignore_index=True)
    judgments = judgments.sort_values("variant", kind="stable").reset_index(drop=True)
    scorecard, agreement = _judge_scorecard(judgments)
    out_dir = Path(cfg.paths.output_dir)
    plots = [parts / "global" / "plots" / p.name for p in sorted((parts / "global" / "plots").glob("*.png"))] \
        if (parts / "global" / "plots").is_dir() else []
    judge_plot = _plot_judges(scorecard, out_dir / "plots" / "judge_scorecard.png")
    if judge_plot:
        plots.append(judge_plot)

    def feedback_split(split: str) -> Any:
        for path in part_files["feedback"]:
            frame = pd.read_parquet(path)
            yield frame[frame["question type"] == split].reset_index(drop=True)

    feedback_rows = {split: 0 for split in ("train", "test")}
    failed_rows = 0
    for path in part_files["feedback"]:
        frame = pd.read_parquet(path, columns=["question type", "failure_count"])
        failed_rows += int((frame["failure_count"] > 0).sum())
        for split, n in frame["question type"].value_counts().items():
            feedback_rows[str(split)] += int(n)
    tables: dict[str, dict[str, Any]] = {
        "feedback": {split: feedback_split(split) for split in ("train", "test") if feedback_rows[split]},
        "personas": {"train": pd.read_parquet(parts / "global" / "personas.parquet")},
        "persona_rejections": {"train": pd.read_parquet(parts / "global" / "persona_rejections.parquet")},
        "questions": {"train": pd.read_parquet(parts / "global" / "questions.parquet")},
        "judgments": {"train": judgments},
    }
    if (parts / "global" / "candidates.parquet").exists():
        tables["candidates"] = {"train": pd.read_parquet(parts / "global" / "candidates.parquet")}
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
    context = {
        **{k: info[k] for k in ("seed", "config_hash", "generator_model", "judge_model", "embedded_model", "census",
                                "enrich", "filter_counts", "min_words", "fidelity")},
        "signature_hashes": sig_hashes, "judge_variants": ", ".join(info["judge_variants"]),
        "judge_scorecard": scorecard, "agreement": agreement or "not computed",
        # Answers per stage, not calls vs cache hits: a warm rerun must render the same card byte for byte.
        "stage_stats": {k: {"answers": v.calls + v.cache_hits, "failures": v.failures,
                            "failures_by_kind": dict(sorted(v.by_kind.items())) or "none"}
                        for k, v in sorted(stats.items())},
    }
    bench_dir = cfg.publish.get("bench_dir")
    if bench_dir:
        bench_dir = Path(bench_dir) / "bench" if (Path(bench_dir) / "bench").is_dir() else Path(bench_dir)
        if not (bench_dir / "scores.json").is_file():
            raise PersonaGenError(format_error("publish.bench_dir", expected="a folder with scores.json (task=bench)",
                                               got=str(bench_dir), where="conf/publish/",
                                               fix="run persona-gen task=bench first, or set publish.bench_dir=null"))
        context["bench_scores"] = json.loads((bench_dir / "scores.json").read_text())
        if (bench_dir / "rows.parquet").is_file():
            tables["bench"] = {"train": pd.read_parquet(bench_dir / "rows.parquet")}
        plots += sorted(bench_dir.glob("*.png"))
    published = publish_folder(tables, out_dir / "dataset", context=context, plots=plots, publish_cfg=cfg.publish)
    rows = {"feedback": {k: v for k, v in feedback_rows.items() if v},
            **{name: {"train": len(splits["train"])} for name, splits in tables.items() if name != "feedback"}}
    manifest = {
        "seed": info["seed"], "config_hash": info["config_hash"], "content_hash": published.content_hash,
        "rows": rows, "lm_calls": lm_calls, "lm_calls_to_make_parts": sum(s.calls for s in stats.values()),
        "stages": {k: v.as_dict() for k, v in sorted(stats.items())},
        "failures": {k: v.failures for k, v in sorted(stats.items())},
        # Recorded failures this run called again (cache.retry_failures), and those it served from the cache.
        "failures_retried": sum(v.retried for v in stats.values()),
        "failures_from_cache": sum(v.failures_from_cache for v in stats.values()),
        "feedback_rows_with_failures": failed_rows, "enrich": info["enrich"],
        "question_filters": info["filter_counts"], "judge_scorecard": scorecard, "judge_agreement": agreement,
        "models": {"generator": info["generator"], "judge": info["judge"]},
        "signature_hashes": sig_hashes, "fidelity": info["fidelity"], "parts_dir": str(parts),
        "dataset_dir": str(published.folder), "uploaded": published.uploaded,
    }
    manifest_path = out_dir / "manifest.json"
    atomic_write_text(manifest_path, to_json(manifest))
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
