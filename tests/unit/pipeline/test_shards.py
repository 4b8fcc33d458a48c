"""Global work once: shards share only shard.parts_dir, make the run-once steps once, and merge to one run's bytes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from persona_gen.pipeline import run
from persona_gen.pipeline.once import state_path
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke", "scale=demo", "scale.chunk_personas=1", "sampler.fidelity_sample_size=0"]


def _cli(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cache), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, "-m", "persona_gen", *args, *FAKE], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_shards_started_together_make_the_global_work_once_and_merge_to_one_runs_bytes(tmp_path):
    one = run(compose_run(tmp_path / "one", tmp_path / "cache-one", FAKE))
    parts = tmp_path / "parts"
    # Three shards at once, each with its own (node-local) cache, sharing only the parts dir.
    procs = [_cli([f"shard.index={i}", "shard.count=3", f"shard.parts_dir={parts}", f"hydra.run.dir={tmp_path}/s{i}"],
                  tmp_path, tmp_path / f"cache-{i}") for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-2000:] for _, e in outs]
    calls = [int(re.search(r"\(LM calls: (\d+)\)", o).group(1)) for o, _ in outs]
    assert state_path(parts).is_file() and not (parts / "global" / ".lock").exists()
    merged = _cli(["task=merge", "shard.count=3", f"shard.parts_dir={parts}", f"hydra.run.dir={tmp_path}/m"],
                  tmp_path, tmp_path / "cache-m")
    out, err = merged.communicate(timeout=300)
    assert merged.returncode == 0, err[-2000:]
    assert f"content hash: {one.content_hash}" in out
    # The global steps ran once: the shards together asked for exactly what one unsharded run asked for.
    assert sum(calls) == one.lm_calls
    for rel in ("data/feedback/train-00000-of-00001.parquet", "data/personas/train-00000-of-00001.parquet"):
        assert (tmp_path / "m" / "dataset" / rel).read_bytes() == (one.dataset_dir / rel).read_bytes()


def test_task_prepare_then_shards_only_read_the_global_work(tmp_path):
    parts = tmp_path / "parts"
    prep = _cli(["task=prepare", f"shard.parts_dir={parts}", "shard.count=2", f"hydra.run.dir={tmp_path}/p"],
                tmp_path, tmp_path / "cache-p")
    out, err = prep.communicate(timeout=300)
    assert prep.returncode == 0, err[-2000:]
    assert "run-once work made: 4 personas" in out
    shard = _cli(["shard.index=0", "shard.count=2", f"shard.parts_dir={parts}", f"hydra.run.dir={tmp_path}/s0"],
                 tmp_path, tmp_path / "cache-s0")
    out, err = shard.communicate(timeout=300)
    assert shard.returncode == 0, err[-2000:]
    assert "run-once work: made by another shard" not in out  # it was there before the shard started
    again = _cli(["task=prepare", f"shard.parts_dir={parts}", "shard.count=2", f"hydra.run.dir={tmp_path}/p2"],
                 tmp_path, tmp_path / "cache-p2")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "run-once work already there" in out and "LM calls: 0" in out
