"""Procedural psychodemographic attributes for census personas, drawn jointly from sourced survey tables.

PERSONA (arXiv 2407.17387) gives each census persona four attributes that the census does not ask:
Big Five levels, ideology, party identification and religion. They are drawn from tables that
``scripts/derive_tables.py`` derives from public surveys (SAPA, ANES 1996, GSS 2000-2014, Pew RLS 2007),
jointly where the surveys hold the joint, so that a persona's identity is coherent:

- Party and religion together from GSS: P(party, religion | age band, race) (``party_religion_gss.csv``).
- Ideology given that party from ANES 1996: P(ideology | party, age band, family income band)
  (``ideology_anes96.csv``), with the persona's household income standing in for family income.
- The five Big Five levels together: each trait's P(level | age band, sex) (``big_five_bfi.csv``), tied by
  the SAPA traits' normal-scores correlation (``big_five_bfi_correlation.csv``) as a Gaussian copula.

The tables, their provenance (``PROVENANCE.md``) and a machine-readable manifest ship in
``persona_gen/enrich/tables/``; :func:`describe_joints` says in words which joint each field comes from.

How a persona is matched to a table cell:

- Age: the table's age bands (``bands.csv``); an age below the youngest band uses the youngest band.
- Sex: ``"Male"`` / ``"Female"``, as in ACS SEX and the SAPA samples.
- Race: ``ACS_RACE_TO_TABLE_RACE`` maps the ACS RAC1P labels onto GSS's White / Black / Other.
- Income: the column ``household income`` when the frame has it (the census stage rebuilds the Bureau's
  HINCP from the household's persons, in ADJINC-adjusted dollars of ``income_dollar_year``); otherwise the
  persona's own ``income`` (an approximation: ANES and Pew ask family and household income). Deflated with
  CPI-U (``cpi_u.csv``) to the table's dollar year before banding; missing or not a number (group quarters,
  "Not applicable") gives the band ``"Unknown"``.
- Minors (age < 18): ideology and political views are ``TOO_YOUNG``, as in the released PERSONA
  data. Religion comes from the youngest adult band (GSS). Big Five uses the SAPA ``<18`` band.

Sampling is vectorised per cell: personas are grouped by their cell, in sorted cell order, and
each group gets one ``rng.choice`` draw. Each block (Big Five, ideology, party with religion) has its
own generator, derived from the seed without mutating it.
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
from scipy import special

from persona_gen.core.errors import ConfigError, PersonaGenError, format_error
from persona_gen.core.records import PSYCHO_KEYS  # ("big five scores", "ideology", "political views", "religion")

__all__ = [
    "ACS_RACE_TO_TABLE_RACE",
    "BIG_FIVE_LEVELS",
    "BIG_FIVE_TRAITS",
    "DEFAULT_INCOME_DOLLAR_YEAR",
    "HOUSEHOLD_INCOME",
    "PSYCHO_KEYS",
    "REQUIRED_COLUMNS",
    "TABLE_SETS",
    "TOO_YOUNG",
    "describe_joints",
    "load_correlation",
    "load_table",
    "sample_psychodemographics",
    "table_provenance",
]

REQUIRED_COLUMNS = ("age", "sex", "race", "income")
# Optional column: household income in dollars (persona_gen.census.HOUSEHOLD_INCOME; the same string here so
# that enrich does not import the census stage).
HOUSEHOLD_INCOME = "household income"
TOO_YOUNG = "Too young to have political views"
ADULT_AGE = 18
UNKNOWN_BAND = "Unknown"  # must equal UNKNOWN_BAND in scripts/derive_tables.py (checked against the manifest)
BIG_FIVE_TRAITS = ("Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism")
BIG_FIVE_LEVELS = ("Extremely Low", "Low", "Average", "High", "Extremely High")
SEXES = ("Male", "Female")
# ACS 2018 PUMS incomes are 2018 dollars once ADJINC is applied; pass income_dollar_year for other vintages.
DEFAULT_INCOME_DOLLAR_YEAR = 2018

# Which table fills each field, per named table set. When political views and religion name the same table
# they are drawn together from it (a joint table); ideology is drawn given the persona's drawn party.
# "spi_big_five" swaps in the 14-item SPI scales (a larger sample with more items per trait, but a later and
# different SAPA sample). "pew_religion" takes religion from Pew's household-income table: Pew has no party,
# so that set draws religion independently of party (party alone from GSS by age and race).
TABLE_SETS: Mapping[str, Mapping[str, str]] = {
    "default": {
        "big five scores": "big_five_bfi",
        "ideology": "ideology_anes96",
        "political views": "party_religion_gss",
        "religion": "party_religion_gss",
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
        "political views": "party_religion_gss",
        "religion": "party_religion_gss",
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
    "party_religion_gss": "religion from a draw of the youngest adult age band (18-29), no party; GSS interviews "
                          "adults only",
    "religion_pew": "drawn by the household's income band (personal income: band 'Unknown')",
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
    """A conditional table, ready to draw from: its value columns, the vocabulary and per-cell probabilities."""

    name: str
    conditions: tuple[str, ...]
    value_columns: tuple[str, ...]
    vocabulary: Mapping[str, np.ndarray]  # value column -> label of each vocabulary entry
    cells: Mapping[tuple[str, ...], np.ndarray]

    @property
    def size(self) -> int:
        return len(next(iter(self.vocabulary.values())))


@functools.cache
def _table(name: str) -> _Table:
    meta = _manifest()["tables"][name]
    frame = _read_csv(meta["file"])
    conditions = tuple(meta["conditions"])
    value_columns = tuple(meta.get("value_columns", ["value"]))
    entries = [tuple(v) if isinstance(v, list) else (v,) for v in meta["vocabulary"]]
    vocabulary = {c: np.asarray([e[i] for e in entries], dtype=object) for i, c in enumerate(value_columns)}
    position = {entry: i for i, entry in enumerate(entries)}
    cells: dict[tuple[str, ...], np.ndarray] = {}
    for key, group in frame.groupby(list(conditions), sort=True):
        probability = np.zeros(len(entries))
        rows = zip(*(group[c] for c in value_columns), strict=True)
        probability[[position[tuple(r)] for r in rows]] = group["probability"].astype(float).to_numpy()
        # Probabilities are stored rounded to 6 decimals; renormalise so each cell sums to exactly 1.
        cells[key if isinstance(key, tuple) else (key,)] = probability / probability.sum()
    return _Table(name=name, conditions=conditions, value_columns=value_columns, vocabulary=vocabulary, cells=cells)


@functools.cache
def _correlation(name: str) -> np.ndarray:
    meta = _manifest()["correlations"][name]
    frame = _read_csv(meta["file"]).set_index("trait")
    matrix = frame.loc[list(BIG_FIVE_TRAITS), list(BIG_FIVE_TRAITS)].astype(float).to_numpy()
    if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0)):
        raise PersonaGenError(format_error(
            f"{meta['file']}", expected="a symmetric positive definite correlation matrix",
            got=matrix.round(3).tolist(), where="persona_gen/enrich/tables",
            fix="regenerate the tables with scripts/derive_tables.py"))
    return matrix


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
    """The tidy table (``table, <conditions>, <value columns>, probability, count, basis``) that fills ``field``.

    Args:
        field: One of ``PSYCHO_KEYS``.
        tables: A name in ``TABLE_SETS``.

    Returns:
        A fresh copy of the shipped CSV (``probability`` float, ``count`` int). A single-field table has one value
        column, ``value``; the joint party x religion table has ``political views`` and ``religion``.

    Raises:
        ConfigError: If ``field`` or ``tables`` is unknown.
    """
    table_set = _table_set(tables)
    if field not in table_set:
        raise ConfigError(format_error("field", expected=f"one of {list(PSYCHO_KEYS)}", got=field,
                                       where="persona_gen.enrich.load_table", fix="use a PSYCHO_KEYS name"))
    frame = _read_csv(_manifest()["tables"][table_set[field]]["file"])
    return frame.astype({"probability": float, "count": int})


def load_correlation(tables: str = "default") -> pd.DataFrame:
    """The Big Five traits' latent correlation matrix of a table set (rows and columns: ``BIG_FIVE_TRAITS``)."""
    name = _table_set(tables)["big five scores"]
    return pd.DataFrame(_correlation(name), index=list(BIG_FIVE_TRAITS), columns=list(BIG_FIVE_TRAITS))


def _joint(table_set: Mapping[str, str]) -> bool:
    return table_set["political views"] == table_set["religion"]


def describe_joints(tables: str = "default") -> dict[str, str]:
    """Which survey joint each psychodemographic field comes from, in words, for the dataset card.

    Args:
        tables: A name in ``TABLE_SETS``.

    Returns:
        ``{field: sentence}`` for every field in ``PSYCHO_KEYS``.

    Raises:
        ConfigError: If ``tables`` is unknown.
    """
    table_set = _table_set(tables)
    manifest = _manifest()["tables"]
    big_five = table_set["big five scores"]
    source = {field: manifest[name]["source"] for field, name in table_set.items()}
    out = {
        "big five scores": f"the five levels drawn together: each trait by age band and sex ({big_five}.csv), tied "
                           f"by the traits' normal-scores correlation ({big_five}_correlation.csv, a Gaussian "
                           f"copula); {source['big five scores']}",
        "ideology": "given the persona's drawn party, age band and household income band (standing in for family "
                    f"income): P(ideology | party, age, income) ({table_set['ideology']}.csv); {source['ideology']}",
    }
    if _joint(table_set):
        joint = (f"drawn jointly with {{other}}: P(party, religion | age band, race) ({table_set['religion']}.csv); "
                 f"{source['religion']}")
        out["political views"] = joint.format(other="religion")
        out["religion"] = joint.format(other="party")
    else:
        out["political views"] = (f"by age band and race ({table_set['political views']}.csv); "
                                  f"{source['political views']}")
        out["religion"] = (f"by household income band, independently of party ({table_set['religion']}.csv; the "
                           f"survey has no party); {source['religion']}")
    return {field: out[field] for field in PSYCHO_KEYS}


def table_provenance(tables: str = "default") -> dict[str, dict[str, Any]]:
    """Which table made each field, with its source and citation, for a run's record.

    Args:
        tables: A name in ``TABLE_SETS``.

    Returns:
        ``{field: {"table", "file", "sha256", "source", "citation", "license", "year", "conditions",
        "minors", "joint", ...}}`` for every field in ``PSYCHO_KEYS``; income-conditioned tables also name the
        income deflator; Big Five names its correlation file.

    Raises:
        ConfigError: If ``tables`` is unknown.
    """
    table_set = _table_set(tables)
    manifest = _manifest()
    joints = describe_joints(tables)
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
            "joint": joints[field],
        }
        if "income_band" in meta["conditions"]:
            cpi = manifest["auxiliary"]["cpi_u.csv"]
            record["income_deflator"] = {"file": "persona_gen/enrich/tables/cpi_u.csv", "sha256": cpi["sha256"],
                                         "citation": cpi["citation"]}
        if field == "big five scores":
            corr = manifest["correlations"][name]
            record["correlation"] = {"file": f"persona_gen/enrich/tables/{corr['file']}", "sha256": corr["sha256"]}
        out[field] = record
    return out


# ----------------------------------------------------------------------------------------------- inputs


def _bad_values(values: pd.Series, allowed: Mapping[str, str] | tuple[str, ...]) -> list[Any]:
    bad = values[~values.isin(list(allowed))]
    return list(dict.fromkeys(bad.tolist()))[:5]


def _validated_inputs(personas: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Age (float), sex, table race and the income to band (float, NaN when missing or not a number)."""
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
    income = _income(personas[HOUSEHOLD_INCOME] if HOUSEHOLD_INCOME in personas.columns else personas["income"])
    return age.astype(float).to_numpy(), personas["sex"].to_numpy(dtype=object), race, income


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


def _cell_groups(table: _Table, conditions: Mapping[str, np.ndarray], rows: np.ndarray,
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(positions into rows, cell probabilities)`` for each cell the rows fall in, in sorted cell order."""
    keys = pd.DataFrame({c: conditions[c][rows] for c in table.conditions})
    groups = []
    for key, positions in sorted(keys.groupby(list(table.conditions), sort=True).indices.items()):
        cell = tuple(key) if isinstance(key, tuple) else (key,)
        probability = table.cells.get(cell)
        if probability is None:
            raise PersonaGenError(format_error(
                f"cell {dict(zip(table.conditions, cell, strict=True))}", expected=f"a row of {table.name}.csv",
                got="no such cell", where="persona_gen/enrich/tables",
                fix="regenerate the tables with scripts/derive_tables.py",
            ))
        groups.append((positions, probability))
    return groups


def _draw(table: _Table, conditions: Mapping[str, np.ndarray], rows: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Vocabulary index of one draw for each of ``rows`` from its cell, one ``rng.choice`` per cell."""
    out = np.zeros(len(rows), dtype=np.intp)
    if len(rows) == 0:
        return out
    for positions, probability in _cell_groups(table, conditions, rows):
        out[positions] = rng.choice(table.size, size=len(positions), p=probability)
    return out


def _draw_by_quantile(table: _Table, conditions: Mapping[str, np.ndarray], rows: np.ndarray,
                      u: np.ndarray) -> np.ndarray:
    """Vocabulary index at quantile ``u`` of each row's cell: the inverse CDF, so ``u`` uniform gives the cell."""
    out = np.zeros(len(rows), dtype=np.intp)
    if len(rows) == 0:
        return out
    for positions, probability in _cell_groups(table, conditions, rows):
        index = np.searchsorted(np.cumsum(probability), u[positions], side="right")
        out[positions] = np.minimum(index, table.size - 1)
    return out


def _income_band(table: str, income: np.ndarray, minor: np.ndarray, income_dollar_year: int) -> np.ndarray:
    bands = _bands(table, "income")
    cpi = _cpi()
    assert bands.dollar_year is not None  # income bands always carry their dollar year
    in_table_dollars = income * (cpi[bands.dollar_year] / cpi[income_dollar_year])
    band = bands.assign(np.nan_to_num(in_table_dollars, nan=0.0))
    band[np.isnan(income) | minor] = UNKNOWN_BAND
    return band


def _big_five(name: str, conditions: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """The five levels of each persona, drawn together through the traits' Gaussian copula."""
    table = _table(name)
    z = rng.standard_normal((n, len(BIG_FIVE_TRAITS))) @ np.linalg.cholesky(_correlation(name)).T
    u = special.ndtr(z)
    everyone = np.arange(n)
    text = np.full(n, "", dtype=object)
    for trait_index, trait in enumerate(BIG_FIVE_TRAITS):
        conditions["trait"] = np.full(n, trait, dtype=object)
        level = table.vocabulary["value"][_draw_by_quantile(table, conditions, everyone, u[:, trait_index])]
        text = text + (", " if trait_index else "") + f"{trait}: " + level
    return text


def sample_psychodemographics(
    personas: pd.DataFrame,
    *,
    seed: int | np.random.SeedSequence,
    tables: str = "default",
    income_dollar_year: int = DEFAULT_INCOME_DOLLAR_YEAR,
) -> pd.DataFrame:
    """Draw Big Five levels, ideology, political views and religion for each persona, jointly.

    Args:
        personas: Census personas with columns ``age`` (years), ``sex`` (``"Male"``/``"Female"``),
            ``race`` (ACS RAC1P label) and ``income`` (dollars, as a number or text like ``"$45,000"``;
            other text or NaN when not applicable); optionally ``household income`` (dollars, NaN in group
            quarters), which then replaces ``income`` for the income-conditioned tables. Other columns are ignored.
        seed: Seed of this stage; the same seed and frame give the same output.
        tables: Which table set fills the fields (a name in ``TABLE_SETS``).
        income_dollar_year: The year whose dollars the incomes are in (a year in ``cpi_u.csv``).

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
    # A child's own income says nothing about its household's; a household income does.
    no_income = minor if HOUSEHOLD_INCOME not in personas.columns else np.zeros(len(age), dtype=bool)
    n = len(age)
    everyone = np.arange(n)
    adults = np.flatnonzero(~minor)

    def conditions_for(name: str) -> dict[str, np.ndarray]:
        needed = _table(name).conditions
        conditions: dict[str, np.ndarray] = {"sex": sex, "race": race}
        if "age_band" in needed:
            conditions["age_band"] = _bands(name, "age").assign(age)
        if "income_band" in needed:
            conditions["income_band"] = _income_band(name, income, no_income, income_dollar_year)
        return conditions

    def rng(*path: int) -> np.random.Generator:
        return np.random.default_rng(_child(root, *path))

    out: dict[str, np.ndarray] = {}
    out["big five scores"] = _big_five(table_set["big five scores"], conditions_for(table_set["big five scores"]),
                                       n, rng(0))
    # Party and religion: one joint draw, or (pew_religion) two independent ones.
    party = np.full(n, TOO_YOUNG, dtype=object)
    if _joint(table_set):
        joint = _table(table_set["religion"])
        drawn = _draw(joint, conditions_for(joint.name), everyone, rng(2))
        party[adults] = joint.vocabulary["political views"][drawn[adults]]
        out["religion"] = joint.vocabulary["religion"][drawn]
    else:
        views, religion = _table(table_set["political views"]), _table(table_set["religion"])
        party[adults] = views.vocabulary["value"][_draw(views, conditions_for(views.name), adults, rng(2))]
        out["religion"] = religion.vocabulary["value"][_draw(religion, conditions_for(religion.name), everyone,
                                                             rng(3))]
    out["political views"] = party
    # Ideology given the drawn party.
    ideology_table = _table(table_set["ideology"])
    conditions = conditions_for(ideology_table.name)
    conditions["political views"] = party
    ideology = np.full(n, TOO_YOUNG, dtype=object)
    ideology[adults] = ideology_table.vocabulary["value"][_draw(ideology_table, conditions, adults, rng(1))]
    out["ideology"] = ideology
    return pd.DataFrame({field: pd.Series(out[field], index=personas.index, dtype=object) for field in PSYCHO_KEYS})
