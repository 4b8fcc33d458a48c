"""Write the Hub layout: ``README.md`` card + ``data/<config>/<split>-NNNNN-of-NNNNN.parquet``.

Writes are atomic (temporary file, then ``os.replace``) so an interrupted run never leaves a partial
file under its final name. Parquet is written with fixed options so the same rows give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from persona_gen.core.errors import PublishError, format_error

__all__ = ["atomic_write_bytes", "atomic_write_text", "content_hash", "write_parquet_shards"]

ROWS_PER_SHARD = 100_000


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PublishError(format_error(f"output directory {path.parent}", expected="writable", got=str(exc),
                                        fix="pick another paths.output_dir or fix its permissions")) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PublishError(format_error(f"writing {path}", expected="to succeed", got=str(exc),
                                            fix="free disk space or fix permissions; nothing partial was left"))\
                from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True, use_dictionary=True)
    return sink.getvalue().to_pybytes()


def write_parquet_shards(frame: pd.DataFrame, folder: str | Path, split: str,
                         rows_per_shard: int = ROWS_PER_SHARD) -> list[Path]:
    """Write one split as ``<split>-00000-of-0000N.parquet`` shards; returns their paths."""
    folder = Path(folder)
    n = max(1, -(-len(frame) // rows_per_shard))
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    paths = []
    for i in range(n):
        path = folder / f"{split}-{i:05d}-of-{n:05d}.parquet"
        atomic_write_bytes(path, _parquet_bytes(table.slice(i * rows_per_shard, rows_per_shard)))
        paths.append(path)
    return paths


def content_hash(files: Mapping[str, Path] | list[Path], root: Path) -> str:
    """sha256 over (relative path, file sha256) of the data files, sorted: the dataset's identity."""
    paths = sorted(Path(p) for p in (files.values() if isinstance(files, Mapping) else files))
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2, default=str) + "\n"
