"""Streaming execution makes the barrier execution's bytes, with every call counted once."""

from __future__ import annotations

import pytest

from persona_gen.pipeline import run
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke", "scale=demo", "sampler.fidelity_sample_size=0"]


@pytest.mark.parametrize("extra", [[], ["scale.chunk_personas=1", "scale.chunks_in_flight=2"],
                                   ["models.generator.io=asyncio", "models.judge.io=asyncio"]])
def test_stream_gives_the_barrier_bytes(tmp_path, extra):
    barrier = run(compose_run(tmp_path / "b", tmp_path / "cb", [*FAKE, *extra, "execution=barrier"]))
    stream = run(compose_run(tmp_path / "s", tmp_path / "cs", [*FAKE, *extra, "execution=stream"]))
    assert stream.content_hash == barrier.content_hash
    assert stream.lm_calls == barrier.lm_calls > 0
    for rel in ("data/feedback/train-00000-of-00001.parquet", "data/judgments/train-00000-of-00001.parquet"):
        assert (stream.dataset_dir / rel).read_bytes() == (barrier.dataset_dir / rel).read_bytes()
    assert stream.manifest["stages"] == barrier.manifest["stages"]
    endpoints = stream.manifest["endpoints"]
    assert set(endpoints) == {"generator", "judge"} and endpoints["judge"]["calls"] > 0
    assert all(e["retries"] == 0 for e in endpoints.values())


def test_stream_warm_rerun_makes_no_call(tmp_path):
    first = run(compose_run(tmp_path / "a", tmp_path / "c", FAKE))
    again = run(compose_run(tmp_path / "b", tmp_path / "c", FAKE))
    assert again.lm_calls == 0 and again.content_hash == first.content_hash
