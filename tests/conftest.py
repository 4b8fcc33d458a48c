from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}; set PERSONA_GEN_SHARED_DATA")
    return path


@pytest.fixture
def stub_server():
    """Factory of loopback OpenAI-compatible stub servers (``tests/fixtures/stub_server.py``), stopped at teardown.

    Call it with ``StubServer``'s keywords: ``stub_server(latency_ms=0, chaos_rate=0.2, hang_s=3)``.
    """
    from tests.fixtures.stub_server import StubServer

    servers: list[StubServer] = []

    def make(**kwargs):
        server = StubServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fake_caller(tmp_path):
    """Factory of ``Caller``s on the fake LM (``persona_gen.testing.fake_caller``), each with its own cache."""
    from persona_gen.testing import fake_caller as make_caller

    made = []

    def make(**kwargs):
        made.append(make_caller(tmp_path / f"cache{len(made)}", **kwargs))
        return made[-1]

    return make


@pytest.fixture
def ruled_pipeline(tmp_path, monkeypatch):
    """Run the real pipeline on the fake LM with test rules per model role: ``run_with({"judge": [rule]}, [...])``.

    ``rules`` maps a role to rules (``(prompt, schema) -> answer | None``, the first match answers) and
    ``fail_when`` a role to a predicate on the prompt that makes the call answer unparseable text.
    """
    from persona_gen.core.runtime import Runtime
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    def run_with(rules=None, overrides=(), fail_when=None, name="run"):
        original = Runtime.client

        def client(self, role, model_cfg=None):
            made = role in self._clients
            c = original(self, role, model_cfg)
            if not made:
                c.engine.rules[:0] = list((rules or {}).get(role, ()))
                c.engine.fail_when = (fail_when or {}).get(role)
            return c

        monkeypatch.setattr(Runtime, "client", client)
        try:
            return run(compose_run(tmp_path / name, tmp_path / f"cache-{name}",
                                   ["experiment=fake_smoke", "sampler.fidelity_sample_size=0", *overrides]))
        finally:
            monkeypatch.setattr(Runtime, "client", original)

    return run_with
