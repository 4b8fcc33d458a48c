from __future__ import annotations

import hashlib

import pytest

from persona_gen.testing import fake_client as make_fake_client


@pytest.fixture
def fake_client():
    """A fresh fake LM client; tests give its engine rules or failures."""

    def make(**overrides):
        return make_fake_client(**{"max_tokens": 256, "concurrency": 4, **overrides})

    return make


def critic_rule(decide):
    """A FakeEngine rule for the critic: ``needs_revision = decide(text after the last persona marker)``."""

    def rule(prompt, schema):
        if "needs_revision" not in schema.get("properties", {}):
            return None
        user = prompt.rsplit("[[ ## persona ## ]]", 1)[-1]
        return {"needs_revision": bool(decide(user))}

    return rule


def coin(text: str) -> bool:
    """A deterministic fair coin of the text."""
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 0
