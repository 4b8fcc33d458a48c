"""Read census person files as shipped: the Bureau's ``csv_pXX.zip`` (``psam_pNN.csv`` inside) or a plain CSV.

Only the needed columns are parsed, every one as text (codes keep their leading zeros; a blank stays ``""``),
so decoding sees exactly what the file says.
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

from persona_gen.census.spec import SourceSpec
from persona_gen.core.errors import CensusError, format_error

__all__ = ["RawTable", "read_raw"]

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError, pd.errors.ParserError,
                pd.errors.EmptyDataError, ValueError)


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
        header = pd.read_csv(handle, nrows=0).columns
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
        tail = _Tail(handle)
        # Every column as text: codes keep leading zeros and blanks stay "" (never NaN), as in the dictionary.
        frame = pd.read_csv(tail, usecols=list(wanted), dtype=str, keep_default_na=False, na_filter=False,
                            engine="c", low_memory=False)[list(wanted)]
        _check_last_row(tail.tail, len(header), len(frame), label)
        return frame
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


class _Tail(io.RawIOBase):
    """A pass-through reader that keeps the last bytes read: the end of the file, to tell a row cut short."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.tail = (self.tail + data)[-(1 << 16):]
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
    sizes = [len(f) for f in frames]
    return RawTable(
        frame=pd.concat(frames, ignore_index=True),
        file_index=np.repeat(np.arange(len(frames), dtype=np.int32), sizes),
        row_in_file=np.concatenate([np.arange(s, dtype=np.int64) for s in sizes]),
        file_labels=tuple(labels),
    )
