"""Part markers record checksums: a run makes a damaged part again; a merge names it and the command that remakes it."""

from __future__ import annotations

import json

import pytest

from persona_gen.core.errors import PersonaGenError
from persona_gen.core.parts import part_status, read_part_stats
from persona_gen.pipeline import merge, run
from tests.helpers import compose_run

FAKE = ["model@models.generator=fake", "model@models.judge=fake", "scale=tiny", "sampler.fidelity_sample_size=2000",
        "scale.chunk_personas=1"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    parts = root / "parts"
    result = run(compose_run(root / "run", root / "cache", [*FAKE, f"shard.parts_dir={parts}"]))
    return root, parts, result


def _truncate(path):
    path.write_bytes(path.read_bytes()[:100])


def test_marker_records_a_checksum_for_each_part_file(made):
    _, parts, _ = made
    marker = json.loads((parts / "stats" / "part-000000.json").read_text())
    assert sorted(marker["files"]) == ["feedback/part-000000.parquet", "judgments/part-000000.parquet"]
    assert all(len(d) == 64 for d in marker["files"].values())
    assert set(read_part_stats(parts, 0)) == set(marker["stats"])
    assert part_status(parts, 0) is None


def test_truncated_part_is_made_again_by_a_rerun(made, tmp_path):
    root, parts, result = made
    import shutil

    copy = tmp_path / "parts"
    shutil.copytree(parts, copy)
    _truncate(copy / "feedback" / "part-000001.parquet")
    assert "does not match the checksum" in part_status(copy, 1)
    again = run(compose_run(tmp_path / "run", root / "cache", [*FAKE, f"shard.parts_dir={copy}"]))
    assert again.content_hash == result.content_hash
    assert part_status(copy, 1) is None


def test_merge_names_the_bad_part_and_the_command_that_remakes_it(made, tmp_path):
    root, parts, _ = made
    import shutil

    copy = tmp_path / "parts"
    shutil.copytree(parts, copy)
    _truncate(copy / "judgments" / "part-000001.parquet")
    args = [*FAKE, f"shard.parts_dir={copy}", "shard.count=2", "task=merge"]
    with pytest.raises(PersonaGenError, match=r"persona part part-000001 must be intact .*but got 'judgments/part-"
                                              r"000001\.parquet does not match the checksum.*run `persona-gen "
                                              r"shard\.index=1 shard\.count=2` to make it again"):
        merge(compose_run(tmp_path / "merged", root / "cache", args))


def test_marker_without_checksums_is_not_trusted(made, tmp_path):
    _, parts, _ = made
    import shutil

    copy = tmp_path / "parts"
    shutil.copytree(parts, copy)
    marker = copy / "stats" / "part-000000.json"
    marker.write_text(json.dumps(json.loads(marker.read_text())["stats"]))  # the old format
    assert "no checksums" in part_status(copy, 0)
    assert set(read_part_stats(copy, 0)) == set(json.loads((parts / "stats" / "part-000000.json").read_text())["stats"])


def test_failure_rate_gate_names_the_part_files_that_hold_the_failures(tmp_path):
    from persona_gen.core.calls import CallStats
    from persona_gen.pipeline.runner import _check_failure_rate

    stats = {"critique": CallStats(calls=4, failures=3, by_kind={"parse": 3}),
             "judge_direct": CallStats(calls=4, failures=0)}
    with pytest.raises(PersonaGenError, match=rf"failure rate of stage 'critique' must be <= max_failure_rate=0\.5, "
                                              rf"but got '3/4' \(LM answers kept as recorded failures in "
                                              rf"{tmp_path}/feedback/part-\*\.parquet \(column failures\).*\); .*retr"):
        _check_failure_rate(stats, 0.5, tmp_path)
