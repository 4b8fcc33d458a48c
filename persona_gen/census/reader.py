"""Read census person files as shipped: the Bureau's ``csv_pXX.zip`` (``psam_pNN.csv`` inside) or a plain CSV.

Only the needed columns are parsed, every one as text (codes keep their leading zeros; a blank stays ``""``),
so decoding sees exactly what the file says. Text is kept as pandas categoricals (one small integer per row and
each distinct code once), parsed by Arrow's CSV reader block by block, so the Bureau's national file
(``csv_pus.zip``: ``psam_pusa.csv`` and ``psam_pusb.csv``, about 3.2 million persons) loads in bounded memory.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
        # Arrow's reader materialises only the needed columns.
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(wanted), strings_can_be_null=False, quoted_strings_can_be_null=False,
                column_types={c: pa.dictionary(pa.int32(), pa.string()) for c in wanted}),
        )
        return _concat([_compact(batch.to_pandas()[list(wanted)]) for batch in reader], wanted)
    except CensusError:
        raise
    except _READ_ERRORS as exc:
        raise CensusError(format_error(
            "census data file cannot be parsed",
            expected="a complete comma-separated person file",
            got=f"{type(exc).__name__}: {str(exc)[:200]}",
            where=label,
            fix="download the file again; it is corrupt or truncated",
        )) from exc


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical codes in their smallest type (Arrow's dictionary indices arrive as int32)."""
    return pd.DataFrame({c: pd.Categorical.from_codes(frame[c].cat.codes.to_numpy(), frame[c].cat.categories)
                         for c in frame.columns})


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    """Stack frames of categorical text columns, keeping each column categorical (union of the categories)."""
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    if not frames:
        return pd.DataFrame({c: pd.Categorical([]) for c in columns})
    return pd.DataFrame({c: union_categoricals([f[c] for f in frames]) for c in columns})


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
