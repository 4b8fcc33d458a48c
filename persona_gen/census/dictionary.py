"""Census data dictionaries: code → label, read from the Bureau's PUMS CSV or the NIST excerpt's JSON.

The Bureau's ``PUMS_Data_Dictionary_YYYY.csv`` has two kinds of rows::

    NAME,SEX,C,1,"Sex"
    VAL,SEX,C,1,"1","1","Male"
    VAL,AGEP,N,2,1,99,"1 to 99 years (Top-coded)"      # a numeric range: the value is the number
    VAL,ESR,C,1,"b","b","N/A (less than 16 years old)"  # "b" = the field is blank in the data file

The NIST Diverse Communities excerpt ships ``data_dictionary.json`` (``{"SEX": {"values": {"1": "Male"}}}``,
numeric ranges as ``{"min": 0, "max": 99}``). Both become the same :class:`Variable`.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from persona_gen.census.keys import NOT_APPLICABLE
from persona_gen.core.errors import CensusError, format_error

__all__ = ["DataDictionary", "Variable", "format_number", "normalize_label", "read_dictionary"]

_NA_PREFIX = re.compile(r"^\s*N/A\s*", re.IGNORECASE)


def normalize_label(label: str) -> str:
    """Give a dictionary label the one spelling used everywhere in persona_gen.

    Whitespace is collapsed, and every Bureau spelling of "not applicable" (``N/A (less than 16 years old)``,
    ``N/A(GQ/vacant)``, ``N/A (Less than 5 years old)``, NIST's unclosed ``N/A (GQ/vacant/non-family household``)
    becomes ``Not applicable (less than 16 years old)``, so one field never mixes two spellings.

    Args:
        label: A label as the dictionary writes it.

    Returns:
        The normalised label.
    """
    text = " ".join(label.split())
    match = _NA_PREFIX.match(text)
    if match is None:
        return text
    rest = text[match.end():].strip()
    if not rest:
        return NOT_APPLICABLE
    inner = rest[1:] if rest.startswith("(") else rest
    inner = inner[:-1] if inner.endswith(")") else inner
    inner = inner.strip()
    # "Less than 5 years old" -> "less than 5 years old", but keep acronyms such as "GQ/vacant".
    if len(inner) > 1 and inner[0].isupper() and inner[1].islower():
        inner = inner[0].lower() + inner[1:]
    return f"{NOT_APPLICABLE} ({inner})" if inner else NOT_APPLICABLE


def format_number(value: float) -> str:
    """Write a decoded number as persona text: ``62000`` not ``62000.0``."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


def _parse_number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Variable:
    """One variable of a data dictionary.

    Attributes:
        name: Variable name, e.g. ``"SCHL"``.
        description: The dictionary's name label, e.g. ``"Educational attainment"``.
        numeric: True for ``N`` variables (age, income): their decoded value is the number itself.
        width: Code width from the dictionary (``len``), used to re-pad codes written without zeros.
        codes: Exact code → normalised label; ``""`` is the blank code (``b`` in the dictionary).
        ranges: ``(lo, hi, label)`` ranges of numeric codes; a code in a range keeps its own value.
        na_codes: Codes of a numeric variable that mean "not applicable" (blank, NIST's ``N``).
        origin: The dictionary file this definition comes from, for error messages.
    """

    name: str
    description: str
    numeric: bool
    width: int | None
    codes: Mapping[str, str]
    ranges: tuple[tuple[float, float, str], ...] = ()
    na_codes: frozenset[str] = frozenset()
    origin: str = ""
    _alias: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Files sometimes drop leading zeros ("1" for "01"): accept both spellings of a digit code.
        for code in self.codes:
            if code.isdigit():
                self._alias.setdefault(str(int(code)), code)

    @property
    def labels(self) -> tuple[str, ...]:
        """Distinct labels of the exact codes, in dictionary order."""
        return tuple(dict.fromkeys(self.codes.values()))

    def canonical(self, token: str) -> str | None:
        """Return the dictionary's spelling of ``token``, or None when the dictionary has no such code."""
        if token in self.codes:
            return token
        stripped = token.strip()
        if stripped in self.codes:
            return stripped
        if stripped.isdigit():
            return self._alias.get(str(int(stripped)))
        return None

    def in_range(self, token: str) -> bool:
        """Whether ``token`` is a number that falls in one of the variable's ranges."""
        value = _parse_number(token)
        if value is None:
            return False
        return any(lo <= value <= hi for lo, hi, _ in self.ranges)


class DataDictionary:
    """Variables from one or more dictionary files; the first file that defines a variable wins.

    Several files let a source borrow wording it lacks, e.g. the 2019 dictionary's ``HHT2`` labels (cohabiting
    couples) for 2018 records, or the Bureau's ``INDP`` labels for the NIST excerpt.
    """

    def __init__(self, variables: Mapping[str, Variable], files: Sequence[Path]) -> None:
        self._variables = dict(variables)
        self.files = tuple(files)

    def __contains__(self, name: object) -> bool:
        return name in self._variables

    def __getitem__(self, name: str) -> Variable:
        try:
            return self._variables[name]
        except KeyError:
            raise CensusError(format_error(
                f"variable {name} is not in the data dictionary",
                expected="defined by one of the configured dictionaries",
                got=name,
                where=", ".join(p.name for p in self.files),
                fix="add the dictionary of that ACS year to source.dictionaries, or fix the variable name in "
                    "source.columns",
            )) from None

    def names(self) -> list[str]:
        """All variable names, in file order."""
        return list(self._variables)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> DataDictionary:
        """Read and merge dictionary files (``.csv``: the Bureau's layout; ``.json``: the NIST layout)."""
        files = [Path(p) for p in paths]
        merged: dict[str, Variable] = {}
        for path in files:
            for name, variable in read_dictionary(path).items():
                merged.setdefault(name, variable)
        return cls(merged, files)


def read_dictionary(path: Path) -> dict[str, Variable]:
    """Read one dictionary file into variables.

    Args:
        path: A ``PUMS_Data_Dictionary_YYYY.csv`` or a NIST ``data_dictionary.json``.

    Returns:
        Variables by name.

    Raises:
        CensusError: When the file is missing or is not a dictionary of a known layout.
    """
    path = Path(path)
    if not path.is_file():
        raise CensusError(format_error(
            "data dictionary file is missing",
            expected="an existing PUMS_Data_Dictionary_YYYY.csv or data_dictionary.json",
            got=str(path),
            where="source.dictionaries",
            fix="download the dictionary of the data's ACS year from census.gov and point source.dictionaries at it",
        ))
    if path.suffix.lower() == ".json":
        return _read_nist_json(path)
    return _read_pums_csv(path)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older Bureau dictionaries are Windows-1252.
        return raw.decode("cp1252", errors="replace")


def _read_pums_csv(path: Path) -> dict[str, Variable]:
    names: dict[str, tuple[str, bool, int | None]] = {}
    codes: dict[str, dict[str, str]] = {}
    ranges: dict[str, list[tuple[float, float, str]]] = {}
    na_codes: dict[str, set[str]] = {}
    for line_no, row in enumerate(csv.reader(_read_text(path).splitlines()), start=1):
        if not row:
            continue
        kind = row[0].strip()
        if kind == "NAME" and len(row) >= 5:
            name = row[1].strip()
            width = int(row[3]) if row[3].strip().isdigit() else None
            names.setdefault(name, (row[4].strip(), row[2].strip() == "N", width))
            codes.setdefault(name, {})
            ranges.setdefault(name, [])
            na_codes.setdefault(name, set())
        elif kind == "VAL" and len(row) >= 7:
            name, lo, hi, label = row[1].strip(), row[4].strip(), row[5].strip(), normalize_label(row[6])
            if name not in names:
                continue
            numeric = names[name][1]
            if lo and set(lo) == {"b"}:
                # "b" in the dictionary is a blank field in the data file.
                codes[name].setdefault("", label)
                na_codes[name].add("")
                continue
            lo_num, hi_num = _parse_number(lo), _parse_number(hi)
            if numeric and lo_num is not None and hi_num is not None:
                ranges[name].append((lo_num, hi_num, label))
                if lo == hi:
                    codes[name].setdefault(lo, label)
            elif lo == hi:
                codes[name].setdefault(lo, label)
            elif lo_num is not None and hi_num is not None and lo.isdigit() and hi.isdigit():
                ranges[name].append((lo_num, hi_num, label))
            # Lexical ranges (SERIALNO "2018GQ0000001".."2018GQ9999999") only describe identifiers.
        elif kind not in ("NAME", "VAL"):
            raise CensusError(format_error(
                "data dictionary row has an unknown kind",
                expected="NAME or VAL rows (the Bureau's PUMS_Data_Dictionary_YYYY.csv layout)",
                got=row[0][:40],
                where=f"{path}:{line_no}",
                fix="use the CSV dictionary from census.gov, not the PDF or TXT one",
            ))
    if not names:
        raise CensusError(format_error(
            "data dictionary defines no variable",
            expected="NAME,var,type,len,label rows",
            got="an empty or unreadable file",
            where=str(path),
            fix="download PUMS_Data_Dictionary_YYYY.csv again from census.gov",
        ))
    return {
        name: Variable(
            name=name,
            description=desc,
            numeric=numeric,
            width=width,
            codes=codes[name],
            ranges=tuple(ranges[name]),
            na_codes=frozenset(na_codes[name]) if numeric else frozenset(),
            origin=path.name,
        )
        for name, (desc, numeric, width) in names.items()
    }


def _read_nist_json(path: Path) -> dict[str, Variable]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise CensusError(format_error(
            "data dictionary is not valid JSON",
            expected="the NIST excerpt's data_dictionary.json",
            got=str(exc),
            where=str(path),
            fix="restore the file from the NIST release",
        )) from exc
    if not isinstance(data, dict):
        raise CensusError(format_error(
            "data dictionary JSON has the wrong shape",
            expected='an object {"VAR": {"description": ..., "values": {...}}}',
            got=type(data).__name__,
            where=str(path),
            fix="restore the file from the NIST release",
        ))
    variables: dict[str, Variable] = {}
    for name, entry in data.items():
        values = entry.get("values") if isinstance(entry, dict) else None
        if not isinstance(values, dict):
            # e.g. INDP: "see the Bureau's dictionary"; a later dictionary file must define it.
            continue
        numeric = "min" in values and "max" in values
        codes: dict[str, str] = {}
        ranges: list[tuple[float, float, str]] = []
        na: set[str] = set()
        description = str(entry.get("description", name))
        if numeric:
            ranges.append((float(values["min"]), float(values["max"]), description))
        for code, label in values.items():
            if code in ("min", "max"):
                continue
            label_text = normalize_label(str(label))
            codes[str(code)] = label_text
            number = _parse_number(str(code))
            if numeric and number is None:
                na.add(str(code))
            elif numeric and number is not None:
                ranges.append((number, number, label_text))
        variables[name] = Variable(
            name=name,
            description=description,
            numeric=numeric,
            width=None,
            codes=codes,
            ranges=tuple(ranges),
            na_codes=frozenset(na),
            origin=path.name,
        )
    return variables
