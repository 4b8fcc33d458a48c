"""A loaded census source: every person record decoded once, sampled many times by index.

Decoding works on each column's distinct codes (a few hundred at most), never per row: the file's text codes are
factorised, each distinct code is looked up in the dictionary once, and the labels are attached as pandas
categoricals. Sampling is then a weighted draw of row numbers and one ``take``.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from persona_gen.census.dictionary import DataDictionary, Variable, format_number
from persona_gen.census.household import derive_household_codes, derive_household_income
from persona_gen.census.keys import CENSUS_KEYS, CODE_PREFIX, HOUSEHOLD_INCOME, NOT_AVAILABLE, RECORD_ID, STATE
from persona_gen.census.query import evaluate_where
from persona_gen.census.reader import RawTable, read_raw
from persona_gen.census.spec import (
    PACKAGE_PREFIX,
    SourceSpec,
    package_data,
    parse_source_spec,
    read_config_file,
)
from persona_gen.core.errors import CensusError, format_error

__all__ = ["DEFAULT_SOURCE", "CensusSource", "Quotas", "SourceLike", "load_source"]

# The ACS 2018 PUMS copy shipped in persona_gen/census/data (Wyoming and Vermont).
DEFAULT_SOURCE = PACKAGE_PREFIX + "source.yaml"

Quotas = Mapping[str, Mapping[str, float]]

# ADJINC carries 6 implied decimal places: 1013097 means 1.013097.
ADJUSTMENT_SCALE = 1_000_000

_STATE_SUFFIX = re.compile(r"^(.*\S)\s*/\s*[A-Z]{2}$")


@dataclass(frozen=True)
class _Decoded:
    """A decoded column: per-row index into its distinct codes, and what each distinct code means."""

    variable: Variable
    codes: npt.NDArray[np.unsignedinteger[Any]]  # the smallest unsigned type that holds the distinct codes
    canonical: tuple[str, ...]
    labels: tuple[str | None, ...]
    values: npt.NDArray[np.float64]

    def tokens(self) -> npt.NDArray[np.str_]:
        """The dictionary spelling of each row's code."""
        return np.asarray(self.canonical, dtype=str)[self.codes]

    def numbers(self) -> npt.NDArray[np.float64]:
        """Each row's numeric value (NaN where not applicable or not a number)."""
        return self.values[self.codes]

    def label_column(self) -> pd.Categorical | npt.NDArray[np.int64] | npt.NDArray[np.float64]:
        """The persona value: a number for numeric variables that are always applicable, else a label."""
        var = self.variable
        if var.numeric and not var.na_codes:
            values = self.numbers()
            if np.all(np.mod(values, 1) == 0):
                return values.astype(np.int64)
            return values
        if var.numeric:
            # Income-like: the amount as text, and the dictionary's not-applicable label where blank.
            texts = [label if label is not None else format_number(value)
                     for label, value in zip(self.labels, self.values, strict=True)]
            numbers = sorted({v for v, label in zip(self.values, self.labels, strict=True) if label is None})
            categories = [format_number(v) for v in numbers]
            categories += [var.codes[c] for c in sorted(var.na_codes) if c in var.codes]
        else:
            texts = [str(label) for label in self.labels]
            categories = list(var.labels)
        categories += sorted(set(texts) - set(categories))
        index = {label: i for i, label in enumerate(categories)}
        per_unique = np.asarray([index[t] for t in texts], dtype=np.int32)
        return pd.Categorical.from_codes(per_unique[self.codes], categories=categories)

    def code_column(self) -> pd.Categorical | npt.NDArray[np.float64]:
        """The raw code: a number for numeric variables, the dictionary's code text otherwise (NaN = blank)."""
        if self.variable.numeric:
            return self.numbers()
        categories = sorted({c for c in self.canonical if c})
        index = {c: i for i, c in enumerate(categories)}
        per_unique = np.asarray([index.get(c, -1) for c in self.canonical], dtype=np.int32)
        return pd.Categorical.from_codes(per_unique[self.codes], categories=categories)


def _factorize(tokens: pd.Series | npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], Sequence[Any]]:
    """Per-row code and distinct values; a categorical column (how the reader keeps text) is not expanded."""
    if isinstance(tokens, pd.Series) and isinstance(tokens.dtype, pd.CategoricalDtype):
        used = tokens.cat.remove_unused_categories()
        return used.cat.codes.to_numpy().astype(np.intp), list(used.cat.categories)
    if isinstance(tokens, pd.Series) and isinstance(tokens.dtype, pd.StringDtype):
        # Identifiers (SERIALNO) stay Arrow strings: encode them in Arrow, without a Python string per value.
        # The distinct values stay an Arrow array (a sequence): a million households need no Python strings.
        encoded = pc.dictionary_encode(_arrow(tokens))
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp), encoded.dictionary
    if isinstance(tokens, np.ndarray) and tokens.dtype.kind == "U":
        # Derived codes (a few distinct short strings): no Python string per row.
        uniques, codes = np.unique(tokens, return_inverse=True)
        return codes.ravel().astype(np.intp), [str(u) for u in uniques]
    codes, uniques = pd.factorize(np.asarray(tokens, dtype=object))
    return codes, list(uniques)


def _arrow(column: pd.Series) -> pa.Array:
    """A text column as one Arrow string array (zero-copy for the reader's Arrow-backed strings)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("str")
    array = pa.array(column, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _compact(codes: npt.NDArray[np.integer[Any]], size: int) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Codes in the smallest unsigned type that holds ``size`` values: 1-2 bytes a row instead of 8 on 3M rows."""
    return codes.astype(np.min_scalar_type(max(size - 1, 0)))


def _text(column: pd.Series) -> npt.NDArray[np.object_]:
    """A text column as an object array; categorical rows share their category's string."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.categories, dtype=object)[column.cat.codes.to_numpy()]
    return column.to_numpy(dtype=object)


def _numbers(column: pd.Series) -> npt.NDArray[np.float64]:
    """A text column as numbers (NaN where not a number), converting each distinct value once."""
    codes, uniques = _factorize(column)
    distinct = uniques.to_pylist() if isinstance(uniques, pa.Array) else list(uniques)
    values = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return values[codes] if len(values) else np.full(len(column), np.nan)


def _decode(variable: Variable, tokens: pd.Series | npt.NDArray[Any], spec: SourceSpec, raw: RawTable,
            column: str) -> _Decoded:
    codes, uniques = _factorize(tokens)
    override = spec.label_override(variable.name)
    canonical: list[str] = []
    labels: list[str | None] = []
    values = np.full(len(uniques), np.nan)
    for i, token in enumerate(str(u) for u in uniques):
        code = variable.canonical(token)
        if code is None and token in spec.blank_codes:
            code = variable.canonical("")
        if variable.numeric:
            if code is not None and code in variable.na_codes:
                canonical.append(code)
                labels.append(variable.codes[code])
                continue
            if variable.in_range(token):
                canonical.append(token.strip())
                labels.append(None)
                values[i] = float(token)
                continue
        elif code is not None:
            canonical.append(code)
            labels.append(override.get(code, variable.codes[code]))
            continue
        elif variable.in_range(token):
            # A code inside a documented range (e.g. PUMA) means itself.
            canonical.append(token.strip())
            labels.append(token.strip())
            continue
        rows = np.flatnonzero(codes == i)
        raise CensusError(format_error(
            f"code {token!r} of column {column} is not in the data dictionary",
            expected=f"a code that {variable.origin} defines for {variable.name}",
            got=f"{token!r} in {rows.size} record(s), first at {raw.locate(int(rows[0]))}",
            where=spec.origin,
            fix="use the dictionary of the data's ACS year in source.dictionaries, or add the code to "
                "source.blank_codes if it means blank",
        ))
    return _Decoded(variable, _compact(codes, len(uniques)), tuple(canonical), tuple(labels), values)


def _state_column(spec: SourceSpec, raw: RawTable, dictionary: DataDictionary) -> pd.Categorical:
    state = spec.state
    assert state is not None
    tokens = pd.Series(_text(raw.frame[state.variable])).astype(str)
    if state.code_chars:
        tokens = tokens.str.slice(0, state.code_chars)
    decoded = _decode(dictionary[state.labels or state.variable], tokens, spec, raw, state.variable)
    column = decoded.label_column()
    assert isinstance(column, pd.Categorical)
    # "Hawaii/HI" -> "Hawaii": the name people write, and what `where: state in ['Hawaii']` uses.
    names = [m.group(1) if (m := _STATE_SUFFIX.match(str(c))) else str(c) for c in column.categories]
    unique_names = list(dict.fromkeys(names))
    remap = np.asarray([unique_names.index(n) for n in names], dtype=np.int32)
    return pd.Categorical.from_codes(remap[column.codes], categories=unique_names)


def _record_ids(spec: SourceSpec, raw: RawTable) -> pd.Series:
    """``<zip>/<csv>:<SERIALNO>-<SPORDER>`` (or ``<file>#<row>``), joined by Arrow: no Python string per record."""
    if not spec.record_id:
        prefix = pd.Series(np.asarray(raw.file_labels, dtype=object)[raw.file_index], dtype="str")
        return prefix + "#" + pd.Series(raw.row_in_file + 1).astype("str")
    parts = [_arrow(raw.frame[c]) for c in spec.record_id]
    # Files were stacked in order, so each file's rows are one contiguous block.
    bounds = np.r_[0, np.flatnonzero(np.diff(raw.file_index)) + 1, len(raw.file_index)]
    pieces = []
    for start, end in itertools.pairwise(bounds.tolist()):
        elements: list[Any] = [pa.scalar(raw.file_labels[raw.file_index[start]] + ":")]
        for i, part in enumerate(parts):
            elements += ([pa.scalar("-")] if i else []) + [part.slice(start, end - start)]
        pieces.append(pc.binary_join_element_wise(*elements, ""))
    return pd.Series(pd.array(pa.chunked_array(pieces, type=pa.string()), dtype="str"))


def _weights(spec: SourceSpec, raw: RawTable) -> npt.NDArray[np.float64]:
    weights = _numbers(raw.frame[spec.weight])
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        raise CensusError(format_error(
            f"weight column {spec.weight} has a value that is not a non-negative number",
            expected="person weights >= 0",
            got=f"{raw.frame[spec.weight].iloc[bad[0]]!r} in {bad.size} record(s), first at {raw.locate(int(bad[0]))}",
            where=spec.origin,
            fix="point source.weight at the person weight column (PWGTP)",
        ))
    if weights.sum() <= 0:
        raise CensusError(format_error(
            f"weight column {spec.weight} sums to zero", expected="a positive total", got=0.0, where=spec.origin,
            fix="point source.weight at the person weight column (PWGTP)"))
    return weights


def _check_year(spec: SourceSpec, raw: RawTable) -> None:
    """PUMS serial numbers start with the survey year: catch a file read with another year's dictionary."""
    serial = spec.household.serial if spec.household else next((c for c in spec.record_id if c == "SERIALNO"), None)
    if spec.year is None or serial is None or serial not in raw.frame.columns:
        return
    serials = _arrow(raw.frame[serial])
    prefix = pc.utf8_slice_codeunits(serials, 0, 4)
    bad = pc.and_(pc.not_equal(prefix, str(spec.year)), pc.utf8_is_digit(prefix))
    wrong = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
    if wrong.size:
        first = int(wrong[0])
        raise CensusError(format_error(
            "source.year",
            expected=f"the files' ACS year {prefix[first].as_py()}",
            got=spec.year,
            where=f"{serial} {serials[first].as_py()} at {raw.locate(first)}; {spec.origin}",
            fix="set source.year, source.dictionaries (and household roles) to the file's ACS year",
        ))


def _build_pool(spec: SourceSpec, raw: RawTable, dictionary: DataDictionary) -> pd.DataFrame:
    n = len(raw.frame)
    decoded: dict[str, _Decoded] = {}
    id_columns = set(spec.record_id) | ({spec.household.serial} if spec.household else set())

    def decode(name: str) -> _Decoded:
        if name not in decoded:
            decoded[name] = _decode(dictionary[name], raw.frame[name], spec, raw, name)
        return decoded[name]

    for name in spec.file_variables():
        if name not in id_columns and name != spec.weight and not (spec.state and name == spec.state.variable
                                                                  and spec.state.code_chars):
            decode(name)

    adjusted = {name: _adjust(dec, spec, raw) for name, dec in decoded.items() if spec.adjusted(name)}
    derived = tuple(c.variable for _, c in spec.columns if c.derived)
    derived_decoded: dict[str, _Decoded] = {}
    household_income = np.full(n, np.nan)
    if derived:
        household_spec = spec.household
        assert household_spec is not None
        serial = _factorize(raw.frame[household_spec.serial])[0].astype(np.int64)
        # SERIALNO is unique nationally, but a file pair could repeat one: households never span files.
        household = np.unique(raw.file_index.astype(np.int64) * (serial.max() + 1) + serial,
                              return_inverse=True)[1].ravel()
        relationship = decode(household_spec.relationship).tokens()
        derived_codes = derive_household_codes(
            household,
            relationship,
            decode(household_spec.age).numbers(),
            decode(household_spec.sex).tokens(),
            decode(household_spec.speaks_other_language).tokens(),
            pd.to_numeric(pd.Series(decode(household_spec.language).tokens()), errors="coerce").to_numpy(np.float64),
            household_spec,
            derived,
            person_number=_numbers(raw.frame[household_spec.person_number]),
        )
        for name, tokens in derived_codes.items():
            derived_decoded[name] = _decode(dictionary[name], tokens, spec, raw, f"{name} (derived)")
        income = spec.column("income")
        if income is not None and not income.derived:
            personal = adjusted.get(income.variable) or decoded[income.variable]
            household_income = derive_household_income(household, relationship, personal.numbers(), household_spec)

    columns: dict[str, Any] = {}
    for key in spec.persona_keys():
        column = spec.column(key)
        if column is None:
            columns[key] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[NOT_AVAILABLE])
        elif column.derived:
            columns[key] = derived_decoded[column.variable].label_column()
        else:
            columns[key] = (adjusted.get(column.variable) or decoded[column.variable]).label_column()
    if spec.state is not None:
        columns[STATE] = _state_column(spec, raw, dictionary)
    else:
        columns[STATE] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[NOT_AVAILABLE])
    columns[RECORD_ID] = _record_ids(spec, raw)
    columns[HOUSEHOLD_INCOME] = household_income
    for name, dec in itertools.chain(decoded.items(), derived_decoded.items()):
        columns[CODE_PREFIX + name] = dec.code_column()
    columns[CODE_PREFIX + spec.weight] = _weights(spec, raw)
    # No copy: a dict of arrays is copied by default, which doubles the peak on a national pool.
    return pd.DataFrame(columns, copy=False)


def _adjust(decoded: _Decoded, spec: SourceSpec, raw: RawTable) -> _Decoded:
    """Dollar amounts times the Bureau's adjustment factor (ADJINC / 10^6), rounded to whole dollars."""
    assert spec.adjustment is not None
    factor_column = spec.adjustment[0]
    factor_codes, factor_tokens = _factorize(raw.frame[factor_column])
    factors = pd.to_numeric(pd.Series(factor_tokens, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(factors) | (factors <= 0))
    if bad.size:
        rows = np.flatnonzero(factor_codes == bad[0])
        raise CensusError(format_error(
            f"adjustment factor column {factor_column} has a value that is not a positive number",
            expected="the Bureau's ADJINC, e.g. 1013097 (6 implied decimals)",
            got=f"{factor_tokens[bad[0]]!r} in {rows.size} record(s), first at {raw.locate(int(rows[0]))}",
            where=spec.origin, fix="point source.adjustment.factor at ADJINC, or drop source.adjustment"))
    pair = decoded.codes.astype(np.int64) * len(factors) + factor_codes
    unique, inverse = np.unique(pair, return_inverse=True)
    of_value, of_factor = unique // len(factors), unique % len(factors)
    values = np.round(decoded.values[of_value] * factors[of_factor] / ADJUSTMENT_SCALE)
    return _Decoded(decoded.variable, _compact(inverse.ravel(), len(unique)),
                    tuple(decoded.canonical[i] for i in of_value), tuple(decoded.labels[i] for i in of_value), values)


def _check_count(num_personas: object) -> int:
    if isinstance(num_personas, bool) or not isinstance(num_personas, int | np.integer) or num_personas < 1:
        raise CensusError(format_error(
            "census sample size (scale.num_personas x stage.enrich.candidate_factor, or fidelity_sample_size)",
            expected="an integer >= 1", got=num_personas,
            where="sample_personas / conf/sampler", fix="ask for at least one persona"))
    return int(num_personas)


def _rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise CensusError(format_error(
            "seed", expected="a non-negative integer or a numpy SeedSequence", got=seed,
            where="sample_personas", fix="pass the run's seed (cfg.seed)"))
    return np.random.default_rng(np.random.SeedSequence(int(seed)))


# So few draws are not worth a sort: plain binary search.
_SORTED_DRAWS = 10_000


def _draw(rng: np.random.Generator, count: int, cdf: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Inverse-CDF draw with replacement: row i is picked with probability w_i / sum(w)."""
    u = rng.random(count) * cdf[-1]
    if count < _SORTED_DRAWS:
        return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)
    # The same rows as searchsorted(cdf, u), found in sorted order: random binary searches miss the cache on every
    # step (on a national pool's 25 MB cdf above all); sorted keys walk the cdf once (5x faster for 1M draws).
    order = np.argsort(u)  # equal keys give equal rows, so an unstable (SIMD) sort is exact too
    index = np.empty(count, dtype=np.intp)
    index[order] = np.searchsorted(cdf, u[order], side="right")
    return np.minimum(index, cdf.size - 1)


def _largest_remainder(total: int, shares: Sequence[float]) -> list[int]:
    """Exact integer counts summing to ``total`` and closest to ``total * share`` (Hamilton's method)."""
    raw = [total * s for s in shares]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class CensusSource:
    """Decoded person records of one census source, with their weights, ready to sample.

    Attributes:
        spec: What was loaded and how.
        pool: One row per person record: the 24 census keys, ``state``, ``source_record_id``, ``code.*``.
        weights: Person weight of each row (PWGTP).
    """

    def __init__(self, spec: SourceSpec, pool: pd.DataFrame, weights: npt.NDArray[np.float64]) -> None:
        self.spec = spec
        self.pool = pool
        self.weights = np.asarray(weights, dtype=np.float64)
        self._cdf = np.cumsum(self.weights)
        self._where_frame: pd.DataFrame | None = None

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> CensusSource:
        """Read, check and decode a source.

        Raises:
            CensusError: For a missing or corrupt file, a missing column or a code absent from the dictionary.
        """
        dictionary = DataDictionary.from_files(spec.dictionaries)
        raw = read_raw(spec)
        _check_year(spec, raw)
        pool = _build_pool(spec, raw, dictionary)
        return cls(spec, pool, pool[CODE_PREFIX + spec.weight].to_numpy())

    @property
    def name(self) -> str:
        """The source's name from its config."""
        return self.spec.name

    @property
    def num_records(self) -> int:
        """Number of person records."""
        return len(self.pool)

    @property
    def population(self) -> float:
        """Weighted number of persons the records stand for."""
        return float(self._cdf[-1])

    def describe(self) -> str:
        """One line of provenance for records and cards: what was sampled, from which files, what is derived."""
        year = f"ACS {self.spec.year} " if self.spec.year else ""
        files = ", ".join(path.name for path in self.spec.files)
        derived = [key for key, column in self.spec.columns if column.derived]
        text = (f"{self.name}: {year}census microdata, {self.num_records:,} person records ({files}), drawn with "
                f"replacement weighted by {self.spec.weight}")
        return text + (f"; derived from household members: {', '.join(derived)}" if derived else "")

    def __repr__(self) -> str:
        return f"CensusSource({self.name!r}, records={self.num_records}, population={self.population:.0f})"

    @property
    def where_frame(self) -> pd.DataFrame:
        """The columns a ``where`` may use: persona keys (also with ``_`` for spaces), ``state``, raw variables."""
        if self._where_frame is None:
            columns: dict[str, Any] = {}
            for key in (*CENSUS_KEYS, STATE, HOUSEHOLD_INCOME):
                columns[key] = self.pool[key]
                columns.setdefault(key.replace(" ", "_"), self.pool[key])
            for name in self.pool.columns:
                if name.startswith(CODE_PREFIX):
                    columns.setdefault(name[len(CODE_PREFIX):], self.pool[name])
            self._where_frame = pd.DataFrame(columns)
        return self._where_frame

    def select(self, where: str | None) -> npt.NDArray[np.intp] | None:
        """Rows that satisfy ``where`` (None: all rows).

        Raises:
            CensusError: When the expression is not allowed or matches no record of positive weight.
        """
        if where is None:
            return None
        rows = np.flatnonzero(evaluate_where(self.where_frame, where))
        if rows.size == 0 or self.weights[rows].sum() <= 0:
            raise CensusError(format_error(
                "where expression matches no person record", expected="at least one match", got=where,
                where=f"sampler.where on {self.name}", fix=f"loosen it or check the labels ({self._hint(where)})"))
        return rows

    def _hint(self, where: str) -> str:
        frame = self.where_frame
        names = [n for n in frame.columns if re.search(rf"(?<![\w`]){re.escape(n)}(?![\w`])|`{re.escape(n)}`", where)]
        hints = []
        for name in names[:3]:
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                counts = column.value_counts()
                present = sorted(str(v) for v, n in counts.items() if n > 0)
                if len(present) <= 60:  # e.g. the states of this source: all of them, not a few of others
                    hints.append(f"{name} of this source is one of {present}")
                else:
                    hints.append(f"{name} takes e.g. {[str(v) for v in counts.index[:5]]}")
            else:
                hints.append(f"{name} ranges {column.min()}..{column.max()}")
        return "; ".join(hints) or f"columns: {', '.join(frame.columns[:10])}..."

    def sample(
        self,
        num_personas: int,
        *,
        seed: int | np.random.SeedSequence,
        where: str | None = None,
        quotas: Quotas | None = None,
    ) -> pd.DataFrame:
        """Draw whole person records, with replacement, with probability proportional to their weight.

        Args:
            num_personas: How many personas (rows) to draw, >= 1.
            seed: The run's seed, or a SeedSequence spawned from it; same seed, same frame.
            where: Optional condition, e.g. ``"age >= 18 and state in ['Hawaii']"``.
            quotas: Optional exact shares per label, e.g. ``{"sex": {"Male": 0.5, "Female": 0.5}}``; several
                fields cross (shares multiply). Each stratum is drawn by weight within itself.

        Returns:
            One row per persona: the 24 census keys, ``state``, ``source_record_id`` and ``code.*``.

        Raises:
            CensusError: For a count below 1, a bad seed, a ``where`` that matches nobody, or bad quotas.
        """
        count = _check_count(num_personas)
        rng = _rng(seed)
        rows = self.select(where)
        if quotas:
            index = self._draw_quotas(rng, count, rows, quotas)
        elif rows is None:
            index = _draw(rng, count, self._cdf)
        else:
            index = rows[_draw(rng, count, np.cumsum(self.weights[rows]))]
        return self.pool.take(index).reset_index(drop=True)

    def _quota_mask(self, field: str, label: object) -> npt.NDArray[np.bool_]:
        column = self.pool[field]
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = list(column.cat.categories)
            if label not in categories:
                shown = categories if len(categories) <= 12 else [*categories[:12], "..."]
                raise CensusError(format_error(
                    f"quotas.{field} label {label!r} is not a value of {field}", expected=f"one of {shown}",
                    got=label, where=f"sampler.quotas on {self.name}", fix="use the dictionary's wording"))
            return np.asarray(column.cat.codes == categories.index(label))
        return np.asarray(column == label)

    def _parse_quotas(self, quotas: Quotas) -> list[tuple[str, list[tuple[object, float]]]]:
        if not isinstance(quotas, Mapping):
            raise CensusError(format_error("sampler.quotas", expected="a mapping field -> {label: share}",
                                           got=quotas, where="sampler.quotas", fix="e.g. {sex: {Male: 0.5}}"))
        fields: list[tuple[str, list[tuple[object, float]]]] = []
        for raw_field, shares in quotas.items():
            field = raw_field if raw_field in self.pool.columns else str(raw_field).replace("_", " ")
            if field not in (*CENSUS_KEYS, STATE):
                raise CensusError(format_error(
                    f"quotas field {raw_field!r}", expected=f"a census key or state ({', '.join(CENSUS_KEYS)})",
                    got=raw_field, where="sampler.quotas", fix="use the persona key's spelling"))
            if not isinstance(shares, Mapping) or not shares:
                raise CensusError(format_error(f"quotas.{field}", expected="a non-empty mapping label -> share",
                                               got=shares, where="sampler.quotas", fix="e.g. {Male: 0.5, Female: 0.5}"))
            items: list[tuple[object, float]] = [(label, float(share)) for label, share in shares.items()]
            total = sum(share for _, share in items)
            if any(share < 0 or not math.isfinite(share) for _, share in items) or abs(total - 1.0) > 1e-6:
                raise CensusError(format_error(
                    f"quotas.{field} shares", expected="non-negative numbers that sum to 1", got=total,
                    where="sampler.quotas", fix="rescale the shares so they sum to 1"))
            fields.append((field, items))
        return fields

    def _strata(self, rows: npt.NDArray[np.intp] | None, quotas: Quotas,
                ) -> list[tuple[str, float, npt.NDArray[np.intp]]]:
        """``(description, share, member rows)`` of each quota stratum (fields cross; shares multiply)."""
        fields = self._parse_quotas(quotas)
        eligible = np.zeros(len(self.pool), dtype=bool)
        eligible[rows if rows is not None else slice(None)] = True
        masks = {(field, label): self._quota_mask(field, label) for field, items in fields for label, _ in items}
        strata = []
        for stratum in itertools.product(*(items for _, items in fields)):
            mask = eligible.copy()
            for (field, _), (label, _) in zip(fields, stratum, strict=True):
                mask &= masks[(field, label)]
            described = ", ".join(f"{f}={label!r}" for (f, _), (label, _) in zip(fields, stratum, strict=True))
            strata.append((described, math.prod(share for _, share in stratum), np.flatnonzero(mask)))
        return strata

    def target_weights(self, where: str | None = None, quotas: Quotas | None = None) -> npt.NDArray[np.float64]:
        """Weights of the population :meth:`sample` draws from: PWGTP within ``where``, scaled to the quota shares.

        Args:
            where: The sampler's condition (None: everyone).
            quotas: The sampler's quotas (None: none); each stratum's weight is scaled to its share.

        Returns:
            One weight per pool row (0 outside the target population); they sum to the filtered population
            (to 1 per unit share when quotas apply).

        Raises:
            CensusError: For a ``where`` that matches nobody or bad quotas.
        """
        rows = self.select(where)
        weights = np.zeros(len(self.pool))
        if not quotas:
            weights[rows if rows is not None else slice(None)] = self.weights[rows if rows is not None else slice(None)]
            return weights
        total = self.weights[rows].sum() if rows is not None else self.population
        for _, share, members in self._strata(rows, quotas):
            mass = self.weights[members].sum()
            if share > 0 and mass > 0:
                weights[members] = self.weights[members] * (share * total / mass)
        return weights

    def _draw_quotas(self, rng: np.random.Generator, count: int, rows: npt.NDArray[np.intp] | None,
                     quotas: Quotas) -> npt.NDArray[np.intp]:
        strata = self._strata(rows, quotas)
        counts = _largest_remainder(count, [share for _, share, _ in strata])
        parts: list[npt.NDArray[np.intp]] = []
        for (described, _, members), stratum_count in zip(strata, counts, strict=True):
            if stratum_count == 0:
                continue
            if members.size == 0 or self.weights[members].sum() <= 0:
                raise CensusError(format_error(
                    f"quota stratum {described} has no person record", expected="at least one record",
                    got=f"0 records for {stratum_count} persona(s)", where=f"sampler.quotas on {self.name}",
                    fix="drop that label from quotas, or widen sampler.where"))
            parts.append(members[_draw(rng, stratum_count, np.cumsum(self.weights[members]))])
        index = np.concatenate(parts)
        # Strata were drawn one after another; shuffle so row order carries no stratum information.
        return index[rng.permutation(index.size)]


def _stamp(spec: SourceSpec) -> tuple[tuple[str, float, int], ...]:
    stamps = []
    for path in (*spec.files, *spec.dictionaries):
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime, stat.st_size))
        except OSError:
            stamps.append((str(path), -1.0, -1))
    return tuple(stamps)


@functools.lru_cache(maxsize=4)
def _load_cached(spec: SourceSpec, stamp: tuple[tuple[str, float, int], ...]) -> CensusSource:
    del stamp  # only part of the cache key: a changed file reloads
    return CensusSource.from_spec(spec)


def _spec_from(source: object) -> SourceSpec:
    if isinstance(source, SourceSpec):
        return source
    if isinstance(source, str | os.PathLike):
        text = str(source)
        path = package_data(text[len(PACKAGE_PREFIX):]) if text.startswith(PACKAGE_PREFIX) else Path(text)
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise CensusError(format_error(
                "census source", expected="a YAML source config (conf/sampler/*.yaml or package:source.yaml)",
                got=text, where="sample_personas(source=...)", fix="pass a YAML path, a mapping or a CensusSource"))
        return _spec_from(read_config_file(path))
    data: Any = source
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(source, DictConfig):
            data = OmegaConf.to_container(source, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, Mapping):
        inner = data.get("source")
        if isinstance(inner, str):
            # A sampler config may name a source YAML instead of spelling it out (conf/sampler/census_demo.yaml).
            return _spec_from(inner)
        return parse_source_spec(data)
    raise CensusError(format_error(
        "census source", expected="None, a CensusSource, a YAML path or a mapping", got=type(source).__name__,
        where="sample_personas(source=...)", fix="pass conf/sampler/census_six_states.yaml or leave source unset"))


SourceLike = CensusSource | SourceSpec | Mapping[str, Any] | str | os.PathLike[str] | None


def load_source(source: SourceLike = None) -> CensusSource:
    """Load (or reuse) a census source.

    Args:
        source: None for the ACS 2018 copy shipped in the package; a :class:`CensusSource` (returned as is); a
            YAML path (``conf/sampler/census_six_states.yaml``, ``package:source.yaml``); a ``source:`` mapping or a
            whole sampler mapping (a Hydra node works).

    Returns:
        The decoded source. Loads are cached by spec and file stamps, so sampling twice reads once.

    Raises:
        CensusError: When a file is missing or corrupt, a column is missing or a code is not in the dictionary.
        ConfigError: When the source config is malformed.
    """
    if isinstance(source, CensusSource):
        return source
    spec = _spec_from(DEFAULT_SOURCE if source is None else source)
    return _load_cached(spec, _stamp(spec))
