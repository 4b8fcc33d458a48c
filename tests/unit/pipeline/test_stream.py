"""Streaming execution makes the barrier execution's bytes, with every call counted once, and no step waits for a
step it does not read."""

from __future__ import annotations

import pytest

from persona_gen.enrich.step import EnrichStep
from persona_gen.pipeline import run
from persona_gen.questions.step import QuestionsStep
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


# -- no step waits for a step it does not read ---------------------------------------------------------------------

WAIT_S = 30.0


def _wait_for_answers(stage: str) -> None:
    """Block the calling step until some answer of ``stage`` has come back (or fail after WAIT_S)."""
    import time

    from persona_gen.core import progress

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        report = progress.current().steps.get(stage)
        if report is not None and report.calls + report.cache_hits > 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"no {stage} answer while this step was still running: the runner waited for it")


class EnrichThatWaitsForCritiques(EnrichStep):
    """Enrichment that returns only once a critique came back: rows must start from the personas it emits."""

    def run_once(self, ctx, inputs):
        out = super().run_once(ctx, inputs)
        _wait_for_answers("critique")
        return out


class QuestionsThatWaitForEnrichment(QuestionsStep):
    """The question set, returned only once an enrichment answer came back: run steps must run side by side."""

    def run_once(self, ctx, inputs):
        _wait_for_answers("enrich")
        return super().run_once(ctx, inputs)


@pytest.mark.parametrize(("step", "cls"), [("enrich", EnrichThatWaitsForCritiques),
                                           ("questions", QuestionsThatWaitForEnrichment)])
def test_stream_starts_what_a_running_step_does_not_block(tmp_path, step, cls):
    target = f"pipeline.steps.{step}._target_={__name__}.{cls.__name__}"
    barrier = run(compose_run(tmp_path / "b", tmp_path / "cb", [*FAKE, "execution=barrier"]))
    streamed = run(compose_run(tmp_path / "s", tmp_path / "cs", [*FAKE, target]))
    assert streamed.content_hash == barrier.content_hash
    # Every call of the run went through the endpoints, run-scope steps' included.
    assert sum(e["calls"] for e in streamed.manifest["endpoints"].values()) == streamed.lm_calls == barrier.lm_calls


def test_stream_error_in_a_run_step_stops_the_run_with_that_error(tmp_path):
    target = f"pipeline.steps.questions._target_={__name__}.QuestionsThatFail"
    with pytest.raises(RuntimeError, match="the question source broke"):
        run(compose_run(tmp_path / "s", tmp_path / "cs", [*FAKE, target]))


class QuestionsThatFail(QuestionsStep):
    def run_once(self, ctx, inputs):
        _wait_for_answers("enrich")  # while enrichment still streams
        raise RuntimeError("the question source broke")


# -- the garbage collector while streaming -------------------------------------------------------------------------

def test_stream_runs_no_full_collection_and_restores_the_collector(tmp_path, monkeypatch):
    import gc

    from persona_gen.core.runtime import NO_FULL_COLLECTION
    from persona_gen.core.scheduler import Scheduler

    seen = {}
    real = Scheduler.run

    def watch(self, poll):
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()
        return real(self, poll)

    monkeypatch.setattr(Scheduler, "run", watch)
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    run(compose_run(tmp_path / "s", tmp_path / "cs", FAKE))
    assert seen["threshold"][:2] == before[:2] and seen["threshold"][2] >= NO_FULL_COLLECTION
    assert seen["frozen"] > frozen_before
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen_before
    # and after a run that stops with an error
    with pytest.raises(RuntimeError, match="the question source broke"):
        run(compose_run(tmp_path / "e", tmp_path / "ce",
                        [*FAKE, f"pipeline.steps.questions._target_={__name__}.QuestionsThatFail"]))
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen_before
