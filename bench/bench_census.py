"""Benchmark of the census sampler: 1,000,000 decoded personas against a naive pandas baseline.

Run: ``python bench/bench_census.py [--size 1000000] [--baseline-size 20000]``. Not a timed test: numbers depend
on the machine. The baseline is what one would write first: ``DataFrame.sample(n, weights="PWGTP",
replace=True)`` on the raw text records, then a per-row loop (``itertuples``) that looks each code up in the
dictionary. It is timed on ``--baseline-size`` rows and scaled linearly to ``--size`` (it is linear in n: one
Python-level lookup per row and key). Household keys are derived once at load in both, so neither pays for them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
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


def main() -> None:
    """Time load, vectorised sampling and the naive baseline; print a small report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--baseline-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default=str(REPO / "conf" / "sampler" / "census_six_states.yaml"),
                        help="source config (default: six states from the shared data folder)")
    args = parser.parse_args()

    start = time.perf_counter()
    source = load_source(args.config)
    load_seconds = time.perf_counter() - start
    source.sample(1000, seed=0)  # warm-up: first-touch allocations

    sample_seconds = _best_of(args.repeats, lambda: source.sample(args.size, seed=1))
    sample_where_seconds = _best_of(args.repeats, lambda: source.sample(args.size, seed=1, where="age >= 18"))

    # Naive baseline on the same records and dictionary.
    spec = source.spec
    raw = read_raw(spec).frame
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
