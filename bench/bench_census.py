"""Benchmark of the census sampler: 1,000,000 decoded personas against a naive pandas baseline.

Run: ``python bench/bench_census.py [--size 1000000] [--baseline-size 20000]``. Not a timed test: numbers depend
on the machine. The baseline is what one would write first: ``DataFrame.sample(n, weights="PWGTP",
replace=True)`` on the raw text records, then a per-row loop (``itertuples``) that looks each code up in the
dictionary. It is timed on ``--baseline-size`` rows and scaled linearly to ``--size`` (it is linear in n: one
Python-level lookup per row and key). Household keys are derived once at load in both, so neither pays for them.

``--national``: a national-sized pool in the Bureau's national layout. The six states' person files are replicated
(every SERIALNO given a replica suffix, so households stay distinct) to ``--national-rows`` persons (default
3,200,000, about the national file) and written, all 286 columns, as one zip holding ``psam_pusa.csv`` and
``psam_pusb.csv`` (deflate level 1; cached in ``--cache-dir``). A fresh child process then loads it through
``conf/sampler/census_pums.yaml`` and reports load + decode time, its peak RSS, and 1,000,000 draws.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

from persona_gen.census import CENSUS_KEYS, load_source
from persona_gen.census.dictionary import DataDictionary
from persona_gen.census.reader import read_raw

REPO = Path(__file__).resolve().parents[1]


def _best_of(repeats: int, function) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


STATES = ("wy", "vt", "nd", "de", "hi", "nm")


def build_national_zip(shared: Path, rows: int, out: Path) -> Path:
    """Replicate the six states' person files to ``rows`` persons in the national layout (two CSVs in one zip)."""
    if out.is_file():
        return out
    header = b""
    bodies = []
    for state in STATES:
        with zipfile.ZipFile(shared / "pums" / f"csv_p{state}.zip") as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            text = archive.read(name)
        header, _, body = text.partition(b"\n")
        bodies.append([line for line in body.split(b"\n") if line])
    lines = [line for body in bodies for line in body]
    # Each line starts "P,2018HU0000123,": a two-digit replica suffix on SERIALNO keeps households apart.
    serial_end = len(b"P,2018HU0000123")
    replicas = -(-rows // len(lines))
    tmp = out.with_suffix(".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        written = 0
        for member, share in (("psam_pusa.csv", 0.5), ("psam_pusb.csv", 1.0)):
            with archive.open(member, "w", force_zip64=True) as handle:
                handle.write(header + b"\n")
                target = round(rows * share)
                replica = 0 if member == "psam_pusa.csv" else replicas // 2
                while written < target:
                    suffix = b"%02d" % replica
                    take = lines[: target - written]
                    handle.write(b"\n".join(line[:serial_end] + suffix + line[serial_end:] for line in take) + b"\n")
                    written += len(take)
                    replica += 1
        archive.writestr("ACS2018_PUMS_README.pdf", b"%PDF-1.4 placeholder")
    tmp.rename(out)
    return out


_CHILD = """
import json, resource, sys, time
from persona_gen.census import load_source
from persona_gen.census.spec import read_config_file
config = read_config_file(sys.argv[1])
config["source"]["files"] = [sys.argv[2]]
start = time.perf_counter()
source = load_source(config)
load = time.perf_counter() - start
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
source.sample(1000, seed=0)
draws = []
for _ in range(int(sys.argv[4])):
    start = time.perf_counter()
    source.sample(int(sys.argv[3]), seed=1)
    draws.append(time.perf_counter() - start)
print(json.dumps({"records": source.num_records, "load_s": load, "rss_after_load_mb": rss_load,
                  "draw_s": min(draws), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def national(args: argparse.Namespace) -> None:
    """Build (or reuse) the national-sized zip, load it in a fresh process, report time, peak RSS and draws."""
    shared = Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO.parent / "shared" / "data"))
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = build_national_zip(shared, args.national_rows, cache / f"csv_pus_six_states_x{args.national_rows}.zip")
    build_seconds = time.perf_counter() - start
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(REPO / "conf" / "sampler" / "census_pums.yaml"),
                           str(path), str(args.size), str(args.repeats)], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, pandas {pd.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"national-sized zip: {path} ({path.stat().st_size / 1e6:,.0f} MB; built or reused in "
          f"{build_seconds:.1f} s): {result['records']:,} persons, psam_pusa.csv + psam_pusb.csv, 286 columns")
    print(f"load + decode (cold, fresh process):      {result['load_s']:8.2f} s  (goal < 60 s)")
    print(f"peak RSS after load:                       {result['rss_after_load_mb']:8.0f} MB (goal < 2048 MB)")
    print(f"sample {args.size:,} decoded personas:       {result['draw_s']:8.3f} s  (best of {args.repeats}; "
          f"goal < 0.4 s)")
    print(f"peak RSS of the whole child:               {result['peak_rss_mb']:8.0f} MB")
    met = result["load_s"] < 60 and result["rss_after_load_mb"] < 2048 and result["draw_s"] < 0.4
    print(f"goals: {'met' if met else 'NOT met'}")


def main() -> None:
    """Time load, vectorised sampling and the naive baseline; print a small report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--baseline-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default=str(REPO / "conf" / "sampler" / "census_six_states.yaml"),
                        help="source config (default: six states from the shared data folder)")
    parser.add_argument("--national", action="store_true", help="benchmark a national-sized pool instead")
    parser.add_argument("--national-rows", type=int, default=3_200_000)
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "persona_gen_bench"))
    args = parser.parse_args()
    if args.national:
        national(args)
        return

    start = time.perf_counter()
    source = load_source(args.config)
    load_seconds = time.perf_counter() - start
    source.sample(1000, seed=0)  # warm-up: first-touch allocations

    sample_seconds = _best_of(args.repeats, lambda: source.sample(args.size, seed=1))
    sample_where_seconds = _best_of(args.repeats, lambda: source.sample(args.size, seed=1, where="age >= 18"))

    # Naive baseline on the same records and dictionary.
    spec = source.spec
    raw = read_raw(spec).frame.astype(object)  # plain text records, as the naive loader would hold them
    raw["PWGTP"] = pd.to_numeric(raw[spec.weight])
    dictionary = DataDictionary.from_files(spec.dictionaries)
    direct = [(key, column.variable) for key, column in spec.columns if not column.derived]
    lookups = {variable: dict(dictionary[variable].codes) for _, variable in direct}
    numeric = {variable for _, variable in direct if dictionary[variable].numeric}

    def naive() -> list[dict[str, object]]:
        drawn = raw.sample(n=args.baseline_size, weights="PWGTP", replace=True, random_state=1)
        personas = []
        for row in drawn[[v for _, v in direct]].itertuples(index=False):
            persona: dict[str, object] = {}
            for (key, variable), code in zip(direct, row, strict=True):
                if variable in numeric:
                    persona[key] = int(code) if code else lookups[variable][""]
                else:
                    persona[key] = lookups[variable][code]
            personas.append(persona)
        return personas

    baseline_seconds = _best_of(args.repeats, naive)
    baseline_scaled = baseline_seconds * args.size / args.baseline_size

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, pandas {pd.__version__}")
    print(f"source: {source.name}: {source.num_records:,} records, {len(CENSUS_KEYS)} census keys")
    print(f"load + decode (cold, from zips):          {load_seconds:8.3f} s")
    print(f"sample {args.size:,} decoded personas:       {sample_seconds:8.3f} s  (best of {args.repeats})")
    print(f"sample {args.size:,} with where='age >= 18': {sample_where_seconds:8.3f} s")
    print(f"naive baseline, {args.baseline_size:,} personas:         {baseline_seconds:8.3f} s")
    print(f"naive baseline scaled linearly to {args.size:,}: {baseline_scaled:8.3f} s")
    met = sample_seconds < 1 and baseline_scaled / sample_seconds >= 20
    print(f"speed-up: {baseline_scaled / sample_seconds:,.0f}x  (goal: < 1 s for 1M and >= 20x): "
          f"{'met' if met else 'NOT met'}")
    print(f"per persona: vectorised {sample_seconds / args.size * 1e9:,.0f} ns, "
          f"naive {baseline_seconds / args.baseline_size * 1e9:,.0f} ns")


if __name__ == "__main__":
    main()
