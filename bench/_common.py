"""Shared pieces of the benchmarks: the machine, the stub server in its own process, small formatting."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.request import Request, urlopen

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def machine() -> dict[str, str]:
    """``nproc``, the CPU model from /proc/cpuinfo and the Python version."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
            "cpu": cpu, "python": platform.python_version()}


def print_machine() -> None:
    m = machine()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"machine: nproc={m['nproc']}  cpu={m['cpu']}  python={m['python']}  load average: {load}")


@contextmanager
def stub_process(*, latency_ms: float = 0.0):
    """The loopback stub (``tests/fixtures/stub_server.py``) in a child process, so it does not share the
    client's GIL; yields its ``base_url``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.stub_server", "--port", "0", "--latency-ms", str(latency_ms)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"the stub server did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def verdict(ratio: float, goal: float, *, higher_is_better: bool = True) -> str:
    met = ratio >= goal if higher_is_better else ratio <= goal
    sign = ">=" if higher_is_better else "<="
    return f"{'MET' if met else 'MISSED'} (goal {sign} {goal})"


def load() -> str:
    """The 1, 5 and 15 minute load averages (other agents share this machine: report them with the numbers)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _stub_url(base_url: str, path: str) -> str:
    return base_url.rsplit("/v1", 1)[0] + path


def stub_snapshot(base_url: str, *, timings: bool = True) -> dict:
    """``StubServer.snapshot()`` of a stub in another process (``GET /stub/snapshot``)."""
    with urlopen(_stub_url(base_url, f"/stub/snapshot?timings={int(timings)}"), timeout=60) as r:
        return json.load(r)


def stub_reset(base_url: str) -> None:
    """Clear a stub's counters and timings (``POST /stub/reset``)."""
    with urlopen(Request(_stub_url(base_url, "/stub/reset"), data=b"", method="POST"), timeout=60) as r:
        r.read()
