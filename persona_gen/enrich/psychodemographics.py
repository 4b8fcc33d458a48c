"""Procedural psychodemographic attributes for census personas, drawn from sourced survey tables.

PERSONA (arXiv 2407.17387) gives each census persona four attributes that the census does not ask:
Big Five levels, ideology, party identification and religion. Here each is drawn from a conditional
probability table derived from a public survey (SAPA, ANES 1996, GSS 2000-2014, Pew RLS 2007) by
``scripts/derive_tables.py``, conditioned on the persona's age, sex, race and income. The tables,
their provenance (``PROVENANCE.md``) and a machine-readable manifest ship in
``persona_gen/enrich/tables/``.

How a persona is matched to a table cell:

- Age: the table's age bands (``bands.csv``); an age below the youngest band uses the youngest band.
- Sex: ``"Male"`` / ``"Female"``, as in ACS SEX and the SAPA samples.
- Race: ``ACS_RACE_TO_TABLE_RACE`` maps the ACS RAC1P labels onto GSS's White / Black / Other.
- Income: dollars of ``income_dollar_year`` (ACS PINCP: personal income, may be negative; ``"$45,000"`` reads as 45000);
  deflated with CPI-U (``cpi_u.csv``) to the table's dollar year before banding. Income that is
  missing or not a number (the ACS "N/A (less than 15 years old)") gets the band ``"Unknown"``, which
  the tables fill from the age band alone (ANES) or from all respondents (Pew).
- Minors (age < 18): ideology and political views are ``TOO_YOUNG``, as in the released PERSONA
  data. Religion comes from the youngest adult band (GSS) or from all respondents (Pew: a child's
  own income says nothing about the household's). Big Five uses the SAPA ``<18`` band.

Sampling is vectorised per cell: personas are grouped by their cell, in sorted cell order, and
each group gets one ``rng.choice`` draw. Every field (and every Big Five trait) has its own
generator, derived from the seed without mutating it, so swapping one field's table leaves the
other fields' draws unchanged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from persona_gen.core.errors import ConfigError, PersonaGenError, format_error
from persona_gen.core.records import PSYCHO_KEYS  # ("big five scores", "ideology", "political views", "religion")

__all__ = [
    "ACS_RACE_TO_TABLE_RACE",
    "BIG_FIVE_LEVELS",
    "BIG_FIVE_TRAITS",
    "DEFAULT_INCOME_DOLLAR_YEAR",
    "PSYCHO_KEYS",
    "REQUIRED_COLUMNS",
    "TABLE_SETS",
    "TOO_YOUNG",
    "load_table",
    "sample_psychodemographics",
    "table_provenance",
]

REQUIRED_COLUMNS = ("age", "sex", "race", "income")
TOO_YOUNG = "Too young to have political views"
ADULT_AGE = 18
UNKNOWN_BAND = "Unknown"  # must equal UNKNOWN_BAND in scripts/derive_tables.py (checked against the manifest)
BIG_FIVE_TRAITS = ("Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism")
BIG_FIVE_LEVELS = ("Extremely Low", "Low", "Average", "High", "Extremely High")
SEXES = ("Male", "Female")
# ACS 2018 PUMS incomes are 2018 dollars once ADJINC is applied; pass income_dollar_year for other vintages.
DEFAULT_INCOME_DOLLAR_YEAR = 2018

# Which table fills each field, per named table set. The alternatives each swap one table of "default":
# Pew's income-conditioned religion for GSS's age x race one, or the 14-item SPI Big Five scales for the
# 5-item BFI ones (a larger sample with more items per trait, but a later and different SAPA sample).
TABLE_SETS: Mapping[str, Mapping[str, str]] = {
    "default": {
        "big five scores": "big_five_bfi",
        "ideology": "ideology_anes96",
        "political views": "political_views_gss",
        "religion": "religion_gss",
    },
    "pew_religion": {
        "big five scores": "big_five_bfi",
        "ideology": "ideology_anes96",
        "political views": "political_views_gss",
        "religion": "religion_pew",
    },
    "spi_big_five": {
        "big five scores": "big_five_spi",
        "ideology": "ideology_anes96",
        "political views": "political_views_gss",
        "religion": "religion_gss",
    },
}

# ACS RAC1P labels (identical in the 2018, 2019 and 2021 PUMS dictionaries) onto GSS RACE, which
# only has White / Black / Other. Every single race other than White and Black, and every
# multiracial person, is "Other": GSS has no finer split, and it codes multiracial respondents
# outside White and Black too. Hispanic origin is a separate question in both surveys, so it plays
# no part here. The table's own three labels map onto themselves.
ACS_RACE_TO_TABLE_RACE: Mapping[str, str] = {
    "White alone": "White",
    "Black or African American alone": "Black",
    "American Indian alone": "Other",
    "Alaska Native alone": "Other",
    "American Indian and Alaska Native tribes specified; or American Indian or Alaska Native, "
    "not specified and no other races": "Other",
    "Asian alone": "Other",
    "Native Hawaiian and Other Pacific Islander alone": "Other",
    "Some Other Race alone": "Other",
    "Two or More Races": "Other",
    "White": "White",
    "Black": "Black",
    "Other": "Other",
}

_WHERE = "persona_gen.enrich.sample_psychodemographics"
# What a run record says about minors, per field and table.
_MINORS = {
    "big five scores": "drawn from the table's youngest age band (<18)",
    "ideology": f"not drawn: {TOO_YOUNG!r}",
    "political views": f"not drawn: {TOO_YOUNG!r}",
    "religion_gss": "drawn from the youngest adult age band (18-29); GSS interviews adults only",
    "religion_pew": "drawn from all respondents (income band 'Unknown'); a child's income is not the household's",
}


# ----------------------------------------------------------------------------------------------- tables


def _table_path(name: str) -> Any:
    # Anchored on persona_gen (a regular package) so the lookup works whether or not enrich/ has an __init__.py.
    return resources.files("persona_gen").joinpath("enrich", "tables", name)


def _read_csv(name: str) -> pd.DataFrame:
    with _table_path(name).open("r", encoding="utf-8") as handle:
        # Only an empty field is missing: "None" is a religion, not a null.
        return pd.read_csv(handle, dtype=str, keep_default_na=False, na_values=[""])


@functools.cache
def _manifest() -> dict[str, Any]:
    with _table_path("manifest.json").open("r", encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    if manifest.get("unknown_band") != UNKNOWN_BAND:
        raise PersonaGenError(format_error(
            "tables/manifest.json unknown_band", expected=repr(UNKNOWN_BAND), got=manifest.get("unknown_band"),
            where="persona_gen/enrich/tables", fix="regenerate the tables with scripts/derive_tables.py",
        ))
    return manifest


@dataclass(frozen=True)
class _Table:
    """A conditional table, ready to draw from: the vocabulary and per-cell probabilities."""

    name: str
    conditions: tuple[str, ...]
    vocabulary: np.ndarray
    cells: Mapping[tuple[str, ...], np.ndarray]


@functools.cache
def _table(name: str) -> _Table:
    meta = _manifest()["tables"][name]
    frame = _read_csv(meta["file"])
    conditions = tuple(meta["conditions"])
    vocabulary = np.asarray(meta["vocabulary"], dtype=object)
    position = {value: i for i, value in enumerate(meta["vocabulary"])}
    cells: dict[tuple[str, ...], np.ndarray] = {}
    for key, group in frame.groupby(list(conditions), sort=True):
        probability = np.zeros(len(vocabulary))
        probability[[position[v] for v in group["value"]]] = group["probability"].astype(float).to_numpy()
        # Probabilities are stored rounded to 6 decimals; renormalise so each cell sums to exactly 1.
        cells[key if isinstance(key, tuple) else (key,)] = probability / probability.sum()
    return _Table(name=name, conditions=conditions, vocabulary=vocabulary, cells=cells)


@dataclass(frozen=True)
class _Bands:
    """Contiguous bands of one variable for one table; ``lower[0]`` is -inf and ``upper[-1]`` is +inf."""

    labels: np.ndarray
    lower: np.ndarray
    dollar_year: int | None

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Band label of each value; values below the first band get the first band."""
        index = np.searchsorted(self.lower, x, side="right") - 1
        return np.asarray(self.labels[np.clip(index, 0, len(self.labels) - 1)], dtype=object)


@functools.cache
def _bands(table: str, variable: str) -> _Bands:
    frame = _read_csv("bands.csv")
    rows = frame[(frame["table"] == table) & (frame["variable"] == variable)]
    lower = rows["lower"].astype(float).fillna(-np.inf).to_numpy()
    upper = rows["upper"].astype(float).fillna(np.inf).to_numpy()
    if len(rows) == 0 or not (np.all(lower[1:] == upper[:-1]) and np.isinf(upper[-1])):
        raise PersonaGenError(format_error(
            f"bands.csv bands of {variable} for {table}", expected="contiguous and open-ended at the top",
            got=list(zip(lower.tolist(), upper.tolist(), strict=True)), where="persona_gen/enrich/tables",
            fix="regenerate the tables with scripts/derive_tables.py",
        ))
    years = rows["dollar_year"].dropna().unique()
    return _Bands(labels=rows["band"].to_numpy(dtype=object), lower=lower,
                  dollar_year=int(years[0]) if len(years) else None)


@functools.cache
def _cpi() -> Mapping[int, float]:
    frame = _read_csv("cpi_u.csv")
    return dict(zip(frame["year"].astype(int), frame["cpi_u"].astype(float), strict=True))


def _table_set(tables: str) -> Mapping[str, str]:
    if not isinstance(tables, str) or tables not in TABLE_SETS:
        raise ConfigError(format_error(
            "tables", expected=f"one of {sorted(TABLE_SETS)}", got=tables, where=_WHERE,
            fix="pick a listed table set, or add one to persona_gen.enrich.psychodemographics.TABLE_SETS",
        ))
    return TABLE_SETS[tables]


def load_table(field: str, tables: str = "default") -> pd.DataFrame:
    """The tidy table (``table, <conditions>, value, probability, count, basis``) that fills ``field``.

    Args:
        field: One of ``PSYCHO_KEYS``.
        tables: A name in ``TABLE_SETS``.

    Returns:
        A fresh copy of the shipped CSV (``probability`` float, ``count`` int).

    Raises:
        ConfigError: If ``field`` or ``tables`` is unknown.
    """
    table_set = _table_set(tables)
    if field not in table_set:
        raise ConfigError(format_error("field", expected=f"one of {list(PSYCHO_KEYS)}", got=field,
                                       where="persona_gen.enrich.load_table", fix="use a PSYCHO_KEYS name"))
    frame = _read_csv(_manifest()["tables"][table_set[field]]["file"])
    return frame.astype({"probability": float, "count": int})


def table_provenance(tables: str = "default") -> dict[str, dict[str, Any]]:
    """Which table made each field, with its source and citation, for a run's record.

    Args:
        tables: A name in ``TABLE_SETS``.

    Returns:
        ``{field: {"table", "file", "sha256", "source", "citation", "license", "year", "conditions",
        "minors", ...}}`` for every field in ``PSYCHO_KEYS``; income-conditioned tables also name the
        income deflator.

    Raises:
        ConfigError: If ``tables`` is unknown.
    """
    table_set = _table_set(tables)
    manifest = _manifest()
    out: dict[str, dict[str, Any]] = {}
    for field in PSYCHO_KEYS:
        name = table_set[field]
        meta = manifest["tables"][name]
        record: dict[str, Any] = {
            "table_set": tables,
            "table": name,
            "file": f"persona_gen/enrich/tables/{meta['file']}",
            "sha256": meta["sha256"],
            "source": meta["source"],
            "citation": meta["citation"],
            "license": meta["license"],
            "year": meta["year"],
            "conditions": list(meta["conditions"]),
            "minors": _MINORS.get(field, _MINORS.get(name, "")),
        }
        if "income_band" in meta["conditions"]:
            cpi = manifest["auxiliary"]["cpi_u.csv"]
            record["income_deflator"] = {"file": "persona_gen/enrich/tables/cpi_u.csv", "sha256": cpi["sha256"],
                                         "citation": cpi["citation"]}
        out[field] = record
    return out


# ----------------------------------------------------------------------------------------------- inputs


def _bad_values(values: pd.Series, allowed: Mapping[str, str] | tuple[str, ...]) -> list[Any]:
    bad = values[~values.isin(list(allowed))]
    return list(dict.fromkeys(bad.tolist()))[:5]


def _validated_inputs(personas: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Age (float), sex, table race and income (float, NaN when missing or not a number)."""
    if not isinstance(personas, pd.DataFrame):
        raise ConfigError(format_error("personas", expected="a pandas DataFrame", got=type(personas).__name__,
                                       where=_WHERE, fix="pass the census personas as a DataFrame"))
    missing = [c for c in REQUIRED_COLUMNS if c not in personas.columns]
    if missing:
        raise ConfigError(format_error(
            "personas columns", expected=f"a superset of {list(REQUIRED_COLUMNS)}", got=list(personas.columns),
            where=_WHERE, fix=f"add the missing column(s) {missing} from the census stage",
        ))
    age = pd.to_numeric(personas["age"], errors="coerce")
    bad_age = personas["age"][age.isna() | (age < 0)]
    if len(bad_age):
        raise ConfigError(format_error(
            "personas['age']", expected="a number >= 0 in every row", got=bad_age.tolist()[:5],
            where=f"{_WHERE}, rows {bad_age.index.tolist()[:5]}", fix="decode AGEP to integer years",
        ))
    bad_sex = _bad_values(personas["sex"], SEXES)
    if bad_sex:
        raise ConfigError(format_error(
            "personas['sex']", expected=f"one of {list(SEXES)}", got=bad_sex, where=_WHERE,
            fix="decode SEX with the PUMS dictionary labels",
        ))
    bad_race = _bad_values(personas["race"], ACS_RACE_TO_TABLE_RACE)
    if bad_race:
        raise ConfigError(format_error(
            "personas['race']", expected="an ACS RAC1P label listed in ACS_RACE_TO_TABLE_RACE", got=bad_race,
            where=_WHERE, fix="decode RAC1P with the PUMS dictionary labels, or add the label to the mapping",
        ))
    race = personas["race"].map(ACS_RACE_TO_TABLE_RACE).to_numpy(dtype=object)
    return age.astype(float).to_numpy(), personas["sex"].to_numpy(dtype=object), race, _income(personas["income"])


def _income(values: pd.Series) -> np.ndarray:
    """Dollars as floats; text such as "$45,000" is read as a number, other text (N/A) becomes NaN."""
    text = values.map(lambda v: v.replace("$", "").replace(",", "").strip() if isinstance(v, str) else v)
    dollars: np.ndarray = pd.to_numeric(text, errors="coerce").astype(float).to_numpy()
    return dollars



def _seed_sequence(seed: object) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise ConfigError(format_error("seed", expected="an int >= 0 or a numpy.random.SeedSequence", got=seed,
                                   where=_WHERE, fix="pass the stage's seed from the config"))


def _child(parent: np.random.SeedSequence, *path: int) -> np.random.SeedSequence:
    # Like SeedSequence.spawn, but addressed by position: spawn() counts children on the parent, so a
    # second call with the same SeedSequence object would draw differently.
    spawn_key = (*tuple(parent.spawn_key), *path)
    return np.random.SeedSequence(entropy=parent.entropy, spawn_key=spawn_key, pool_size=parent.pool_size)


# ----------------------------------------------------------------------------------------------- sampling


def _draw(table: _Table, conditions: Mapping[str, np.ndarray], rows: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Draw one value for each of ``rows`` from its cell, one ``rng.choice`` per cell in sorted cell order."""
    out = np.empty(len(rows), dtype=object)
    if len(rows) == 0:
        return out
    keys = pd.DataFrame({c: conditions[c][rows] for c in table.conditions})
    for key, positions in sorted(keys.groupby(list(table.conditions), sort=True).indices.items()):
        cell = tuple(key) if isinstance(key, tuple) else (key,)
        probability = table.cells.get(cell)
        if probability is None:
            raise PersonaGenError(format_error(
                f"cell {dict(zip(table.conditions, cell, strict=True))}", expected=f"a row of {table.name}.csv",
                got="no such cell", where="persona_gen/enrich/tables",
                fix="regenerate the tables with scripts/derive_tables.py",
            ))
        out[positions] = rng.choice(table.vocabulary, size=len(positions), p=probability)
    return out


def _income_band(table: str, income: np.ndarray, minor: np.ndarray, income_dollar_year: int) -> np.ndarray:
    bands = _bands(table, "income")
    cpi = _cpi()
    assert bands.dollar_year is not None  # income bands always carry their dollar year
    in_table_dollars = income * (cpi[bands.dollar_year] / cpi[income_dollar_year])
    band = bands.assign(np.nan_to_num(in_table_dollars, nan=0.0))
    band[np.isnan(income) | minor] = UNKNOWN_BAND
    return band


def sample_psychodemographics(
    personas: pd.DataFrame,
    *,
    seed: int | np.random.SeedSequence,
    tables: str = "default",
    income_dollar_year: int = DEFAULT_INCOME_DOLLAR_YEAR,
) -> pd.DataFrame:
    """Draw Big Five levels, ideology, political views and religion for each persona.

    Args:
        personas: Census personas with columns ``age`` (years), ``sex`` (``"Male"``/``"Female"``),
            ``race`` (ACS RAC1P label) and ``income`` (dollars, as a number or text like ``"$45,000"``;
            other text or NaN when not applicable).
            Other columns are ignored.
        seed: Seed of this stage; the same seed and frame give the same output.
        tables: Which table set fills the fields (a name in ``TABLE_SETS``).
        income_dollar_year: The year whose dollars ``income`` is in (a year in ``cpi_u.csv``).

    Returns:
        A frame with the same index as ``personas`` and the columns ``PSYCHO_KEYS``, e.g.
        ``big five scores`` = ``"Openness: High, Conscientiousness: Average, Extraversion: Low,
        Agreeableness: Average, Neuroticism: Extremely High"``.

    Raises:
        ConfigError: If ``tables`` or ``income_dollar_year`` is unknown, a required column is missing,
            or a value of ``age``, ``sex`` or ``race`` cannot be mapped onto the tables.
    """
    table_set = _table_set(tables)
    root = _seed_sequence(seed)
    age, sex, race, income = _validated_inputs(personas)
    if income_dollar_year not in _cpi():
        raise ConfigError(format_error(
            "income_dollar_year", expected=f"a year in cpi_u.csv ({min(_cpi())}-{max(_cpi())})",
            got=income_dollar_year, where=_WHERE, fix="add that year's CPI-U to scripts/derive_tables.py",
        ))
    minor = age < ADULT_AGE
    everyone = np.arange(len(age))
    out: dict[str, np.ndarray] = {}

    def conditions_for(name: str) -> dict[str, np.ndarray]:
        needed = _table(name).conditions
        conditions: dict[str, np.ndarray] = {"sex": sex, "race": race}
        if "age_band" in needed:
            conditions["age_band"] = _bands(name, "age").assign(age)
        if "income_band" in needed:
            conditions["income_band"] = _income_band(name, income, minor, income_dollar_year)
        return conditions

    for field_index, field in enumerate(PSYCHO_KEYS):
        name = table_set[field]
        table = _table(name)
        conditions = conditions_for(name)
        if field == "big five scores":
            text = np.full(len(age), "", dtype=object)
            for trait_index, trait in enumerate(BIG_FIVE_TRAITS):
                conditions["trait"] = np.full(len(age), trait, dtype=object)
                rng = np.random.default_rng(_child(root, field_index, trait_index))
                level = _draw(table, conditions, everyone, rng)
                text = text + (", " if trait_index else "") + f"{trait}: " + level
            out[field] = text
        elif field in ("ideology", "political views"):
            values = np.full(len(age), TOO_YOUNG, dtype=object)
            adults = np.flatnonzero(~minor)
            values[adults] = _draw(table, conditions, adults, np.random.default_rng(_child(root, field_index)))
            out[field] = values
        else:
            out[field] = _draw(table, conditions, everyone, np.random.default_rng(_child(root, field_index)))
    return pd.DataFrame({field: pd.Series(out[field], index=personas.index, dtype=object) for field in PSYCHO_KEYS})
