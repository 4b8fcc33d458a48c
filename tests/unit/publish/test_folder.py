from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from persona_gen.core.errors import PublishError
from persona_gen.publish import ShardWriter, publish_folder, validate_card
from tests.unit.publish.conftest import files_under, make_tables

CONFIGS = ["feedback", "personas", "questions", "judgments", "bench", "persona_rejections"]
DRY = {"mode": "dry_run", "rows_per_shard": 2}


@pytest.fixture
def published(tmp_path_factory, context, plots):
    # One folder shared by the read-only tests of this module would cut time, but plots are per test.
    folder = tmp_path_factory.mktemp("pub") / "dataset"
    return publish_folder(make_tables(), folder, context=context, plots=plots, publish_cfg=DRY)


@pytest.mark.parametrize("config", CONFIGS)
def test_publish_folder_loads_with_datasets(published, config, tmp_path):
    loaded = datasets.load_dataset(str(published.folder), config, cache_dir=str(tmp_path / "cache"))
    expected = {split: len(df) for split, df in make_tables()[config].items()}
    assert {split: ds.num_rows for split, ds in loaded.items()} == expected


def test_publish_folder_keeps_feedback_columns(published, tmp_path):
    loaded = datasets.load_dataset(str(published.folder), "feedback", split="train", cache_dir=str(tmp_path / "c"))
    assert loaded[0]["question type"] == "train" and "failures" in loaded.column_names


def test_publish_folder_card_loads_and_validates_offline(published):
    card = DatasetCard.load(published.card_path)
    validate_card(published.folder)
    assert [c["config_name"] for c in card.data.configs] == CONFIGS


def test_publish_folder_writes_the_hub_layout(published):
    rel = [p.relative_to(published.folder).as_posix() for p in files_under(published.folder)]
    assert "README.md" in rel and "data/feedback/train-00000-of-00002.parquet" in rel
    assert "data/feedback/train-00001-of-00002.parquet" in rel and "plots/pass_at_k.png" in rel


def test_publish_folder_bounds_shard_size(published):
    assert max(pq.ParquetFile(p).metadata.num_rows for p in published.files) == 2


def test_publish_folder_copies_plots_and_links_them(published):
    text = published.card_path.read_text()
    for name in ("population_vs_census.png", "kappa_histogram.png", "pass_at_k.png"):
        assert (published.folder / "plots" / name).is_file() and f"](plots/{name})" in text


def test_publish_folder_reports_rows_per_split(published):
    assert published.splits["feedback"]["train"].rows == 3 and published.splits["feedback"]["train"].shards == 2


def test_publish_folder_dry_run_uploads_nothing(hub, tmp_path, tables, context):
    published = publish_folder(tables, tmp_path / "ds", context=context,
                               publish_cfg={"mode": "dry_run", "repo_id": "me/x", "endpoint": hub.url})
    assert published.uploaded is None and hub.requests == []


def test_publish_folder_same_input_same_bytes(tmp_path, context):
    a = publish_folder(make_tables(), tmp_path / "a", context=context, publish_cfg=DRY)
    b = publish_folder(make_tables(), tmp_path / "b", context=context, publish_cfg=DRY)
    assert a.content_hash == b.content_hash and a.card_path.read_bytes() == b.card_path.read_bytes()


def test_publish_folder_streams_an_iterable_of_batches(tmp_path, context):
    def batches():
        for start in range(0, 10, 3):
            yield [{"row_id": i, "text": f"t{i}"} for i in range(start, min(start + 3, 10))]

    published = publish_folder({"feedback": {"train": batches()}}, tmp_path / "ds", context=context,
                               publish_cfg={"mode": "dry_run", "rows_per_shard": 4})
    assert [pq.ParquetFile(p).metadata.num_rows for p in published.files] == [4, 4, 2]


def test_publish_folder_brings_in_a_shard_writers_shards(tmp_path, context):
    with ShardWriter(tmp_path / "streamed", "train", rows_per_shard=3) as writer:
        writer.write([{"row_id": i} for i in range(5)])
    published = publish_folder({"feedback": {"train": writer}}, tmp_path / "ds", context=context, publish_cfg=DRY)
    assert [p.name for p in published.files] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]


def test_publish_folder_rerun_leaves_no_stale_shards(tmp_path, tables, context):
    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run", "rows_per_shard": 1})
    publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run", "rows_per_shard": 10})
    assert sorted(p.name for p in (tmp_path / "ds" / "data" / "feedback").iterdir()) == \
        ["test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]


def test_publish_folder_lists_an_empty_split_without_declaring_it(tmp_path, tables, context):
    tables["persona_rejections"]["train"] = tables["persona_rejections"]["train"].iloc[:0]
    published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=DRY)
    assert not (published.folder / "data" / "persona_rejections").exists()
    assert "| `persona_rejections` | `train` | 0 | none (empty) |" in published.card_path.read_text()


def test_publish_folder_under_a_file_raises_and_writes_nothing(tmp_path, tables, context):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(PublishError, match=r"output folder .*blocker/ds must be writable, but got '\w+Error: "):
        publish_folder(tables, blocker / "ds", context=context, publish_cfg=DRY)
    assert files_under(tmp_path) == [blocker]


def test_publish_folder_failure_midway_keeps_the_previous_folder(tmp_path, tables, context):
    first = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg=DRY)
    before = {p: p.read_bytes() for p in files_under(first.folder)}
    with pytest.raises(PublishError, match=r"plot .*missing.png must be an existing file, but got 'missing'"):
        publish_folder(tables, tmp_path / "ds", context=context, plots=[tmp_path / "missing.png"], publish_cfg=DRY)
    assert {p: p.read_bytes() for p in files_under(first.folder)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_publish_folder_rejects_a_config_name_with_a_slash(tmp_path, context):
    with pytest.raises(PublishError, match=r"config name must be letters, digits, '_' or '.'.*but got 'a/b'"):
        publish_folder({"a/b": {"train": pd.DataFrame({"x": [1]})}}, tmp_path / "ds", context=context,
                       publish_cfg=DRY)
    assert not (tmp_path / "ds").exists()


def test_publish_folder_rejects_an_unknown_mode(tmp_path, tables, context):
    with pytest.raises(PublishError, match=r"publish.mode must be one of \['dry_run', 'hub'\], but got 'upload'"):
        publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "upload"})


def test_publish_conf_groups_have_the_same_keys():
    from importlib import resources

    import yaml

    folder = resources.files("persona_gen.conf").joinpath("publish")
    keys = {p.name: set(yaml.safe_load(p.read_text())) for p in folder.iterdir() if p.name.endswith(".yaml")}
    assert keys["dry_run.yaml"] == keys["hub.yaml"] and {"rows_per_shard", "large_folder"} <= keys["hub.yaml"]


def test_publish_folder_paths_are_inside_the_folder(published):
    assert all(Path(p).is_relative_to(published.folder) for p in published.files)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in files_under(folder)}


def test_a_later_publish_removes_what_a_killed_one_left(tmp_path, context):
    import fcntl
    import os
    import time

    folder = tmp_path / "dataset"
    publish_folder(make_tables(), folder, context=context, publish_cfg=DRY)
    before = _bytes(folder)
    dead = tmp_path / ".dataset.staging-killed"  # a kill -9 mid-write: nobody holds it
    (dead / "data").mkdir(parents=True)
    (dead / "data" / "x.parquet").write_bytes(b"half")
    live = tmp_path / ".dataset.staging-live"  # another run writing right now: it holds its lock
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    old = tmp_path / ".dataset.old-killed"
    (old / "x").mkdir(parents=True)
    past = time.time() - 3600
    os.utime(old, (past, past))
    try:
        publish_folder(make_tables(), folder, context=context, publish_cfg=DRY)
        assert not dead.exists() and not old.exists()
        assert live.exists()
    finally:
        os.close(fd)
    assert _bytes(folder) == before


def test_a_dataset_moved_aside_by_a_killed_swap_is_moved_back(tmp_path, context):
    from persona_gen.publish.hub import clean_leftovers

    folder = tmp_path / "dataset"
    publish_folder(make_tables(), folder, context=context, publish_cfg=DRY)
    before = _bytes(folder)
    old = tmp_path / ".dataset.old-killed"
    old.mkdir()
    folder.rename(old / "x")  # killed between the two renames of the swap
    clean_leftovers(folder)
    assert _bytes(folder) == before and not old.exists()
