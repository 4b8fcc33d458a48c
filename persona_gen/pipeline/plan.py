"""``task=plan``: what a run will cost, before paying for it. No LM call, no census load: the config alone.

For each declared step, in run order, its ``planned_calls`` (``persona_gen.core.steps.Step``): how many LM calls of
which signature per model role. Rows per scope come from ``scale`` (personas, rows per persona, judged rows), the
question count from the prompt files and the rule filters (``QuestionsStep.planned_candidates``); counts that hang
on LM answers (rejected personas, prompts judged not controversial, which questions the pairs draw) are estimates
from ``plan.*`` and flagged as such. Tokens: one representative prompt per step, rendered with the JSON adapter
every call uses on inputs of typical length (``plan.typical_words``), at ``plan.chars_per_token`` characters per
token; completions both as a typical answer (the JSON of typical output values) and as the ``max_tokens`` bound.
Wall time per role is ``calls x latency / concurrency``; the run's is given two ways: streaming (every endpoint
kept full: the slowest role) and barrier (each step's calls in waves of ``concurrency``, step after step, chunk
after chunk).

``plan_run(cfg)`` returns the plan; ``run_plan(cfg)`` (the task) also prints it and writes ``plan.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.io import atomic_write_text, to_json
from persona_gen.core.planning import (
    PlanContext,
    PlannedCall,
    completion_chars,
    filler,
    module_signature,
    prompt_chars,
    tokens,
    typical_outputs,
)
from persona_gen.core.steps import Ref, Step
from persona_gen.pipeline.graph import Pipeline

__all__ = ["Plan", "PlanResult", "plan_run", "run_plan"]

WHERE = "plan (conf/plan/default.yaml)"
DEFAULTS: dict[str, Any] = {"latency_s": 1.0, "latencies_s": [0.2, 1.0, 5.0], "chars_per_token": 4.0,
                            "enrich_drop_rate": 0.085, "controversial_share": 0.9, "typical_words": {}}


def _fail(key: str, expected: str, got: Any, fix: str) -> ConfigError:
    return ConfigError(format_error(f"plan.{key}", expected=expected, got=got, where=WHERE, fix=fix))


def _settings(cfg: DictConfig) -> dict[str, Any]:
    node = cfg.get("plan")
    raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise _fail(unknown[0], f"one of {sorted(DEFAULTS)}", unknown[0], "remove or rename it")
    out = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    def number(key: str, value: Any, *, low: float, high: float | None = None, closed: str = "") -> float:
        """``value`` as a float in (low, high]; ``closed`` "low" makes it [low, high), "" leaves (low, high]."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = math.nan
        above = x >= low if closed == "low" else x > low
        below = high is None or (x < high if closed == "low" else x <= high)
        if not (above and below):
            bound = ("[" if closed == "low" else "(") + f"{low:g}, " + ("inf)" if high is None else f"{high:g}"
                                                                       + (")" if closed == "low" else "]"))
            raise _fail(key, f"a number in {bound}", value, f"e.g. plan.{key}={DEFAULTS.get(key, 1.0)}")
        return x

    out["latency_s"] = number("latency_s", out["latency_s"], low=0.0)
    lat = out["latencies_s"]
    if isinstance(lat, str | int | float):
        lat = [lat]
    out["latencies_s"] = [number("latencies_s", x, low=0.0) for x in lat]
    out["chars_per_token"] = number("chars_per_token", out["chars_per_token"], low=0.0)
    out["enrich_drop_rate"] = number("enrich_drop_rate", out["enrich_drop_rate"], low=0.0, high=1.0, closed="low")
    out["controversial_share"] = number("controversial_share", out["controversial_share"], low=0.0, high=1.0)
    words = out["typical_words"]
    if not isinstance(words, Mapping) or any(not isinstance(v, int) or isinstance(v, bool) or v < 0
                                             for v in words.values()):
        raise _fail("typical_words", "a mapping of field name -> words (an int >= 0)", words,
                    "e.g. plan.typical_words.answer=150")
    return out


@dataclass
class Plan:
    """The calls, tokens and wall time a run of ``cfg`` will take (``as_dict`` is plan.json)."""

    counts: dict[str, Any]
    steps: list[dict[str, Any]]
    roles: dict[str, dict[str, Any]]
    wall_s: dict[str, dict[str, float]]
    settings: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    def calls_by_stage(self) -> dict[str, int]:
        """Planned calls per stats key: what ``manifest["stages"]`` counts as lm_calls + cache_hits."""
        out: dict[str, int] = {}
        for row in self.steps:
            if row["calls"]:
                out[row["stage"]] = out.get(row["stage"], 0) + row["calls"]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "counts": self.counts, "steps": self.steps, "roles": self.roles,
                "wall_s": self.wall_s, "assumptions": self.settings,
                "notes": {"tokens": f"characters / {self.settings['chars_per_token']:g}; prompts rendered with the "
                                    "JSON adapter on inputs of typical length (plan.typical_words)",
                          "completion_tokens": "typical answer (JSON of typical output values, capped at "
                                               "max_tokens); completion_tokens_max: calls x max_tokens",
                          "wall_s": "streaming: max over roles of calls x latency / concurrency (every endpoint "
                                    "kept busy); barrier: each step's calls in waves of concurrency, one step after "
                                    "another, chunk by chunk; streaming_one_queue_per_endpoint: roles on one "
                                    "endpoint add their busy times; config.sharded (shard.count > 1): the global "
                                    "steps once, then the largest shard, each shard with its own concurrency"}}

    def summary_lines(self) -> list[str]:
        return format_plan(self)


@dataclass
class PlanResult:
    plan: Plan
    path: Path

    def summary_lines(self) -> list[str]:
        return [*self.plan.summary_lines(), f"plan:     {self.path}"]


def _typical(pipeline: Pipeline, ctx: PlanContext, cfg: DictConfig) -> Any:
    """A typical value of a reference: entity fields of typical length, LM step outputs as a typical answer."""
    cache: dict[str, dict[str, Any]] = {}

    def outputs_of(step: Any) -> dict[str, Any]:
        if step.name not in cache:
            values: dict[str, Any] = {}
            if hasattr(step, "module") and hasattr(step, "signature"):
                values = typical_outputs(module_signature(step.module()), ctx.words)
                for name, template in getattr(step, "derive", {}).items():
                    values[name] = template.format_map(values)
            cache[step.name] = values
        return cache[step.name]

    def typical(ref: Ref) -> Any:
        if ref.source == "model":
            return str(cfg.models[ref.field].name)
        if ref.source == "persona":
            return {"text": ctx.persona_text(), "summary": filler(ctx.words("default"))}.get(ref.field,
                                                                                            "p-0123456789abcdef")
        if ref.source == "question":
            return {"text": ctx.question_text(), "split": "train"}.get(ref.field, filler(ctx.words("persona_field")))
        if ref.source == "pair":
            return {"question_type": "train", "seen": False}.get(ref.field, "fb-0123456789abcdef")
        step = pipeline.steps[ref.source]
        value = outputs_of(step).get(ref.field)
        return value if value is not None else filler(ctx.words(ref.field))

    return typical


def _context(cfg: DictConfig, pipeline: Pipeline, settings: dict[str, Any],
             known: Mapping[str, int]) -> tuple[PlanContext, dict[str, Any]]:
    scale = cfg.scale
    personas = int(scale.num_personas)
    ctx = PlanContext(cfg=cfg, rows={}, rows_per_persona=0, known=dict(known), assume=settings,
                      chunk_personas=int(scale.get("chunk_personas", 32) or 32))
    ctx.typical = _typical(pipeline, ctx, cfg)
    assign = pipeline.steps[pipeline.pairs.source]
    per_persona = (assign.planned_rows_per_persona() if hasattr(assign, "planned_rows_per_persona") else
                   int(scale.train_rows_per_persona) + int(scale.test_seen_per_persona)
                   + int(scale.test_unseen_per_persona))
    counts: dict[str, Any] = {"personas": personas, "pairs_per_persona": per_persona, "pairs": personas * per_persona}
    questions_ref = assign.inputs.get("questions")
    qstep = pipeline.steps.get(questions_ref.source) if questions_ref is not None else None
    if qstep is not None and hasattr(qstep, "planned_questions"):
        q = qstep.planned_questions(ctx)
        counts["questions"] = {k: q[k] for k in ("kept", "train", "held_out", "exact")}
        if q.get("note"):
            counts["questions"]["note"] = q["note"]
        estimate = (assign.planned_questions_used(personas, q["train"], q["held_out"])
                    if hasattr(assign, "planned_questions_used") else min(q["kept"], personas * per_persona))
    else:
        estimate = personas * per_persona
    used, measured = ctx.measured("questions.used", estimate)
    counts["questions_used"] = {"count": used, "exact": measured,
                                **({} if measured else {"note": "expected distinct questions the pairs draw"})}
    ctx.rows = {"run": 1, "question": used, "persona": personas, "pair": personas * per_persona}
    ctx.rows_per_persona = per_persona
    ctx.exact_scopes = {"persona", "pair", *(["question"] if measured else [])}
    return ctx, counts


def _model_cfg(cfg: DictConfig, call: PlannedCall) -> Any:
    if call.model_cfg is not None:
        return call.model_cfg
    if call.role not in cfg.models:
        raise ConfigError(format_error(f"models.{call.role}", expected="a model role the step calls", got=None,
                                       where=WHERE, fix=f"add +model@models.{call.role}=<a file of conf/model/>"))
    return cfg.models[call.role]


def plan_run(cfg: DictConfig, *, known: Mapping[str, int] | None = None) -> Plan:
    """The plan of a run of ``cfg``: no census load, no LM call, nothing written.

    Args:
        cfg: the composed run config (its ``plan`` node holds the assumptions and latencies).
        known: sizes measured elsewhere (a pilot run) that replace estimates: ``questions.used``,
            ``<enrich step>.candidates``, ``<enrich step>.written``, ``<questions step>.candidates``,
            ``<questions step>.kept``.
    """
    from persona_gen.pipeline.runner import check, config_hash

    pipeline = check(cfg)
    settings = _settings(cfg)
    ctx, counts = _context(cfg, pipeline, settings, known or {})
    cpt = float(settings["chars_per_token"])
    rows: list[dict[str, Any]] = []
    batches: list[tuple[str, tuple[int, ...]]] = []
    roles: dict[str, dict[str, Any]] = {}
    unplanned: list[str] = []
    for name in pipeline.order:
        step = pipeline.steps[name]
        planned = step.planned_calls(ctx)
        if not planned and step.needs_role and type(step).planned_calls is Step.planned_calls:
            # A step class of the user's that calls a model but says nothing of its calls: say so, count nothing.
            rows.append({"step": name, "scope": step.scope, "stage": name, "role": str(step.role),
                         "model": str(cfg.models[step.role].name) if step.role in cfg.models else "?",
                         "signature": "?", "calls": 0, "exact": False,
                         "note": f"{type(step).__name__} plans no calls: its LM calls are not counted (give the "
                                 "class a planned_calls method, see persona_gen.core.steps.Step)",
                         "prompt_tokens_per_call": 0, "completion_tokens_per_call": 0, "prompt_tokens": 0,
                         "completion_tokens": 0, "completion_tokens_max": 0})
            if step.role in roles:
                roles[str(step.role)]["exact"] = False
            unplanned.append(str(step.role))
            continue
        for call in planned:
            mcfg = _model_cfg(cfg, call)
            max_tokens, concurrency = int(mcfg.max_tokens), max(1, int(mcfg.concurrency))
            prompt = tokens(prompt_chars(call.module, call.inputs), cpt)
            completion = min(max_tokens, tokens(completion_chars(call.module, ctx.words), cpt))
            rows.append({"step": name, "scope": step.scope, "stage": call.stage, "role": call.role,
                         "model": str(mcfg.name), "signature": call.label or module_signature(call.module).__name__,
                         "calls": int(call.calls), "exact": bool(call.exact), "note": call.note,
                         "prompt_tokens_per_call": prompt, "completion_tokens_per_call": completion,
                         "prompt_tokens": prompt * call.calls, "completion_tokens": completion * call.calls,
                         "completion_tokens_max": max_tokens * call.calls})
            batches.append((call.role, call.batches if call.batches is not None else (int(call.calls),)))
            endpoint = f"{mcfg.kind}:{mcfg.name}" + (f"@{mcfg.base_url}" if mcfg.get("base_url") else "")
            role = roles.setdefault(call.role, {"model": str(mcfg.name), "endpoint": endpoint,
                                                "concurrency": concurrency,
                                                "max_tokens": max_tokens, "calls": 0, "prompt_tokens": 0,
                                                "completion_tokens": 0, "completion_tokens_max": 0, "exact": True})
            for key in ("calls", "prompt_tokens", "completion_tokens", "completion_tokens_max"):
                role[key] += rows[-1][key]
            role["exact"] = role["exact"] and call.exact and call.role not in unplanned
    latencies = sorted({float(settings["latency_s"]), *settings["latencies_s"]})
    wall: dict[str, dict[str, float]] = {}
    for lat in latencies:
        busy = {r: v["calls"] * lat / v["concurrency"] for r, v in roles.items()}
        barrier = sum(math.ceil(b / roles[r]["concurrency"]) * lat for r, bs in batches for b in bs)
        # Roles on one endpoint (same model and server) that cannot take both roles' calls at once add up.
        shared: dict[str, float] = {}
        for r, b in busy.items():
            shared[roles[r]["endpoint"]] = shared.get(roles[r]["endpoint"], 0.0) + b
        wall[f"{lat:g}"] = {"streaming": max(busy.values(), default=0.0), "barrier": float(barrier),
                            "streaming_one_queue_per_endpoint": max(shared.values(), default=0.0),
                            **{f"busy_{r}": b for r, b in busy.items()}}
    for v in roles.values():
        v["busy_s"] = v["calls"] * float(settings["latency_s"]) / v["concurrency"]
    shard_count = int((cfg.get("shard") or {}).get("count", 1))
    config = {"config_hash": config_hash(cfg), "num_personas": int(cfg.scale.num_personas),
              "chunk_personas": ctx.chunk_personas, "shard_count": shard_count}
    if shard_count > 1:
        config["sharded"] = _sharded(rows, roles, latencies, shard_count, ctx)
    return Plan(counts=counts, steps=rows, roles=roles, wall_s=wall, settings=settings, config=config)


def _sharded(rows: list[dict[str, Any]], roles: dict[str, dict[str, Any]], latencies: list[float], count: int,
             ctx: PlanContext) -> dict[str, Any]:
    """Streaming wall time of ``count`` shards, each with every role's concurrency of its own: the global steps
    once (the first shard or ``task=prepare``; the others wait), then the largest shard's persona chunks."""
    personas = int(ctx.rows.get("persona", 0))
    chunks = math.ceil(personas / ctx.chunk_personas) if personas else 0
    largest = min(personas, math.ceil(chunks / count) * ctx.chunk_personas) if chunks else 0
    share = largest / personas if personas else 0.0
    global_calls: dict[str, int] = {}
    shard_calls: dict[str, float] = {}
    for row in rows:
        if row["scope"] in ("run", "question"):
            global_calls[row["role"]] = global_calls.get(row["role"], 0) + row["calls"]
        else:
            shard_calls[row["role"]] = shard_calls.get(row["role"], 0.0) + row["calls"] * share
    out: dict[str, Any] = {"shards": count, "chunks": chunks, "largest_shard_personas": largest, "wall_s": {}}
    for lat in latencies:
        first = max((n * lat / roles[r]["concurrency"] for r, n in global_calls.items()), default=0.0)
        then = max((n * lat / roles[r]["concurrency"] for r, n in shard_calls.items()), default=0.0)
        out["wall_s"][f"{lat:g}"] = {"global": first, "largest_shard": then, "total": first + then}
    return out


def run_plan(cfg: DictConfig) -> PlanResult:
    """``task=plan``: print the plan and write ``plan.json`` in the run dir. No LM call, no census load."""
    plan = plan_run(cfg)
    path = Path(cfg.paths.output_dir) / "plan.json"
    atomic_write_text(path, to_json(plan.as_dict()))
    return PlanResult(plan, path)


# -- the table ------------------------------------------------------------------------------------------------


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s / 86400:.1f} days"


def _table(header: list[str], body: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                 strict=True)))
    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def _shared_endpoints(plan: Plan) -> dict[str, list[str]]:
    """Endpoints that more than one role with calls points at."""
    by_endpoint: dict[str, list[str]] = {}
    for role, v in plan.roles.items():
        if v["calls"]:
            by_endpoint.setdefault(v["endpoint"], []).append(role)
    return {e: names for e, names in by_endpoint.items() if len(names) > 1}


def format_plan(plan: Plan) -> list[str]:
    """The plan as text tables: steps, model roles, wall time per latency."""
    c = plan.counts
    q = c.get("questions") or {}
    qu = c["questions_used"]
    lines = [f"plan (no LM call made): {c['personas']:,} personas x {c['pairs_per_persona']:,} pairs = "
             f"{c['pairs']:,} pairs; questions kept {q.get('kept', '?')}{'' if q.get('exact', True) else ' (est.)'}, "
             f"used by the pairs {qu['count']:,}{'' if qu['exact'] else ' (est.)'}", ""]
    body = [[r["step"], r["scope"], r["stage"], r["signature"], r["role"], f"{r['calls']:,}",
             "exact" if r["exact"] else "est.", _human(r["prompt_tokens"]), _human(r["completion_tokens"]),
             _human(r["completion_tokens_max"])] for r in plan.steps]
    lines += _table(["step", "scope", "stage", "signature", "role", "calls", "count", "prompt tok", "compl. tok",
                     "compl. max"], body, {5, 7, 8, 9})
    lat = float(plan.settings["latency_s"])
    body = [[role, v["model"], str(v["concurrency"]), f"{v['calls']:,}" + ("" if v["exact"] else " (est.)"),
             _human(v["prompt_tokens"]), _human(v["completion_tokens"]), _human(v["completion_tokens_max"]),
             _duration(v["busy_s"])] for role, v in plan.roles.items()]
    lines += ["", *_table(["role", "model", "concurrency", "calls", "prompt tok", "compl. tok", "compl. max",
                           f"busy at {lat:g} s/call"], body, {2, 3, 4, 5, 6, 7})]
    sharing = _shared_endpoints(plan)
    body = [[f"{k} s", _duration(v["streaming"]), _duration(v["barrier"]),
             *([_duration(v["streaming_one_queue_per_endpoint"])] if sharing else [])] for k, v in plan.wall_s.items()]
    lines += ["", *_table(["latency/call", "wall, streaming", "wall, barrier",
                           *(["wall, one queue per endpoint"] if sharing else [])], body, {1, 2, 3})]
    for endpoint, names in sharing.items():
        lines.append(f"roles {', '.join(names)} call one endpoint ({endpoint}): if it cannot serve their "
                     "concurrency at once (an in-process model, a server at capacity), their busy times add up: "
                     "'one queue per endpoint'")
    sharded = plan.config.get("sharded")
    if sharded:
        body = [[f"{k} s", _duration(v["global"]), _duration(v["largest_shard"]), _duration(v["total"])]
                for k, v in sharded["wall_s"].items()]
        lines += ["", f"shard.count={sharded['shards']}: {sharded['chunks']} chunks of {plan.config['chunk_personas']} "
                  f"personas, the largest shard {sharded['largest_shard_personas']} personas; each shard with every "
                  "role's concurrency of its own (streaming)",
                  *_table(["latency/call", "global steps, once", "largest shard", "wall"], body, {1, 2, 3})]
    notes = [f"  {r['step']}: {r['note']}" for r in plan.steps if r["note"]]
    for key in ("questions", "questions_used"):
        if (c.get(key) or {}).get("note"):
            notes.append(f"  {key}: {c[key]['note']}")
    lines += ["", f"tokens ~ characters / {plan.settings['chars_per_token']:g} of one prompt per step rendered with "
              "the JSON adapter on inputs of typical length; compl. tok: a typical answer, compl. max: calls x "
              "max_tokens", "wall, streaming: the busiest role's calls x latency / concurrency (every endpoint "
              "kept full); wall, barrier: each step's calls in waves of concurrency, step after step, chunk by chunk"]
    if notes:
        lines += ["estimates:", *dict.fromkeys(notes)]
    return lines
