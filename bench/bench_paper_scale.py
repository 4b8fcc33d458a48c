"""PERSONA's scale with the fake LM: 1,586 personas x 200 rows = 317,200 feedback rows.

Measures, each phase in its own process (so peak RSS is that phase's own):
  baseline  import persona_gen and load the census source (the floor every run pays);
  cold      the whole run on an empty cache;
  warm      the same run again on the warm cache: no LM call, the same bytes.
Prints the goals of the issue as ratios measured in this run: warm time / 60 s (goal < 1), peak RSS /
1.5 GB (goal < 1), cold peak RSS / baseline RSS, and warm time / cold time.

Run: ``python bench/bench_paper_scale.py`` (about 30 min cold on 2 cores), or ``--personas 100`` for a
smaller run with the same layout per persona.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def phase(kind: str, out: Path, cache: Path, personas: int | None) -> dict:
    sys.path.insert(0, str(REPO))
    t0 = time.perf_counter()
    if kind == "baseline":
        from persona_gen.census import load_source

        load_source()
        result = {}
    else:
        from persona_gen.pipeline import run
        from tests.helpers import compose_run

        overrides = ["experiment=paper", "model@models.generator=fake", "model@models.judge=fake",
                     "sampler.fidelity_sample_size=20000"]
        if personas:
            overrides.append(f"scale.num_personas={personas}")
        res = run(compose_run(out, cache, overrides))
        result = {"content_hash": res.content_hash, "lm_calls": res.lm_calls,
                  "rows": sum(res.manifest["rows"]["feedback"].values())}
    wall = time.perf_counter() - t0
    return {"phase": kind, "wall_s": round(wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=None, help="default: the paper's 1,586")
    parser.add_argument("--workdir", type=Path, default=None, help="keep outputs and cache here (default: a temp dir)")
    parser.add_argument("--phase", choices=["baseline", "cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.out, args.cache, args.personas)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.workdir) if args.workdir else scratch
        results = {}
        for kind in ("baseline", "cold", "warm"):
            cmd = [sys.executable, __file__, "--phase", kind, "--out", f"{tmp}/{kind}", "--cache", f"{tmp}/cache"]
            if args.personas:
                cmd += ["--personas", str(args.personas)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                sys.exit(f"{kind} phase failed:\n{proc.stderr[-3000:]}")
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(json.dumps(results[kind]), flush=True)
    base, cold, warm = results["baseline"], results["cold"], results["warm"]
    print(f"feedback rows: {cold['rows']:,} (paper: 317,200 at 1,586 personas)")
    print(f"warm rerun: {warm['wall_s']} s, LM calls {warm['lm_calls']}, same bytes: "
          f"{warm['content_hash'] == cold['content_hash']}")
    print(f"ratio warm / 60 s goal      = {warm['wall_s'] / 60:.3f}  (goal < 1)")
    print(f"ratio warm / cold           = {warm['wall_s'] / cold['wall_s']:.3f}")
    peak = max(cold["peak_rss_mb"], warm["peak_rss_mb"])
    print(f"ratio peak RSS / 1.5 GB     = {peak / 1536:.3f}  (goal < 1; peak {peak} MB)")
    print(f"ratio peak RSS / baseline   = {peak / base['peak_rss_mb']:.2f}  (baseline {base['peak_rss_mb']} MB)")


if __name__ == "__main__":
    main()
