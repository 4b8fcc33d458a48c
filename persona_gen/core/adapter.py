"""``dspy.JSONAdapter`` with its per-signature work done once per signature, not once per call.

DSPy's JSONAdapter rebuilds, on every call, a pydantic model of the signature's outputs and its JSON
schema (``response_format``), the whole system message, the output reminder, and a pydantic ``TypeAdapter`` for
every plain string input. None of these depend on the call's inputs: at 0 ms server latency they were ~60% of a
call's client CPU (``bench/bench_lm_throughput.py``). ``JSONAdapter`` here keeps them per signature
class (DSPy signatures are immutable classes: ``with_instructions`` and optimizers make new ones), so
the messages and the response format are exactly those of ``dspy.JSONAdapter``
(``tests/unit/core/test_adapter.py`` checks every shipped signature) at a fraction of the CPU.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import dspy
from dspy.adapters.utils import format_field_value
from dspy.clients.backend_selection import CLIENT_KEYS as _CLIENT_KEYS  # per-call settings that reroute a call

__all__ = ["JSONAdapter"]


class JSONAdapter(dspy.JSONAdapter):
    """A drop-in ``dspy.JSONAdapter`` that memoizes the per-signature parts of a prompt."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Weak keys: optimizers make many short-lived signature classes.
        self._system: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
        self._formats: weakref.WeakKeyDictionary[type, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
        self._requirements: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._caps: dict[int, tuple[weakref.ref[Any], tuple[bool, bool]]] = {}

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        message = self._system.get(signature)
        if message is None:
            message = super().format_system_message(signature)
            with self._lock:
                self._system[signature] = message
        return message

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: type[dspy.Signature]) -> None:
        # The choice depends on the LM's capabilities as well as the signature.
        key = (*self._capabilities(lm, lm_kwargs), self.use_native_function_calling)
        per_signature = self._formats.get(signature)
        if per_signature is not None and key in per_signature:
            found = per_signature[key]
            if found is not None:
                lm_kwargs["response_format"] = found
            return
        scratch: dict[str, Any] = {}
        super()._prepare_response_format(lm, scratch, signature)
        with self._lock:
            self._formats.setdefault(signature, {})[key] = scratch.get("response_format")
        if "response_format" in scratch:
            lm_kwargs["response_format"] = scratch["response_format"]

    def _capabilities(self, lm: Any, lm_kwargs: dict[str, Any]) -> tuple[bool, bool]:
        # (takes response_format, takes a JSON schema) of an LM: DSPy works both out from its capability table on
        # every read (~6 us a call). They follow from the LM and the call's client settings; a call that brings
        # none of its own (every call persona_gen makes) has the LM's, read once per LM object.
        if not lm_kwargs.keys().isdisjoint(_CLIENT_KEYS):
            return "response_format" in lm.supported_params, bool(lm.supports_response_schema)
        found = self._caps.get(id(lm))
        if found is None or found[0]() is not lm:
            caps = ("response_format" in lm.supported_params, bool(lm.supports_response_schema))
            try:
                ref = weakref.ref(lm)
            except TypeError:
                return caps
            with self._lock:
                self._caps[id(lm)] = found = (ref, caps)
        return found[1]

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> str:
        found = self._requirements.get(signature)
        if found is None:
            found = super().user_message_output_requirements(signature)
            with self._lock:
                self._requirements[signature] = found
        return found

    def format_user_message_content(self, signature: type[dspy.Signature], inputs: dict[str, Any], prefix: str = "",
                                    suffix: str = "", main_request: bool = False) -> str:
        # ChatAdapter's own loop, except that a str value formats as itself: DSPy serializes it through a fresh
        # pydantic TypeAdapter (the dearest part of a call) to the very same string. Other values take DSPy's path.
        messages = [prefix]
        for name, info in signature.input_fields.items():
            if name in inputs:
                value = inputs[name]
                text = value if type(value) is str else format_field_value(field_info=info, value=value)
                messages.append(f"[[ ## {name} ## ]]\n{text}")
        if main_request:
            requirements = self.user_message_output_requirements(signature)
            if requirements is not None:
                messages.append(requirements)
        messages.append(suffix)
        return "\n\n".join(messages).strip()
