"""Write the Hub layout's files: atomic single files and streamed, sharded parquet splits.

Every file appears under its final name only when it is complete (temporary file, ``fsync``, then
``os.replace``), so an interrupted run never leaves a half-written file where a reader looks for data.

:class:`ShardWriter` takes batches of rows and rolls ``<split>-NNNNN-of-NNNNN.parquet`` shards of at most
``rows_per_shard`` rows, so a table of 317,200 feedback rows never has to sit in memory at once. The total
shard count is known only at the end, so shards are written as ``<split>-NNNNN-of-XXXXX.tmp`` and renamed
to their final names by :meth:`ShardWriter.close`. Rows are written in row groups of a fixed size with
fixed parquet options, so the same rows give the same bytes however they were batched.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from persona_gen.core.errors import PublishError, format_error
from persona_gen.core.io import atomic_write_bytes as _atomic_write_bytes

__all__ = [
    "ROWS_PER_SHARD",
    "ROW_GROUP_SIZE",
    "ShardWriter",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_name",
    "content_hash",
    "fsync_dir",
    "to_json",
    "write_parquet_shards",
]

ROWS_PER_SHARD = 100_000
ROW_GROUP_SIZE = 10_000
# Fixed writer options: part of what makes the bytes deterministic. Changing one changes every content hash.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True, "use_dictionary": True}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")
_PENDING = "XXXXX"


def check_name(kind: str, name: str, where: str) -> str:
    """Config and split names become folder and file names and glob patterns: keep them plain."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PublishError(format_error(
            f"{kind} name", expected="letters, digits, '_' or '.' (no '-', '/' or spaces)", got=name, where=where,
            fix=f"rename the {kind}, e.g. {re.sub(r'[^A-Za-z0-9_.]+', '_', str(name)) or 'train'!r}"))
    return name


def fsync_dir(path: str | Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unwritable(path: Path, exc: OSError) -> PublishError:
    return PublishError(format_error(
        f"output folder {path}", expected="writable", got=f"{type(exc).__name__}: {exc.strerror or exc}",
        where="publish_folder", fix="pick another paths.output_dir or fix its permissions; nothing was written"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``persona_gen.core.io``); failures are ``PublishError``."""
    _atomic_write_bytes(path, data, error=PublishError)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _plain_type(t: pa.DataType) -> pa.DataType:
    """large_string -> string (and friends), nested too: DataFrames and row dicts then give the same bytes."""
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_plain_type(f.type)) for f in t])
    return t


def plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_plain_type(f.type)) for f in schema])


def _as_table(rows: Any, schema: pa.Schema | None) -> pa.Table:
    if isinstance(rows, pa.RecordBatch):
        table = pa.Table.from_batches([rows])
    elif isinstance(rows, pa.Table):
        table = rows
    elif isinstance(rows, pd.DataFrame):
        frame = rows.reset_index(drop=True)
        # With the schema, an all-None column of this batch still gets the column's type.
        same = schema is not None and set(map(str, frame.columns)) == set(schema.names)
        table = pa.Table.from_pandas(frame, schema=schema if same else None, preserve_index=False)
    elif isinstance(rows, Mapping):
        table = pa.Table.from_pydict(dict(rows))
    else:
        # No schema here: from_pylist(schema=...) would fill a missing key with nulls instead of failing.
        table = pa.Table.from_pylist(list(rows))
    # pandas metadata differs from batch to batch (index ranges); it must not reach the bytes.
    table = table.replace_schema_metadata(None)
    plain = plain_schema(table.schema)
    return table if plain.equals(table.schema) else table.cast(plain)


class ShardWriter:
    """Stream rows of one split into ``<folder>/<split>-NNNNN-of-NNNNN.parquet`` shards.

    Memory holds at most one row group (``row_group_size`` rows) plus the batch being written.

    Example:
        >>> with ShardWriter("out/data/feedback", "train", rows_per_shard=50_000) as w:  # doctest: +SKIP
        ...     for batch in batches:            # lists of dicts, DataFrames or pyarrow tables
        ...         w.write(batch)
        >>> w.paths                                # doctest: +SKIP
        [PosixPath('out/data/feedback/train-00000-of-00007.parquet'), ...]

    Leaving the ``with`` block by an exception (or calling :meth:`abort`) removes every temporary shard:
    nothing partial is left, and shards of an earlier run stay as they were.

    Args:
        folder: Directory of the config, e.g. ``<dataset>/data/feedback``; created if missing.
        split: Split name (``train``, ``test``...): the shard file prefix.
        rows_per_shard: Most rows in one shard.
        row_group_size: Rows per parquet row group (capped at ``rows_per_shard``). The bytes depend on it.
        schema: Arrow schema of the rows. Without it the schema is inferred from the first row group;
            pass it when a column may be all-null at first and typed later.
    """

    def __init__(self, folder: str | Path, split: str, *, rows_per_shard: int = ROWS_PER_SHARD,
                 row_group_size: int = ROW_GROUP_SIZE, schema: pa.Schema | None = None) -> None:
        if int(rows_per_shard) < 1:
            raise PublishError(format_error("publish.rows_per_shard", expected=">= 1", got=rows_per_shard,
                                            where="conf/publish/*.yaml", fix="use e.g. 100000"))
        if int(row_group_size) < 1:
            raise PublishError(format_error("publish.row_group_size", expected=">= 1", got=row_group_size,
                                            where="conf/publish/*.yaml", fix="use e.g. 10000"))
        self.folder = Path(folder)
        self.split = check_name("split", split, str(folder))
        self.rows_per_shard = int(rows_per_shard)
        self.row_group_size = min(int(row_group_size), self.rows_per_shard)
        self.schema = plain_schema(schema.remove_metadata()) if schema is not None else None
        self.rows_written = 0
        self.paths: list[Path] = []
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._tmp_paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows = 0
        self._closed = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(self.folder, exc) from exc
        for stale in self.folder.glob(f"{self.split}-*-of-{_PENDING}.tmp"):
            stale.unlink(missing_ok=True)  # left by a run that was killed before close()

    # -- public API ---------------------------------------------------------------------------------------------

    def write(self, rows: pd.DataFrame | pa.Table | pa.RecordBatch | Mapping[str, Sequence[Any]]
              | Iterable[Mapping[str, Any]]) -> None:
        """Append a batch of rows: a DataFrame, an Arrow table or batch, a dict of columns, or row dicts."""
        if self._closed:
            raise PublishError(format_error(f"ShardWriter for {self.folder / self.split}", expected="open",
                                            got="closed", fix="create a new ShardWriter for another pass"))
        table = _as_table(rows, self.schema)
        if table.num_rows == 0:
            if self.schema is None and not self._buffer and table.num_columns:
                self._buffer.append(table)  # keeps the column types for an empty split
            return
        table = self._conform(table)
        self._buffer.append(table)
        self._buffered += table.num_rows
        while self._buffered >= self._next_chunk():
            self._flush(self._next_chunk())

    def close(self) -> list[Path]:
        """Flush, then give every shard its final ``-NNNNN-of-NNNNN.parquet`` name; returns the paths."""
        if self._closed:
            return self.paths
        try:
            while self._buffered:
                self._flush(min(self._buffered, self._next_chunk()))
            self._close_shard()
            if not self._tmp_paths:  # an empty split still gets one shard, so its config loads
                self._open_shard(self._schema_for_empty())
                self._close_shard()
            total = len(self._tmp_paths)
            finals = [self.folder / f"{self.split}-{i:05d}-of-{total:05d}.parquet" for i in range(total)]
            keep = set(finals)
            for old in self.folder.glob(f"{self.split}-*-of-*.parquet"):
                if old not in keep:
                    old.unlink()  # shards of an earlier, differently sized run would be read as data
            for tmp, final in zip(self._tmp_paths, finals, strict=True):
                os.replace(tmp, final)
            fsync_dir(self.folder)
        except OSError as exc:
            self.abort()
            raise PublishError(format_error(
                f"writing shards of {self.folder / self.split}", expected="to succeed",
                got=f"{type(exc).__name__}: {exc.strerror or exc}",
                fix="free disk space or fix permissions; the temporary shards were removed")) from exc
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self.paths = finals
        return finals

    def abort(self) -> None:
        """Drop the temporary shards; final shards of an earlier run are left untouched."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # the file is deleted next; its close error does not matter
                pass
            self._writer = None
        for tmp in self._tmp_paths:
            tmp.unlink(missing_ok=True)
        self._tmp_paths = []
        self._buffer, self._buffered = [], 0
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ----------------------------------------------------------------------------------------------

    def _next_chunk(self) -> int:
        """Rows of the next row group: a full group, cut short where the shard ends."""
        return min(self.row_group_size, self.rows_per_shard - self._shard_rows)

    def _conform(self, table: pa.Table) -> pa.Table:
        columns = self.schema.names if self.schema is not None else \
            next((t.column_names for t in self._buffer if t.num_rows), None)
        if columns is not None and set(table.column_names) != set(columns):
            raise PublishError(format_error(
                f"columns of a batch for {self.folder.name}/{self.split}", expected=f"{columns}",
                got=table.column_names, where="ShardWriter.write", fix="write every batch with the same columns"))
        if self.schema is None:
            return table
        try:
            return table.select(self.schema.names).cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise PublishError(format_error(
                f"column types of a batch for {self.folder.name}/{self.split}", expected=str(self.schema),
                got=str(table.schema), where="ShardWriter.write",
                fix="pass schema= to ShardWriter (a column was all-null in the first row group?)")) from exc

    def _take(self, n: int) -> pa.Table:
        if self.schema is None:
            merged = pa.concat_tables(self._buffer, promote_options="permissive")
            self.schema = merged.schema
        else:
            merged = pa.concat_tables([self._conform(t) for t in self._buffer])
        head, rest = merged.slice(0, n), merged.slice(n)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows
        return head.combine_chunks()

    def _flush(self, n: int) -> None:
        chunk = self._take(n)
        if self._writer is None:
            self._open_shard(chunk.schema)
        assert self._writer is not None
        self._writer.write_table(chunk, row_group_size=self.row_group_size)
        self._shard_rows += chunk.num_rows
        self.rows_written += chunk.num_rows
        if self._shard_rows >= self.rows_per_shard:
            self._close_shard()

    def _open_shard(self, schema: pa.Schema) -> None:
        path = self.folder / f"{self.split}-{len(self._tmp_paths):05d}-of-{_PENDING}.tmp"
        self._tmp_paths.append(path)
        self._writer = pq.ParquetWriter(str(path), schema, **PARQUET_OPTIONS)
        self._shard_rows = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        self._shard_rows = 0
        with open(self._tmp_paths[-1], "rb+") as fh:
            os.fsync(fh.fileno())

    def _schema_for_empty(self) -> pa.Schema:
        if self.schema is not None:
            return self.schema
        if self._buffer:
            return self._buffer[0].schema
        return pa.schema([])


def write_parquet_shards(frame: pd.DataFrame, folder: str | Path, split: str, rows_per_shard: int = ROWS_PER_SHARD,
                         *, row_group_size: int = ROW_GROUP_SIZE, batch_rows: int = 50_000) -> list[Path]:
    """Write one in-memory split as ``<split>-00000-of-0000N.parquet`` shards; returns their paths.

    The schema is inferred once from the whole frame, so a column that is empty in the first rows is typed
    from the later ones, then the frame is streamed through a :class:`ShardWriter` ``batch_rows`` at a time.
    """
    frame = frame.reset_index(drop=True)
    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise PublishError(format_error(
            f"columns of {Path(folder).name}/{split}", expected="one Arrow type per column", got=str(exc),
            where="publish_folder", fix="make each column one type (e.g. json.dumps mixed values)")) from exc
    with ShardWriter(folder, split, rows_per_shard=rows_per_shard, row_group_size=row_group_size,
                     schema=schema) as writer:
        for start in range(0, len(frame), batch_rows):
            writer.write(frame.iloc[start:start + batch_rows])
    return writer.paths


def content_hash(files: Mapping[str, Path] | list[Path], root: Path) -> str:
    """sha256 over (relative path, file sha256) of the data files, sorted: the dataset's identity."""
    paths = sorted(Path(p) for p in (files.values() if isinstance(files, Mapping) else files))
    h = hashlib.sha256()
    for p in paths:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def to_json(obj: Any) -> str:
    """``persona_gen.core.io.to_json`` (the one JSON helper): indented, sorted keys, ``str`` for other objects."""
    from persona_gen.core.io import to_json as _to_json

    return _to_json(obj)
