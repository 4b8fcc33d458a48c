"""kill -9 mid-run, run again: the same bytes as a run that was never interrupted.

The interrupted run is the real CLI (``python -m persona_gen``) with the fake LM, 24 personas in chunks of 2. It is
killed with SIGKILL at a seeded-random point after it has finished some persona chunks (the parts under
``<cache.dir>/parts/<run key>/stats/``), then the same command runs again in a new run dir with the same cache.
The result must equal, byte for byte, a clean run in a separate cache: no row lost, none duplicated.

Set ``PERSONA_GEN_CRASH_SEED`` to try other kill points; the seed and the chunks finished at the kill are in the
failure message.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

NUM_PERSONAS = 24
ROWS_PER_PERSONA = 2 + 1 + 1  # scale=demo: train + seen test + unseen test
CHUNKS = NUM_PERSONAS // 2
ARGS = ["models.generator=fake", "models.judge=fake", "scale=demo", f"scale.num_personas={NUM_PERSONAS}",
        "scale.chunk_personas=2", "sampler.fidelity_sample_size=2000"]
SEED = int(os.environ.get("PERSONA_GEN_CRASH_SEED", "20260127"))


def _command(run_dir: str) -> list[str]:
    return [sys.executable, "-m", "persona_gen", *ARGS, f"hydra.run.dir={run_dir}"]


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _run(cwd: Path, cache: Path, run_dir: str) -> dict:
    proc = subprocess.run(_command(run_dir), cwd=cwd, env=_env(cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((cwd / run_dir / "manifest.json").read_text())


def _finished_chunks(cache: Path) -> int:
    # The stats file is written last, when a chunk is complete (pipeline._run_chunk).
    return len(list((cache / "parts").glob("*/stats/part-*.json")))


def _dataset_bytes(dataset: Path) -> dict[str, bytes]:
    files = [*sorted(dataset.rglob("*.parquet")), dataset / "README.md"]
    return {str(p.relative_to(dataset)): p.read_bytes() for p in files}


def _kill_mid_run(cwd: Path, cache: Path, rng: random.Random) -> tuple[int, int]:
    """Start the run, SIGKILL it after a seeded number of finished chunks plus a seeded delay.

    Returns (chunks finished when the kill was decided, chunks finished after the process died).
    """
    after = rng.randint(1, CHUNKS - 1)
    delay = rng.uniform(0.0, 0.05)
    proc = subprocess.Popen(_command("run_killed"), cwd=cwd, env=_env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _finished_chunks(cache) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        seen = _finished_chunks(cache)
        assert proc.poll() is None, (f"the run ended before the kill (seed {SEED}: after {after} chunks + "
                                     f"{delay:.3f}s; exit {proc.returncode})")
        proc.kill()  # SIGKILL: no cleanup, no atexit, no finally
        assert proc.wait(timeout=30) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen, _finished_chunks(cache)


def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    clean = _run(tmp_path / "clean", tmp_path / "clean" / "cache", "run")

    cwd, cache = tmp_path / "crash", tmp_path / "crash" / "cache"
    cwd.mkdir()
    seen, at_death = _kill_mid_run(cwd, cache, random.Random(SEED))
    context = f"seed {SEED}: killed with {seen} of {CHUNKS} chunks finished ({at_death} at death)"
    assert seen >= 1, context
    assert not (cwd / "run_killed" / "manifest.json").exists(), context

    resumed = _run(cwd, cache, "run_resumed")
    assert resumed["content_hash"] == clean["content_hash"], context
    assert _dataset_bytes(Path(resumed["dataset_dir"])) == _dataset_bytes(Path(clean["dataset_dir"])), context
    # The rerun reused the killed run's finished chunks and cached answers instead of making them again.
    assert resumed["lm_calls"] < clean["lm_calls"], context

    data = Path(resumed["dataset_dir"]) / "data"
    feedback = pd.concat([pd.read_parquet(p) for p in sorted((data / "feedback").glob("*.parquet"))])
    assert len(feedback) == NUM_PERSONAS * ROWS_PER_PERSONA, context
    assert feedback["feedback_id"].is_unique, context
    assert feedback.groupby("persona_id").size().eq(ROWS_PER_PERSONA).all(), context
    judgments = pd.concat([pd.read_parquet(p) for p in sorted((data / "judgments").glob("*.parquet"))])
    assert judgments["judgment_id"].is_unique, context
    assert set(judgments["feedback_id"]) <= set(feedback["feedback_id"]), context
