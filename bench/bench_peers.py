"""The 400-row job on NeMo DataDesigner, beside persona_gen, against the same loopback stubs, in the same run.

Run: ``python bench/bench_peers.py [--latencies 0,100,500] [--repeats 3]``.

The job (the issue's): 400 rows of answer -> critique -> revision -> judge in both orders, a generator endpoint
and a judge endpoint (one stub process each, ``tests/fixtures/stub_server.py``), 16 calls in flight per endpoint.
DataDesigner 0.9.7 gets it as five columns over a 400-row seed frame (persona, question): three
``LLMTextColumnConfig`` on the generator (plain-text prompts; the stub answers them in plain text) and two
``LLMJudgeColumnConfig`` on the judge (their JSON schema sits between ``<response_schema>`` tags in the prompt;
the stub answers it). persona_gen runs its own pipeline on the same job (``bench_pipeline.py``'s 400-row config):
it answers each distinct question once, so each tool is scored against its own call counts (ideal = max over the
endpoints of calls x latency / concurrency, calls counted at the server).

DataDesigner runs offline in a child process of its own virtual environment (its pins conflict with
persona_gen's: huggingface_hub < 2 and pyarrow < 25), made once with::

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'     # or: pip install data-designer

Offline means: ``NEMO_TELEMETRY_ENABLED=false`` (no events posted), ``DATA_DESIGNER_SKIP_MODEL_HEALTH_CHECKS=1``
(no start-up probe requests that the stubs would count), ``DISABLE_DATA_DESIGNER_PLUGINS=true``, and the
profiler's token counter (tiktoken's ``cl100k_base``, downloaded on first use) replaced by a word count.
``--child`` is that child's entry point; it imports nothing of persona_gen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, load, print_machine, stub_process, stub_reset

PEER_VENV_PYTHON = REPO / ".venv-bench" / "bin" / "python"
QUESTIONS = [
    "Should I spend my savings on a new car or keep them for emergencies?",
    "Is it better to rent or to buy a home in a small town?",
    "Should children be allowed to own a smartphone before they turn twelve?",
    "Is it worth going to college if it means taking on debt?",
    "Should I tell my boss that I am looking for another job?",
    "Is it fine to eat meat if you care about animals?",
    "Should voting be compulsory?",
    "Is remote work better than working in an office?",
    "Should I move closer to my aging parents?",
    "Is it wrong to lie to protect someone's feelings?",
    "Should I invest in index funds or pay off my mortgage first?",
    "Is it a good idea to homeschool my children?",
    "Should I forgive a friend who betrayed my trust?",
    "Is it selfish to not want children?",
    "Should I take a higher-paying job I would enjoy less?",
    "Is it better to live in a city or in the countryside?",
    "Should I lend money to a family member?",
    "Is religion important for raising good children?",
    "Should I retire early if I can afford it?",
    "Is it fine to let a teenager stay out past midnight?",
]
PERSONA = ("A {age}-year-old {job} from {state}, who speaks {lang} at home, saves coupons, and volunteers at the "
           "local library on weekends (persona {i}).")


def seed_rows(rows: int, rows_per_persona: int = 20) -> list[dict[str, str]]:
    """``rows`` (persona, question) pairs: ``rows / rows_per_persona`` personas, each with its questions."""
    jobs = ["electrician", "nurse", "teacher", "farmer", "accountant"]
    states = ["Wyoming", "Ohio", "Texas", "Maine"]
    out = []
    for r in range(rows):
        p = r // rows_per_persona
        out.append({"persona": PERSONA.format(age=25 + 3 * p % 50, job=jobs[p % 5], state=states[p % 4],
                                              lang="English" if p % 3 else "Spanish", i=p),
                    "question": QUESTIONS[r % len(QUESTIONS)] if rows_per_persona <= len(QUESTIONS)
                    else f"{QUESTIONS[r % len(QUESTIONS)]} ({r % rows_per_persona})"})
    return out


# -- the child: DataDesigner's run (its own venv; nothing of persona_gen) -------------------------------------------

def _offline() -> None:
    os.environ["NEMO_TELEMETRY_ENABLED"] = "false"
    os.environ["DATA_DESIGNER_SKIP_MODEL_HEALTH_CHECKS"] = "1"
    os.environ["DISABLE_DATA_DESIGNER_PLUGINS"] = "true"
    os.environ.setdefault("DATA_DESIGNER_API_KEY", "sk-bench")


def datadesigner_job(gen_url: str, judge_url: str, rows: int, concurrency: int, artifacts: Path) -> dict:
    """Build and create the 400-row job with DataDesigner; ``wall`` is ``DataDesigner.create`` alone."""
    _offline()
    import pandas as pd
    from data_designer.config import (
        ChatCompletionInferenceParams,
        DataDesignerConfigBuilder,
        LLMJudgeColumnConfig,
        LLMTextColumnConfig,
        ModelConfig,
        ModelProvider,
        Score,
    )
    from data_designer.config.seed_source_dataframe import DataFrameSeedSource
    from data_designer.engine.analysis.utils import column_statistics_calculations as stats_calc
    from data_designer.interface.data_designer import DataDesigner

    # The profiler counts tokens with tiktoken's cl100k_base, which downloads its table on first use: offline,
    # count words instead (it only feeds the profile report).
    stats_calc.count_text_tokens = lambda text: len(str(text).split())

    providers = [ModelProvider(name="gen", endpoint=gen_url, api_key="sk-bench"),
                 ModelProvider(name="judge", endpoint=judge_url, api_key="sk-bench")]
    params = ChatCompletionInferenceParams(max_parallel_requests=concurrency, temperature=0.0, max_tokens=512)
    builder = DataDesignerConfigBuilder(model_configs=[
        ModelConfig(alias="generator", model="stub-model", provider="gen", inference_parameters=params,
                    skip_health_check=True),
        ModelConfig(alias="judge", model="stub-model", provider="judge", inference_parameters=params,
                    skip_health_check=True)])
    builder.with_seed_dataset(DataFrameSeedSource(df=pd.DataFrame(seed_rows(rows))))
    builder.add_column(LLMTextColumnConfig(
        name="answer", model_alias="generator", prompt="Answer this question helpfully.\n\n{{ question }}"))
    builder.add_column(LLMTextColumnConfig(
        name="critique", model_alias="generator",
        prompt="You are this person: {{ persona }}\nIn your own voice, critique this answer to '{{ question }}' "
               "and suggest how to make it fit you better.\n\nAnswer: {{ answer }}"))
    builder.add_column(LLMTextColumnConfig(
        name="revision", model_alias="generator",
        prompt="Rewrite the answer to '{{ question }}' for this person: {{ persona }}\nFollow the critique.\n\n"
               "Answer: {{ answer }}\n\nCritique: {{ critique }}"))
    score = Score(name="preference", description="Which response this person prefers",
                  options={"A": "the first response", "B": "the second response"})
    for name, first, second in (("judge_ab", "answer", "revision"), ("judge_ba", "revision", "answer")):
        builder.add_column(LLMJudgeColumnConfig(
            name=name, model_alias="judge", scores=[score],
            prompt="You are this person: {{ persona }}\nQuestion: {{ question }}\n\nResponse A: {{ " + first
                   + " }}\n\nResponse B: {{ " + second + " }}\n\nWhich response do you prefer?"))
    designer = DataDesigner(artifact_path=artifacts, model_providers=providers)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = designer.create(builder, num_records=rows, dataset_name="bench")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    frame = result.load_dataset()
    failed = {c: int(frame[c].isna().sum()) for c in ("answer", "critique", "revision", "judge_ab", "judge_ba")
              if c in frame}
    return {"wall": wall, "cpu": cpu, "rows": len(frame), "missing": failed}


def run_datadesigner(gen_url: str, judge_url: str, *, rows: int = 400, concurrency: int = 16,
                     python: Path = PEER_VENV_PYTHON, timeout_s: float = 900) -> dict:
    """DataDesigner's run in a child process of ``python`` (its venv); the stubs' counters are reset first."""
    for url in (gen_url, judge_url):
        stub_reset(url)
    with tempfile.TemporaryDirectory(prefix="dd-bench-") as tmp:
        proc = subprocess.run(
            [str(python), __file__, "--child", "--gen", gen_url, "--judge", judge_url, "--rows", str(rows),
             "--concurrency", str(concurrency), "--artifacts", tmp],
            cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
    line = next((x for x in proc.stdout.splitlines()[::-1] if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"DataDesigner's run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def peer_available(python: Path = PEER_VENV_PYTHON) -> str | None:
    """None when DataDesigner can run; else why not."""
    if not python.exists():
        return f"{python} does not exist (python3 -m venv .venv-bench && .venv-bench/bin/pip install data-designer)"
    proc = subprocess.run([str(python), "-c", "import data_designer.interface.data_designer"], capture_output=True,
                          text=True, env={**os.environ, "NEMO_TELEMETRY_ENABLED": "false"})
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


# -- the parent --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gen")
    parser.add_argument("--judge")
    parser.add_argument("--artifacts")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latencies", default="0,100,500", help="stub latencies in ms, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", type=Path, default=PEER_VENV_PYTHON, help="the venv with data-designer")
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(datadesigner_job(args.gen, args.judge, args.rows, args.concurrency,
                                                      Path(args.artifacts))), flush=True)
        return

    from bench_pipeline import JOB_400, run_persona_gen, server_metrics

    print_machine()
    why = peer_available(args.python)
    if why:
        print(f"DataDesigner cannot run, skipped: {why}")
        return
    print(f"job: {args.rows} rows, answer -> critique -> revision -> judge (both orders), "
          f"{args.concurrency} in flight per endpoint; median of {args.repeats}")
    print(f"{'latency':>8} {'tool':<22} {'wall s':>8} {'gen calls':>9} {'judge calls':>11} {'window/ideal':>12} "
          f"{'overlap s':>9}  load")
    for latency in [float(x) for x in args.latencies.split(",")]:
        with stub_process(latency_ms=latency) as gen, stub_process(latency_ms=latency) as judge:
            runs: dict[str, list[dict]] = {"persona_gen stream": [], "DataDesigner 0.9.7": []}
            for _ in range(args.repeats):
                r = run_persona_gen(gen, judge, JOB_400, execution="stream", concurrency=args.concurrency)
                runs["persona_gen stream"].append({**r, **server_metrics(gen, judge, latency, args.concurrency)})
                r = run_datadesigner(gen, judge, rows=args.rows, concurrency=args.concurrency, python=args.python)
                runs["DataDesigner 0.9.7"].append({**r, **server_metrics(gen, judge, latency, args.concurrency)})
            for tool, rs in runs.items():
                med = {k: statistics.median(r[k] for r in rs) for k in ("wall", "ratio", "overlap")}
                print(f"{latency:>6.0f}ms {tool:<22} {med['wall']:>8.2f} {rs[0]['gen_calls']:>9} "
                      f"{rs[0]['judge_calls']:>11} {med['ratio']:>12.3f} {med['overlap']:>9.2f}  {load()}")


if __name__ == "__main__":
    main()
