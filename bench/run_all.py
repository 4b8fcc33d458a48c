"""Run every benchmark of bench/ in turn and print their ratio lines together at the end.

Run: ``python bench/run_all.py [--quick]`` (``make bench``). Each benchmark runs in its own process, prints
its own report, and measures its baseline in the same run. ``--quick`` passes smaller sizes (a smoke run,
not numbers to report). A benchmark that is missing is skipped; one that fails is reported and the others
still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, arguments for --quick). The census benchmark is another engineer's; it runs when present.
BENCHMARKS: tuple[tuple[str, list[str]], ...] = (
    ("bench_lm_throughput.py", ["--calls", "200", "--latency-calls", "256", "--profile-calls", "50", "--repeats", "1"]),
    ("bench_embedded.py", ["--repeats", "2"]),
    ("bench_census.py", ["--size", "100000", "--baseline-size", "5000", "--repeats", "1"]),
    ("bench_paper_scale.py", ["--personas", "40"]),
    # The two-stub pipeline jobs (issue 15): stream vs barrier vs DataDesigner, the 16-persona ratio, shards.
    ("bench_pipeline.py", ["--latencies", "0,100", "--repeats", "1", "--skip-16"]),
    ("bench_peers.py", ["--latencies", "0", "--repeats", "1"]),
    ("bench_shards.py", []),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    summary: list[str] = []
    failed: list[str] = []
    for script, quick_args in BENCHMARKS:
        path = HERE / script
        if not path.is_file():
            print(f"== {script}: not present, skipped\n", flush=True)
            continue
        print(f"== {script}", flush=True)
        proc = subprocess.Popen([sys.executable, str(path), *(quick_args if args.quick else [])], cwd=HERE.parent,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if "ratio" in line.lower() or "speed-up" in line.lower() or "speedup" in line.lower() \
                    or line.strip().startswith(("PASS", "MISS")):
                summary.append(f"{script}: {line.strip()}")
        if proc.wait() != 0:
            failed.append(script)
            summary.append(f"{script}: FAILED with exit status {proc.returncode}")
        print(flush=True)
    print("== summary")
    for line in summary:
        print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
