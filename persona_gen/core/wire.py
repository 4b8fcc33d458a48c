"""The moment a call goes on the wire: how an engine lets a scheduler prepare calls ahead and free slots early.

A call's client work comes in three parts: DSPy builds the request (the adapter's formatting, ~0.15 ms of
interpreter time), the engine exchanges it with the server, and DSPy parses the answer. Only the exchange holds a
slot of the endpoint's concurrency. An engine that wraps its exchange in ``on_the_wire()`` (and says so with a
``wire_gated = True`` attribute) lets the scheduler (``persona_gen.core.scheduler``):

- **prepare calls ahead**: a worker builds the next waiting call's request while every slot is busy and then
  waits at the gate; when a slot frees, the scheduler opens the gate and the request is sent at once, without
  the formatting, or a hand-over to another thread, in between;
- **free the slot at the answer**: the exchange tells the gate when a good answer (HTTP status below 400) is in,
  so the slot is refilled while DSPy parses it. An error answer frees its slot when the scheduler handles it, as
  a rate limit may lower the endpoint's limit first.

Outside a scheduler's gated worker (``Caller.map``, a direct call) ``on_the_wire()`` does nothing. Only an
attempt's first exchange is gated: a module that made a second one in the same attempt would send it at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["Gate", "WireAbortedError", "gated", "on_the_wire"]

_local = threading.local()


class WireAbortedError(RuntimeError):
    """The run stopped while a prepared call waited for a slot: it was not sent."""


class Gate(Protocol):
    """What a scheduler hands a worker for one attempt."""

    def wait(self) -> None:
        """Block until the call may be sent; raise ``WireAbortedError`` if it never will be."""

    def answered(self) -> None:
        """A good answer is in: the call's slot may be refilled."""


class _Exchange:
    """What ``on_the_wire`` yields: the engine calls ``answered()`` once a good answer is in."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate | None) -> None:
        self._gate = gate

    def answered(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.answered()


_UNGATED = _Exchange(None)


@contextlib.contextmanager
def on_the_wire() -> Iterator[_Exchange]:
    """Wrap one HTTP exchange: waits for this thread's gate (if a scheduler set one) before it; call
    ``answered()`` on the yielded object when a good answer is in."""
    gate: Any = getattr(_local, "gate", None)
    if gate is None:
        yield _UNGATED
        return
    _local.gate = None  # the attempt's first exchange only
    gate.wait()
    yield _Exchange(gate)


@contextlib.contextmanager
def gated(gate: Gate | None) -> Iterator[None]:
    """Run an attempt on this thread with ``gate`` in front of its first exchange (``None``: no gate)."""
    _local.gate = gate
    try:
        yield
    finally:
        _local.gate = None
