"""Where the LM window of the 400-row job goes: one streamed run, every call's asking, sending and answer.

Run: ``python bench/trace_pipeline.py [--latency 500] [--bin 0.5] [--save trace.json] [-- override ...]``.
A diagnostic, not a benchmark: it runs the 400-row job of ``bench_pipeline.py`` once (streaming, cold), in this
process, against the same two stub processes, and records on the scheduling thread when each call is asked for
(its step, tier, persona rank), sent and answered. It prints:

- per time bin (default one latency), the calls sent to each endpoint by step, and the calls waiting on each
  endpoint at the bin's first send;
- from the stubs' own timings, each endpoint's first arrival, last answer and idle slot-seconds per 2 s
  (``concurrency`` slots minus the calls in flight, integrated);
- the window / ideal ratio the benchmark reports.

The recording patches ``Scheduler.submit``, ``_send``, ``_hand_on`` and ``_finish`` of this process only; the
run's bytes are unchanged (its content hash is printed). Overrides after ``--`` go to the run's config (e.g.
``-- scale.num_personas=10``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, load, print_machine, stub_process, stub_snapshot

sys.path.insert(0, str(REPO))


def record() -> list[tuple]:
    """Patch the scheduler to append (kind, time.time(), role, stage, ...) events; returns the event list."""
    from persona_gen.core import scheduler as sched

    events: list[tuple] = []
    submit, send, finish = sched.Scheduler.submit, sched.Scheduler._send, sched.Scheduler._finish
    hand_on = sched.Scheduler._hand_on

    def traced_submit(self, call, done, stats, **kw):
        events.append(("ask", time.time(), call.role, call.stage, kw.get("rank", 0), kw.get("tier", 0)))
        return submit(self, call, done, stats, **kw)

    def traced_send(self, ep, pending):
        events.append(("send", time.time(), ep.role, pending.call.stage))
        return send(self, ep, pending)

    def traced_finish(self, ep, pending, outcome, now):
        events.append(("done", time.time(), ep.role, pending.call.stage))
        return finish(self, ep, pending, outcome, now)

    def traced_hand_on(self, ep, pending):  # on a worker: the slot handed to a prepared call
        handed = hand_on(self, ep, pending)
        if handed is not None:
            events.append(("send", time.time(), ep.role, handed.call.stage))
        return handed

    sched.Scheduler.submit, sched.Scheduler._send, sched.Scheduler._finish = traced_submit, traced_send, traced_finish
    sched.Scheduler._hand_on = traced_hand_on
    return events


def bins(events: list[tuple], width: float) -> None:
    """Calls sent per bin by endpoint and step, and the calls waiting on each endpoint at the bin's first send."""
    t0 = min(e[1] for e in events if e[0] == "send")
    sent: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    waiting: collections.Counter = collections.Counter()
    at_start: dict[int, dict[str, int]] = {}
    for kind, t, role, stage, *_ in sorted(events, key=lambda e: e[1]):
        b = int((t - t0) / width)
        if kind == "ask":
            waiting[role] += 1
        elif kind == "send":
            waiting[role] -= 1
            at_start.setdefault(b, dict(waiting))
            sent[b][(role, stage)] += 1
    cols = sorted({k for c in sent.values() for k in c})
    roles = sorted({r for r, _ in cols})
    print(f"{'t s':>6} " + " ".join(f"{r[:3] + ':' + s[:8]:>12}" for r, s in cols) + " " +
          " ".join(f"{'wait ' + r[:5]:>10}" for r in roles))
    for b in range(max(sent) + 1):
        row = sent.get(b, collections.Counter())
        print(f"{b * width:>6.2f} " + " ".join(f"{row.get(k, 0):>12}" for k in cols) + " " +
              " ".join(f"{at_start.get(b, {}).get(r, 0):>10}" for r in roles))


def idle(timings: dict[str, list], concurrency: int) -> None:
    """Per endpoint, from the stub's [arrived, finished] pairs: first arrival, last answer, idle slot-seconds."""
    origin = min(a for t in timings.values() for a, *_ in t)
    for name, t in timings.items():
        edges = sorted([(a - origin, 1) for a, f, *_ in t] + [(f - origin, -1) for a, f, *_ in t])
        per: dict[int, float] = collections.defaultdict(float)
        in_flight, last = 0, edges[0][0]
        for at, delta in edges:
            per[int(last / 2)] += (concurrency - in_flight) * (at - last)
            in_flight, last = in_flight + delta, at
        spread = " ".join(f"{k * 2}:{v:.1f}" for k, v in sorted(per.items()))
        print(f"{name:>9}: first arrival {edges[0][0]:.3f} s, last answer {edges[-1][0]:.3f} s, idle "
              f"{sum(per.values()):.2f} slot-s; per 2 s: {spread}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=500.0, help="stub latency (ms)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bin", type=float, default=None, help="bin width in seconds (default: the latency)")
    parser.add_argument("--save", type=Path, default=None, help="write the events and stub timings as JSON")
    parser.add_argument("overrides", nargs="*", help="config overrides (after --)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PERSONA_GEN_BENCH_KEY", "sk-bench")
    print_machine()

    import bench_pipeline as bp

    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    events = record()
    with stub_process(latency_ms=args.latency) as gen, stub_process(latency_ms=args.latency) as judge:
        root = Path(tempfile.mkdtemp(prefix="pg-trace-"))
        try:
            cfg = compose_run(root / "run", root / "cache", [*bp.model_overrides(gen, judge, args.concurrency),
                                                             *bp.JOB_400, "execution=stream", *args.overrides])
            t0 = time.perf_counter()
            result = run(cfg)
            wall = time.perf_counter() - t0
        finally:
            shutil.rmtree(root, ignore_errors=True)
        m = bp.server_metrics(gen, judge, args.latency, args.concurrency)
        timings = {"generator": stub_snapshot(gen)["timings"], "judge": stub_snapshot(judge)["timings"]}
    bins(events, args.bin or max(args.latency / 1000, 0.05))
    idle(timings, args.concurrency)
    print(f"wall {wall:.2f} s, window {m['window']:.3f} s, ideal {m['ideal']:.2f} s, window / ideal "
          f"{m['ratio']:.4f}, content hash {result.manifest.get('content_hash', '')[:12]}  load {load()}")
    if args.save:
        args.save.write_text(json.dumps({"events": events, "timings": timings, "metrics": m}))


if __name__ == "__main__":
    main()
