from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from persona_gen.core.errors import PublishError
from persona_gen.publish.writer import ShardWriter, atomic_write_bytes, content_hash, write_parquet_shards


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"row_id": i, "text": f"row {i}", "score": i / 10} for i in range(start, start + n)]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_shard_writer_rolls_over_at_rows_per_shard(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=3, row_group_size=2) as w:
        w.write(_rows(7))
    assert [pq.ParquetFile(p).metadata.num_rows for p in w.paths] == [3, 3, 1]


def test_shard_writer_names_shards_index_of_total(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=3) as w:
        w.write(_rows(7))
    assert _names(tmp_path) == ["train-00000-of-00003.parquet", "train-00001-of-00003.parquet",
                                "train-00002-of-00003.parquet"]


def test_shard_writer_uses_pending_names_until_close(tmp_path):
    w = ShardWriter(tmp_path, "train", rows_per_shard=2, row_group_size=2)
    w.write(_rows(5))
    assert _names(tmp_path) == ["train-00000-of-XXXXX.tmp", "train-00001-of-XXXXX.tmp"]
    w.close()
    assert all(n.endswith("-of-00003.parquet") for n in _names(tmp_path))


def test_shard_writer_exception_in_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(tmp_path, "train", rows_per_shard=2) as w:
        w.write(_rows(5))
        raise RuntimeError("boom")
    assert _names(tmp_path) == []


def test_shard_writer_abort_keeps_earlier_final_shards(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=10) as w:
        w.write(_rows(3))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = ShardWriter(tmp_path, "train", rows_per_shard=1)
    again.write(_rows(4))
    again.abort()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_shard_writer_row_count_equals_rows_written(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=1000, row_group_size=64) as w:
        for start in range(0, 2_345, 100):
            w.write(_rows(min(100, 2_345 - start), start))
    on_disk = sum(pq.ParquetFile(p).metadata.num_rows for p in w.paths)
    assert (w.rows_written, on_disk, len(w.paths)) == (2_345, 2_345, 3)


def test_shard_writer_keeps_row_order_across_shards(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=4, row_group_size=3) as w:
        w.write(pd.DataFrame(_rows(6)))
        w.write(pa.Table.from_pylist(_rows(5, 6)))
    ids = [i for p in w.paths for i in pq.read_table(p).column("row_id").to_pylist()]
    assert ids == list(range(11))


def test_shard_writer_bytes_same_for_same_rows_in_other_batches(tmp_path):
    rows = _rows(23)
    with ShardWriter(tmp_path / "a", "train", rows_per_shard=10, row_group_size=4) as a:
        a.write(rows)
    with ShardWriter(tmp_path / "b", "train", rows_per_shard=10, row_group_size=4) as b:
        for i in range(0, 23, 5):
            b.write(pd.DataFrame(rows[i:i + 5], index=range(100 + i, 100 + i + len(rows[i:i + 5]))))
    assert [p.read_bytes() for p in a.paths] == [p.read_bytes() for p in b.paths]


def test_shard_writer_close_removes_shards_of_an_earlier_larger_run(tmp_path):
    with ShardWriter(tmp_path, "train", rows_per_shard=1) as w:
        w.write(_rows(3))
    with ShardWriter(tmp_path, "train", rows_per_shard=10) as w:
        w.write(_rows(3))
    assert _names(tmp_path) == ["train-00000-of-00001.parquet"]


def test_shard_writer_close_removes_pending_shards_of_a_killed_run(tmp_path):
    (tmp_path / "train-00000-of-XXXXX.tmp").write_bytes(b"half a shard")
    with ShardWriter(tmp_path, "train") as w:
        w.write(_rows(1))
    assert _names(tmp_path) == ["train-00000-of-00001.parquet"]


def test_shard_writer_empty_split_writes_one_empty_shard_with_schema(tmp_path):
    schema = pa.schema([("row_id", pa.int64()), ("text", pa.string())])
    with ShardWriter(tmp_path, "train", schema=schema) as w:
        w.write([])
    table = pq.read_table(w.paths[0])
    assert (table.num_rows, table.schema.names) == (0, ["row_id", "text"])


def test_shard_writer_buffers_at_most_one_row_group(tmp_path):
    buffered = []
    with ShardWriter(tmp_path, "train", rows_per_shard=1000, row_group_size=50) as w:
        for start in range(0, 1000, 30):
            w.write(_rows(30, start))
            buffered.append(w._buffered)
    assert max(buffered) < 50


def test_shard_writer_rejects_batch_with_other_columns(tmp_path):
    w = ShardWriter(tmp_path, "train", row_group_size=1)
    w.write(_rows(1))
    with pytest.raises(PublishError, match=r"columns of a batch for .*train must be .*write every batch with the same"):
        w.write([{"other": 1}])
    w.abort()


def test_shard_writer_rejects_other_columns_before_first_row_group(tmp_path):
    w = ShardWriter(tmp_path, "train", row_group_size=100)
    w.write(_rows(1))
    with pytest.raises(PublishError, match=r"columns of a batch for .*train must be \['row_id', 'text', 'score'\]"):
        w.write([{"row_id": 2}])
    w.abort()


def test_shard_writer_rejects_zero_rows_per_shard(tmp_path):
    with pytest.raises(PublishError, match=r"publish.rows_per_shard must be >= 1, but got 0"):
        ShardWriter(tmp_path, "train", rows_per_shard=0)


def test_shard_writer_rejects_split_name_with_dash(tmp_path):
    with pytest.raises(PublishError, match=r"split name must be letters, digits.*but got 'my-split'"):
        ShardWriter(tmp_path, "my-split")


def test_shard_writer_write_after_close_raises(tmp_path):
    w = ShardWriter(tmp_path, "train")
    w.close()
    with pytest.raises(PublishError, match=r"ShardWriter for .* must be open, but got 'closed'"):
        w.write(_rows(1))


def test_write_parquet_shards_types_a_column_null_in_early_rows(tmp_path):
    frame = pd.DataFrame({"note": [None] * 3 + ["late text"]})
    paths = write_parquet_shards(frame, tmp_path, "train", rows_per_shard=2, batch_rows=1)
    assert pa.types.is_string(pq.read_schema(paths[0]).field("note").type)


def test_atomic_write_bytes_under_a_file_raises_publish_error(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(PublishError, match=r"output folder .*not_a_dir/sub must be writable, but got 'NotADirectory"):
        atomic_write_bytes(blocker / "sub" / "f.bin", b"data")


def test_content_hash_changes_with_a_byte(tmp_path):
    a = tmp_path / "a.parquet"
    a.write_bytes(b"one")
    first = content_hash([a], tmp_path)
    a.write_bytes(b"two")
    assert content_hash([a], tmp_path) != first
