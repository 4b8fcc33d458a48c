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
