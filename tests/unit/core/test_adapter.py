"""persona_gen's memoizing JSONAdapter writes exactly what dspy.JSONAdapter writes, for every signature."""

from __future__ import annotations

import dspy
import pytest

import persona_gen.signatures as sigs
from persona_gen.core.adapter import JSONAdapter
from persona_gen.testing import FakeEngine

SIGNATURES = [getattr(sigs, name) for name in sigs.__all__
              if isinstance(getattr(sigs, name), type) and issubclass(getattr(sigs, name), dspy.Signature)]


def _inputs(signature: type[dspy.Signature], salt: str) -> dict[str, object]:
    values: list[object] = [f"plain text {salt}", ["a", "b", salt], {"k": salt, "n": 3}, 7, 0.5]
    return {name: values[i % len(values)] for i, name in enumerate(signature.input_fields)}


def test_every_shipped_signature_is_covered() -> None:
    assert len(SIGNATURES) >= 10


@pytest.mark.parametrize("signature", SIGNATURES, ids=lambda s: s.__name__)
def test_messages_equal_dspy_jsonadapter(signature: type[dspy.Signature]) -> None:
    ours, theirs = JSONAdapter(), dspy.JSONAdapter()
    demo = {**_inputs(signature, "demo"), **{name: "x" for name in signature.output_fields}}
    for salt in ("one", "two"):  # the second call is served from the memo
        for demos in ([], [demo]):
            inputs = _inputs(signature, salt)
            assert ours.format(signature, demos=demos, inputs=inputs) == \
                theirs.format(signature, demos=demos, inputs=inputs)


@pytest.mark.parametrize("schema", [True, False], ids=["schema-lm", "json-mode-lm"])
@pytest.mark.parametrize("signature", SIGNATURES, ids=lambda s: s.__name__)
def test_response_format_equals_dspy_jsonadapter(signature: type[dspy.Signature], schema: bool) -> None:
    engine = FakeEngine()
    engine.supports_response_schema = schema
    lm = dspy.LM("local/fake", engine=engine, cache=False)
    ours, theirs = JSONAdapter(), dspy.JSONAdapter()
    for _ in range(2):
        got: dict[str, object] = {}
        want: dict[str, object] = {}
        ours._prepare_response_format(lm, got, signature)
        theirs._prepare_response_format(lm, want, signature)
        assert _plain(got["response_format"]) == _plain(want["response_format"])


def _plain(response_format: object) -> object:
    # DSPy hands a pydantic model class (a new one per call) when the LM takes a schema; compare its schema.
    schema = getattr(response_format, "model_json_schema", None)
    return schema() if callable(schema) else response_format


def test_memo_follows_new_signature_classes() -> None:
    # Optimizers make new classes (with_instructions); the memo must not serve the old prompt for them.
    adapter = JSONAdapter()
    base = sigs.JudgeInVoice
    changed = base.with_instructions("Answer as a grumpy cat.")
    inputs = _inputs(base, "x")
    first = adapter.format(base, demos=[], inputs=inputs)[0]["content"]
    second = adapter.format(changed, demos=[], inputs=inputs)[0]["content"]
    assert "grumpy cat" in second and "grumpy cat" not in first


def test_a_call_through_the_adapter_parses() -> None:
    lm = dspy.LM("local/fake", engine=FakeEngine(), cache=False)
    with dspy.context(lm=lm, adapter=JSONAdapter()):
        pred = dspy.Predict(sigs.JudgeInVoice)(persona="p", question="q?", first_answer="a", second_answer="b")
    assert pred.preferred in {"first", "second", "tie"}


def test_capabilities_are_read_once_per_lm_unless_a_call_brings_client_settings(monkeypatch):
    from persona_gen.testing import fake_client

    lm = fake_client().lm
    adapter = JSONAdapter()
    reads = []
    real = type(lm).supports_response_schema

    monkeypatch.setattr(type(lm), "supports_response_schema",
                        property(lambda self: reads.append(1) or real.fget(self)))
    first = adapter._capabilities(lm, {})
    assert adapter._capabilities(lm, {"config": {"seed": 1}}) == first and len(reads) == 1
    adapter._capabilities(lm, {"api_base": "http://elsewhere/v1"})  # may route elsewhere: read again
    assert len(reads) == 2
    other = fake_client().lm
    adapter._capabilities(other, {})
    assert len(reads) == 3
