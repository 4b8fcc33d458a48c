"""persona_gen's whole pipeline against two loopback stubs (a generator and a judge endpoint): streaming vs barrier.

Run: ``python bench/bench_pipeline.py [--latencies 0,100,500] [--repeats 3] [--no-peer] [--skip-16]``.
Not a timed test: numbers depend on the machine and what else runs on it (the load is printed with each line).

Two jobs, each cold (a fresh cache and output folder per run), each run in a child process of its own (so no run
inherits another's caches, threads or garbage), against one stub process per endpoint
(``tests/fixtures/stub_server.py``, so the server does not share the client's GIL):

1. **The 400-row job** (the issue's): 20 personas x 20 train rows, every row judged
   (``scale.judge_rows_per_persona=20``) by one judge variant (``direct``) in both orders:
   answer (once per distinct question) -> critique -> revision -> judge, 16 calls in flight per endpoint.
   1,752 calls: 952 on the generator (40 answers, 400 critiques, 400 revisions, 24 enrichments, 24 consistency
   checks, 64 question filters), 800 on the judge. At each latency, ``execution=stream`` and
   ``execution=barrier`` (and NeMo DataDesigner on the same job, ``bench_peers.py``, unless ``--no-peer``) run
   interleaved, median of ``--repeats``.
2. **The 16-persona job**: 16 personas x 20 rows, all judged, both judge variants (direct and chain of thought),
   8 in flight per endpoint, at 0 ms and 200 ms: ``wall(200) / (ideal + wall(0))``.

Measured at the server, from each request's arrival and answer times (the stub's ``/stub/snapshot``):

- **LM window**: first request's arrival to last answer, over both endpoints.
- **ideal**: max over the endpoints of (requests at that endpoint) x latency / concurrency: each tool is scored
  against its own call counts.
- **overlap**: seconds during which both endpoints had a request in flight.

Goals (the issue's): window / ideal <= 1.05 at 500 ms (400-row job, streaming); wall(200) / (ideal + wall(0))
<= 1.15 (16-persona job); at 0 ms persona_gen's wall below DataDesigner's on the 400-row job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, load, print_machine, stub_process, stub_reset, stub_snapshot

sys.path.insert(0, str(REPO))  # tests.fixtures.stub_server, tests.helpers

_COMMON = ["sampler.fidelity_sample_size=2000", "publish=dry_run", "scale=demo", "scale.test_seen_per_persona=0",
           "scale.test_unseen_per_persona=0", "scale.max_candidate_prompts=64"]
# 20 personas x 20 rows, all judged, one judge variant: 400 feedback rows, 800 judgments.
JOB_400 = [*_COMMON, "scale.num_personas=20", "scale.train_rows_per_persona=20", "scale.judge_rows_per_persona=20",
           "stage.judge.variants=[direct]"]
# 16 personas x 20 rows, all judged, both variants: 320 feedback rows, 1,280 judgments.
JOB_16 = [*_COMMON, "scale.num_personas=16", "scale.train_rows_per_persona=20", "scale.judge_rows_per_persona=20"]


def model_overrides(gen_url: str, judge_url: str, concurrency: int) -> list[str]:
    """Both roles on openai-compatible stubs (conf/model/openai_compatible.yaml), ``concurrency`` in flight each."""
    out = ["models=openai_compatible"]
    for role, url in (("generator", gen_url), ("judge", judge_url)):
        out += [f"models.{role}.base_url={url}", f"models.{role}.name=stub-model",
                f"models.{role}.concurrency={concurrency}", f"models.{role}.api_key_env=PERSONA_GEN_BENCH_KEY"]
    return out


# -- one run, in a child process -----------------------------------------------------------------------------------

def _child(overrides: list[str], root: Path, task: str) -> dict:
    os.environ.setdefault("PERSONA_GEN_BENCH_KEY", "sk-bench")
    from persona_gen.pipeline import merge, run
    from tests.helpers import compose_run

    cfg = compose_run(root / "run", root / "cache", overrides)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = (merge if task == "merge" else run)(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    manifest = getattr(result, "manifest", None) or {}
    return {"wall": wall, "cpu": cpu, "lm_calls": getattr(result, "lm_calls", None),
            "rows": manifest.get("rows", {}).get("feedback"), "judgments": manifest.get("rows", {}).get("judgments"),
            "content_hash": manifest.get("content_hash"), "endpoints": manifest.get("endpoints"),
            "failures": manifest.get("failures"), "timings": manifest.get("timings")}


def start_child(overrides: list[str], root: Path, *, task: str = "run") -> subprocess.Popen:
    """A child process that runs (or merges) one config; read it with ``child_result``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "PERSONA_GEN_BENCH_KEY": "sk-bench"}
    return subprocess.Popen([sys.executable, __file__, "--child", json.dumps({"overrides": overrides,
                                                                               "root": str(root), "task": task})],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def child_result(proc: subprocess.Popen, timeout_s: float = 900) -> dict:
    out, err = proc.communicate(timeout=timeout_s)
    line = next((x for x in out.splitlines()[::-1] if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"the persona_gen run failed (rc {proc.returncode}):\n{err[-4000:]}")
    return json.loads(line.removeprefix("RESULT "))


def run_persona_gen(gen_url: str, judge_url: str, job: list[str], *, execution: str, concurrency: int,
                    extra: list[str] = ()) -> dict:
    """One cold run (fresh cache and output folder) in a child process; the stubs' counters are reset first."""
    for url in (gen_url, judge_url):
        stub_reset(url)
    root = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    try:
        overrides = [*model_overrides(gen_url, judge_url, concurrency), *job, f"execution={execution}", *extra]
        return child_result(start_child(overrides, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- what the server saw -----------------------------------------------------------------------------------------

def server_metrics(gen_url: str, judge_url: str, latency_ms: float, concurrency: int) -> dict:
    """LM window, ideal, their ratio and the two endpoints' overlap, from the stubs' request timings."""
    from tests.fixtures.stub_server import busy_window, overlap

    g, j = stub_snapshot(gen_url)["timings"], stub_snapshot(judge_url)["timings"]
    window = busy_window(g, j)
    ideal = max(len(g), len(j)) * latency_ms / 1000 / concurrency
    return {"gen_calls": len(g), "judge_calls": len(j), "window": window, "ideal": ideal,
            "ratio": window / ideal if ideal else float("nan"), "overlap": overlap(g, j),
            "gen_window": busy_window(g), "judge_window": busy_window(j)}


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _walls(runs: list[dict]) -> str:
    return " ".join(f"{r['wall']:.1f}" for r in runs)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_400(latencies: list[float], repeats: int, *, peer: bool, concurrency: int = 16) -> dict:
    """The 400-row job: stream, barrier (and DataDesigner) interleaved at each latency; medians."""
    from bench_peers import peer_available, run_datadesigner

    tools = ["stream", "barrier"]
    if peer:
        why = peer_available()
        if why:
            print(f"  DataDesigner left out: {why}")
        else:
            tools.append("DataDesigner")
    print(f"\n[1] 400-row job, {concurrency} in flight per endpoint, median of {repeats} (cold runs)")
    print(f"{'latency':>8} {'tool':<13} {'wall s':>7} {'gen':>5} {'judge':>5} {'window s':>8} {'ideal s':>7} "
          f"{'win/ideal':>9} {'overlap s':>9} {'runs (wall s)':<22} load")
    table: dict = {}
    for latency in latencies:
        with stub_process(latency_ms=latency) as gen, stub_process(latency_ms=latency) as judge:
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            for _ in range(repeats):
                for tool in tools:
                    if tool == "DataDesigner":
                        r = run_datadesigner(gen, judge, rows=400, concurrency=concurrency)
                    else:
                        r = run_persona_gen(gen, judge, JOB_400, execution=tool, concurrency=concurrency)
                    runs[tool].append({**r, **server_metrics(gen, judge, latency, concurrency)})
        for tool, rs in runs.items():
            med = {k: _med(rs, k) for k in ("wall", "window", "ideal", "ratio", "overlap")}
            table[(latency, tool)] = med
            ratio = "-" if latency == 0 else f"{med['ratio']:.3f}"
            print(f"{latency:>6.0f}ms {tool:<13} {med['wall']:>7.2f} {rs[0]['gen_calls']:>5} {rs[0]['judge_calls']:>5} "
                  f"{med['window']:>8.2f} {med['ideal']:>7.2f} {ratio:>9} {med['overlap']:>9.2f} "
                  f"{_walls(rs):<22} {load()}")
            if latency > 0:
                print(f"{'':>9}window / ideal of each run: " + " ".join(f"{r['ratio']:.4f}" for r in rs))
            if tool == "stream" and rs[0].get("endpoints"):
                print(f"{'':>9}endpoints (manifest, last run): {json.dumps(rs[-1]['endpoints'])[:400]}")
    return table


def bench_16(repeats: int, *, latency: float = 200.0, concurrency: int = 8, executions: tuple = ("stream",)) -> dict:
    """The 16-persona job at 0 ms and ``latency``: wall(L) / (ideal + wall(0))."""
    print(f"\n[2] 16 personas x 20 rows, all judged (both variants), {concurrency} in flight, median of {repeats}")
    out: dict = {}
    for execution in executions:
        walls: dict[float, list[dict]] = {}
        for lat in (0.0, latency):
            with stub_process(latency_ms=lat) as gen, stub_process(latency_ms=lat) as judge:
                walls[lat] = []
                for _ in range(repeats):
                    r = run_persona_gen(gen, judge, JOB_16, execution=execution, concurrency=concurrency)
                    walls[lat].append({**r, **server_metrics(gen, judge, lat, concurrency)})
        w0, wl = _med(walls[0.0], "wall"), _med(walls[latency], "wall")
        ideal = _med(walls[latency], "ideal")
        ratio = wl / (ideal + w0)
        rl = walls[latency]
        print(f"  {execution}: wall(0) {w0:.2f} s [{_walls(walls[0.0])}], "
              f"wall({latency:.0f}) {wl:.2f} s [{_walls(rl)}], calls gen "
              f"{rl[0]['gen_calls']} judge {rl[0]['judge_calls']}, ideal {ideal:.2f} s, window/ideal "
              f"{_med(rl, 'ratio'):.3f}, overlap {_med(rl, 'overlap'):.2f} s  ->  wall({latency:.0f}) / "
              f"(ideal + wall(0)) = {ratio:.3f}  load {load()}")
        out[execution] = ratio
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--latencies", default="0,100,500", help="stub latencies (ms) of the 400-row job")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="leave DataDesigner out")
    parser.add_argument("--skip-400", action="store_true")
    parser.add_argument("--skip-16", action="store_true")
    parser.add_argument("--barrier-16", action="store_true", help="also the barrier execution in the 16-persona job")
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print("RESULT " + json.dumps(_child(spec["overrides"], Path(spec["root"]), spec["task"])), flush=True)
        return
    print_machine()
    t0 = time.perf_counter()
    goals: list[tuple[str, str, bool]] = []
    if not args.skip_400:
        lat = [float(x) for x in args.latencies.split(",")]
        table = bench_400(lat, args.repeats, peer=not args.no_peer)
        if (500.0, "stream") in table:
            r = table[(500.0, "stream")]["ratio"]
            goals.append(("LM window / ideal at 500 ms (stream) <= 1.05", f"{r:.3f}", r <= 1.05))
        if (0.0, "stream") in table and (0.0, "DataDesigner") in table:
            a, b = table[(0.0, "stream")]["wall"], table[(0.0, "DataDesigner")]["wall"]
            goals.append(("wall at 0 ms below DataDesigner's (400 rows)", f"{a:.2f} s vs {b:.2f} s", a < b))
    if not args.skip_16:
        ratios = bench_16(args.repeats, executions=("stream", "barrier") if args.barrier_16 else ("stream",))
        goals.append(("wall(200) / (ideal + wall(0)) <= 1.15 (16 personas, stream)", f"{ratios['stream']:.3f}",
                      ratios["stream"] <= 1.15))
    print(f"\ngoals (total {time.perf_counter() - t0:.0f} s, load {load()}):")
    for name, value, ok in goals:
        print(f"  {_verdict(ok)}  {name}: {value}")


if __name__ == "__main__":
    main()
