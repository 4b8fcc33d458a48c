"""Config schemas (dataclasses registered in Hydra's ConfigStore) and validation.

Hydra checks types when it composes; ``validate`` checks ranges and cross-field rules and raises one
``ConfigError`` in the house format (what, expected, got, where, how to fix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig

from persona_gen.core.errors import ConfigError, format_error

__all__ = [
    "ModelConfig",
    "RunConfig",
    "ScaleConfig",
    "register_configs",
    "validate",
]

MODEL_KINDS = ("smollm2", "openai_compatible", "fake")
IO_MODES = ("threads", "asyncio")
STRUCTURED_OUTPUT = ("json_schema", "json_object", "text")


@dataclass
class ModelConfig:
    """One LM. Left out of the cache key: base_url, api_key_env, timeout_s, concurrency, num_retries."""

    kind: str = MISSING
    name: str = MISSING
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float | None = None
    concurrency: int = 1
    # How calls are in flight together: "threads" (any LM; measured best when the server has latency) or
    # "asyncio" (an event loop; LMs with an async engine: openai_compatible, fake; best at ~0 ms latency).
    io: str = "threads"
    # smollm2 only
    context_size: int = 2048
    threads: int | None = None
    model_path: str | None = None
    # openai_compatible only
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 60.0
    num_retries: int = 4
    structured_output: str = "json_object"


@dataclass
class ScaleConfig:
    num_personas: int = MISSING
    max_candidate_prompts: int | None = None
    train_rows_per_persona: int = MISSING
    test_seen_per_persona: int = 0
    test_unseen_per_persona: int = 0
    judge_rows_per_persona: int = 0
    # Personas per feedback part: bounds memory, and is the unit of resume and of sharding.
    chunk_personas: int = 32


@dataclass
class ModelsConfig:
    generator: ModelConfig = field(default_factory=ModelConfig)
    judge: ModelConfig = field(default_factory=ModelConfig)


@dataclass
class RunConfig:
    """Top-level schema; groups not listed here stay free-form and are checked by their stage."""

    task: str = "generate"
    seed: int = 0
    run_name: str = "persona"
    max_failure_rate: float = 0.5
    # Roles -> models: generator and judge, plus any role a pipeline step names (``+model@models.critic=...``).
    models: dict[str, ModelConfig] = field(default_factory=lambda: {"generator": ModelConfig(),
                                                                    "judge": ModelConfig()})
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    paths: Any = None
    sampler: Any = None
    stage: Any = None
    cache: Any = None
    publish: Any = None
    shard: Any = None
    bench: Any = None
    optimize: Any = None
    annotate: Any = None
    pipeline: Any = None
    # task=plan's assumptions and latencies (conf/plan/; checked by persona_gen.pipeline.plan).
    plan: Any = None


def register_configs() -> None:
    """Register the schemas so YAML files can extend them (``defaults: [base_model]``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)


def _fail(key: str, expected: str, got: object, fix: str) -> ConfigError:
    return ConfigError(format_error(key, expected=expected, got=got, where="config override or conf/", fix=fix))


def validate(cfg: DictConfig) -> None:
    """Check ranges and cross-field rules that types alone cannot express."""
    scale = cfg.scale
    if scale.num_personas < 1:
        raise _fail("scale.num_personas", ">= 1", scale.num_personas, "raise it, e.g. scale.num_personas=4")
    for key in ("train_rows_per_persona", "test_seen_per_persona", "test_unseen_per_persona", "judge_rows_per_persona"):
        if scale[key] < 0:
            raise _fail(f"scale.{key}", ">= 0", scale[key], f"set scale.{key}=0 or more")
    if scale.train_rows_per_persona + scale.test_seen_per_persona + scale.test_unseen_per_persona < 1:
        raise _fail("scale rows per persona (train + seen + unseen)", ">= 1", 0, "raise scale.train_rows_per_persona")
    if scale.max_candidate_prompts is not None and scale.max_candidate_prompts < 1:
        raise _fail("scale.max_candidate_prompts", ">= 1 or null", scale.max_candidate_prompts, "raise it or set null")
    shard = cfg.get("shard") or {}
    count, index = int(shard.get("count", 1)), int(shard.get("index", 0))
    if count < 1:
        raise _fail("shard.count", ">= 1", count, "use shard.count=1 for an unsharded run")
    if not 0 <= index < count:
        raise _fail("shard.index", f"in [0, {count - 1}] for shard.count={count}", index, "count shards from 0")
    if scale.get("chunk_personas") is not None and scale.chunk_personas < 1:
        raise _fail("scale.chunk_personas", ">= 1", scale.chunk_personas, "e.g. scale.chunk_personas=32")
    if not 0.0 <= cfg.max_failure_rate <= 1.0:
        raise _fail("max_failure_rate", "in [0, 1]", cfg.max_failure_rate, "use a share such as 0.5")
    for role in ("generator", "judge"):
        m = cfg.models[role]
        if m.kind not in MODEL_KINDS:
            raise _fail(f"models.{role}.kind", f"one of {list(MODEL_KINDS)}", m.kind, "pick a file of conf/model/")
        if m.concurrency < 1:
            raise _fail(f"models.{role}.concurrency", ">= 1", m.concurrency, "use 1 for the embedded model")
        if m.io not in IO_MODES:
            raise _fail(f"models.{role}.io", f"one of {list(IO_MODES)}", m.io,
                        "threads suits servers with latency; asyncio a fast local server")
        if m.max_tokens < 1:
            raise _fail(f"models.{role}.max_tokens", ">= 1", m.max_tokens, "raise it")
        if m.temperature < 0:
            raise _fail(f"models.{role}.temperature", ">= 0", m.temperature, "use 0 for greedy decoding")
        if m.kind == "openai_compatible" and not str(m.base_url or "").startswith(("http://", "https://")):
            raise _fail(f"models.{role}.base_url", "an http(s) URL", m.base_url, "set PERSONA_GEN_BASE_URL")
        if m.kind == "openai_compatible" and m.structured_output not in STRUCTURED_OUTPUT:
            raise _fail(f"models.{role}.structured_output", f"one of {list(STRUCTURED_OUTPUT)}",
                        m.structured_output, "json_object for llama.cpp/Ollama, json_schema for vLLM/OpenAI")
