"""Read census person files as shipped: the Bureau's ``csv_pXX.zip`` (``psam_pNN.csv`` inside) or a plain CSV.

Only the needed columns are parsed, every one as text (codes keep their leading zeros; a blank stays ``""``),
so decoding sees exactly what the file says. Text is kept as pandas categoricals (one small integer per row and
each distinct code once), parsed by Arrow's CSV reader block by block, so the Bureau's national file
(``csv_pus.zip``: ``psam_pusa.csv`` and ``psam_pusb.csv``, about 3.2 million persons) loads in bounded memory.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from pandas.api.types import union_categoricals

from persona_gen.census.spec import SourceSpec
from persona_gen.core.errors import CensusError, format_error

__all__ = ["RawTable", "read_raw"]

# Bytes of CSV parsed at a time (about 23,000 rows of the Bureau's 286-column files): bounds the parser's transient
# memory on the national file.
BLOCK_BYTES = 16 << 20

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError, pa.ArrowInvalid,
                pd.errors.ParserError, pd.errors.EmptyDataError, ValueError)


@dataclass(frozen=True)
class RawTable:
    """Raw text of the needed columns of every person record, with where each row came from.

    Attributes:
        frame: One text column per file variable, one row per person record.
        file_index: Index into ``file_labels`` of each row.
        row_in_file: 0-based data row of each row within its file (line = row + 2).
        file_labels: ``csv_pwy.zip/psam_p56.csv`` style names of the files read.
    """

    frame: pd.DataFrame
    file_index: npt.NDArray[np.int32]
    row_in_file: npt.NDArray[np.int64]
    file_labels: tuple[str, ...]

    def locate(self, row: int) -> str:
        """``file line N`` of a row, for error messages."""
        return f"{self.file_labels[self.file_index[row]]} line {int(self.row_in_file[row]) + 2}"


@contextmanager
def _open_members(path: Path, spec: SourceSpec) -> Iterator[list[tuple[str, IO[bytes]]]]:
    if not path.is_file():
        raise CensusError(format_error(
            "census data file is missing",
            expected="an existing file" + (" (the Bureau's csv_pXX.zip)" if spec.kind == "pums_zip" else ""),
            got=str(path),
            where=f"source.files of {spec.origin}",
            fix="download it from census.gov (ACS PUMS, CSV format) or fix the path",
        ))
    if spec.kind == "csv":
        with path.open("rb") as plain:
            yield [(path.name, plain)]
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CensusError(format_error(
            "census data file is not a readable zip archive",
            expected="the Bureau's csv_pXX.zip as downloaded",
            got=f"{type(exc).__name__}: {exc}",
            where=str(path),
            fix="download the zip again (it is corrupt or truncated), or set source.kind: csv for a plain CSV",
        )) from exc
    with archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".csv"))
        if not names:
            raise CensusError(format_error(
                "census zip holds no CSV person file",
                expected="a psam_pNN.csv member",
                got=archive.namelist()[:5],
                where=str(path),
                fix="use the CSV (not SAS/Stata) PUMS download: csv_pXX.zip",
            ))
        handles = [(f"{path.name}/{name}", archive.open(name)) for name in names]
        try:
            yield handles
        finally:
            for _, handle in handles:
                handle.close()


def _read_one(label: str, handle: IO[bytes], spec: SourceSpec, wanted: tuple[str, ...]) -> pd.DataFrame:
    try:
        header = next(csv.reader([handle.readline().decode("utf-8-sig")]), [])
        missing = [c for c in wanted if c not in header]
        if missing:
            raise CensusError(format_error(
                f"census file lacks column(s) {', '.join(missing)}",
                expected=f"a header with {', '.join(wanted)}",
                got=f"{len(header)} columns without {', '.join(missing)}",
                where=f"{label} ({spec.origin})",
                fix="use the source config of this file's layout and year, or remove the key from source.columns",
            ))
        handle.seek(0)
        # Every column as text: codes keep leading zeros and blanks stay "" (never null), as in the dictionary.
        # Dictionary-encoded (categoricals), block by block: a national file never holds one string per cell, and
        # Arrow's reader materialises only the needed columns. Identifiers (SERIALNO: one value per household)
        # stay Arrow strings, which are compact and need no category union.
        text = _text_columns(spec)
        tail = _Tail(handle)
        try:
            reader = pacsv.open_csv(
                tail,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(wanted), strings_can_be_null=False, quoted_strings_can_be_null=False,
                    column_types={c: pa.string() if c in text else pa.dictionary(pa.int32(), pa.string())
                                  for c in wanted}),
            )
            frames = [_batch_frame(batch, wanted, text) for batch in reader]
        except pa.ArrowInvalid as exc:
            _check_last_row(tail.tail, len(header), tail.newlines, label)  # names a row cut short, with its line
            if "UTF8" in str(exc):  # Arrow's word for bytes that are not UTF-8: found, with their line, below
                raise UnicodeDecodeError("utf-8", b"", 0, 1, str(exc)) from None
            raise
        _check_last_row(tail.tail, len(header), tail.newlines, label)
        return _concat(frames, wanted)
    except CensusError:
        raise
    except UnicodeDecodeError:
        from persona_gen.core.io import find_non_utf8

        handle.seek(0)
        line, what = find_non_utf8(handle) or (0, "undecodable bytes")
        raise CensusError(format_error(
            "census data file", expected="UTF-8 (or ASCII) text, as the Bureau ships it", got=what,
            where=f"{label} line {line}", fix="download the file again, or re-save it as UTF-8 "
            "(iconv -f latin1 -t utf-8)")) from None
    except _READ_ERRORS as exc:
        raise CensusError(format_error(
            "census data file cannot be parsed",
            expected="a complete comma-separated person file",
            got=f"{type(exc).__name__}: {str(exc)[:200]}",
            where=label,
            fix="download the file again; it is corrupt or truncated",
        )) from exc


def _text_columns(spec: SourceSpec) -> frozenset[str]:
    """Identifier columns, read as plain (Arrow) strings rather than categoricals."""
    return frozenset(spec.record_id) | ({spec.household.serial} if spec.household else frozenset())


def _batch_frame(batch: pa.RecordBatch, wanted: tuple[str, ...], text: frozenset[str]) -> pd.DataFrame:
    """One parsed block: categoricals with codes in their smallest type (Arrow's arrive as int32), and strings."""
    columns: dict[str, Any] = {}
    for name in wanted:
        array = batch.column(name)
        if name in text:
            columns[name] = pd.array(array, dtype="str")
        else:
            categories = pd.Index(array.dictionary.to_pylist(), dtype=object)
            columns[name] = pd.Categorical.from_codes(array.indices.to_numpy(zero_copy_only=False), categories)
    return pd.DataFrame(columns, copy=False)


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    """Stack frames column by column: categoricals keep one categorical (union of the categories), strings concat."""
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    if not frames:
        return pd.DataFrame({c: pd.Categorical([]) for c in columns})
    out: dict[str, Any] = {}
    for c in columns:
        parts = [f[c] for f in frames]
        if isinstance(parts[0].dtype, pd.CategoricalDtype):
            union = union_categoricals(parts)
            # One categories type for every source (pandas may infer "str" for a union): plain Python strings.
            out[c] = pd.Categorical.from_codes(union.codes, pd.Index(union.categories, dtype=object))
        else:
            chunks = [pa.array(p, type=pa.string()) for p in parts]
            flat = [piece for chunk in chunks for piece in (chunk.chunks if isinstance(chunk, pa.ChunkedArray)
                                                             else [chunk])]
            out[c] = pd.array(pa.chunked_array(flat, type=pa.string()), dtype="str")
    return pd.DataFrame(out, copy=False)


class _Tail(io.RawIOBase):
    """A pass-through reader that keeps the last bytes read: the end of the file, to tell a row cut short."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.tail = b""
        self.newlines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.tail = (self.tail + data)[-(1 << 16):]
        self.newlines += data.count(b"\n")
        return len(data)


def _check_last_row(tail: bytes, fields: int, rows: int, label: str) -> None:
    """A file cut mid-row (a torn download): its last line has fewer fields than the header and no newline."""
    if not tail or tail.endswith((b"\n", b"\r")):
        return
    last = tail.rsplit(b"\n", 1)[-1]
    got = next(csv.reader([last.decode("utf-8", "replace")]), [])
    if len(got) < fields:
        raise CensusError(format_error(
            "census data file's last row", expected=f"{fields} fields like the header", got=f"{len(got)} fields and "
            "no line end (the file is cut mid-row)", where=f"{label} line {rows + 1}",
            fix="download the file again; it is truncated"))


def read_raw(spec: SourceSpec) -> RawTable:
    """Read the needed columns of every file of a source.

    Args:
        spec: The source.

    Returns:
        The raw text table.

    Raises:
        CensusError: For a missing, corrupt or truncated file, or a file without a needed column.
    """
    wanted = spec.file_variables()
    frames: list[pd.DataFrame] = []
    labels: list[str] = []
    for path in spec.files:
        with _open_members(path, spec) as members:
            for label, handle in members:
                frames.append(_read_one(label, handle, spec, wanted))
                labels.append(label)
    if not frames or sum(len(f) for f in frames) == 0:
        raise CensusError(format_error(
            "census source has no person record",
            expected="at least one data row",
            got=0,
            where=spec.origin,
            fix="check source.files",
        ))
    # Arrow's allocator keeps freed parser blocks for reuse; hand them back before decoding starts.
    pa.default_memory_pool().release_unused()
    sizes = [len(f) for f in frames]
    return RawTable(
        frame=_concat(frames, wanted),
        file_index=np.repeat(np.arange(len(frames), dtype=np.int32), sizes),
        row_in_file=np.concatenate([np.arange(s, dtype=np.int64) for s in sizes]),
        file_labels=tuple(labels),
    )
