"""Bad input, end to end: one clear error line, a non-zero exit, and nothing partial left behind.

Each case of the catalogue runs the real CLI (``python -m persona_gen``) with the fake LM in a fresh working
directory and asserts the CLI's contract for bad input:

- exit status 2, no Python traceback;
- exactly one line on stderr besides progress bars: ``persona-gen: error: <what> must be <expected>, but got
  <got> (<where>); <fix>``, naming the bad value;
- no partial output: under the run dir only Hydra's ``.hydra/`` and the log, no dataset, no parquet, and no
  temporary file anywhere (run dir, cache, parts dir, inputs).

The census cases go through the CLI too (``sampler.source=<a source YAML>`` pointing at broken files); the
CensusError unit tests (tests/unit/census/test_census_errors.py) check the same errors one level down.
Failures that need a running pipeline to inject (full disk, an interrupted parquet write) run in-process,
and a corrupt cache must not fail the run at all.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from persona_gen.census.spec import package_data
from persona_gen.core.errors import PublishError
from tests.helpers import read_wyoming_csv, write_zip

pytestmark = pytest.mark.integration

FAKE = ["models.generator=fake", "models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000"]
# A secret typed where it does not belong, and one in the environment (as api_key_env names it): neither may reach
# stderr or any file.
SECRET = "sk-catalogue-0123456789abcdefXYZ"
ENV_SECRET = "sk-environment-0123456789abcdefXYZ"
# In-process runs (compose_run) take the group override spelled out; the CLI maps the shorthand to it.
FAKE_GROUPS = ["model@models.generator=fake", "model@models.judge=fake", "scale=tiny",
               "sampler.fidelity_sample_size=2000"]
ERROR_PREFIX = "persona-gen: error: "


# -- running the CLI and checking its contract ------------------------------------------------------------------


def _cli(args: list[str], cwd: Path, cache: Path, env: dict[str, str] | None = None,
         unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    # No saved Hub login of the machine running the tests (huggingface_hub.get_token() reads HF_TOKEN_PATH).
    full_env = {**os.environ, "PERSONA_GEN_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1",
                "HF_TOKEN_PATH": str(cwd / "no_saved_hf_login"), "PERSONA_GEN_API_KEY": ENV_SECRET, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    for name in unset:
        full_env.pop(name, None)
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "persona_gen", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=180)


_PROGRESS = re.compile(r"\d+%\|.*\| *\d+/\d+ \[\d+:\d\d")


def _is_progress(line: str) -> bool:
    """A tqdm progress bar (Caller shows one per LM stage on stderr): `desc:  50%|###  | 1/2 [00:01<00:01, ...]`."""
    return bool(_PROGRESS.search(line))


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one meaningful stderr line, checked for the house format; fails on anything else."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and not _is_progress(ln)]
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}:\n" + "\n".join(lines)
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    # <what> must be <expected>, but got <got> (<where>); <fix>
    what, sep, rest = line[len(ERROR_PREFIX):].partition(" must be ")
    assert what.strip() and sep, f"no '<what> must be <expected>' in: {line}"
    expected, sep, rest = rest.partition(", but got ")
    assert expected.strip() and sep, f"no ', but got <got>' in: {line}"
    got_where, sep, fix = rest.rpartition("); ")
    assert sep and " (" in got_where and fix.strip(), f"no ' (<where>); <fix>' in: {line}"
    return line


def _assert_no_partial_output(root: Path, cwd: Path) -> None:
    """Only Hydra's .hydra/, log and failures.jsonl under the working dir; no temporary or staging file under root."""
    leftovers = []
    for path in cwd.rglob("*"):
        rel = path.relative_to(cwd)
        if path.is_dir() or ".hydra" in rel.parts:
            continue
        if len(rel.parts) == 2 and rel.parts[0] == "run" and path.suffix == ".log":
            continue
        if len(rel.parts) == 2 and rel.parts[0] == "run" and rel.parts[1] == "failures.jsonl":
            continue  # the failed calls' raw answers: what a failed run must leave to be diagnosed
        leftovers.append(str(rel))
    assert leftovers == [], f"partial output left behind: {leftovers}"
    stray = [str(p.relative_to(root)) for p in root.rglob("*")
             if p.name.endswith(".tmp") or ".staging-" in p.name or ".old-" in p.name]
    assert stray == [], f"temporary files left behind: {stray}"


# -- inputs the cases need --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wyoming_csv() -> pd.DataFrame:
    """The shipped Wyoming person file as text, to build broken copies from."""
    return read_wyoming_csv()


def _source_yaml(inputs: Path, files: list[Path], **changes: object) -> Path:
    """A census source YAML like the shipped one (package dictionaries), reading ``files``."""
    source = yaml.safe_load(package_data("source.yaml").read_text())
    source["files"] = [str(f) for f in files]
    source.update(changes)
    path = inputs / "source.yaml"
    path.write_text(yaml.safe_dump(source, sort_keys=False))
    return path


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ctx:
    """What a case's setup may use: a folder for its input files, and module fixtures."""

    inputs: Path
    cache: Path
    request: pytest.FixtureRequest

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)


def _corrupt_zip(ctx: Ctx) -> list[str]:
    path = ctx.inputs / "csv_pwy.zip"
    path.write_bytes(package_data("csv_pwy.zip").read_bytes()[:50_000])
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _zip_without_csv(ctx: Ctx) -> list[str]:
    path = ctx.inputs / "csv_pwy.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "no data")
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _missing_census_file(ctx: Ctx) -> list[str]:
    return [f"sampler.source={_source_yaml(ctx.inputs, [ctx.inputs / 'csv_pzz.zip'])}"]


def _census_missing_column(ctx: Ctx) -> list[str]:
    path = write_zip(ctx.inputs / "csv_pwy.zip", ctx.fixture("wyoming_csv").drop(columns=["DEAR"]))
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _census_code_not_in_dictionary(ctx: Ctx) -> list[str]:
    broken = ctx.fixture("wyoming_csv").copy()
    broken.loc[41, "SEX"] = "7"
    path = write_zip(ctx.inputs / "csv_pwy.zip", broken)
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _census_missing_dictionary(ctx: Ctx) -> list[str]:
    dictionary = ctx.inputs / "PUMS_Data_Dictionary_2017.csv"
    return [f"sampler.source={_source_yaml(ctx.inputs, ['package:csv_pwy.zip'], dictionaries=[str(dictionary)])}"]


def _census_unknown_kind(ctx: Ctx) -> list[str]:
    return [f"sampler.source={_source_yaml(ctx.inputs, ['package:csv_pwy.zip'], kind='sas')}"]


def _census_source_not_yaml(ctx: Ctx) -> list[str]:
    path = ctx.inputs / "source.txt"
    path.write_text("files: []\n")
    return [f"sampler.source={path}"]


def _question_file_without_text_column(ctx: Ctx) -> list[str]:
    path = ctx.inputs / "prompts.csv"
    path.write_text("prompt,topic\nShould cities ban cars downtown?,transport\n")
    return [f"stage.questions.source={{kind:file,path:{path},text_column:text}}"]


def _question_file_missing(ctx: Ctx) -> list[str]:
    return [f"stage.questions.source={{kind:file,path:{ctx.inputs / 'nope.csv'},text_column:text}}"]


def _unreachable_endpoint(ctx: Ctx) -> list[str]:
    # 5 attempts per call and a 60 s timeout: the endpoint check must still fail in seconds, before any stage.
    return ["models.generator=openai_compatible", f"models.generator.base_url=http://127.0.0.1:{_closed_port()}/v1",
            "models.generator.num_retries=4", "models.generator.timeout_s=60", "models.generator.concurrency=2"]


def _server_wants_a_key(ctx: Ctx) -> list[str]:
    url = ctx.fixture("auth_server")
    return ["models.generator=openai_compatible", f"models.generator.base_url={url}"]  # PERSONA_GEN_API_KEY unset


def _census_not_utf8(ctx: Ctx) -> list[str]:
    broken = ctx.fixture("wyoming_csv").copy()
    text = broken.to_csv(index=False).encode().split(b"\n")
    text[42] = text[42].replace(b",", b",\xe9", 1)  # a latin-1 byte on line 43
    path = ctx.inputs / "csv_pwy.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("psam_p56.csv", b"\n".join(text))
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _census_cut_mid_row(ctx: Ctx) -> list[str]:
    data = ctx.fixture("wyoming_csv").to_csv(index=False).encode().rstrip(b"\n")[:-9]
    path = ctx.inputs / "csv_pwy.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("psam_p56.csv", data)
    return [f"sampler.source={_source_yaml(ctx.inputs, [path])}"]


def _labels_cp1252(ctx: Ctx) -> list[str]:
    tasks_dir = ctx.fixture("annotation_tasks")
    labels = ctx.inputs / "labels.csv"
    labels.write_bytes("rater_id,task_id,choice,justification\nr1,t1,a,na\xefve caf\xe9\n".encode("cp1252"))
    return ["task=annotate_import", f"annotate.tasks_dir={tasks_dir}", f"annotate.labels=[{labels}]",
            "annotate.judge_source=skip"]


def _labels_binary(ctx: Ctx) -> list[str]:
    tasks_dir = ctx.fixture("annotation_tasks")
    labels = ctx.inputs / "labels.csv"
    labels.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb2\x9c\xff\xfe" * 20)  # an .xlsx renamed
    return ["task=annotate_import", f"annotate.tasks_dir={tasks_dir}", f"annotate.labels=[{labels}]",
            "annotate.judge_source=skip"]


def _bench_truncated_parquet(ctx: Ctx) -> list[str]:
    import shutil

    dataset = ctx.inputs / "dataset"
    shutil.copytree(ctx.fixture("generated_dataset"), dataset)
    part = sorted((dataset / "data" / "personas").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:300])
    return ["task=bench", f"bench.dataset_dir={dataset}"]


def _merge_with_truncated_part(ctx: Ctx) -> list[str]:
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    parts = ctx.inputs / "parts"
    shard = [*FAKE_GROUPS, "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]
    for i in range(2):
        run(compose_run(ctx.inputs / f"shard{i}", ctx.cache, [*shard, f"shard.index={i}"]))
    part = parts / "feedback" / "part-000001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    return ["task=merge", "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]


def _merge_with_other_overrides(ctx: Ctx) -> list[str]:
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    shard = [*FAKE_GROUPS, "scale.chunk_personas=1", "shard.count=2"]
    for i in range(2):
        run(compose_run(ctx.inputs / f"shard{i}", ctx.cache, [*shard, f"shard.index={i}"]))
    return ["task=merge", "scale.chunk_personas=1", "shard.count=2", "seed=7"]  # not the shards' seed


def _secret_in_a_config_file(ctx: Ctx) -> list[str]:
    (ctx.inputs / "conf" / "experiment").mkdir(parents=True)
    (ctx.inputs / "conf" / "experiment" / "leak.yaml").write_text(
        f"# @package _global_\nmodels:\n  generator:\n    api_key_env: {SECRET}\n")
    return ["--config-dir", str(ctx.inputs / "conf"), "experiment=leak"]


def _cache_dir_below_a_file(ctx: Ctx) -> list[str]:
    blocker = ctx.inputs / "a_file"
    blocker.write_text("not a folder")
    return [f"cache.dir={blocker}/cache"]


def _run_dir_below_a_file(ctx: Ctx) -> list[str]:
    blocker = ctx.inputs / "a_file"
    blocker.write_text("not a folder")
    return [f"hydra.run.dir={blocker}/run"]


def _output_dir_below_a_file(ctx: Ctx) -> list[str]:
    blocker = ctx.inputs / "a_file"
    blocker.write_text("not a folder")
    return [f"paths.output_dir={blocker}/out"]


def _launcher_plugin_missing(ctx: Ctx) -> list[str]:
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
        pytest.skip("hydra-submitit-launcher is installed here")
    return ["-m", "hydra/launcher=slurm_shards", "shard.index=0,1", "shard.count=2", "hydra.sweep.dir=sweep"]


def _bench_dataset_missing(ctx: Ctx) -> list[str]:
    return ["task=bench", f"bench.dataset_dir={ctx.inputs / 'no_dataset'}"]


def _merge_without_parts(ctx: Ctx) -> list[str]:
    return ["task=merge", "shard.count=2", f"shard.parts_dir={ctx.inputs / 'parts'}"]


def _parts_dir_of_another_config(ctx: Ctx) -> list[str]:
    parts = ctx.inputs / "parts"
    (parts / "global").mkdir(parents=True)
    (parts / "global" / "info.json").write_text(json.dumps({"config_hash": "0123456789abcdef", "generator": {},
                                                            "judge": {}}))
    return [f"shard.parts_dir={parts}"]


def _merge_with_missing_chunk(ctx: Ctx) -> list[str]:
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    parts = ctx.inputs / "parts"
    shard = [*FAKE_GROUPS, "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]
    run(compose_run(ctx.inputs / "shard0", ctx.cache, [*shard, "shard.index=0"]))  # shard 1 never ran
    return ["task=merge", "scale.chunk_personas=1", "shard.count=2", f"shard.parts_dir={parts}"]


def _annotate_import_malformed_labels(ctx: Ctx) -> list[str]:
    tasks_dir = ctx.fixture("annotation_tasks")
    labels = ctx.inputs / "labels.jsonl"
    labels.write_text('{"rater_id": "r1", "task_id": \n')  # cut off mid-object
    return ["task=annotate_import", f"annotate.tasks_dir={tasks_dir}", f"annotate.labels=[{labels}]",
            "annotate.judge_source=skip"]


def _annotate_import_unknown_column(ctx: Ctx) -> list[str]:
    tasks_dir = ctx.fixture("annotation_tasks")
    labels = ctx.inputs / "labels.csv"
    labels.write_text("worker,task,answer\nr1,t1,a\n")
    return ["task=annotate_import", f"annotate.tasks_dir={tasks_dir}", f"annotate.labels=[{labels}]",
            "annotate.judge_source=skip"]


@dataclass
class Case:
    id: str
    args: list[str] = field(default_factory=list)
    match: str = ""  # a regex the error line must contain: the bad key, value or file
    setup: Callable[[Ctx], list[str]] | None = None
    unset: tuple[str, ...] = ()
    max_s: float | None = None  # a bound on the CLI's wall time, where failing fast is the point


CASES = [
    # census microdata, end to end through a source YAML
    Case("census_corrupt_zip", match=r"not a readable zip archive.*csv_pwy\.zip.*download the zip again",
         setup=_corrupt_zip),
    Case("census_zip_without_csv", match=r"holds no CSV person file.*README\.txt.*csv_pwy\.zip",
         setup=_zip_without_csv),
    Case("census_file_missing", match=r"census data file is missing.*csv_pzz\.zip", setup=_missing_census_file),
    Case("census_file_missing_a_column", match=r"lacks column\(s\) DEAR.*psam_p56\.csv",
         setup=_census_missing_column),
    Case("census_code_not_in_dictionary", match=r"code '7' of column SEX is not in the data dictionary.*line 43",
         setup=_census_code_not_in_dictionary),
    Case("census_dictionary_missing", match=r"data dictionary file is missing.*PUMS_Data_Dictionary_2017\.csv",
         setup=_census_missing_dictionary),
    Case("census_unknown_source_kind", match=r"source\.kind must be one of \['pums_zip', 'csv'\], but got 'sas'",
         setup=_census_unknown_kind),
    Case("census_source_not_yaml", match=r"census source must be a YAML source config.*source\.txt",
         setup=_census_source_not_yaml),
    Case("where_matches_nobody", ["sampler.where='age > 200'"], r"matches no person record.*'age > 200'"),
    Case("state_not_in_source", ['sampler.where="state in [\'Hawaii\']"'],
         r"matches no person record.*state of this source is one of \['Vermont', 'Wyoming'\]"),
    Case("census_not_utf8", match=r"census data file must be UTF-8 .*byte 0xe9 .*psam_p56\.csv line 43",
         setup=_census_not_utf8),
    Case("census_cut_mid_row", match=r"last row must be \d+ fields like the header.*cut mid-row.*psam_p56\.csv line",
         setup=_census_cut_mid_row),
    Case("where_unparsable", ["sampler.where='age >>> 3'"], r"where expression cannot be parsed.*age >>> 3"),
    Case("where_unknown_column", ["sampler.where='shoe_size > 3'"],
         r"unknown column 'shoe_size' must be a column of the census source"),
    Case("quota_shares_do_not_sum_to_one", ["sampler.quotas={sex:{Male:0.9,Female:0.9}}"],
         r"quotas\.sex shares must be .* sum to 1, but got 1\.8"),
    Case("quota_unknown_label", ["sampler.quotas={sex:{Martian:1.0}}"], r"label 'Martian'.*\['Male', 'Female'\]"),
    # config: Hydra composition and validation
    Case("unknown_model", ["models.generator=gpt9"],
         r"config group model must be one of \[.*'fake'.*\], but got 'gpt9'"),
    Case("unknown_scale_option", ["scale=huge"], r"config group scale must be one of \['demo', 'paper', 'tiny'\]"),
    Case("bad_override_type", ["scale.num_personas=abc"], r"scale\.num_personas=abc.*could not be converted to Int"),
    Case("bad_override_syntax", ["scale.num_personas=[1,"], r"no viable alternative at input"),
    Case("unknown_config_key", ["scale.personas=3"], r"Could not override 'scale\.personas'"),
    Case("negative_num_personas", ["scale.num_personas=-3"], r"scale\.num_personas must be >= 1, but got -3"),
    Case("zero_num_personas", ["scale.num_personas=0"], r"scale\.num_personas must be >= 1, but got 0"),
    Case("zero_rows_per_persona", ["scale.train_rows_per_persona=0", "scale.test_unseen_per_persona=0"],
         r"rows per persona .* must be >= 1, but got 0"),
    Case("negative_judge_rows", ["scale.judge_rows_per_persona=-1"], r"scale\.judge_rows_per_persona must be >= 0"),
    Case("zero_chunk_personas", ["scale.chunk_personas=0"], r"scale\.chunk_personas must be >= 1, but got 0"),
    Case("max_failure_rate_above_one", ["max_failure_rate=2"], r"max_failure_rate must be in \[0, 1\], but got 2"),
    Case("shard_index_not_below_count", ["shard.count=2", "shard.index=2"], r"shard\.index must be in \[0, 1\]"),
    Case("shard_count_zero", ["shard.count=0"], r"shard\.count must be >= 1, but got 0"),
    Case("unknown_task", ["task=nope"], r"task must be one of \[.*'generate'.*\], but got 'nope'"),
    Case("negative_temperature", ["models.generator.temperature=-1"], r"models\.generator\.temperature must be >= 0"),
    # LM endpoints
    Case("base_url_not_http", ["models.generator=openai_compatible", "models.generator.base_url=ftp://x"],
         r"models\.generator\.base_url must be an http\(s\) URL, but got 'ftp://x'"),
    Case("unknown_structured_output", ["models.generator=openai_compatible", "models.generator.structured_output=xml"],
         r"structured_output must be one of .*, but got 'xml'"),
    Case("unknown_http_client", ["models.generator=openai_compatible", "models.generator.http_client=requests"],
         r"models\.generator\.http_client must be one of \['curl', 'urllib3'\], but got 'requests'.*urllib3 where "
         r"pycurl cannot be installed"),
    Case("unreachable_endpoint", match=r"LM server http://127\.0\.0\.1:\d+/v1 must be reachable .*models\.generator"
         r"\.base_url, role generator\); start the server", setup=_unreachable_endpoint, max_s=30),
    Case("server_wants_a_key", match=r"must be to accept this run's key, but got 'HTTP 401.*\$PERSONA_GEN_API_KEY, "
         r"which is unset or empty: export PERSONA_GEN_API_KEY=", setup=_server_wants_a_key,
         unset=("PERSONA_GEN_API_KEY",)),
    # secrets: refused before Hydra saves anything, and never echoed
    Case("secret_api_key_override", [f"models.generator.api_key={SECRET}"],
         r"override models\.generator\.api_key must be free of secrets, but got 'a secret-looking value \(not shown\)"),
    Case("secret_api_key_added_with_plus", [f"+models.generator.api_key={SECRET}"],
         r"override models\.generator\.api_key must be free of secrets"),
    Case("secret_as_api_key_env", [f"models.generator.api_key_env={SECRET}"], r"must be free of secrets"),
    Case("key_like_api_key_env", ["models.generator.api_key_env=abcdefGHIJ0123456789xyzXYZ"],
         r"api_key_env must be the name of a SET environment variable.*not shown: it may be a key"),
    Case("api_key_env_unset", ["models.generator.api_key_env=PERSONA_GEN_NOT_SET_ANYWHERE"],
         r"api_key_env must be the name of a SET environment variable.*'PERSONA_GEN_NOT_SET_ANYWHERE, which is not"),
    Case("secret_as_token_env", ["publish.token_env=hf_abcdefghijklmnopqrstuvwxyz"], r"must be free of secrets"),
    Case("secret_in_a_config_file", match=r"config value models\.generator\.api_key_env must be free of secrets, but "
         r"got 'a secret-looking value \(not shown\)' \(a config file", setup=_secret_in_a_config_file),
    Case("secret_in_hydra_env_set", [f"+hydra.job.env_set.OPENAI_API_KEY={SECRET}"], r"must be free of secrets"),
    # numbers that used to end in a traceback
    Case("negative_seed", ["seed=-1"], r"seed must be >= 0, but got -1"),
    Case("shard_count_not_a_number", ["shard.count=abc"], r"shard\.count=abc .*could not be converted to Integer"),
    Case("cache_size_not_a_number", ["cache.size_limit_gb=abc"], r"cache\.size_limit_gb=abc .*could not be converted"),
    Case("num_personas_overflow", ["scale.num_personas=99999999999999999999"],
         r"scale\.num_personas must be at most 100,000,000"),
    Case("num_personas_beyond_memory", ["scale.num_personas=50000000"],
         r"scale\.num_personas must be at most ~[\d,]+ on this machine .*GiB available", max_s=30),
    Case("negative_timeout", ["models.generator.timeout_s=-1"], r"models\.generator\.timeout_s must be in \(0, "),
    Case("negative_retries", ["models.generator.num_retries=-1"], r"models\.generator\.num_retries must be an integer"),
    Case("top_p_above_one", ["models.generator.top_p=5"], r"models\.generator\.top_p must be in \(0, 1\], but got 5"),
    Case("negative_candidate_factor", ["stage.enrich.candidate_factor=-1"],
         r"^persona-gen: error: stage\.enrich\.candidate_factor must be in \[1, "),
    Case("unread_key_added_with_plus", ["+scale.personas=3"], r"config key scale\.personas must be a key of"),
    Case("removed_run_name", ["run_name=x"], r"Could not override 'run_name'"),
    Case("misspelt_judge_key", ["stage.judge.variant=[direct]"], r"Could not override 'stage\.judge\.variant'"),
    # stages
    Case("unknown_question_source", ["stage.questions.source=nope"], r"source\.kind must be one of .*, but got 'nope'"),
    Case("question_file_without_text_column", match=r"text_column must be one of the file's columns "
         r"\['prompt', 'topic'\], but got 'text'", setup=_question_file_without_text_column),
    Case("question_file_missing", match=r"stage\.questions\.source\.path .*nope\.csv", setup=_question_file_missing),
    Case("unknown_question_filter", ["stage.questions.filters=[nope]"], r"filters\[0\] must be one of .*'nope'"),
    Case("empty_enrich_categories", ["stage.enrich.categories=[]"], r"stage\.enrich\.categories must be a non-empty"),
    Case("too_many_enrich_categories", ["stage.enrich.num_categories=99"],
         r"num_categories must be an integer in \[1, "),
    Case("unknown_enrich_tables", ["stage.enrich.tables=nope"], r"tables must be one of \['default', .*'nope'"),
    Case("unknown_judge_variant", ["stage.judge.variants=[nope]"],
         r"stage\.judge\.variants entry must be one of \['direct', 'chain_of_thought'\], but got 'nope'"),
    # output and publishing
    Case("hub_with_fake_models", ["publish=hub", "publish.repo_id=me/persona-data"],
         r"upload of data made by the fake LM must be refused.*publish\.allow_fake_model=true"),
    Case("hub_without_token", ["publish=hub", "publish.repo_id=me/persona-data", "publish.allow_fake_model=true"],
         r"Hub token must be set in HF_TOKEN, or saved by `hf auth login`, but got 'none found'.*hf auth login",
         unset=("HF_TOKEN",)),
    Case("hub_without_repo_id", ["publish=hub"], r"publish\.repo_id must be .*, but got 'unset'"),
    Case("unknown_publish_mode", ["publish.mode=upload"], r"publish\.mode must be one of \['dry_run', 'hub'\]"),
    Case("zero_rows_per_shard", ["publish.rows_per_shard=0"], r"publish\.rows_per_shard must be >= 1, but got 0"),
    Case("run_dir_below_a_file", match=r"a_file/run must be a readable file or a writable folder.*NotADirectory",
         setup=_run_dir_below_a_file),
    Case("output_dir_below_a_file", match=r"a_file/out/.* must be a readable file or a writable folder",
         setup=_output_dir_below_a_file),
    Case("launcher_plugin_not_installed", match=r"'hydra/launcher/slurm_shards'.*submitit_slurm.*install the Hydra "
         r"launcher plugin", setup=_launcher_plugin_missing),
    # other tasks
    Case("bench_without_dataset_dir", ["task=bench"], r"bench\.dataset_dir must be .*, but got 'unset'"),
    Case("bench_dataset_dir_missing", match=r"bench\.dataset_dir must be an existing dataset folder.*no_dataset",
         setup=_bench_dataset_missing),
    Case("parts_dir_of_another_config", match=r"shard\.parts_dir .*/parts must be empty, or holding the parts of "
         r"this config.*another config_hash and generator and judge", setup=_parts_dir_of_another_config),
    Case("merge_without_parts", match=r"shard parts must be a folder with global/info\.json",
         setup=_merge_without_parts),
    Case("merge_with_missing_chunk", match=r"persona chunks must be all 2 present, but got 'missing \[1\]'",
         setup=_merge_with_missing_chunk),
    Case("merge_with_truncated_part", match=r"persona part part-000001 must be intact .*feedback/part-000001\.parquet "
         r"does not match the checksum.*run `persona-gen .*shard\.index=1 shard\.count=2` to make it again",
         setup=_merge_with_truncated_part),
    Case("merge_with_other_overrides", match=r"shard parts must be a folder with global/info\.json for config_hash "
         r"[0-9a-f]{16}.*parts found beside it: \['[0-9a-f]+ \(config_hash [0-9a-f]{16}\)'\]",
         setup=_merge_with_other_overrides),
    Case("cache_dir_below_a_file", match=r"cache\.dir .*a_file/cache must be a folder this user can write, but got "
         r"'.*a_file is a file'", setup=_cache_dir_below_a_file),
    Case("bench_truncated_parquet", match=r"dataset file train-00000-of-00001\.parquet must be a readable parquet "
         r"file.*truncated or not parquet", setup=_bench_truncated_parquet),
    Case("optimize_without_labeled_items", ["task=optimize"], r"optimize\.labeled_items must be set, but got '\?\?\?'"),
    Case("annotate_import_malformed_labels", match=r"a JSONL line must be one JSON object, but got 'invalid JSON.*"
         r"labels\.jsonl:1", setup=_annotate_import_malformed_labels),
    Case("annotate_labels_saved_by_excel", match=r"label file labels\.csv must be UTF-8 text \(CSV\), but got .*byte "
         r"0xef .*labels\.csv:2\); save it as 'CSV UTF-8'", setup=_labels_cp1252),
    Case("annotate_labels_binary", match=r"label file labels\.csv must be (UTF-8 text|a CSV text file)",
         setup=_labels_binary),
    Case("annotate_import_labels_without_columns",
         match=r"label columns must be rater_id, task_id, choice.*labels\.csv:1",
         setup=_annotate_import_unknown_column),
]


@pytest.fixture(scope="module")
def auth_server():
    """A loopback server that answers every request with HTTP 401, as a server wanting a key does."""
    from tests.fixtures.deny_server import deny_server

    with deny_server() as url:
        yield url


@pytest.fixture(scope="module")
def generated_dataset(tmp_path_factory) -> Path:
    """One small dataset (fake LM), in-process: the input of the annotation cases."""
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    root = tmp_path_factory.mktemp("dataset")
    return run(compose_run(root / "run", root / "cache", FAKE_GROUPS)).dataset_dir


@pytest.fixture(scope="module")
def annotation_tasks(generated_dataset, tmp_path_factory) -> Path:
    from persona_gen.annotate.export import export_tasks

    out = tmp_path_factory.mktemp("annotation") / "annotation"
    export_tasks(generated_dataset, out, num_personas=2, questions_per_persona=2, seed=0)
    return out


def test_catalogue_has_at_least_30_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_error_and_leaves_nothing(case: Case, tmp_path: Path, request) -> None:
    inputs, cache, cwd = tmp_path / "inputs", tmp_path / "cache", tmp_path / "cwd"
    inputs.mkdir()
    extra = case.setup(Ctx(inputs, cache, request)) if case.setup else []
    args = [*FAKE, *case.args, *extra]
    if "--config-dir" in args:  # argparse wants flags before the overrides
        i = args.index("--config-dir")
        args = [*args[i:i + 2], *args[:i], *args[i + 2:]]
    if "-m" in args:  # argparse wants the flag before the overrides
        args = ["-m", *(a for a in args if a != "-m")]
    elif not any(a.startswith("hydra.run.dir=") for a in args):
        args.append("hydra.run.dir=run")
    started = time.monotonic()
    proc = _cli(args, cwd, cache, unset=case.unset)
    took = time.monotonic() - started
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    line = _error_line(proc)
    assert re.search(case.match, line), f"{case.match!r} not in: {line}"
    _assert_no_partial_output(tmp_path, cwd)
    _assert_no_secret(tmp_path, proc)
    if case.max_s is not None:
        assert took < case.max_s, f"took {took:.1f} s"


def _assert_no_secret(root: Path, proc: subprocess.CompletedProcess) -> None:
    """Neither the typed secret nor the environment's key in the output or in any file under ``root``."""
    for secret in (SECRET, ENV_SECRET, "hf_abcdefghijklmnopqrstuvwxyz", "abcdefGHIJ0123456789xyzXYZ"):
        assert secret not in proc.stdout + proc.stderr, f"{secret} echoed"
        leaks = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()
                 and "inputs" not in p.relative_to(root).parts]
        assert leaks == [], f"{secret} written to {leaks}"


# -- a corrupt cache costs recomputation, never the run ---------------------------------------------------------


def _manifest(cwd: Path, run_dir: str) -> dict:
    return json.loads((cwd / run_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory) -> tuple[Path, dict]:
    """A cache filled by one CLI run, and that run's manifest."""
    root = tmp_path_factory.mktemp("warm")
    proc = _cli([*FAKE, "hydra.run.dir=run"], root / "cwd", root / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "cache", _manifest(root / "cwd", "run")


def _garbage_rows(db: Path) -> None:
    with sqlite3.connect(db) as con:
        n = con.execute("UPDATE Cache SET value = X'8004DEADBEEF' WHERE value IS NOT NULL").rowcount
    assert n > 0


def _garbage_file(db: Path) -> None:
    # Keep SQLite's header page, scramble the rest: the file opens, then reads of its pages fail.
    data = db.read_bytes()
    noise = hashlib.sha256(b"noise").digest() * (len(data) // 32 + 1)
    db.write_bytes(data[:4096] + noise[:len(data) - 4096])


def _garbage_whole_file(db: Path) -> None:
    db.write_bytes(b"this is no sqlite database\n" * 200)


@pytest.mark.parametrize("corrupt", [_garbage_rows, _garbage_file, _garbage_whole_file],
                         ids=["values", "pages", "whole_file"])
def test_corrupt_cache_entry_is_recomputed_and_the_run_completes(corrupt, warm_cache, tmp_path: Path) -> None:
    import shutil

    source, first = warm_cache
    cache = tmp_path / "cache"
    shutil.copytree(source, cache)
    # The finished parts would let the rerun skip the feedback chunks: drop them so every stage reads the cache.
    shutil.rmtree(cache / "parts")
    for sidecar in ("cache.db-wal", "cache.db-shm"):
        (cache / sidecar).unlink(missing_ok=True)
    corrupt(cache / "cache.db")
    proc = _cli([*FAKE, "hydra.run.dir=run"], tmp_path / "cwd", cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    again = _manifest(tmp_path / "cwd", "run")
    assert again["content_hash"] == first["content_hash"]
    assert again["lm_calls"] > 0  # recomputed, not read from the garbage


# -- a full disk and an interrupted write, injected in-process ---------------------------------------------------


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _stray(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.name.endswith(".tmp") or ".staging-" in p.name or ".old-" in p.name]


def _enospc(path: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.parametrize("where", ["dataset_shard", "parts"])
def test_disk_full_is_a_publish_error_and_leaves_no_partial_file(where: str, tmp_path: Path, monkeypatch) -> None:
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    out, cache = tmp_path / "run", tmp_path / "cache"
    cfg = compose_run(out, cache, FAKE_GROUPS)
    real_replace = os.replace

    def full_disk(src, dst, *args, **kwargs):
        target = str(dst)
        if (where == "dataset_shard" and ".staging-" in target and target.endswith(".parquet")) or \
                (where == "parts" and f"{os.sep}parts{os.sep}" in target):
            raise _enospc(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(PublishError, match=r"No space left on device"):
        run(cfg)
    monkeypatch.undo()
    assert not out.exists() or list(out.iterdir()) == []
    assert _stray(tmp_path) == []


def test_disk_full_during_parquet_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    out = tmp_path / "run"
    real_write = pq.ParquetWriter.write_table

    def full_disk(self, table, *args, **kwargs):
        if isinstance(self.where, str) and ".staging-" in self.where:
            raise _enospc(self.where)
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    with pytest.raises(PublishError, match=r"writing .* must be to succeed, but got 'OSError: No space left on dev"):
        run(compose_run(out, tmp_path / "cache", FAKE_GROUPS))
    assert list(out.iterdir()) == []
    assert _stray(tmp_path) == []


def test_interrupted_parquet_write_keeps_the_previous_dataset(tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    out, cache = tmp_path / "run", tmp_path / "cache"
    first = run(compose_run(out, cache, FAKE_GROUPS))
    before = _files(first.dataset_dir)
    manifest = first.manifest_path.read_bytes()
    entries = sorted(p.name for p in out.iterdir())
    real_write = pq.ParquetWriter.write_table
    writes = []

    def killed_mid_write(self, table, *args, **kwargs):
        if isinstance(self.where, str) and ".staging-" in self.where:
            writes.append(self.where)
            if len(writes) == 2:  # a shard already complete in staging, the next one being written
                raise KeyboardInterrupt
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        run(compose_run(out, cache, [*FAKE_GROUPS, "seed=1"]))
    assert len(writes) == 2
    assert _files(first.dataset_dir) == before
    assert first.manifest_path.read_bytes() == manifest
    assert sorted(p.name for p in out.iterdir()) == entries
    assert _stray(tmp_path) == []


# -- a failed rerun into a finished run dir, and what a killed publish left ---------------------------------------


def test_failed_rerun_into_a_finished_run_dir_keeps_its_hydra_config(tmp_path: Path) -> None:
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    first = _cli([*FAKE, "hydra.run.dir=run"], cwd, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    saved = {p.name: p.read_bytes() for p in (cwd / "run" / ".hydra").glob("*.yaml")}
    assert set(saved) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    dataset = {str(p.relative_to(cwd)): p.read_bytes() for p in (cwd / "run" / "dataset").rglob("*") if p.is_file()}
    again = _cli([*FAKE, "hydra.run.dir=run", "seed=-1"], cwd, cache)  # fails after Hydra wrote .hydra/
    assert again.returncode == 2
    assert {p.name: p.read_bytes() for p in (cwd / "run" / ".hydra").glob("*.yaml")} == saved
    assert {str(p.relative_to(cwd)): p.read_bytes() for p in (cwd / "run" / "dataset").rglob("*")
            if p.is_file()} == dataset


def test_a_later_run_removes_a_killed_publish_staging_folder(tmp_path: Path) -> None:
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    leftover = cwd / "run" / ".dataset.staging-killed9"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "half.parquet").write_bytes(b"PAR1 half")
    proc = _cli([*FAKE, "hydra.run.dir=run"], cwd, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not leftover.exists()
    assert _stray(tmp_path) == []
