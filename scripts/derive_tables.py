"""Derive the psychodemographic tables that ``persona_gen.enrich`` ships, from the raw survey files.

The package ships small conditional probability tables, never the raw survey items. This script is
the only way those tables are made: rerunning it on the same raw files writes byte-identical files
(a unit test checks this), so every shipped number can be traced to a source row.

Usage::

    python scripts/derive_tables.py                       # raw data from $PERSONA_GEN_SHARED_DATA
    python scripts/derive_tables.py --data ../shared/data --out /tmp/tables

Writes into ``--out`` (default ``persona_gen/enrich/tables``):

- ``big_five_bfi.csv``, ``big_five_spi.csv``: P(level | trait, age band, sex), SAPA BFI / SPI-135.
- ``big_five_bfi_correlation.csv``, ``big_five_spi_correlation.csv``: the traits' latent (normal-scores)
  correlation matrix, which ties the five level draws together (a Gaussian copula).
- ``party_religion_gss.csv``: P(party identification, religion | age band, race), jointly, GSS 2000-2014.
- ``ideology_anes96.csv``: P(7-point ideology | party identification, age band, family income band), ANES 1996.
- ``political_views_gss.csv``: P(party identification | age band, race), GSS 2000-2014 (the "pew_religion" set).
- ``religion_pew.csv``: P(religious tradition | income band), Pew Religious Landscape Study 2007.
- ``bands.csv``: the age and income bands that map a persona onto a table's cells.
- ``cpi_u.csv``: BLS CPI-U annual averages, to express a persona's income in a table's dollars.
- ``manifest.json``: machine-readable provenance (read by ``table_provenance()``).
- ``PROVENANCE.md``: the same provenance for people.

Every probability table is tidy: ``table,<condition columns>,<value columns>,probability,count,basis``
(one value column, ``value``, except the joint party x religion table). The
grid is complete (every cell, every value, zeros included). ``count`` is the (unweighted) number of
respondents with that value in the data the cell's probabilities come from, and ``basis`` names
which conditions those data were selected on: the full conditions, or a coarser fallback when the
full cell had fewer than ``MIN_CELL_N`` respondents.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "persona_gen" / "enrich" / "tables"

# A cell with fewer respondents than this falls back to a coarser condition: at n = 50 the standard
# error of a 10 % share is about 4 points, which is as coarse as we accept for a persona attribute.
MIN_CELL_N = 50

# Probabilities are written with 6 decimals: enough to reproduce counts of these sizes exactly
# and short enough to diff. The sampler renormalises each cell, so rounding never leaks into draws.
PROBABILITY_FORMAT = "{:.6f}"
MAX_NOTES = 40  # fallback cells listed in PROVENANCE.md per table (the counts by basis cover all of them)

BIG_FIVE_LEVELS = ("Extremely Low", "Low", "Average", "High", "Extremely High")
# Population percentile cut points between the five levels (5 / 20 / 50 / 20 / 5 %), the usual
# reading of BFI-2 norm bands: within 0.67 SD of the mean is "Average", beyond 1.64 SD "Extremely".
BIG_FIVE_CUTS = (0.05, 0.25, 0.75, 0.95)
BIG_FIVE_TRAITS = ("Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism")
# A trait score needs at least this share of its items answered (BFI: 3 of 5; SPI: 9 of 14).
MIN_ITEM_SHARE = 0.6
# SAPA's age field has a few impossible ages (3, 9): the SPI sample starts at 11, so we use 11 for both.
MIN_RESPONDENT_AGE = 11
ITEM_SCALE_MAX = 6  # SAPA items are answered on a 1-6 scale; a reversed item is 7 - x.

SEX_CODES = {1: "Male", 2: "Female"}
# Scoring-key name -> trait, per instrument.
BFI_TRAITS = {"openness": "Openness", "conscientious": "Conscientiousness", "extraversion": "Extraversion",
              "agree": "Agreeableness", "neuroticism": "Neuroticism"}
SPI_TRAITS = {"Open": "Openness", "Consc": "Conscientiousness", "Extra": "Extraversion", "Agree": "Agreeableness",
              "Neuro": "Neuroticism"}  # SAPA: "males=1, females=2" / "X chromosomes"

# (label, lower inclusive, upper exclusive); None is open-ended. Why these bands: see PROVENANCE.
BIG_FIVE_AGE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("<18", None, 18),
    ("18-29", 18, 30),
    ("30-44", 30, 45),
    ("45+", 45, None),
)
ADULT_AGE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("18-29", 18, 30),
    ("30-44", 30, 45),
    ("45-64", 45, 65),
    ("65+", 65, None),
)
UNKNOWN_BAND = "Unknown"  # income band of a persona whose income is missing or not a number

# ANES 1996 family income (faraway/statsmodels codes 1-24; 1 = "$3Kminus", 14 = "$22K-$25K",
# 15 = "$25K-$30K", 19 = "$45K-$50K", 20 = "$50K-$60K", 24 = "$105Kplus"), in 1996 dollars.
ANES_INCOME_BANDS: tuple[tuple[str, int | None, int | None, range], ...] = (
    ("<$25k", None, 25_000, range(1, 15)),
    ("$25k-$50k", 25_000, 50_000, range(15, 20)),
    ("$50k+", 50_000, None, range(20, 25)),
)
ANES_DOLLAR_YEAR = 1996

# Pew RLS 2007 household income columns (2007 dollars), kept under Pew's own labels.
PEW_INCOME_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("<$10k", None, 10_000),
    ("$10-20k", 10_000, 20_000),
    ("$20-30k", 20_000, 30_000),
    ("$30-40k", 30_000, 40_000),
    ("$40-50k", 40_000, 50_000),
    ("$50-75k", 50_000, 75_000),
    ("$75-100k", 75_000, 100_000),
    ("$100-150k", 100_000, 150_000),
    (">150k", 150_000, None),
)
PEW_DOLLAR_YEAR = 2007
PEW_INCOME_UNKNOWN_COLUMN = "Don't know/refused"
PEW_RELIGION_NONRESPONSE = "Don\u2019t know/refused"  # the tidyr file spells it with a curly apostrophe
PEW_RELIGION_LABELS = {
    "Agnostic": "No religion (agnostic)",
    "Atheist": "No religion (atheist)",
    "Unaffiliated": "No religion",
    "Evangelical Prot": "Protestant (evangelical)",
    "Historically Black Prot": "Protestant (historically Black church)",
    "Mainline Prot": "Protestant (mainline)",
    "Orthodox": "Orthodox Christian",
    "Other Faiths": "Other religion",
    "Other World Religions": "Other world religion",
}

# One readable religion vocabulary for every table set: "Tradition (detail)", no survey abbreviations.
GSS_RELIGION_LABELS = {
    "Catholic": "Catholic",
    "None": "No religion",
    "Christian": "Christian (no denomination given)",
    "Jewish": "Jewish",
    "Other": "Other religion",
    "Buddhism": "Buddhist",
    "Inter-nondenominational": "Christian (interdenominational or nondenominational)",
    "Moslem/islam": "Muslim",
    "Orthodox-christian": "Orthodox Christian",
    "Hinduism": "Hindu",
    "Other eastern": "Other Eastern religion",
    "Native american": "Native American religion",
}
GSS_DENOMINATION_LABELS = {
    "Southern baptist": "Southern Baptist",
    "Baptist-dk which": "Baptist",
    "Am baptist asso": "American Baptist Association",
    "Am bapt ch in usa": "American Baptist Churches in the USA",
    "Nat bapt conv of am": "National Baptist Convention of America",
    "Nat bapt conv usa": "National Baptist Convention, USA",
    "Other baptists": "other Baptist",
    "United methodist": "United Methodist",
    "Methodist-dk which": "Methodist",
    "Afr meth episcopal": "African Methodist Episcopal",
    "Afr meth ep zion": "African Methodist Episcopal Zion",
    "Other methodist": "other Methodist",
    "Lutheran-dk which": "Lutheran",
    "Lutheran-mo synod": "Lutheran Church-Missouri Synod",
    "Am lutheran": "American Lutheran Church",
    "Evangelical luth": "Evangelical Lutheran",
    "Luth ch in america": "Lutheran Church in America",
    "Wi evan luth synod": "Wisconsin Evangelical Lutheran Synod",
    "Other lutheran": "other Lutheran",
    "Presbyterian-dk wh": "Presbyterian",
    "United pres ch in us": "United Presbyterian Church in the USA",
    "Presbyterian c in us": "Presbyterian Church in the US",
    "Presbyterian, merged": "Presbyterian Church (USA)",
    "Other presbyterian": "other Presbyterian",
    "Episcopal": "Episcopal",
    "No denomination": "no denomination",
    "Other": "other denomination",
}

# ANES 1996 PID 0-6 in the GSS wording of the same 7-point question.
ANES_PARTY_LABELS = {
    0: "Strong Democrat",
    1: "Not very strong Democrat",
    2: "Independent, close to Democrat",
    3: "Independent",
    4: "Independent, close to Republican",
    5: "Not very strong Republican",
    6: "Strong Republican",
}
# Ideology given party has 8 x 4 x 4 cells over 944 respondents; the party-alone fallback is accepted from 30
# respondents (ANES has 37 pure Independents): a 10 % share then has a standard error of about 5 points.
IDEOLOGY_MIN_CELL_N = 30

ANES_IDEOLOGY = (
    "Extremely liberal",
    "Liberal",
    "Slightly liberal",
    "Moderate",
    "Slightly conservative",
    "Conservative",
    "Extremely conservative",
)  # selfLR 1..7

# GSS partyid, worded as the GSS question reads ("not very strong", "close to").
GSS_PARTY_LABELS = {
    "Strong democrat": "Strong Democrat",
    "Not str democrat": "Not very strong Democrat",
    "Ind,near dem": "Independent, close to Democrat",
    "Independent": "Independent",
    "Ind,near rep": "Independent, close to Republican",
    "Not str republican": "Not very strong Republican",
    "Strong republican": "Strong Republican",
    "Other party": "Other party",
}
GSS_NONRESPONSE = ("No answer", "Don't know")
GSS_RACES = ("White", "Black", "Other")
# GSS denom values that say nothing about the denomination: such Protestants are just "Protestant".
GSS_DENOM_UNINFORMATIVE = ("No answer", "Don't know", "Not applicable")

# BLS CPI-U, U.S. city average, all items, 1982-84=100, annual averages (series CUUR0000SA0).
CPI_U_ANNUAL: dict[int, float] = {
    1996: 156.9, 1997: 160.5, 1998: 163.0, 1999: 166.6, 2000: 172.2, 2001: 177.1, 2002: 179.9,
    2003: 184.0, 2004: 188.9, 2005: 195.3, 2006: 201.6, 2007: 207.342, 2008: 215.303, 2009: 214.537,
    2010: 218.056, 2011: 224.939, 2012: 229.594, 2013: 232.957, 2014: 236.736, 2015: 237.017,
    2016: 240.007, 2017: 245.120, 2018: 251.107, 2019: 255.657, 2020: 258.811, 2021: 270.970,
    2022: 292.655, 2023: 304.702,
}


@dataclass(frozen=True)
class Source:
    """Where a table's data come from, as recorded in the manifest and PROVENANCE.md."""

    name: str
    citation: str
    license: str
    year: str
    raw_files: tuple[str, ...]


SOURCES = {
    "sapa_bfi": Source(
        name="SAPA project, 25 IPIP Big Five items (psychTools::bfi)",
        citation=(
            "Revelle, W. (2024). psychTools: Tools to Accompany the 'psych' Package for Psychological Research "
            "(dataset bfi, bfi.dictionary, bfi.keys). Northwestern University. Items from the International "
            "Personality Item Pool (Goldberg, 1999); data from the SAPA web project (Revelle, Wilt & Rosenthal, "
            "2010)."
        ),
        license="GPL-2 | GPL-3 (psychTools)",
        year="circa 2010 (SAPA web sample; exact dates not given by psychTools)",
        raw_files=("bfi.csv", "bfi_keys.json"),
    ),
    "sapa_spi": Source(
        name="SAPA Personality Inventory, 135 items (psychTools::spi)",
        citation=(
            "Condon, D. M. (2018). The SAPA Personality Inventory: An empirically-derived, hierarchically-organized "
            "self-report personality assessment model. PsyArXiv. Data: Revelle, W. (2024). psychTools "
            "(dataset spi, spi.keys)."
        ),
        license="GPL-2 | GPL-3 (psychTools)",
        year="2010s (SAPA web sample; exact dates not given by psychTools)",
        raw_files=("spi.csv", "spi_keys.json"),
    ),
    "anes96": Source(
        name="American National Election Studies, 1996 Time Series (statsmodels anes96 subset)",
        citation=(
            "The American National Election Studies (www.electionstudies.org). The 1996 ANES Time Series Study. "
            "Subset of 944 respondents as distributed with statsmodels (statsmodels.datasets.anes96), after "
            "Faraway's nes96."
        ),
        license="public domain (as stated by statsmodels)",
        year="1996",
        raw_files=("anes96.csv",),
    ),
    "gss": Source(
        name="General Social Survey 2000-2014 (forcats gss_cat extract)",
        citation=(
            "Smith, T. W., Davern, M., Freese, J. & Morgan, S. L. General Social Surveys, 1972-2018. NORC at the "
            "University of Chicago. Extract gss_cat (years 2000-2014) from Wickham, H. forcats: Tools for Working "
            "with Categorical Variables (R package)."
        ),
        license="MIT (forcats); GSS data are public",
        year="2000-2014 (even years)",
        raw_files=("gss_cat.csv",),
    ),
    "pew_rls": Source(
        name="Pew Research Center, U.S. Religious Landscape Study 2007 (tidyr relig_income)",
        citation=(
            "Pew Research Center Forum on Religion & Public Life (2008). U.S. Religious Landscape Survey (fielded "
            "2007). Religion x income counts as distributed in Wickham, H. tidyr: Tidy Messy Data (R package), "
            "dataset relig_income."
        ),
        license="MIT (tidyr); counts published by Pew Research Center",
        year="2007",
        raw_files=("relig_income.csv",),
    ),
    "bls_cpi": Source(
        name="BLS Consumer Price Index for All Urban Consumers (CPI-U), U.S. city average, all items",
        citation="U.S. Bureau of Labor Statistics, series CUUR0000SA0, annual averages, 1982-84=100.",
        license="public domain (U.S. government work, 17 USC 105)",
        year="1996-2023",
        raw_files=(),
    ),
}


@dataclass(frozen=True)
class TableSpec:
    """One conditional table: its cells, vocabulary and fallback chain.

    Attributes:
        name: Table name, also the CSV's stem.
        field: The persona field it fills.
        source: Key into ``SOURCES``.
        conditions: Condition columns, in the CSV's column order.
        grid: The levels of each condition; the table has one cell per combination.
        vocabulary: Every value the table can give, in the CSV's row order.
        fallbacks: Coarser condition sets tried in order when a cell is thin; the last must always have data.
        derivation: Human-readable derivation steps, for PROVENANCE.md and the manifest.
        value_columns: The CSV's value columns: ``("value",)``, or several for a joint table (then each
            vocabulary entry is a tuple, one label per column).
        min_cell_n: Respondents a cell needs before it stops falling back.
    """

    name: str
    field: str
    source: str
    conditions: tuple[str, ...]
    grid: dict[str, tuple[str, ...]]
    vocabulary: tuple[str, ...]
    fallbacks: tuple[tuple[str, ...], ...]
    derivation: tuple[str, ...]
    value_columns: tuple[str, ...] = ("value",)
    min_cell_n: int = MIN_CELL_N


@dataclass
class BuiltTable:
    """A derived table's rows and what PROVENANCE.md says about how it was made."""

    spec: TableSpec
    rows: list[list[str]]
    respondents: int
    basis_counts: dict[str, int]
    notes: list[str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _band_labels(bands: Sequence[tuple[Any, ...]]) -> tuple[str, ...]:
    return tuple(band[0] for band in bands)


def _age_band(age: pd.Series, bands: Sequence[tuple[str, int | None, int | None]]) -> pd.Series:
    """Label each age with its band; ages outside every band get <NA>."""
    out = pd.Series(pd.NA, index=age.index, dtype="object")
    for label, lower, upper in bands:
        mask = age.notna()
        if lower is not None:
            mask &= age >= lower
        if upper is not None:
            mask &= age < upper
        out[mask] = label
    return out


def _basis_label(basis: tuple[str, ...]) -> str:
    return "+".join(basis) if basis else "all"


def conditional_rows(data: pd.DataFrame, spec: TableSpec) -> BuiltTable:
    """Count ``data.value`` in every cell of ``spec.grid``, falling back to coarser cells when thin.

    Args:
        data: One row per respondent (or per count group) with the condition columns, ``value`` and
            ``weight`` (1 for respondents, the published count for count tables).
        spec: The table to build.

    Returns:
        The table's rows as strings, with the number of cells that used each basis.
    """
    unknown = sorted(set(data["value"]) - set(spec.vocabulary), key=str)
    if unknown:
        raise ValueError(f"{spec.name}: values {unknown} are not in the table's vocabulary")
    chain = (spec.conditions, *spec.fallbacks)
    columns = {c: data[c].to_numpy(dtype=object) for c in spec.conditions}
    values = data["value"].to_numpy(dtype=object)
    weights = data["weight"].to_numpy(dtype=np.int64)
    rows: list[list[str]] = []
    basis_counts = {_basis_label(b): 0 for b in chain}
    notes: list[str] = []
    fallback_cells = 0
    for cell in itertools.product(*(spec.grid[c] for c in spec.conditions)):
        where = dict(zip(spec.conditions, cell, strict=True))
        for basis in chain:
            mask = np.ones(len(data), dtype=bool)
            for column in basis:
                mask &= columns[column] == where[column]
            total = int(weights[mask].sum())
            if total >= spec.min_cell_n:
                break
        if total == 0:
            raise ValueError(f"{spec.name}: cell {where} has no data even at its coarsest fallback")
        counts = {v: 0 for v in spec.vocabulary}
        for value, weight in zip(values[mask], weights[mask], strict=True):
            counts[value] += int(weight)
        label = _basis_label(basis)
        basis_counts[label] += 1
        if basis != spec.conditions:
            fallback_cells += 1
            if len(notes) < MAX_NOTES:
                notes.append(f"{', '.join(f'{k}={v}' for k, v in where.items())}: {label} (n={total})")
        for value in spec.vocabulary:
            labels = value if isinstance(value, tuple) else (value,)
            rows.append(
                [spec.name, *cell, *labels, PROBABILITY_FORMAT.format(counts[value] / total), str(counts[value]),
                 label]
            )
    if fallback_cells > len(notes):
        notes.append(f"... and {fallback_cells - len(notes)} more fallback cells (see the basis column)")
    return BuiltTable(spec=spec, rows=rows, respondents=int(weights.sum()), basis_counts=basis_counts, notes=notes)


# ----------------------------------------------------------------------------------------------- Big Five


def score_traits(items: pd.DataFrame, keys: dict[str, list[str]], trait_of_key: dict[str, str]) -> pd.DataFrame:
    """Score each trait as the mean of its keyed items, reversing the ``-``-prefixed ones.

    A respondent who answered fewer than ``MIN_ITEM_SHARE`` of a trait's items gets no score for it.
    """
    scores = {}
    for key, trait in trait_of_key.items():
        keyed = []
        for item in keys[key]:
            x = pd.to_numeric(items[item.lstrip("-")], errors="coerce")
            keyed.append(ITEM_SCALE_MAX + 1 - x if item.startswith("-") else x)
        block = pd.concat(keyed, axis=1)
        answered = block.notna().sum(axis=1)
        scores[trait] = block.mean(axis=1).where(answered >= math.ceil(MIN_ITEM_SHARE * len(keyed)))
    return pd.DataFrame(scores)[list(BIG_FIVE_TRAITS)]


def levels_by_quantile(score: pd.Series) -> pd.Series:
    """Turn scores into the five levels by each respondent's mid-rank percentile.

    Scores are means of a few 1-6 items, so many respondents tie; the mid-rank puts a whole tie group
    in one level (deterministically) instead of splitting it at random.
    """
    valid = score.dropna()
    percentile = (valid.rank(method="average") - 0.5) / len(valid)
    index = np.searchsorted(np.asarray(BIG_FIVE_CUTS), percentile.to_numpy(), side="right")
    return pd.Series(np.asarray(BIG_FIVE_LEVELS, dtype=object)[index], index=valid.index)


def build_big_five(raw: pd.DataFrame, keys: dict[str, list[str]], trait_of_key: dict[str, str], *, name: str,
                   source: str, sex_column: str, instrument: str) -> BuiltTable:
    """P(level | trait, age band, sex) from SAPA item responses."""
    age = pd.to_numeric(raw["age"], errors="coerce")
    sex = pd.to_numeric(raw[sex_column], errors="coerce").map(SEX_CODES)
    keep = (age >= MIN_RESPONDENT_AGE) & sex.notna()
    scores = score_traits(raw.loc[keep], keys, trait_of_key)
    age_band = _age_band(age[keep], BIG_FIVE_AGE_BANDS)
    parts = []
    notes = []
    for trait in BIG_FIVE_TRAITS:
        level = levels_by_quantile(scores[trait])
        parts.append(pd.DataFrame({
            "trait": trait, "age_band": age_band[level.index], "sex": sex[level.index], "value": level, "weight": 1,
        }))
        ranges = []
        for lev in BIG_FIVE_LEVELS:
            s = scores[trait][level.index][level == lev]
            ranges.append(f"{lev} {s.min():.2f}-{s.max():.2f} ({len(s) / len(level):.1%})")
        notes.append(f"{trait} (n={len(level)}): " + "; ".join(ranges))
    data = pd.concat(parts, ignore_index=True)
    spec = TableSpec(
        name=name,
        field="big five scores",
        source=source,
        conditions=("trait", "age_band", "sex"),
        grid={"trait": BIG_FIVE_TRAITS, "age_band": _band_labels(BIG_FIVE_AGE_BANDS), "sex": ("Male", "Female")},
        vocabulary=BIG_FIVE_LEVELS,
        fallbacks=(("trait", "sex"), ("trait",)),
        derivation=(
            f"Kept respondents aged >= {MIN_RESPONDENT_AGE} (younger ages are data errors) with sex coded 1 (Male) "
            "or 2 (Female).",
            f"Scored each trait as the mean of its {instrument} keyed items (1-6 scale; '-' keys reversed as 7 - x), "
            f"needing at least {MIN_ITEM_SHARE:.0%} of the trait's items answered.",
            "Levels by each respondent's mid-rank percentile in the whole kept sample: < 5 % Extremely Low, "
            "5-25 % Low, 25-75 % Average, 75-95 % High, >= 95 % Extremely High (BFI-2-style norm bands). Ties "
            "stay in one level, so the achieved shares differ a little from 5/20/50/20/5.",
            f"Age bands <18, 18-29, 30-44, 45+: the sample has only {int((keep & (age >= 65)).sum())} respondents "
            "aged 65+, too few for their own band, so 45+ covers them; personas younger than the youngest "
            "respondent use <18.",
            f"Cells with fewer than {MIN_CELL_N} scored respondents fall back to (trait, sex), then to (trait).",
            "The table keeps each trait's distribution by age and sex; the traits are tied together by "
            f"{name}_correlation.csv (a Gaussian copula with the sample's normal-scores correlation).",
            "Unweighted: SAPA is a self-selected web sample, not a probability sample.",
        ),
    )
    built = conditional_rows(data, spec)
    # conditional_rows counts one row per respondent and trait; report respondents, not responses.
    built.respondents = int(scores.notna().any(axis=1).sum())
    built.notes = ["Achieved level score ranges and shares: " + n for n in notes] + built.notes
    return built


def big_five_correlation(raw: pd.DataFrame, keys: dict[str, list[str]], trait_of_key: dict[str, str], *,
                         sex_column: str) -> tuple[bytes, int]:
    """The traits' normal-scores correlation matrix: the latent correlation of the Gaussian copula.

    Each trait score becomes ``Phi^-1((mid-rank - 0.5) / n)``; the matrix is the Pearson correlation of those
    normal scores over respondents with all five traits scored (the same kept respondents as the level table).
    Drawing ``z ~ N(0, R)`` and cutting each ``Phi(z)`` at a cell's cumulative level shares then gives each
    trait its cell distribution and the pairs the sample's rank correlation.
    """
    from scipy.stats import norm

    age = pd.to_numeric(raw["age"], errors="coerce")
    sex = pd.to_numeric(raw[sex_column], errors="coerce").map(SEX_CODES)
    keep = (age >= MIN_RESPONDENT_AGE) & sex.notna()
    scores = score_traits(raw.loc[keep], keys, trait_of_key).dropna()
    normal = scores.rank(method="average").sub(0.5).div(len(scores)).apply(norm.ppf)
    matrix = np.corrcoef(normal.to_numpy().T)
    rows = [[trait, *(f"{v:.6f}" for v in matrix[i])] for i, trait in enumerate(BIG_FIVE_TRAITS)]
    return _csv_bytes(["trait", *BIG_FIVE_TRAITS], rows), len(scores)


# ----------------------------------------------------------------------------------------------- ANES, GSS, Pew


def build_ideology(anes: pd.DataFrame) -> BuiltTable:
    """P(7-point liberal-conservative self-placement | party id, age band, family income band) from ANES 1996."""
    income_band = pd.Series(pd.NA, index=anes.index, dtype="object")
    for label, _, _, codes in ANES_INCOME_BANDS:
        income_band[anes["income"].isin(list(codes))] = label
    self_lr = pd.to_numeric(anes["selfLR"], errors="coerce")
    data = pd.DataFrame({
        "political views": pd.to_numeric(anes["PID"], errors="coerce").map(ANES_PARTY_LABELS),
        "age_band": _age_band(pd.to_numeric(anes["age"], errors="coerce"), ADULT_AGE_BANDS),
        "income_band": income_band,
        "value": self_lr.map(lambda x: ANES_IDEOLOGY[int(x) - 1] if x == x else pd.NA),  # x == x: not NaN
        "weight": 1,
    }).dropna()
    spec = TableSpec(
        name="ideology_anes96",
        field="ideology",
        source="anes96",
        conditions=("political views", "age_band", "income_band"),
        grid={"political views": tuple(GSS_PARTY_LABELS.values()), "age_band": _band_labels(ADULT_AGE_BANDS),
              "income_band": (*(b[0] for b in ANES_INCOME_BANDS), UNKNOWN_BAND)},
        vocabulary=ANES_IDEOLOGY,
        fallbacks=(("political views", "income_band"), ("political views",), ()),
        min_cell_n=IDEOLOGY_MIN_CELL_N,
        derivation=(
            "selfLR 1-7 labelled Extremely liberal ... Extremely conservative (ANES 7-point scale).",
            "PID 0-6 (the 7-point party identification) in the GSS wording of the same question: "
            + "; ".join(f"{k} -> '{v}'" for k, v in ANES_PARTY_LABELS.items()) + ". The sampler draws party (with "
            "religion) from GSS first and ideology given that party, so party and ideology have ANES 1996's joint. "
            "ANES has no 'Other party': those personas get the ideology of all respondents of their age and income.",
            "Income is the respondent's family income, 24 ANES codes grouped into three bands in 1996 dollars: "
            "codes 1-14 <$25k, 15-19 $25k-$50k, 20-24 $50k+ (about a third of respondents each). The sampler "
            "compares the persona's household income (the sum of the household members' ADJINC-adjusted personal "
            "incomes, the Bureau's HINCP; household income stands in for family income), deflated to 1996 dollars "
            "with CPI-U. Personas in group quarters have no household income: band 'Unknown'.",
            f"Cells with fewer than {IDEOLOGY_MIN_CELL_N} respondents fall back to (party, income band), then to "
            f"party alone, then to all respondents. The income band '{UNKNOWN_BAND}' has no data of its own and "
            "always falls back.",
            "Unweighted (the statsmodels subset has no weights).",
        ),
    )
    return conditional_rows(data, spec)


def _gss_base(gss: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "age_band": _age_band(pd.to_numeric(gss["age"], errors="coerce"), ADULT_AGE_BANDS),
        "race": gss["race"].where(gss["race"].isin(GSS_RACES)),
    }, index=gss.index)


def build_political_views(gss: pd.DataFrame) -> BuiltTable:
    """P(party identification | age band, race) from GSS 2000-2014."""
    data = _gss_base(gss)
    data["value"] = gss["partyid"].map(GSS_PARTY_LABELS)
    data["weight"] = 1
    dropped = int(gss["partyid"].isin(GSS_NONRESPONSE).sum())
    no_age = int(gss["age"].isna().sum())
    data = data.dropna()
    spec = TableSpec(
        name="political_views_gss",
        field="political views",
        source="gss",
        conditions=("age_band", "race"),
        grid={"age_band": _band_labels(ADULT_AGE_BANDS), "race": GSS_RACES},
        vocabulary=tuple(GSS_PARTY_LABELS.values()),
        fallbacks=(("race",), ()),
        derivation=(
            "partyid relabelled as the GSS question words it: " + "; ".join(
                f"'{k}' -> '{v}'" for k, v in GSS_PARTY_LABELS.items()) + ".",
            f"Dropped nonresponse {', '.join(repr(x) for x in GSS_NONRESPONSE)} ({dropped} rows) and the "
            f"{no_age} rows without age (GSS codes 89 and older as 89, which falls in 65+).",
            "All survey years 2000-2014 pooled; GSS race is White / Black / Other (the sampler maps ACS race "
            "labels onto these, see persona_gen/enrich/psychodemographics.py).",
            f"Cells with fewer than {MIN_CELL_N} respondents fall back to race alone, then to all respondents.",
            "Unweighted (gss_cat carries no survey weights).",
        ),
    )
    return conditional_rows(data, spec)


def gss_religion_label(relig: str, denom: object) -> str:
    """GSS religion in the readable vocabulary; Protestants with their denomination when the GSS gives one."""
    if relig == "Protestant":
        if isinstance(denom, str) and denom in GSS_DENOMINATION_LABELS:
            return f"Protestant ({GSS_DENOMINATION_LABELS[denom]})"
        return "Protestant"
    return GSS_RELIGION_LABELS[relig]


def build_party_religion(gss: pd.DataFrame) -> BuiltTable:
    """P(party identification, religion | age band, race) from GSS 2000-2014, jointly."""
    data = _gss_base(gss)
    answered = (~gss["relig"].isin(GSS_NONRESPONSE) & gss["relig"].notna()
                & ~gss["partyid"].isin(GSS_NONRESPONSE) & gss["partyid"].notna())
    religion = pd.Series([gss_religion_label(r, d) if ok else None
                          for r, d, ok in zip(gss["relig"], gss["denom"], answered, strict=True)], index=gss.index)
    party = gss["partyid"].map(GSS_PARTY_LABELS)
    data["value"] = pd.Series([(p, r) if ok else None for p, r, ok in zip(party, religion, answered, strict=True)],
                              index=gss.index, dtype="object")
    data["weight"] = 1
    dropped = int((~answered).sum())
    no_age = int(gss["age"].isna().sum())
    data = data.dropna()
    party_order = {label: i for i, label in enumerate(GSS_PARTY_LABELS.values())}
    vocabulary = tuple(sorted(set(data["value"]), key=lambda v: (party_order[v[0]], v[1])))
    unknown_denoms = sorted(set(gss.loc[gss["relig"] == "Protestant", "denom"].dropna()) - set(GSS_DENOMINATION_LABELS)
                            - set(GSS_DENOM_UNINFORMATIVE))
    if unknown_denoms:
        raise ValueError(f"party_religion_gss: denominations without a readable label: {unknown_denoms}")
    spec = TableSpec(
        name="party_religion_gss",
        field="political views, religion",
        source="gss",
        conditions=("age_band", "race"),
        grid={"age_band": _band_labels(ADULT_AGE_BANDS), "race": GSS_RACES},
        vocabulary=vocabulary,
        value_columns=("political views", "religion"),
        fallbacks=(("race",), ()),
        derivation=(
            "One row per respondent: (partyid, relig) drawn together, so a persona's party and religion have the "
            "GSS joint within its age band and race.",
            "partyid relabelled as the GSS question words it: " + "; ".join(
                f"'{k}' -> '{v}'" for k, v in GSS_PARTY_LABELS.items()) + ".",
            "relig in one readable vocabulary shared with the Pew table: " + "; ".join(
                f"'{k}' -> '{v}'" for k, v in GSS_RELIGION_LABELS.items()) + "; Protestants get their denomination "
            "spelled out, e.g. 'Protestant (Southern Baptist)' for 'Southern baptist', 'Protestant (Baptist)' for "
            "'Baptist-dk which' (Baptist, which one not known), or plain 'Protestant' when denom is "
            f"{', '.join(repr(x) for x in GSS_DENOM_UNINFORMATIVE)}.",
            f"Dropped rows with partyid or relig nonresponse {', '.join(repr(x) for x in GSS_NONRESPONSE)} "
            f"({dropped} rows) and the {no_age} rows without age (GSS codes 89 and older as 89, which falls in 65+).",
            "GSS interviews adults only: the sampler gives personas under 18 the religion of a draw from the "
            "youngest band (18-29), the closest available stand-in for the religion they are raised in, and no "
            "party.",
            "Not conditioned on income: gss_cat's rincome is the respondent's own earnings in nominal dollars of "
            "seven survey years, top-coded at $25,000 or more, and 'Not applicable' for everyone without earnings; "
            "it cannot be put on the census income's scale.",
            f"Cells with fewer than {MIN_CELL_N} respondents fall back to race alone, then to all respondents. "
            "Pairs that a cell's respondents do not have get zero probability (no smoothing).",
            "All survey years 2000-2014 pooled; unweighted (gss_cat carries no survey weights).",
        ),
    )
    return conditional_rows(data, spec)


def build_religion_pew(pew: pd.DataFrame) -> BuiltTable:
    """P(religious tradition | household income band) from the Pew RLS 2007 counts."""
    answered = pew[pew["religion"] != PEW_RELIGION_NONRESPONSE]
    dropped = int(pew.loc[pew["religion"] == PEW_RELIGION_NONRESPONSE].drop(columns="religion").to_numpy().sum())
    long = answered.melt(id_vars="religion", var_name="income_band", value_name="weight")
    long["value"] = long["religion"].map(lambda r: PEW_RELIGION_LABELS.get(r, r))
    long["weight"] = long["weight"].round().astype(np.int64)
    spec = TableSpec(
        name="religion_pew",
        field="religion",
        source="pew_rls",
        conditions=("income_band",),
        grid={"income_band": (*_band_labels(PEW_INCOME_BANDS), UNKNOWN_BAND)},
        vocabulary=tuple(sorted(set(long["value"]))),
        fallbacks=((),),
        derivation=(
            "Religious traditions in the readable vocabulary shared with the GSS table: " + "; ".join(
                f"'{k}' -> '{v}'" for k, v in PEW_RELIGION_LABELS.items()) + "; the other labels as Pew writes "
            "them.",
            "Pew has no party: in the 'pew_religion' table set religion is drawn independently of party (party "
            "comes from political_views_gss.csv), so that set does not keep the party x religion joint.",
            f"Dropped the religion row '{PEW_RELIGION_NONRESPONSE}' ({dropped} respondents).",
            f"Income bands are Pew's household income columns in 2007 dollars; the '{PEW_INCOME_UNKNOWN_COLUMN}' "
            f"column has no band of its own but counts toward '{UNKNOWN_BAND}', which is the distribution over "
            "all respondents. The sampler deflates a persona's personal income to 2007 dollars with CPI-U; "
            f"personas under 18 and personas without a numeric income get '{UNKNOWN_BAND}' (a child's own "
            "income says nothing about the household's).",
            "Counts as published (Pew's weighting is not applied in relig_income).",
        ),
    )
    return conditional_rows(long[["income_band", "value", "weight"]], spec)


# ----------------------------------------------------------------------------------------------- writing


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _bound(value: int | None) -> str:
    return "" if value is None else str(value)


def bands_rows() -> list[list[str]]:
    """The bands that map a persona's age and income onto each table's cells."""
    rows: list[list[str]] = []
    for table in ("big_five_bfi", "big_five_spi"):
        rows += [[table, "age", label, _bound(lo), _bound(hi), ""] for label, lo, hi in BIG_FIVE_AGE_BANDS]
    for table in ("ideology_anes96", "political_views_gss", "party_religion_gss"):
        rows += [[table, "age", label, _bound(lo), _bound(hi), ""] for label, lo, hi in ADULT_AGE_BANDS]
    rows += [["ideology_anes96", "income", label, _bound(lo), _bound(hi), str(ANES_DOLLAR_YEAR)]
             for label, lo, hi, _ in ANES_INCOME_BANDS]
    rows += [["religion_pew", "income", label, _bound(lo), _bound(hi), str(PEW_DOLLAR_YEAR)]
             for label, lo, hi in PEW_INCOME_BANDS]
    return rows


def provenance_markdown(built: list[BuiltTable], files: dict[str, bytes], raw_hashes: dict[str, str],
                        correlations: dict[str, dict[str, Any]]) -> str:
    """PROVENANCE.md: for each table its source, citation, license, year, derivation and fallbacks."""
    lines = [
        "# Provenance of the psychodemographic tables",
        "",
        "Generated by `scripts/derive_tables.py` from the raw files in `shared/data/distributions/`; do not edit",
        "by hand. Rerunning the script on the same raw files reproduces every file here byte for byte.",
        "",
        "## Common method",
        "",
        "- Each table is tidy CSV: `table,<condition columns>,value,probability,count,basis` (the joint table has",
        "  two value columns, `political views,religion`), one row per cell and value, zeros included. `count`",
        "  is the number of respondents with that value in the data the cell's probabilities come from;",
        "  `probability` is `count / sum(count)` over the cell, rounded to 6 decimals.",
        f"- A cell with fewer than {MIN_CELL_N} respondents falls back to a coarser condition; `basis` says which",
        "  conditions the data were selected on (`all` = every respondent). Fallback cells are listed below.",
        "- No survey weights are applied (the extracts carry none); the SAPA samples are self-selected web samples.",
        "- `bands.csv` lists the age and income bands (lower bound inclusive, upper exclusive, empty = open).",
        "  Incomes are compared in the table's `dollar_year`: the sampler deflates a persona's income with",
        "  `cpi_u.csv`. A persona with no numeric income gets the income band `Unknown`.",
        "- Personas younger than a table's youngest band use that band; personas under 18 get",
        "  'Too young to have political views' for ideology and political views instead of a draw.",
        "- The default set draws jointly: (party, religion) from `party_religion_gss.csv`, then ideology given",
        "  that party from `ideology_anes96.csv`; the five Big Five levels together through the copula of",
        "  `big_five_bfi_correlation.csv`.",
        "",
        "## Raw files (sha256)",
        "",
    ]
    lines += [f"- `{name}`: `{digest}`" for name, digest in sorted(raw_hashes.items())]
    for table in built:
        spec = table.spec
        source = SOURCES[spec.source]
        file = f"{spec.name}.csv"
        lines += [
            "",
            f"## `{file}` ({spec.field})",
            "",
            f"- Source: {source.name}",
            f"- Citation: {source.citation}",
            f"- License: {source.license}",
            f"- Year: {source.year}",
            f"- Raw files: {', '.join(f'`{f}`' for f in source.raw_files)}",
            f"- Conditions: {', '.join(f'`{c}`' for c in spec.conditions)}; respondents used: {table.respondents}; "
            f"rows: {len(table.rows)}; sha256 `{_sha256(files[file])}`",
            "- Cells by basis: " + ", ".join(f"`{k}` {v}" for k, v in table.basis_counts.items()),
            "- Derivation:",
        ]
        lines += [f"  {i}. {step}" for i, step in enumerate(spec.derivation, 1)]
        if table.notes:
            lines.append("- Notes and fallback cells:")
            lines += [f"  - {note}" for note in table.notes]
    for name, meta in correlations.items():
        lines += [
            "",
            f"## `{meta['file']}` (big five scores: how the traits go together)",
            "",
            f"- Source: {meta['source']}; respondents with all five traits scored: {meta['respondents']}; "
            f"sha256 `{meta['sha256']}`",
            "- Derivation: each trait score (scored as for the level table) becomes the normal score "
            "`Phi^-1((mid-rank - 0.5) / n)`; the file is the Pearson correlation matrix of those normal scores.",
            f"- Use: the sampler draws `z ~ N(0, R)` per persona and cuts each `Phi(z)` at the cumulative level "
            f"shares of the persona's `{name}.csv` cell (a Gaussian copula): each trait keeps its age x sex "
            "distribution and the traits keep the sample's rank correlation.",
        ]
    cpi = SOURCES["bls_cpi"]
    lines += [
        "",
        "## `cpi_u.csv` (income deflator)",
        "",
        f"- Source: {cpi.name}",
        f"- Citation: {cpi.citation}",
        f"- License: {cpi.license}",
        f"- Year: {cpi.year}",
        "- Derivation: annual averages as published by BLS, typed in `scripts/derive_tables.py`. A persona income",
        "  `x` in dollars of year `y` is `x * cpi[table_year] / cpi[y]` in the table's dollars.",
        "",
        "## `bands.csv`",
        "",
        "- The age and income bands of the tables above, written from the same constants that built them.",
        "",
    ]
    return "\n".join(lines)


def derive(data_dir: Path, out_dir: Path) -> dict[str, bytes]:
    """Derive every table from ``data_dir/distributions`` and write them into ``out_dir``.

    Args:
        data_dir: The shared data folder (holding ``distributions/``).
        out_dir: Where the tables go; created if missing.

    Returns:
        The bytes written, by file name.
    """
    raw = data_dir / "distributions"
    # Only an empty field is missing: pandas' default NA strings include "None", which is a GSS religion.
    read: dict[str, Any] = {"keep_default_na": False, "na_values": [""], "encoding": "utf-8"}
    bfi = pd.read_csv(raw / "bfi.csv", **read)
    spi = pd.read_csv(raw / "spi.csv", **read)
    anes = pd.read_csv(raw / "anes96.csv", **read)
    gss = pd.read_csv(raw / "gss_cat.csv", **read)
    pew = pd.read_csv(raw / "relig_income.csv", **read)
    bfi_keys = json.loads((raw / "bfi_keys.json").read_text(encoding="utf-8"))
    spi_keys = json.loads((raw / "spi_keys.json").read_text(encoding="utf-8"))

    built = [
        build_big_five(bfi, bfi_keys, BFI_TRAITS, name="big_five_bfi", source="sapa_bfi", sex_column="gender",
                       instrument="BFI (5 per trait)"),
        build_big_five(spi, spi_keys, SPI_TRAITS, name="big_five_spi", source="sapa_spi", sex_column="sex",
                       instrument="SPI-135 (14 per trait)"),
        build_ideology(anes),
        build_political_views(gss),
        build_party_religion(gss),
        build_religion_pew(pew),
    ]
    correlations = {
        "big_five_bfi": big_five_correlation(bfi, bfi_keys, BFI_TRAITS, sex_column="gender"),
        "big_five_spi": big_five_correlation(spi, spi_keys, SPI_TRAITS, sex_column="sex"),
    }
    files: dict[str, bytes] = {}
    for table in built:
        header = ["table", *table.spec.conditions, *table.spec.value_columns, "probability", "count", "basis"]
        files[f"{table.spec.name}.csv"] = _csv_bytes(header, table.rows)
    for name, (content, _) in correlations.items():
        files[f"{name}_correlation.csv"] = content
    files["bands.csv"] = _csv_bytes(["table", "variable", "band", "lower", "upper", "dollar_year"], bands_rows())
    files["cpi_u.csv"] = _csv_bytes(["year", "cpi_u"], [[str(y), f"{v:.3f}"] for y, v in sorted(CPI_U_ANNUAL.items())])

    raw_names = sorted({f for s in SOURCES.values() for f in s.raw_files})
    raw_hashes = {name: _sha256((raw / name).read_bytes()) for name in raw_names}
    manifest = {
        "generated_by": "scripts/derive_tables.py",
        "min_cell_n": MIN_CELL_N,
        "unknown_band": UNKNOWN_BAND,
        "tables": {
            table.spec.name: {
                "file": f"{table.spec.name}.csv",
                "field": table.spec.field,
                "conditions": list(table.spec.conditions),
                "value_columns": list(table.spec.value_columns),
                "vocabulary": [list(v) if isinstance(v, tuple) else v for v in table.spec.vocabulary],
                "source": SOURCES[table.spec.source].name,
                "citation": SOURCES[table.spec.source].citation,
                "license": SOURCES[table.spec.source].license,
                "year": SOURCES[table.spec.source].year,
                "derivation": list(table.spec.derivation),
                "raw_files": {f: raw_hashes[f] for f in SOURCES[table.spec.source].raw_files},
                "respondents": table.respondents,
                "rows": len(table.rows),
                "cells_by_basis": table.basis_counts,
                "sha256": _sha256(files[f"{table.spec.name}.csv"]),
            }
            for table in built
        },
        "correlations": {
            name: {
                "file": f"{name}_correlation.csv",
                "what": "latent (normal-scores) correlation of the five trait scores: the Gaussian copula that "
                        f"ties the five level draws of {name}.csv together",
                "respondents": respondents,
                "source": SOURCES[{"big_five_bfi": "sapa_bfi", "big_five_spi": "sapa_spi"}[name]].name,
                "sha256": _sha256(files[f"{name}_correlation.csv"]),
            }
            for name, (_, respondents) in correlations.items()
        },
        "auxiliary": {
            "bands.csv": {"what": "age and income bands per table", "sha256": _sha256(files["bands.csv"])},
            "cpi_u.csv": {
                "what": "income deflator",
                "source": SOURCES["bls_cpi"].name,
                "citation": SOURCES["bls_cpi"].citation,
                "license": SOURCES["bls_cpi"].license,
                "sha256": _sha256(files["cpi_u.csv"]),
            },
        },
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    files["PROVENANCE.md"] = provenance_markdown(built, files, raw_hashes, manifest["correlations"]).encode("utf-8")

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    return files


def default_data_dir() -> Path:
    """``$PERSONA_GEN_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("PERSONA_GEN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the tables")
    args = parser.parse_args(argv)
    if not (args.data / "distributions").is_dir():
        print(f"error: raw data folder {args.data / 'distributions'} does not exist; pass --data or set "
              "PERSONA_GEN_SHARED_DATA", file=sys.stderr)
        return 2
    files = derive(args.data, args.out)
    for name, content in files.items():
        print(f"{args.out / name}: {len(content)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
