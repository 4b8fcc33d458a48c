"""LM requests of N concurrent shards + their merge over one unsharded run of the same config.

Run: ``python bench/bench_shards.py [--shards 3] [--repeats 1]``.

As on N machines: each shard is its own process with its own cache (``cache.dir``), and the shards share only
``shard.parts_dir``; they start together. The merge (``task=merge``) runs after them in another process. Requests
are counted at the two stubs (generator and judge endpoint, 0 ms latency), so every request any process sent is
counted, run-once work included. Goal (issue 15): sharded / unsharded <= 1.03. The merged dataset's content hash
is compared with the unsharded run's (the same bytes).

The job is ``bench_pipeline.py``'s 400-row job with ``scale.chunk_personas=4`` (5 persona chunks, so each of 3
shards has work).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, print_machine, stub_process, stub_reset, stub_snapshot
from bench_pipeline import JOB_400, child_result, model_overrides, start_child

JOB = [*JOB_400, "scale.chunk_personas=4"]


def _requests(*urls: str) -> int:
    return sum(stub_snapshot(u, timings=False)["requests"] for u in urls)


def bench_shards(shards: int, *, concurrency: int = 16) -> dict:
    with stub_process(latency_ms=0) as gen, stub_process(latency_ms=0) as judge:
        base = [*model_overrides(gen, judge, concurrency), *JOB]
        root = Path(tempfile.mkdtemp(prefix="pg-shards-"))
        try:
            for u in (gen, judge):
                stub_reset(u)
            t0 = time.perf_counter()
            one = child_result(start_child(base, root / "unsharded"))
            one_wall, one_requests = time.perf_counter() - t0, _requests(gen, judge)

            for u in (gen, judge):
                stub_reset(u)
            parts = root / "parts"
            t0 = time.perf_counter()
            procs = [start_child([*base, f"shard.index={i}", f"shard.count={shards}", f"shard.parts_dir={parts}"],
                                 root / f"shard{i}") for i in range(shards)]
            results = [child_result(p) for p in procs]
            shard_wall = time.perf_counter() - t0
            merged = child_result(start_child([*base, f"shard.count={shards}", f"shard.parts_dir={parts}"],
                                              root / "merge", task="merge"))
            total_wall, sharded_requests = time.perf_counter() - t0, _requests(gen, judge)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    ratio = sharded_requests / one_requests
    same = merged["content_hash"] == one["content_hash"]
    print(f"unsharded: {one_requests} LM requests at the stubs (manifest lm_calls {one['lm_calls']}), "
          f"{one_wall:.1f} s")
    print(f"{shards} shards + merge: {sharded_requests} LM requests (per shard, lm_calls "
          f"{[r['lm_calls'] for r in results]}), shards {shard_wall:.1f} s, with merge {total_wall:.1f} s")
    print(f"sharded / unsharded requests = {ratio:.3f}  {'PASS' if ratio <= 1.03 else 'MISS'} (goal <= 1.03); "
          f"merged content hash {'==' if same else '!='} unsharded ({merged['content_hash'][:12]} vs "
          f"{one['content_hash'][:12]})  load {load()}")
    return {"ratio": ratio, "same_bytes": same, "unsharded": one_requests, "sharded": sharded_requests}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    print_machine()
    for _ in range(args.repeats):
        bench_shards(args.shards)


if __name__ == "__main__":
    main()
