"""LM call throughput of persona_gen's ``Caller.map`` against a loopback OpenAI-compatible stub.

Run: ``python bench/bench_lm_throughput.py [--calls 1000] [--concurrency 64] [--latency-calls 1280]``.
Not a timed test: numbers depend on the machine. Two measurements, each against baselines of the same run:

1. **0 ms latency.** ``Caller.map`` (cache on, in a temporary folder; ``dspy.Predict(JudgeInVoice)`` through
   persona_gen's ``JSONAdapter`` and ``build_lm(kind=openai_compatible)``), with ``io=threads`` (the default)
   and ``io=asyncio``, over the calls/s of raw async clients sending the very messages DSPy sends and
   ``json.loads``-ing the answer: ``httpx.AsyncClient`` and ``openai.AsyncOpenAI`` (the issue's baseline: the
   faster of the two; goal >= 0.9) and ``aiohttp`` (a stricter reference: ~0.1 ms of client CPU per call,
   less than DSPy's adapter alone needs). Also "plain DSPy": ``dspy.LM("openai/...")`` with a fresh
   ``dspy.JSONAdapter`` per call, the stack before persona_gen's adapter and engines.
2. **100 ms latency, concurrency 64.** ``Caller.map``'s wall time over the ideal ``N * L / C``, median of
   ``--repeats`` runs, each next to a raw aiohttp run. Goal <= 1.1. The stub answers ``L`` after a request
   arrives, its own work included, so a perfect client would reach 1.0.

Then a profile of one thread of sequential calls (cProfile, own time grouped by package) says where a
call's CPU goes. The stub runs in a child process so it does not share the client's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import print_machine, stub_process, verdict

QUESTION = "Should I spend my savings on a new car or keep them for emergencies? #{i}"
PERSONA = "age: 41\nsex: male\noccupation: electrician\nhousehold language: English\ndefining quirks: saves coupons"


def _items(n: int, offset: int = 0) -> list[dict[str, str]]:
    return [{"persona": PERSONA, "question": QUESTION.format(i=i + offset), "first_answer": "Keep the savings.",
             "second_answer": "Buy the car, you deserve it."} for i in range(n)]


# models.<role>.http_client of persona_gen's threaded calls (--http-client).
HTTP_CLIENT = "curl"


def _client(base_url: str, concurrency: int, io: str = "threads") -> Any:
    from omegaconf import OmegaConf

    from persona_gen.core.lm import build_lm

    # conf/model/openai_compatible.yaml with the stub's address.
    cfg = OmegaConf.create({"kind": "openai_compatible", "name": "stub-model", "base_url": base_url,
                            "api_key_env": "PERSONA_GEN_API_KEY", "temperature": 0.0, "max_tokens": 512,
                            "concurrency": concurrency, "timeout_s": 60.0, "num_retries": 4,
                            "structured_output": "json_object", "io": io, "http_client": HTTP_CLIENT})
    return build_lm(cfg, role="judge")



def run_caller(base_url: str, n: int, concurrency: int, *, offset: int, cache_dir: Path | None,
               io: str = "threads") -> dict[str, float]:
    """``Caller.map`` as the pipeline runs it: ``models.judge.io=threads`` (the default) or ``asyncio``."""
    import dspy

    from persona_gen.core.cache import CallCache
    from persona_gen.core.calls import Caller
    from persona_gen.signatures import JudgeInVoice

    client = _client(base_url, concurrency, io)
    caller = Caller(client, CallCache(cache_dir, enabled=cache_dir is not None), progress=False)
    module = dspy.Predict(JudgeInVoice)
    caller.map("warmup", module, _items(min(64, n), offset=10**6 + offset))
    items = _items(n, offset=offset)
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = caller.map("judge_direct", module, items)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"  warning: {failed} of {n} Caller.map calls failed")
    caller.cache.close()
    return {"wall": wall, "cpu": cpu, "calls_per_s": n / wall, "cpu_ms_per_call": 1000 * cpu / n}


def run_plain_dspy(base_url: str, n: int, concurrency: int, *, offset: int) -> dict[str, float]:
    """What a plain DSPy user gets: ``dspy.LM("openai/...")`` (DSPy's own lm15 OpenAI provider) and a fresh
    ``dspy.JSONAdapter`` per call on a thread pool: the before of this stack."""
    from concurrent.futures import ThreadPoolExecutor

    import dspy

    from persona_gen.signatures import JudgeInVoice

    lm = dspy.LM("openai/stub-model", api_base=base_url, api_key="x", cache=False, temperature=0.0, max_tokens=512,
                 num_retries=4)
    module = dspy.Predict(JudgeInVoice)

    def one(item: dict[str, str]) -> bool:
        try:
            with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
                module(**item)
            return True
        except Exception:
            return False

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, _items(min(64, n), offset=10**6 + offset)))
        cpu0, t0 = time.process_time(), time.perf_counter()
        ok = sum(pool.map(one, _items(n, offset=offset)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if ok != n:
        print(f"  warning: {n - ok} of {n} plain DSPy calls failed")
    return {"wall": wall, "cpu": cpu, "calls_per_s": n / wall, "cpu_ms_per_call": 1000 * cpu / n}


def _dspy_messages(n: int, offset: int) -> list[list[dict[str, str]]]:
    import dspy

    from persona_gen.signatures import JudgeInVoice

    adapter = dspy.JSONAdapter()
    return [adapter.format(JudgeInVoice, demos=[], inputs=item) for item in _items(n, offset=offset)]


async def _raw_httpx(base_url: str, messages: list[list[dict[str, str]]], concurrency: int) -> int:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    ok = 0
    # httpx's default pool limits, as a user writes it: measured here, 64 keep-alive connections
    # (Limits(max_connections=64, max_keepalive_connections=64)) make httpx ~4x slower (~5 ms of CPU per call).
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers={"Authorization": "Bearer x"}) as client:
        async def one(i: int, msgs: list[dict[str, str]]) -> None:
            nonlocal ok
            async with sem:
                r = await client.post("/chat/completions", json=_body(i, msgs))
                r.raise_for_status()
                ok += _parsed(r.json())

        await asyncio.gather(*(one(i, m) for i, m in enumerate(messages)))
    return ok


async def _raw_aiohttp(base_url: str, messages: list[list[dict[str, str]]], concurrency: int) -> int:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    ok = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer x"},
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one(i: int, msgs: list[dict[str, str]]) -> None:
            nonlocal ok
            async with sem, session.post(f"{base_url}/chat/completions", json=_body(i, msgs)) as r:
                r.raise_for_status()
                ok += _parsed(await r.json())

        await asyncio.gather(*(one(i, m) for i, m in enumerate(messages)))
    return ok


def _body(i: int, msgs: list[dict[str, str]]) -> dict[str, Any]:
    return {"model": "stub-model", "messages": msgs, "temperature": 0.0, "max_tokens": 512, "seed": i,
            "response_format": {"type": "json_object"}}


def _parsed(answer: dict[str, Any]) -> int:
    return int("preferred" in json.loads(answer["choices"][0]["message"]["content"]))


async def _raw_openai(base_url: str, messages: list[list[dict[str, str]]], concurrency: int) -> int:
    import openai

    sem = asyncio.Semaphore(concurrency)
    ok = 0
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60) as client:
        async def one(i: int, msgs: list[dict[str, str]]) -> None:
            nonlocal ok
            async with sem:
                body = _body(i, msgs)
                r = await client.chat.completions.create(**body)
                ok += int("preferred" in json.loads(r.choices[0].message.content or "{}"))

        await asyncio.gather(*(one(i, m) for i, m in enumerate(messages)))
    return ok


# The baseline is "a raw async client (httpx or openai)"; aiohttp is reported as a stricter reference.
GOAL_CLIENTS = ("httpx", "openai")
RAW_CLIENTS = {"httpx": _raw_httpx, "openai": _raw_openai, "aiohttp": _raw_aiohttp}


def run_raw(base_url: str, n: int, concurrency: int, *, offset: int, client: str) -> dict[str, float]:
    fn = RAW_CLIENTS[client]
    asyncio.run(fn(base_url, _dspy_messages(min(64, n), offset=10**6 + offset), concurrency))  # warm-up
    messages = _dspy_messages(n, offset=offset)
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = asyncio.run(fn(base_url, messages, concurrency))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if ok != n:
        print(f"  warning: {n - ok} of {n} raw {client} calls did not parse")
    return {"wall": wall, "cpu": cpu, "calls_per_s": n / wall, "cpu_ms_per_call": 1000 * cpu / n}


def run_raw_all(base_url: str, n: int, concurrency: int, *, offset: int) -> dict[str, dict[str, float]]:
    """Every raw client, each printed."""
    found = {}
    for name in RAW_CLIENTS:
        res = run_raw(base_url, n, concurrency, offset=offset, client=name)
        _line(f"raw {name} (async)", res)
        found[name] = res
    return found


def best_of(found: dict[str, dict[str, float]], names: tuple[str, ...]) -> tuple[str, dict[str, float]]:
    """The fastest of ``names``: the baseline (a slow baseline would flatter persona_gen)."""
    name = min(names, key=lambda k: found[k]["wall"])
    return name, found[name]


_BUCKETS = (
    ("urllib3", "urllib3 (HTTP client of the engine)"),
    ("persona_gen/core/http_engine", "persona_gen engine (request body, answer)"),
    ("email/", "http.client header parsing"),
    ("dspy/_vendor/lm15/transports", "lm15 HTTP transport"),
    ("dspy/_vendor/lm15", "lm15 request/response mapping"),
    ("dspy/adapters", "DSPy adapters (format + parse)"),
    ("dspy/clients", "DSPy LM client (execution, capabilities, history)"),
    ("dspy/", "DSPy other (predict, settings, callbacks)"),
    ("persona_gen/", "persona_gen (Caller, adapter memo, cache key)"),
    ("diskcache", "diskcache (cache write)"),
    ("sqlite3", "diskcache (cache write)"),
    ("pydantic", "pydantic"),
    ("json_repair", "json_repair (parse)"),
    ("json/", "json"),
    ("http/client", "http.client"),
    ("urllib/request", "proxy lookup in os.environ, per request"),
    ("<frozen os>", "proxy lookup in os.environ, per request"),
    ("socket", "socket I/O"),
    ("ssl", "socket I/O"),
    ("selectors", "socket I/O"),
    ("threading", "threading"),
    ("copy.py", "copy (deepcopy of requests)"),
    ("inspect", "inspect"),
    ("re/", "re"),
    ("typing", "typing"),
)


def _bucket(filename: str, func: str) -> str:
    if filename == "~":  # a C function: name it by what it is
        if "socket" in func or "select" in func or "poll" in func:
            return "socket I/O (C; includes waiting for the server)"
        if "of 'dict' objects" in func:
            return "dict methods (C)"
        if "lock" in func:
            return "locks (C)"
        return "other C functions"
    for needle, name in _BUCKETS:
        if needle in filename:
            return name
    return "other Python"


def profile_calls(base_url: str, n: int) -> None:
    """Own time per call, grouped by package, of ``n`` sequential Caller calls (one thread, so cProfile sees it)."""
    import dspy

    from persona_gen.core.cache import CallCache
    from persona_gen.core.calls import Caller
    from persona_gen.signatures import JudgeInVoice

    with tempfile.TemporaryDirectory() as tmp:
        caller = Caller(_client(base_url, 1), CallCache(Path(tmp)), progress=False)
        module = dspy.Predict(JudgeInVoice)
        caller.map("warmup", module, _items(8, offset=2 * 10**6))
        prof = cProfile.Profile()
        items = _items(n, offset=3 * 10**6)
        t0 = time.perf_counter()
        prof.enable()
        caller.map("judge_direct", module, items)
        prof.disable()
        wall = time.perf_counter() - t0
        caller.cache.close()
    stats = pstats.Stats(prof)
    by_bucket: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_bucket[_bucket(filename, func)] += tottime
        total += tottime
    label = "build_lm"
    print(f"\nprofile ({label}): {n} sequential Caller calls, {1000 * wall / n:.2f} ms wall per call "
          f"(profiled; cProfile inflates it), own time by package:")
    for name, secs in sorted(by_bucket.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<52} {1000 * secs / n:6.3f} ms/call  {100 * secs / total:5.1f}%")
    print("  top functions by own time:")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
    for (filename, line, func), (_, _, tottime, _, _) in rows[:10]:
        short = filename.split("site-packages/")[-1].split("/lib/python3")[-1]
        print(f"    {1000 * tottime / n:7.3f} ms/call  {short}:{line} {func}")


def _line(label: str, res: dict[str, float]) -> None:
    print(f"  {label:<38}{res['calls_per_s']:8.1f} calls/s  {res['wall']:6.2f} s  "
          f"{res['cpu_ms_per_call']:.2f} ms client CPU/call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls at 0 ms latency")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--latency-calls", type=int, default=1280, help="calls at --latency-ms")
    parser.add_argument("--profile-calls", type=int, default=200, help="0 skips the profile")
    parser.add_argument("--repeats", type=int, default=5, help="runs of Caller.map at --latency-ms")
    parser.add_argument("--http-client", choices=("curl", "urllib3"), default="curl",
                        help="models.<role>.http_client of persona_gen's threaded calls")
    args = parser.parse_args()
    global HTTP_CLIENT
    HTTP_CLIENT = args.http_client
    print_machine()
    n, c = args.calls, args.concurrency

    with stub_process(latency_ms=0) as base_url, tempfile.TemporaryDirectory() as tmp:
        print(f"\n[1] 0 ms latency, {n} calls, concurrency {c}")
        raw = run_raw_all(base_url, n, c, offset=0)
        ours = run_caller(base_url, n, c, offset=0, cache_dir=Path(tmp) / "c1")
        _line("Caller.map (io=threads, cache on)", ours)
        _line("Caller.map (io=threads, no cache)", run_caller(base_url, n, c, offset=n, cache_dir=None))
        aio = run_caller(base_url, n, c, offset=2 * n, cache_dir=Path(tmp) / "c2", io="asyncio")
        _line("Caller.map (io=asyncio, cache on)", aio)
        plain = run_plain_dspy(base_url, n, c, offset=3 * n)
        _line("plain dspy.LM('openai/..') threads", plain)
        name, base = best_of(raw, GOAL_CLIENTS)
        for label, res in (("io=threads", ours), ("io=asyncio", aio)):
            ratio = res["calls_per_s"] / base["calls_per_s"]
            print(f"  ratio Caller.map ({label}) / raw {name} (the faster of the issue's httpx, openai) = "
                  f"{ratio:.3f}  {verdict(ratio, 0.9)}")
            print(f"  ratio Caller.map ({label}) / raw aiohttp (stricter reference, not the goal's client) = "
                  f"{res['calls_per_s'] / raw['aiohttp']['calls_per_s']:.3f}")
        speedup = ours["calls_per_s"] / plain["calls_per_s"]
        print(f"  speed-up of Caller.map (io=threads) over plain DSPy = {speedup:.2f}x")
        if args.profile_calls:
            profile_calls(base_url, args.profile_calls)

    m, lat = args.latency_calls, args.latency_ms
    ideal = m * lat / 1000 / c
    with stub_process(latency_ms=lat) as base_url, tempfile.TemporaryDirectory() as tmp:
        print(f"\n[2] {lat:.0f} ms latency, {m} calls, concurrency {c}: ideal N*L/C = {ideal:.2f} s "
              f"({c / lat * 1000:.0f} calls/s)")
        raw = run_raw_all(base_url, m, c, offset=0)
        aio = run_caller(base_url, m, c, offset=m, cache_dir=Path(tmp) / "aio", io="asyncio")
        _line("Caller.map (io=asyncio, cache on)", aio)
        plain = run_plain_dspy(base_url, m, c, offset=2 * m)
        _line("plain dspy.LM('openai/..') threads", plain)
        # One run of 2 s varies by ~±3% here, raw clients included: the goal is judged on the median of
        # --repeats runs of Caller.map, each next to a run of the raw aiohttp client for reference.
        ours_x, raw_x = [], []
        for rep in range(args.repeats):
            res = run_caller(base_url, m, c, offset=(3 + rep) * m, cache_dir=Path(tmp) / f"c{rep}")
            ref = run_raw(base_url, m, c, offset=(3 + args.repeats + rep) * m, client="aiohttp")
            ours_x.append(res["wall"] / ideal)
            raw_x.append(ref["wall"] / ideal)
            _line(f"Caller.map (io=threads) run {rep + 1}", res)
        print("  achieved / ideal, per run: Caller.map (io=threads) "
              f"{' '.join(f'{x:.3f}' for x in ours_x)}; raw aiohttp {' '.join(f'{x:.3f}' for x in raw_x)}")
        for label, res in (("raw openai", raw["openai"]), ("Caller.map io=asyncio", aio), ("plain DSPy", plain)):
            print(f"  {label}: achieved / ideal = {res['wall'] / ideal:.3f}")
        print(f"  raw aiohttp: median achieved / ideal = {statistics.median(raw_x):.3f}")
        ratio = statistics.median(ours_x)
        print(f"  ratio Caller.map (io=threads) median achieved / ideal = {ratio:.3f}  "
              f"{verdict(ratio, 1.1, higher_is_better=False)}")


if __name__ == "__main__":
    main()
