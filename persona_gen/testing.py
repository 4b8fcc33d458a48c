"""A deterministic fake LM for tests, shipped like DSPy's DummyLM and httpx's MockTransport.

``FakeEngine`` is a DSPy 3.4 engine: it reads the JSON schema that ``dspy.JSONAdapter`` asks for and
answers with a value of that shape derived only from the request's content (sha256 of the messages),
so the same input gives the same answer on any thread, in any order, in any process.

Rules let a test give the fake a behaviour: a rule is a callable ``(prompt_text, schema) -> dict | None``;
the first rule that returns a dict answers (its keys override the generated ones).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["AsyncFakeEngine", "FakeEngine", "Rule", "contradiction_rule", "fake_value"]

Rule = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]

_WORDS = ("thoughtful", "practical", "careful", "honest", "balanced", "local", "family", "community", "steady",
          "clear", "modest", "direct", "patient", "open", "quiet", "busy", "simple", "hopeful", "frank", "warm")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _phrase(seed: bytes, n_words: int) -> str:
    return " ".join(_WORDS[b % len(_WORDS)] for b in seed[:n_words])


def fake_value(schema: dict[str, Any], seed: bytes, name: str, defs: dict[str, Any], context: str) -> Any:
    """A deterministic value of JSON-schema ``schema`` from ``seed``."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        schema = options[seed[0] % len(options)]
    if "enum" in schema:
        return schema["enum"][seed[1] % len(schema["enum"])]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: fake_value(v, _digest(seed.hex(), k), k, defs, context) for k, v in props.items()}
    if kind == "array":
        item = schema.get("items", {"type": "string"})
        count = 3
        return [fake_value(item, _digest(seed.hex(), str(i)), name, defs, context) for i in range(count)]
    if kind == "boolean":
        # Mostly true: a fake that says "no" half the time makes every filter drop half the data.
        return seed[2] % 8 != 0
    if kind == "integer":
        return int(seed[3] % 10)
    if kind == "number":
        return round(seed[3] / 255, 3)
    # Strings read like text about the input, so length checks and rendering see realistic shapes.
    if "question" in name:
        return f"What should a {_phrase(seed, 2)} person think about {context or 'this'}?"
    return f"{name.replace('_', ' ').capitalize()}: {_phrase(seed, 8)}."


def contradiction_rule(marker: str = "contradiction") -> Rule:
    """A rule for the consistency check: a persona whose text contains ``marker`` is inconsistent."""

    def rule(prompt: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        defs = schema.get("$defs", {})
        if not any("consistent" in d.get("properties", {}) for d in defs.values()):
            return None
        user = prompt.rsplit("[[ ## persona ## ]]", 1)[-1]
        if marker not in user.lower():
            return {"verdict": {"consistent": True, "offending_fields": [], "reason": "none"}}
        fields = sorted({m.group(1) for m in re.finditer(r"^([a-z][a-z ]+): [^\n]*" + marker, user, re.M)})
        return {"verdict": {"consistent": False, "offending_fields": fields or ["defining quirks"],
                            "reason": f"the persona contains a {marker}"}}

    return rule


class FakeEngine:
    """Answers by input content; stable under threads; counts calls."""

    version = "fake-engine-1"
    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed", "response_format"})

    def __init__(self, rules: Sequence[Rule] = (), *, fail_when: Callable[[str], bool] | None = None) -> None:
        self.rules = [*rules, contradiction_rule()]
        self.fail_when = fail_when
        self._lock = threading.Lock()
        self.calls = 0

    def complete(self, request: Any) -> Any:
        from persona_gen.core.lm import _request_messages, _response, _schema_of

        messages = _request_messages(request)
        prompt = "\n".join(m["content"] for m in messages)
        with self._lock:
            self.calls += 1
        if self.fail_when is not None and self.fail_when(prompt):
            return _response("this is not json {", "fake")
        schema = _schema_of(request.config.response_format) or {"type": "object", "properties": {}}
        seed = _digest(prompt, str(request.config.seed or 0))
        topic = _topic(prompt)
        answer = fake_value(schema, seed, "root", schema.get("$defs", {}), topic)
        for rule in self.rules:
            override = rule(prompt, schema)
            if override is not None:
                answer.update(override)
                break
        return _response(json.dumps(answer), "fake")

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class AsyncFakeEngine:
    """The async twin of a ``FakeEngine`` (same answers, same call count), for ``dspy.LM(async_engine=...)``:
    with it and ``io=asyncio``, ``Caller.map`` runs fake calls on its event loop, as it does for servers."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.supports_response_schema = engine.supports_response_schema
        self.supported_params = engine.supported_params

    async def complete(self, request: Any) -> Any:
        return self.engine.complete(request)

    async def stream(self, request: Any) -> Any:
        for event in self.engine.stream(request):
            yield event

    async def aclose(self) -> None:
        pass


def _topic(prompt: str) -> str:
    # The last occurrence: the system message shows the field template first, the user message the value.
    matches = re.findall(r"\[\[ ## topic ## \]\]\s*\n(.+)", prompt)
    return matches[-1].strip()[:60] if matches else ""


def fake_engines(cfg: Any = None) -> tuple[FakeEngine, AsyncFakeEngine, str]:
    """The engine factory of ``models.<role>.kind=fake`` (registered in ``persona_gen.core.lm.ENGINES``)."""
    engine = FakeEngine()
    return engine, AsyncFakeEngine(engine), FakeEngine.version


# The fake model's config: what every unit test composes instead of writing its own copy.
FAKE_MODEL: dict[str, Any] = {"kind": "fake", "name": "fake-v1", "temperature": 0.0, "max_tokens": 64,
                              "concurrency": 2}


def fake_client(*, rules: Sequence[Rule] = (), fail_when: Callable[[str], bool] | None = None,
                **overrides: Any) -> Any:
    """A fake LM client (``persona_gen.core.lm.LMClient``); ``rules`` answer first, ``fail_when`` raises."""
    from omegaconf import OmegaConf

    from persona_gen.core.lm import build_lm

    role = str(overrides.pop("role", "generator"))
    client = build_lm(OmegaConf.create({**FAKE_MODEL, **overrides}), role=role)
    client.engine.rules[:0] = list(rules)
    client.engine.fail_when = fail_when
    return client


def fake_caller(cache_dir: Any = None, *, rules: Sequence[Rule] = (),
                fail_when: Callable[[str], bool] | None = None, **overrides: Any) -> Any:
    """A ``Caller`` on the fake LM with its own cache (``cache_dir``; None: no cache), progress bars off."""
    from persona_gen.core.cache import CallCache
    from persona_gen.core.calls import Caller

    return Caller(fake_client(rules=rules, fail_when=fail_when, **overrides), CallCache(cache_dir), progress=False)
