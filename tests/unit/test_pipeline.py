"""The spine with the fake LM: folder layout, loadability, determinism, warm cache, bad overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from persona_gen.core.records import PERSONA_KEYS
from persona_gen.pipeline import run
from tests.helpers import compose_run

FAKE = ["model@models.generator=fake", "model@models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("spine")
    result = run(compose_run(root / "run1", root / "cache", FAKE))
    return root, result


def test_pipeline_writes_hub_layout(first_run):
    _, result = first_run
    files = sorted(str(p.relative_to(result.dataset_dir)) for p in result.dataset_dir.rglob("*.parquet"))
    assert "data/feedback/train-00000-of-00001.parquet" in files
    assert "data/feedback/test-00000-of-00001.parquet" in files
    assert "data/personas/train-00000-of-00001.parquet" in files
    assert "data/judgments/train-00000-of-00001.parquet" in files
    assert result.card_path.name == "README.md"


def test_pipeline_output_loads_with_datasets(first_run):
    datasets = pytest.importorskip("datasets")
    _, result = first_run
    ds = datasets.load_dataset(str(result.dataset_dir), "feedback")
    cols = set(ds["train"].column_names)
    assert {"persona", "instruction", "original", "data", "critique", "question type"} <= cols
    assert len(ds["train"]) + len(ds["test"]) == result.manifest["rows"]["feedback"]["train"] + \
        result.manifest["rows"]["feedback"]["test"]


def test_pipeline_card_parses_with_huggingface_hub(first_run):
    from huggingface_hub import DatasetCard

    _, result = first_run
    card = DatasetCard.load(result.card_path)
    names = [c["config_name"] for c in card.data.to_dict()["configs"]]
    assert {"feedback", "personas", "questions", "judgments"} <= set(names)
    # An empty split cannot be loaded by `datasets`, so it is listed in the card text but not declared.
    assert ("persona_rejections" in names) == (result.manifest["rows"]["persona_rejections"]["train"] > 0)
    assert result.content_hash in card.text


def test_pipeline_personas_have_all_33_keys(first_run):
    import pandas as pd

    _, result = first_run
    df = pd.read_parquet(result.dataset_dir / "data/personas/train-00000-of-00001.parquet")
    assert len(PERSONA_KEYS) == 33
    for text in df["persona"]:
        keys = [line.split(": ", 1)[0] for line in text.splitlines()]
        assert keys == list(PERSONA_KEYS)
    assert (df[list(PERSONA_KEYS)] != "").all().all()


def test_pipeline_judges_both_orders(first_run):
    import pandas as pd

    _, result = first_run
    df = pd.read_parquet(result.dataset_dir / "data/judgments/train-00000-of-00001.parquet")
    assert len(df) > 0
    counts = df.groupby(["feedback_id", "variant"])["order"].apply(set)
    assert all(s == {"original_first", "revision_first"} for s in counts)


def test_pipeline_same_seed_same_hash_and_warm_cache_makes_no_call(first_run):
    root, result = first_run
    again = run(compose_run(root / "run2", root / "cache", FAKE))
    assert again.content_hash == result.content_hash
    assert again.lm_calls == 0
    assert result.lm_calls > 0
    for rel in ("data/feedback/train-00000-of-00001.parquet", "README.md"):
        assert (again.dataset_dir / rel).read_bytes() == (result.dataset_dir / rel).read_bytes()


def test_pipeline_asyncio_io_makes_the_same_bytes_cold(first_run):
    # The event loop (models.*.io=asyncio) and the thread pool are two ways of waiting, not of answering: a cold
    # run (own cache) on the event loop makes the very dataset the threaded run made.
    root, result = first_run
    aio = run(compose_run(root / "run_aio", root / "cache_aio", [*FAKE, "models.generator.io=asyncio",
                                                                 "models.judge.io=asyncio"]))
    assert aio.lm_calls == result.lm_calls > 0
    assert aio.content_hash == result.content_hash
    for rel in ("data/feedback/train-00000-of-00001.parquet", "data/judgments/train-00000-of-00001.parquet"):
        assert (aio.dataset_dir / rel).read_bytes() == (result.dataset_dir / rel).read_bytes()


def test_pipeline_other_seed_other_hash(first_run):
    root, result = first_run
    other = run(compose_run(root / "run3", root / "cache", [*FAKE, "seed=7"]))
    assert other.content_hash != result.content_hash


def test_pipeline_manifest_counts_rows_and_failures(first_run):
    _, result = first_run
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["rows"]["feedback"]["train"] == 2 * 1
    assert "failures" in manifest and "content_hash" in manifest


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "persona_gen", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_zero_personas_is_one_clear_error(tmp_path):
    proc = _cli([*FAKE, "scale.num_personas=0"], tmp_path)
    assert proc.returncode != 0
    assert "scale.num_personas must be >= 1, but got 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unknown_model_is_one_clear_error(tmp_path):
    proc = _cli(["models.generator=gpt9"], tmp_path)
    assert proc.returncode != 0
    assert "gpt9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pipeline_shards_then_merge_equal_one_unsharded_run(first_run, tmp_path):
    root, result = first_run
    from persona_gen.pipeline import merge

    parts = tmp_path / "parts"
    shard_args = [*FAKE, "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]
    for i in range(2):
        out = run(compose_run(tmp_path / f"shard{i}", root / "cache", [*shard_args, f"shard.index={i}"]))
        assert out.chunks == [i]
    merged = merge(compose_run(tmp_path / "merged", root / "cache", [*shard_args, "task=merge"]))
    single = run(compose_run(tmp_path / "single", root / "cache", [*FAKE, "scale.chunk_personas=1"]))
    assert merged.content_hash == single.content_hash == result.content_hash
    assert (merged.card_path.read_bytes() == single.card_path.read_bytes())


def test_pipeline_merge_names_missing_chunks(first_run, tmp_path):
    root, _ = first_run
    from persona_gen.core.errors import PersonaGenError
    from persona_gen.pipeline import merge

    parts = tmp_path / "parts"
    args = [*FAKE, "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]
    run(compose_run(tmp_path / "shard0", root / "cache", [*args, "shard.index=0"]))
    with pytest.raises(PersonaGenError, match=r"persona chunks must be all 2 present, but got 'missing \[1\]'"):
        merge(compose_run(tmp_path / "merged", root / "cache", [*args, "task=merge"]))


def test_pipeline_resumes_from_finished_parts(first_run, tmp_path):
    root, result = first_run
    parts = tmp_path / "parts"
    args = [*FAKE, "scale.chunk_personas=1", f"shard.parts_dir={parts}"]
    run(compose_run(tmp_path / "a", root / "cache", args))
    (parts / "stats" / "part-000001.json").unlink()  # as if the run died before chunk 1 finished
    again = run(compose_run(tmp_path / "b", root / "cache", args))
    assert again.content_hash == result.content_hash


def test_cli_rejects_shard_index_out_of_range(tmp_path):
    proc = _cli([*FAKE, "shard.count=2", "shard.index=2"], tmp_path)
    assert proc.returncode != 0
    assert "shard.index must be in [0, 1]" in proc.stderr


def test_cli_multirun_sweeps_models_and_seeds(tmp_path):
    proc = _cli(["-m", "models.generator=fake", "models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000",
                 "seed=1,2", "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    hashes = [json.loads((tmp_path / "sweep" / str(i) / "manifest.json").read_text())["content_hash"]
              for i in (0, 1)]
    assert hashes[0] != hashes[1]


def test_pipeline_card_reports_verification_rate_with_interval(first_run):
    import re

    _, result = first_run
    card = result.card_path.read_text()
    rows = re.findall(r"^\| (direct|chain_of_thought) \|.*\| (\d+\.\d%) \[(\d+\.\d%), (\d+\.\d%)\] \|", card, re.M)
    assert {r[0] for r in rows} == {"direct", "chain_of_thought"}
    for _, rate, lo, hi in rows:
        assert float(lo[:-1]) <= float(rate[:-1]) <= float(hi[:-1])


def test_pipeline_candidate_generators_answer_every_question(tmp_path):
    import pandas as pd

    cands = ("stage.feedback.candidates=[{name: hot, base: generator, temperature: 0.9},"
             "{name: judge_model, base: judge}]")
    result = run(compose_run(tmp_path / "run", tmp_path / "cache", [*FAKE, cands]))
    df = pd.read_parquet(next((result.dataset_dir / "data" / "candidates").glob("train-*.parquet")))
    fb = pd.concat([pd.read_parquet(p) for p in (result.dataset_dir / "data" / "feedback").glob("*.parquet")])
    assert set(df["model"].str.split("=").str[0]) == {"hot", "judge_model"}
    for _, g in df.groupby("model"):
        assert set(g["question_id"]) == set(fb["question_id"])
    assert ((df["text"] != "") | df["failure"].notna()).all()


def test_pipeline_candidate_without_name_is_config_error(tmp_path):
    from persona_gen.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"stage\.feedback\.candidates\[0\]\.name must be a unique"):
        run(compose_run(tmp_path / "run", tmp_path / "cache", [*FAKE, "stage.feedback.candidates=[{base: judge}]"]))


def test_pipeline_publishes_bench_scores_and_plots(first_run, tmp_path):
    from persona_gen.bench.task import run_bench

    root, result = first_run
    bench_out = tmp_path / "bench_run"
    run_bench(compose_run(bench_out, root / "cache", [*FAKE, "task=bench", f"bench.dataset_dir={result.dataset_dir}"]))
    again = run(compose_run(tmp_path / "with_bench", root / "cache", [*FAKE, f"publish.bench_dir={bench_out}"]))
    assert (again.dataset_dir / "data" / "bench").is_dir()
    pngs = {p.name for p in (again.dataset_dir / "plots").glob("*.png")}
    assert "accuracy_by_mode.png" in pngs
    assert "PERSONA Bench" in again.card_path.read_text()
