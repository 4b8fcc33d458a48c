"""Config schemas (dataclasses registered in Hydra's ConfigStore) and validation.

Every group has a dataclass schema here (``annotate`` and ``optimize`` keep theirs beside their tasks), merged
under ``base_config`` in Hydra's ConfigStore: Hydra refuses unknown keys and wrong types as it composes (one
line, through the CLI). ``validate`` then checks, for every group, what types cannot say (ranges, names, cross-field
rules, ``+key=value`` additions no schema has, whether the census candidates fit in memory) and raises one
``ConfigError`` in the house format (what, expected, got, where, how to fix), before any work.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from persona_gen.core.errors import ConfigError, format_error

__all__ = [
    "BenchConfig",
    "CacheConfig",
    "EnrichConfig",
    "FeedbackConfig",
    "JudgeConfig",
    "ModelConfig",
    "PathsConfig",
    "PublishConfig",
    "QuestionsConfig",
    "RunConfig",
    "SamplerConfig",
    "ScaleConfig",
    "ShardConfig",
    "StageConfig",
    "check_env_name",
    "looks_secret",
    "register_configs",
    "validate",
]

MODEL_KINDS = ("smollm2", "openai_compatible", "fake")
IO_MODES = ("threads", "asyncio")
STRUCTURED_OUTPUT = ("json_schema", "json_object", "text")
HTTP_CLIENTS = ("curl", "urllib3")


@dataclass
class ModelConfig:
    """One LM. Left out of the cache key: base_url, api_key_env, timeout_s, concurrency, num_retries, io and
    http_client."""

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
    # How the threads send a call: curl (libcurl via pycurl; parses the answer without the interpreter lock) or
    # urllib3. Same requests and answers either way.
    http_client: str = "curl"


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
    # Chunks streamed at once (execution=stream): enough that no endpoint waits at a chunk boundary, few enough
    # to bound memory (each open chunk holds its rows' answers until its parts are written).
    chunks_in_flight: int = 3


@dataclass
class ModelsConfig:
    generator: ModelConfig = field(default_factory=ModelConfig)
    judge: ModelConfig = field(default_factory=ModelConfig)


@dataclass
class PathsConfig:
    root: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING
    shared_data: str = MISSING


@dataclass
class SamplerConfig:
    """The census sampler (conf/sampler/); ``source`` is a source YAML path or an inline source mapping."""

    where: str | None = None
    quotas: Any = None
    source: Any = MISSING
    fidelity_sample_size: int = 20_000


@dataclass
class EnrichConfig:
    tables: str = "default"
    categories: list[str] = field(default_factory=list)
    num_categories: int = 3
    consistency_check: bool = True
    candidate_factor: float = 2.0


@dataclass
class DedupConfig:
    threshold: float = 0.9
    analyzer: str = "char_wb"
    ngram_min: int = 3
    ngram_max: int = 5


@dataclass
class ClustersConfig:
    keep_source: bool = True
    method: str = "kmeans"
    num_clusters: int | None = None
    label_terms: int = 3


@dataclass
class GenerateConfig:
    enabled: bool = False
    per_cluster: int = 5
    topics: list[str] = field(default_factory=list)


@dataclass
class QuestionsConfig:
    """Checked in full by ``persona_gen.questions.config.QuestionsSettings.from_cfg`` (``source`` is free-form)."""

    source: Any = "prism_examples"
    filters: list[str] = field(default_factory=lambda: ["has_question_mark", "min_words", "dedup", "lm_controversial"])
    min_words: int = 5
    dedup: DedupConfig = field(default_factory=DedupConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    held_out_share: float = 0.225
    plot_top: int = 20


@dataclass
class FeedbackConfig:
    max_revision_ratio: float = 1.0
    # {name, base, <ModelConfig overrides>} each; checked by responses.stage.candidate_model_configs.
    candidates: list[Any] = field(default_factory=list)


@dataclass
class JudgeConfig:
    variants: list[str] = field(default_factory=lambda: ["direct", "chain_of_thought"])
    program_path: str | None = None


@dataclass
class StageConfig:
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    questions: QuestionsConfig = field(default_factory=QuestionsConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class CacheConfig:
    enabled: bool = True
    dir: str = MISSING
    size_limit_gb: float = 8.0
    # How many later runs call again an answer recorded as a failure (e.g. an HTTP 200 with a broken body);
    # 0: recorded failures are final. In-process LMs (smollm2, fake) are never retried: they would repeat it.
    retry_failures: int = 2


@dataclass
class PublishConfig:
    mode: str = "dry_run"
    repo_id: str | None = None
    private: bool = True
    token_env: str = "HF_TOKEN"
    endpoint: str | None = None
    large_folder: bool = False
    rows_per_shard: int = 100_000
    row_group_size: int = 10_000
    license: str = "cc-by-4.0"
    pretty_name: str = "PERSONA-style synthetic preference data"
    commit_message: str = "persona_gen: publish dataset"
    # Data made by the fake LM is refused for upload unless this is true.
    allow_fake_model: bool = False
    bench_dir: str | None = None


@dataclass
class ShardConfig:
    index: int = 0
    count: int = 1
    parts_dir: str | None = None


@dataclass
class IntersectionalityConfig:
    filters: dict[str, Any] = field(default_factory=dict)
    breakdown_by: list[str] = field(default_factory=list)
    min_group_size: int = 1


@dataclass
class LeaveOneOutConfig:
    mode: str = "output_only"
    attributes: list[str] | None = None
    max_pairs: int | None = None


@dataclass
class PassAtKConfig:
    mode: str = "output_only"
    num_samples: int = 16
    max_k: int = 16
    temperature: float = 0.7
    max_pairs: int | None = None


@dataclass
class BenchConfig:
    """Checked in full by ``persona_gen.bench.settings.read_settings``; ``mode`` and ``analyses`` take a name or a
    list of names."""

    dataset_dir: str = MISSING
    mode: Any = field(default_factory=lambda: ["baseline", "output_only", "chain_of_thought", "demographic_summary"])
    method: str | None = None
    analyses: Any = field(default_factory=lambda: ["eval", "intersectionality"])
    question_split: str = "held_out"
    num_personas: int | None = None
    questions_per_persona: int | None = 4
    bootstrap_samples: int = 1000
    intersectionality: IntersectionalityConfig = field(default_factory=IntersectionalityConfig)
    leave_one_out: LeaveOneOutConfig = field(default_factory=LeaveOneOutConfig)
    pass_at_k: PassAtKConfig = field(default_factory=PassAtKConfig)


# -- annotate and optimize (tasks) --------------------------------------------------------------------------------

JUDGE_SOURCES = ("run", "dataset", "skip")


@dataclass
class AnnotateConfig:
    dataset_dir: str = MISSING
    tasks_dir: str = MISSING
    labels: list[str] = field(default_factory=list)
    num_personas: int = 20
    questions_per_persona: int = 10
    port: int = 8765
    labels_file: str | None = None
    require_justification: bool = True
    raters_per_item: int = 2
    judge_source: str = "run"
    ci: float = 0.95
    n_boot: int = 1000



OPTIMIZERS = ("bootstrap_few_shot", "mipro_v2", "gepa")


@dataclass
class BootstrapFewShotConfig:
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 8
    max_rounds: int = 1


@dataclass
class MIPROv2Config:
    auto: str | None = "light"
    num_candidates: int | None = None
    num_trials: int | None = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 4
    minibatch: bool = True
    minibatch_size: int = 35


@dataclass
class GEPAConfig:
    auto: str | None = "light"
    max_metric_calls: int | None = None
    max_full_evals: int | None = None
    reflection_minibatch_size: int = 3
    use_merge: bool = True


@dataclass
class OptimizeConfig:
    labeled_items: str = MISSING
    optimizer: str = "bootstrap_few_shot"
    variants: list[str] = field(default_factory=lambda: ["direct"])
    dev_fraction: float = 0.3
    ci: float = 0.95
    n_boot: int = 1000
    prompt_model: Any = None
    bootstrap_few_shot: BootstrapFewShotConfig = field(default_factory=BootstrapFewShotConfig)
    mipro_v2: MIPROv2Config = field(default_factory=MIPROv2Config)
    gepa: GEPAConfig = field(default_factory=GEPAConfig)


def _annotate_schema() -> Any:
    return AnnotateConfig


def _optimize_schema() -> Any:
    return OptimizeConfig


@dataclass
class RunConfig:
    """Top-level schema: every group is typed, so Hydra refuses unknown keys and wrong types as it composes, and
    ``validate`` refuses ``+key=value`` additions that no schema has (nothing would read them)."""

    task: str = "generate"
    seed: int = 0
    max_failure_rate: float = 0.5
    # stream: rows flow through the steps, every endpoint kept busy; barrier: each step over a whole chunk in turn
    # (the reference the streaming execution is tested against: the same bytes).
    execution: str = "stream"
    # Roles -> models: generator and judge, plus any role a pipeline step names (``+model@models.critic=...``).
    models: dict[str, ModelConfig] = field(default_factory=lambda: {"generator": ModelConfig(),
                                                                    "judge": ModelConfig()})
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    optimize: Any = field(default_factory=lambda: _optimize_schema()())
    annotate: Any = field(default_factory=lambda: _annotate_schema()())
    # The declared step graph (conf/pipeline/), checked by its own validator; free-form here until it has a schema.
    pipeline: Any = None
    # task=plan's assumptions and latencies (conf/plan/; checked by persona_gen.pipeline.plan).
    plan: Any = None


def register_configs() -> None:
    """Register the schemas so YAML files can extend them (``defaults: [base_model]``)."""
    from hydra.core.config_store import ConfigStore

    from persona_gen.core.userdirs import register_resolvers

    register_resolvers()  # ${persona_gen_user_cache:} (paths.cache_dir) and the --help page's sections
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)


def _fail(key: str, expected: str, got: object, fix: str, where: str = "config override or conf/") -> ConfigError:
    return ConfigError(format_error(key, expected=expected, got=got, where=where, fix=fix))


# -- what cannot be typed: unknown `+key=value` additions, ranges, cross-field rules, memory -----------------------

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Bytes a census candidate costs while a run holds it (sampled record, Persona with provenance, enrichment text):
# measured ~16 KB of RSS per candidate at 20,000 candidates (tracemalloc peak ~8 KB); rounded up.
BYTES_PER_CANDIDATE = 20_000
# More personas than this is a typo whatever the machine (the census sample alone would need terabytes).
MAX_PERSONAS = 100_000_000
# Past this, a number is a typo or an overflow, whatever the memory: int64 positions, seeds, counts.
_INT_MAX = 2**63 - 1


def _extra_keys(node: Any, path: str = "") -> list[str]:
    """Keys present in ``node`` that its dataclass schema does not declare (what ``+key=value`` adds)."""
    if not isinstance(node, DictConfig):
        return []
    schema = OmegaConf.get_type(node)
    out: list[str] = []
    declared: set[str] | None = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) \
        else None
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        if declared is not None and key not in declared:
            out.append(full)
            continue
        if declared is None and not dataclasses.is_dataclass(getattr(node._metadata, "element_type", None)):
            continue  # a free-form value (Any): its reader checks it; a dict of schemas (models) is walked
        try:
            child = node._get_node(key)
        except Exception:
            continue
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            out += _extra_keys(child, full)
    return out


def _available_memory() -> int | None:
    """Bytes the system can still hand out (MemAvailable), or None where it cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _int_in(value: Any, key: str, lo: int, hi: int = _INT_MAX, fix: str = "", where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        bound = f">= {lo}" if hi == _INT_MAX else f"an integer in [{lo}, {hi}]"
        raise _fail(key, bound, value, fix or f"set {key} within that range", where or "config override or conf/")
    return int(value)


def _number_in(value: Any, key: str, lo: float, hi: float, fix: str, *, lo_open: bool = False,
               hi_open: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        expected = f"> {lo:g}" if hi == math.inf and lo_open else f">= {lo:g}" if hi == math.inf else \
            f"in {left}{lo:g}, {hi:g}{right}"
        raise _fail(key, expected, value, fix)
    return float(value)


def check_env_name(value: Any, key: str) -> None:
    """``api_key_env`` / ``token_env`` must NAME an environment variable; the value is never echoed (it may be the
    secret itself, pasted in the wrong place)."""
    if value is None:
        return
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value) or looks_secret(value):
        raise _fail(key, "the NAME of an environment variable (letters, digits, _), such as PERSONA_GEN_API_KEY",
                    "a value that is no variable name (not shown: it may be the secret itself)",
                    f"export the secret in a variable and set {key}=<ITS NAME>; if you pasted a key, revoke it")


_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{16,}|"
                     r"xox[abpr]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}|"
                     r"-----BEGIN [A-Z ]*PRIVATE KEY-----)")


def looks_secret(value: str) -> bool:
    """Whether a text looks like an API key or token (OpenAI, Hugging Face, GitHub, Slack, AWS, JWT, PEM)."""
    return bool(_SECRET.search(value))


def _check_model(m: Any, key: str) -> None:
    from persona_gen.core.lm import ENGINES

    kinds = [*MODEL_KINDS, *(k for k in ENGINES if k not in MODEL_KINDS)]
    if m.kind not in kinds:
        raise _fail(f"{key}.kind", f"one of {kinds}", m.kind, "pick a file of conf/model/")
    _int_in(m.concurrency, f"{key}.concurrency", 1, 4096, "use 1 for the embedded model, ~16 for a server")
    if m.io not in IO_MODES:
        raise _fail(f"{key}.io", f"one of {list(IO_MODES)}", m.io,
                    "threads suits servers with latency; asyncio a fast local server")
    _int_in(m.max_tokens, f"{key}.max_tokens", 1, 1_000_000, "raise it (e.g. 256), or lower an absurd value")
    _number_in(m.temperature, f"{key}.temperature", 0.0, math.inf, "use 0 for greedy decoding")
    if m.top_p is not None:
        _number_in(m.top_p, f"{key}.top_p", 0.0, 1.0, "use a share such as 0.95, or null for the server's default",
                   lo_open=True)
    _int_in(m.context_size, f"{key}.context_size", 16, 1 << 24, "use e.g. 2048")
    if m.threads is not None:
        _int_in(m.threads, f"{key}.threads", 1, 1024, "use null: one fewer than the cores")
    _number_in(m.timeout_s, f"{key}.timeout_s", 0.0, 86_400.0, "use e.g. 60 (seconds)", lo_open=True)
    _int_in(m.num_retries, f"{key}.num_retries", 0, 100, "use e.g. 4 (0: no retry)")
    if m.kind == "openai_compatible" and not str(m.base_url or "").startswith(("http://", "https://")):
        raise _fail(f"{key}.base_url", "an http(s) URL", m.base_url, "set PERSONA_GEN_BASE_URL")
    if m.kind == "openai_compatible" and m.structured_output not in STRUCTURED_OUTPUT:
        raise _fail(f"{key}.structured_output", f"one of {list(STRUCTURED_OUTPUT)}",
                    m.structured_output, "json_object for llama.cpp/Ollama, json_schema for vLLM/OpenAI")
    if m.kind == "openai_compatible" and m.http_client not in HTTP_CLIENTS:
        raise _fail(f"{key}.http_client", f"one of {list(HTTP_CLIENTS)}", m.http_client,
                    "curl (the default), or urllib3 where pycurl cannot be installed")
    check_env_name(m.api_key_env, f"{key}.api_key_env")


def _check_scale(cfg: DictConfig) -> None:
    scale = cfg.scale
    n = scale.num_personas
    if isinstance(n, int) and not isinstance(n, bool) and n > MAX_PERSONAS:
        raise _fail("scale.num_personas", f"at most {MAX_PERSONAS:,} (and what fits in memory)", n,
                    "lower it; the paper's layout is scale=paper (1,586 personas)")
    _int_in(n, "scale.num_personas", 1, fix="raise it, e.g. scale.num_personas=4")
    for key in ("train_rows_per_persona", "test_seen_per_persona", "test_unseen_per_persona", "judge_rows_per_persona"):
        _int_in(scale[key], f"scale.{key}", 0, fix=f"set scale.{key}=0 or more")
    if scale.train_rows_per_persona + scale.test_seen_per_persona + scale.test_unseen_per_persona < 1:
        raise _fail("scale rows per persona (train + seen + unseen)", ">= 1", 0, "raise scale.train_rows_per_persona")
    if scale.max_candidate_prompts is not None:
        _int_in(scale.max_candidate_prompts, "scale.max_candidate_prompts", 1, fix="raise it or set null")
    if scale.get("chunk_personas") is not None:
        _int_in(scale.chunk_personas, "scale.chunk_personas", 1, fix="e.g. scale.chunk_personas=32")
    _int_in(scale.chunks_in_flight, "scale.chunks_in_flight", 1, 1000, fix="e.g. scale.chunks_in_flight=3")


def _check_memory(cfg: DictConfig) -> None:
    """Refuse a run whose census candidates cannot fit in memory, before anything is allocated."""
    factor = float(cfg.stage.enrich.candidate_factor)
    candidates = math.ceil(int(cfg.scale.num_personas) * factor) + 2 + int(cfg.sampler.fidelity_sample_size)
    need = candidates * BYTES_PER_CANDIDATE
    available = _available_memory()
    if available is not None and need > 0.8 * available:
        most = max(1, int((0.8 * available / BYTES_PER_CANDIDATE - 2 - int(cfg.sampler.fidelity_sample_size))
                          / factor))
        raise _fail("scale.num_personas", f"at most ~{most:,} on this machine (x stage.enrich.candidate_factor="
                    f"{factor:g} census candidates at ~{BYTES_PER_CANDIDATE // 1000} KB each must fit in "
                    f"{available / 2**30:.1f} GiB available; this needs ~{need / 2**30:,.0f} GiB)",
                    cfg.scale.num_personas, "lower it; the paper's layout is scale=paper (1,586 personas)")


def _check_stages(cfg: DictConfig) -> None:
    """The stage settings core can check alone; the rest each step checks (``Step.check``, before any work)."""
    feedback = cfg.stage.feedback
    _number_in(feedback.max_revision_ratio, "stage.feedback.max_revision_ratio", 0.0, 1000.0,
               "use e.g. 1.0 (a revision at most as long as the original, relative)", lo_open=True)
    variants = list(cfg.stage.judge.variants)
    judge_variants = ("direct", "chain_of_thought")
    if not variants:
        raise _fail("stage.judge.variants", f"a non-empty list of {list(judge_variants)}", variants,
                    "e.g. stage.judge.variants=[direct,chain_of_thought]")
    for v in variants:
        if v not in judge_variants:
            raise _fail("stage.judge.variants entry", f"one of {list(judge_variants)}", v,
                        "e.g. stage.judge.variants=[direct,chain_of_thought]",
                        "conf/stage/judge/ or a stage.judge.variants override")


def check_model(m: Any, key: str) -> None:
    """One model config's kind and bounds (``models.<role>`` or a step's own model)."""
    _check_model(m, key)


def _check_other_groups(cfg: DictConfig) -> None:
    cache = cfg.cache
    _number_in(cache.size_limit_gb, "cache.size_limit_gb", 0.0, 1e6, "use e.g. 8 (GiB)", lo_open=True)
    _int_in(cache.retry_failures, "cache.retry_failures", 0, 100, "use e.g. 2 (0: recorded failures are final)")
    sampler = cfg.sampler
    _int_in(sampler.fidelity_sample_size, "sampler.fidelity_sample_size", 0, 100_000_000,
            "use e.g. 20000 (0: no fidelity report)")
    publish = cfg.publish
    if publish.mode not in ("dry_run", "hub"):
        raise _fail("publish.mode", "one of ['dry_run', 'hub']", publish.mode,
                    "use publish=dry_run (write only) or publish=hub (write and upload)", "conf/publish/")
    _int_in(publish.rows_per_shard, "publish.rows_per_shard", 1, fix="use e.g. 100000", where="conf/publish/")
    _int_in(publish.row_group_size, "publish.row_group_size", 1, fix="use e.g. 10000", where="conf/publish/")
    check_env_name(publish.token_env, "publish.token_env")
    bench = cfg.bench
    _int_in(bench.bootstrap_samples, "bench.bootstrap_samples", 2, 10_000_000, "use e.g. 1000")
    for key in ("num_personas", "questions_per_persona"):
        if bench[key] is not None:
            _int_in(bench[key], f"bench.{key}", 1, fix=f"set bench.{key}=null to use all")
    pk = bench.pass_at_k
    _int_in(pk.num_samples, "bench.pass_at_k.num_samples", 1, 100_000, "draw e.g. 16 samples")
    _int_in(pk.max_k, "bench.pass_at_k.max_k", 1, int(pk.num_samples), "lower max_k or draw more samples")
    _number_in(pk.temperature, "bench.pass_at_k.temperature", 0.0, 100.0, "use e.g. 0.7", lo_open=True)
    annotate = cfg.annotate
    _int_in(annotate.num_personas, "annotate.num_personas", 1, fix="use e.g. 20")
    _int_in(annotate.questions_per_persona, "annotate.questions_per_persona", 1, fix="use e.g. 10")
    _int_in(annotate.port, "annotate.port", 0, 65535, "use 0 for a free port")
    _number_in(annotate.ci, "annotate.ci", 0.0, 1.0, "use e.g. 0.95", lo_open=True, hi_open=True)
    _int_in(annotate.n_boot, "annotate.n_boot", 1, 10_000_000, "use e.g. 1000")
    if annotate.judge_source not in ("run", "dataset", "skip"):
        raise _fail("annotate.judge_source", "one of ['run', 'dataset', 'skip']", annotate.judge_source,
                    "run judges the items now; dataset reads the saved judgments; skip compares people only")
    opt = cfg.optimize
    if opt.optimizer not in OPTIMIZERS:
        raise _fail("optimize.optimizer", f"one of {list(OPTIMIZERS)}", opt.optimizer, "use bootstrap_few_shot")
    _number_in(opt.dev_fraction, "optimize.dev_fraction", 0.0, 1.0, "use e.g. 0.3", lo_open=True, hi_open=True)
    _number_in(opt.ci, "optimize.ci", 0.0, 1.0, "use e.g. 0.95", lo_open=True, hi_open=True)
    _int_in(opt.n_boot, "optimize.n_boot", 1, 10_000_000, "use e.g. 1000")
    for section in ("mipro_v2", "gepa"):
        if opt[section].auto not in (None, "light", "medium", "heavy"):
            raise _fail(f"optimize.{section}.auto", "one of light, medium, heavy or null", opt[section].auto,
                        "use light")


def validate(cfg: DictConfig) -> None:
    """Check everything types alone cannot, for every group, before any work: one ``ConfigError`` for the first
    problem. ``persona-gen`` calls it before any task; ``pipeline.run`` calls it too (library use)."""
    extra = [k for k in _extra_keys(cfg) if k != "hydra"]
    if extra:
        raise _fail(f"config key {extra[0]}", "a key of persona_gen's config schema (nothing reads any other)",
                    f"+{extra[0]}", f"remove the `+{extra[0]}=...` override, or fix the key's spelling; "
                    "`persona-gen --cfg job` prints every key", "the command line or conf/")
    _int_in(cfg.seed, "seed", 0, _INT_MAX, "use a seed >= 0, e.g. seed=0")
    _check_scale(cfg)
    shard = cfg.shard
    count = _int_in(shard.count, "shard.count", 1, fix="use shard.count=1 for an unsharded run")
    index = shard.index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise _fail("shard.index", f"in [0, {count - 1}] for shard.count={count}", index, "count shards from 0")
    _number_in(cfg.max_failure_rate, "max_failure_rate", 0.0, 1.0, "use a share such as 0.5")
    for role in ("generator", "judge"):
        if role not in cfg.models:
            raise _fail(f"models.{role}", "a model config (every pipeline has a generator and a judge)", None,
                        f"add it, e.g. models.{role}=fake or models=fake")
    for role in cfg.models:
        _check_model(cfg.models[role], f"models.{role}")
    if cfg.get("execution", "stream") not in ("stream", "barrier"):
        raise _fail("execution", "one of ['stream', 'barrier']", cfg.get("execution"),
                    "stream (every endpoint busy) or barrier (step by step, the reference)")
    _check_stages(cfg)
    _check_other_groups(cfg)
    _check_memory(cfg)
