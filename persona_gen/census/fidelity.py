"""How faithful a persona sample is to its census source: weighted 1-way and 2-way distributions.

The reference is the run's *target population*: the source records that satisfy ``sampler.where``, weighted by
PWGTP and scaled to ``sampler.quotas`` (:meth:`CensusSource.target_weights`). :func:`run_fidelity` reports two
samples against it: a fresh draw of the census stage's own kind (``fidelity_sample_size`` personas with the same
``where`` and quotas: is the sampler exact?) and the personas actually published (the consistency filter can select
on attributes: are they still the population?), and :func:`population_statement` says what that population is
(source, states, filter, quotas, whether minors are in it) for the card and the manifest.

For each census attribute (coarsened to at most ``max_categories`` groups: age and income in bands, occupation and
industry by their major-group prefix such as ``MGR``, other long-tailed fields to their largest groups plus
"Other") the sample's shares are compared with the PWGTP-weighted shares of the source records by total variation
distance (TVD = half the L1 distance). A TVD alone says little at a given sample size, so the report also gives the
mean TVD of ``reference_draws`` ideal draws: independent ``numpy`` weighted draws of the same size from the same
records. That is the sampling-noise floor; an exact sampler sits on it. A k-anonymity count says how many
sampled personas carry a rare combination of quasi-identifiers (they are copies of real records).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from persona_gen.census.keys import CENSUS_KEYS, DERIVED_KEYS, STATE
from persona_gen.census.source import Quotas, SourceLike, load_source
from persona_gen.core.errors import CensusError, format_error
from persona_gen.core.io import atomic_write_bytes

__all__ = [
    "DEFAULT_QUASI_IDENTIFIERS",
    "coarsen",
    "fidelity_report",
    "fidelity_summary",
    "population_statement",
    "published_frame",
    "run_fidelity",
    "tvd",
    "write_fidelity",
]

DEFAULT_QUASI_IDENTIFIERS = ("age", "sex", "race", "state", "education", "marital status", "occupation category")

_AGE_BANDS = (0, 5, 18, 25, 35, 45, 55, 65, 75, 85)
_INCOME_BANDS = (-math.inf, 0, 1, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000)
_INCOME_NAMES = ("Loss", "None", "$1 to $9,999", "$10,000 to $24,999", "$25,000 to $49,999", "$50,000 to $74,999",
                 "$75,000 to $99,999", "$100,000 to $149,999", "$150,000 or more")
_MAJOR_GROUP = re.compile(r"^([A-Z]{3})-")
OTHER = "Other"
ADULT_AGE = 18


def tvd(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Total variation distance between two distributions (counts or shares; each is normalised)."""
    p_arr = np.asarray(p, dtype=np.float64)
    q_arr = np.asarray(q, dtype=np.float64)
    return 0.5 * float(np.abs(p_arr / p_arr.sum() - q_arr / q_arr.sum()).sum())


def _age_band(age: float) -> str:
    if np.isnan(age):
        return OTHER
    index = int(np.searchsorted(_AGE_BANDS, age, side="right")) - 1
    lo = _AGE_BANDS[index]
    if index + 1 < len(_AGE_BANDS):
        return f"{lo} to {_AGE_BANDS[index + 1] - 1} years"
    return f"{lo} years and over"


def _income_band(label: str) -> str:
    value = pd.to_numeric(label, errors="coerce")
    if pd.isna(value):
        return label  # the not-applicable label stays its own group
    return _INCOME_NAMES[int(np.searchsorted(_INCOME_BANDS, float(value), side="right")) - 1]


def coarsen(key: str, labels: Sequence[Any], weights: npt.ArrayLike, *, max_categories: int = 30) -> dict[Any, str]:
    """Map each label of one attribute to a group, so that there are at most ``max_categories`` groups.

    Args:
        key: The persona key (age and income are banded; occupation and industry grouped by major-group prefix).
        labels: The attribute's distinct labels (or ages).
        weights: The population weight of each label, to keep the largest groups when a field has too many.
        max_categories: Largest number of groups.

    Returns:
        Label → group.
    """
    if key == "age":
        mapping = {label: _age_band(float(label)) for label in labels}
    elif key == "income":
        mapping = {label: _income_band(str(label)) for label in labels}
    elif key in ("occupation category", "industry category"):
        mapping = {label: (m.group(1) if (m := _MAJOR_GROUP.match(str(label))) else str(label)) for label in labels}
    else:
        mapping = {label: str(label) for label in labels}
    totals: dict[str, float] = {}
    for label, weight in zip(labels, np.asarray(weights, dtype=np.float64), strict=True):
        totals[mapping[label]] = totals.get(mapping[label], 0.0) + weight
    if len(totals) > max_categories:
        keep = set(sorted(totals, key=lambda g: (-totals[g], g))[: max_categories - 1])
        mapping = {label: (group if group in keep else OTHER) for label, group in mapping.items()}
    return mapping


class _Coder:
    """Integer group codes of one attribute, the same for the source records and any sample."""

    def __init__(self, key: str, column: pd.Series, weights: npt.NDArray[np.float64], max_categories: int) -> None:
        self.key = key
        codes, uniques = pd.factorize(column, sort=True)
        label_weights = np.bincount(codes, weights=weights, minlength=len(uniques))
        self.mapping = coarsen(key, list(uniques), label_weights, max_categories=max_categories)
        group_weight: dict[str, float] = {}
        for label, weight in zip(uniques, label_weights, strict=True):
            group_weight[self.mapping[label]] = group_weight.get(self.mapping[label], 0.0) + weight
        # Groups in order of census share: the figure reads top-down.
        self.groups = sorted(group_weight, key=lambda g: (-group_weight[g], g))
        if OTHER not in self.groups:
            self.groups.append(OTHER)
        self._index = {g: i for i, g in enumerate(self.groups)}
        self.source_codes = self.encode(column)

    def encode(self, column: pd.Series) -> npt.NDArray[np.intp]:
        codes, uniques = pd.factorize(column)
        other = self._index[OTHER]
        per_unique = np.asarray([self._index.get(self.mapping.get(u, OTHER), other) for u in uniques], dtype=np.intp)
        result = per_unique[codes] if len(uniques) else np.zeros(len(column), dtype=np.intp)
        return np.where(codes < 0, other, result)

    @property
    def size(self) -> int:
        return len(self.groups)


def _table(codes: npt.NDArray[np.intp], size: int, weights: npt.NDArray[np.float64] | None = None,
           ) -> npt.NDArray[np.float64]:
    return np.bincount(codes, weights=weights, minlength=size).astype(np.float64)


def _pair_codes(a: _Coder, b: _Coder, codes_a: npt.NDArray[np.intp], codes_b: npt.NDArray[np.intp],
                ) -> npt.NDArray[np.intp]:
    return codes_a * b.size + codes_b


def fidelity_report(
    sample: pd.DataFrame,
    source: SourceLike = None,
    *,
    where: str | None = None,
    quotas: Quotas | None = None,
    label: str = "sample",
    attributes: Iterable[str] | None = None,
    max_categories: int = 30,
    worst: int = 10,
    reference_draws: int = 3,
    reference_seed: int = 0,
    k: int = 5,
    quasi_identifiers: Sequence[str] = DEFAULT_QUASI_IDENTIFIERS,
) -> dict[str, Any]:
    """Compare a persona sample with the weighted census population it was drawn from.

    Args:
        sample: Personas from :func:`sample_personas` (the census keys at least).
        source: The source they were drawn from (anything :func:`load_source` takes).
        where: The ``where`` the sample was drawn with, so it is compared with the same sub-population.
        quotas: The quotas it was drawn with: the population's strata are scaled to their shares.
        label: What the sample is (``"target draw"``, ``"published personas"``), for the plot and the JSON.
        attributes: Keys to compare; default: every census key the source has.
        max_categories: Coarsen each attribute to at most this many groups.
        worst: How many of the worst attribute pairs to list.
        reference_draws: Ideal weighted draws of the sample's size that set the sampling-noise floor (0: none).
        reference_seed: Seed of those draws.
        k: A combination of quasi-identifiers is rare when fewer than ``k`` source records share it.
        quasi_identifiers: Keys that together could single a person out.

    Returns:
        A JSON-ready dict: ``one_way`` (per attribute: tvd, reference_tvd, groups, sample and census shares),
        ``two_way`` (per pair), ``worst_pairs``, maxima, ``k_anonymity``, ``derived_attributes``.

    Raises:
        CensusError: When the sample is empty or lacks a compared attribute.
    """
    census = load_source(source)
    target = census.target_weights(where, quotas)
    rows = np.flatnonzero(target > 0)
    pool = census.pool.iloc[rows]
    weights = target[rows]
    keys = list(attributes) if attributes is not None else [
        key for key in CENSUS_KEYS if census.spec.column(key) is not None]
    if len(sample) == 0:
        raise CensusError(format_error("fidelity sample", expected="at least one persona", got=0,
                                       where="fidelity_report", fix="sample personas first"))
    missing = [key for key in keys if key not in sample.columns]
    if missing:
        raise CensusError(format_error(
            "fidelity sample lacks census attribute(s)", expected=f"columns {keys}", got=missing,
            where="fidelity_report", fix="pass the frame sample_personas returned, or set attributes="))
    coders = {key: _Coder(key, pool[key], weights, max_categories) for key in keys}
    sample_codes = {key: coders[key].encode(sample[key]) for key in keys}
    n = len(sample)

    # Ideal draws: independent numpy weighted draws over the same records, as counts per record.
    rng = np.random.default_rng(np.random.SeedSequence(reference_seed))
    reference_counts = [np.bincount(rng.choice(len(pool), size=n, p=weights / weights.sum()), minlength=len(pool))
                        .astype(np.float64) for _ in range(reference_draws)]

    def reference(codes: npt.NDArray[np.intp], size: int,
                  population: npt.NDArray[np.float64]) -> tuple[float | None, float | None]:
        """Mean and sd of the ideal draws' TVD on one table."""
        if not reference_counts:
            return None, None
        values = [tvd(_table(codes, size, counts), population) for counts in reference_counts]
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    one_way: dict[str, Any] = {}
    for key in keys:
        coder = coders[key]
        population = _table(coder.source_codes, coder.size, weights)
        drawn = _table(sample_codes[key], coder.size)
        ref_mean, ref_sd = reference(coder.source_codes, coder.size, population)
        one_way[key] = {
            "tvd": tvd(drawn, population),
            "reference_tvd": ref_mean,
            "reference_tvd_sd": ref_sd,
            "derived": key in DERIVED_KEYS,
            "groups": coder.groups,
            "sample": (drawn / drawn.sum()).round(6).tolist(),
            "census": (population / population.sum()).round(6).tolist(),
        }

    two_way: list[dict[str, Any]] = []
    for a, b in itertools.combinations(keys, 2):
        ca, cb = coders[a], coders[b]
        size = ca.size * cb.size
        source_pair = _pair_codes(ca, cb, ca.source_codes, cb.source_codes)
        population = _table(source_pair, size, weights)
        drawn = _table(_pair_codes(ca, cb, sample_codes[a], sample_codes[b]), size)
        ref_mean, ref_sd = reference(source_pair, size, population)
        two_way.append({"pair": [a, b], "tvd": tvd(drawn, population), "reference_tvd": ref_mean,
                        "reference_tvd_sd": ref_sd, "derived": bool({a, b} & DERIVED_KEYS)})
    worst_pairs = sorted(two_way, key=lambda item: -item["tvd"])[:worst]

    return {
        "source": census.name,
        "source_records": len(pool),
        "source_population": float(weights.sum()),
        "where": where,
        "quotas": _plain(quotas),
        "label": label,
        "sample_size": int(n),
        "attributes": keys,
        "derived_attributes": [key for key in keys if key in DERIVED_KEYS],
        "max_categories": max_categories,
        "reference": {
            "draws": reference_draws,
            "seed": reference_seed,
            "what": "mean (and sd) TVD of independent numpy PWGTP-weighted draws of the sample's size from the "
                    "same records: the sampling-noise floor an exact sampler sits on",
        },
        "one_way": one_way,
        "one_way_max_tvd": max((v["tvd"] for v in one_way.values()), default=0.0),
        "two_way": two_way,
        "two_way_max_tvd": max((item["tvd"] for item in two_way), default=0.0),
        "worst_pairs": worst_pairs,
        "k_anonymity": _k_anonymity(pool, sample, coders, weights, k, quasi_identifiers, max_categories),
    }


def _plain(value: Any) -> Any:
    """Quotas (possibly an OmegaConf node) as plain JSON-ready data."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return float(value) if isinstance(value, int | float) else str(value)


def population_statement(source: SourceLike = None, *, where: str | None = None,
                         quotas: Quotas | None = None) -> dict[str, Any]:
    """What population a run's personas stand for, for the dataset card and the manifest.

    Args:
        source: The census source (anything :func:`load_source` takes).
        where: ``sampler.where`` (None: no filter).
        quotas: ``sampler.quotas`` (None: none).

    Returns:
        ``source``, ``description``, ``year``, ``states`` (with positive weight in the target population),
        ``state_shares`` and ``states_text`` (each state's share of the weighted target population),
        ``where``, ``quotas``, ``records``, ``population`` (weighted persons), ``minors_included`` and
        ``minor_share`` (weighted share under 18), and ``text``: one sentence saying all of it.

    Raises:
        CensusError: For a ``where`` that matches nobody or bad quotas.
    """
    census = load_source(source)
    target = census.target_weights(where, quotas)
    rows = np.flatnonzero(target > 0)
    states = census.pool[STATE].iloc[rows]
    state_weight = pd.Series(target[rows], index=states.index).groupby(states.astype(str).to_numpy()).sum()
    states_sorted = sorted(state_weight.index[state_weight > 0])
    shares = (state_weight[state_weight > 0] / state_weight.sum()).sort_values(ascending=False, kind="stable")
    age = pd.to_numeric(census.pool["age"].iloc[rows], errors="coerce").to_numpy(dtype=np.float64)
    minor_share = float(target[rows][age < ADULT_AGE].sum() / target[rows].sum()) if rows.size else 0.0
    year = f"ACS {census.spec.year} " if census.spec.year else ""
    text = (f"{year}PUMS persons of {', '.join(states_sorted) or 'the source'} ({census.name}), "
            f"{rows.size:,} person records standing for {float(census.weights[rows].sum()):,.0f} persons; "
            f"filter: {where or 'none'}; quotas: "
            + (json.dumps(_plain(quotas), sort_keys=True) if quotas else "none")
            + f"; minors (under {ADULT_AGE}): "
            + (f"included ({minor_share:.1%} of the weighted population)" if minor_share > 0 else "not included"))
    return {
        "source": census.name,
        "description": census.describe(),
        "year": census.spec.year,
        "states": states_sorted,
        "state_shares": {str(k): round(float(v), 6) for k, v in shares.items()},
        "states_text": ", ".join(f"{k} ({v:.1%})" for k, v in shares.items()),
        "where": where,
        "quotas": _plain(quotas),
        "records": int(rows.size),
        "population": float(census.weights[rows].sum()),
        "minors_included": bool(minor_share > 0),
        "minor_share": round(minor_share, 6),
        "text": text,
    }


def published_frame(personas: Iterable[Mapping[str, Any]] | pd.DataFrame, source: SourceLike = None,
                    ) -> pd.DataFrame:
    """Published personas' census attributes in the pool's types (``"34"`` -> 34), ready for the report.

    Args:
        personas: Persona attribute mappings (``Persona.attributes``) or a frame of them.
        source: The census source they came from.

    Returns:
        One row per persona, the census keys (and ``state`` when given) typed like the source's pool.
    """
    census = load_source(source)
    frame = personas.copy() if isinstance(personas, pd.DataFrame) else pd.DataFrame(list(personas))
    for key in (*CENSUS_KEYS, STATE):
        if key not in frame.columns or key not in census.pool.columns:
            continue
        if pd.api.types.is_numeric_dtype(census.pool[key].dtype):
            frame[key] = pd.to_numeric(frame[key], errors="coerce")
        else:
            frame[key] = frame[key].astype(str)
    return frame


def run_fidelity(
    source: SourceLike,
    *,
    where: str | None = None,
    quotas: Quotas | None = None,
    seed: int | np.random.SeedSequence = 0,
    sample_size: int = 20_000,
    published: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fidelity of a run's personas to its target population: a fresh target draw, and the published personas.

    Args:
        source: The census source of the run.
        where: ``sampler.where``; the reference population and the draw both honour it.
        quotas: ``sampler.quotas``; likewise.
        seed: Seed of the target draw (the pipeline's ``fidelity`` stage seed).
        sample_size: Personas in the target draw (``sampler.fidelity_sample_size``), >= 1.
        published: The personas the dataset publishes (``Persona.attributes`` mappings or a frame); None or empty:
            no published report.
        out_dir: Where to write ``fidelity.json`` and ``fidelity.png`` (None: write nothing).

    Returns:
        ``{"population": population_statement(...), "report": <target draw report>, "published": <published
        report or None>, "paths": {"json", "png"} (when written)}``.

    Raises:
        CensusError: For a ``where`` that matches nobody, bad quotas, or published personas without census keys.
    """
    census = load_source(source)
    population = population_statement(census, where=where, quotas=quotas)
    draw = census.sample(sample_size, seed=seed, where=where, quotas=quotas)
    report = fidelity_report(draw, census, where=where, quotas=quotas, label="target draw")
    published_report = None
    frame = None if published is None else published_frame(published, census)
    if frame is not None and len(frame):
        keys = [key for key in report["attributes"] if key in frame.columns]
        published_report = fidelity_report(frame, census, where=where, quotas=quotas, label="published personas",
                                            attributes=keys)
    result: dict[str, Any] = {"population": population, "report": report, "published": published_report}
    if out_dir is not None:
        paths = write_fidelity(result, out_dir)
        result["paths"] = {name: str(path) for name, path in paths.items()}
    return result


def fidelity_summary(result: Mapping[str, Any], *, plot: str | None = None) -> dict[str, Any]:
    """The figures a manifest and a card show, from :func:`run_fidelity`'s result.

    Args:
        result: What :func:`run_fidelity` returned.
        plot: Where the dataset keeps the plot (e.g. ``plots/population_vs_census.png``).

    Returns:
        Target draw: ``sample_size``, ``source``, ``source_records``, ``max_tvd_1way`` with ``worst_1way`` and its
        ``worst_1way_reference_tvd`` (the noise floor), ``max_tvd_2way``, ``worst_pairs``, ``k_anonymity``;
        published personas: ``published_personas``, ``max_tvd_published`` (one-way) with ``worst_published``
        and ``worst_published_reference_tvd`` (the noise floor of an ideal draw of that size); and ``plot``.
    """
    rep = result["report"]
    one = {k: v["tvd"] for k, v in rep["one_way"].items()}
    worst = max(one, key=lambda k: one[k]) if one else None
    ref = rep["one_way"][worst].get("reference_tvd") if worst else None
    summary: dict[str, Any] = {
        "sample_size": rep["sample_size"], "source": rep["source"], "source_records": rep["source_records"],
        "max_tvd_1way": round(float(rep["one_way_max_tvd"]), 5), "worst_1way": worst,
        "worst_1way_reference_tvd": None if ref is None else round(float(ref), 5),
        "max_tvd_2way": round(float(rep["two_way_max_tvd"]), 5),
        "worst_pairs": rep.get("worst_pairs", [])[:5], "k_anonymity": rep.get("k_anonymity"),
    }
    published = result.get("published")
    summary["published_personas"] = int(published["sample_size"]) if published else 0
    if published:
        tvds = {k: v["tvd"] for k, v in published["one_way"].items()}
        name = max(tvds, key=lambda k: tvds[k])
        floor = published["one_way"][name].get("reference_tvd")
        # "max_tvd_<x>" beside "worst_<x>": the card shows the worst attribute next to the figure.
        summary.update({"max_tvd_published": round(float(published["one_way_max_tvd"]), 5),
                        "worst_published": name,
                        "worst_published_reference_tvd": None if floor is None else round(float(floor), 5)})
    if plot is not None:
        summary["plot"] = plot
    return summary


def _k_anonymity(pool: pd.DataFrame, sample: pd.DataFrame, coders: dict[str, _Coder],
                 weights: npt.NDArray[np.float64], k: int, quasi_identifiers: Sequence[str],
                 max_categories: int) -> dict[str, Any]:
    keys = [key for key in quasi_identifiers if key in pool.columns and key in sample.columns]
    if not keys:
        return {"k": k, "quasi_identifiers": [], "note": "no quasi-identifier in both the sample and the source"}
    # One integer per combination, so counting is np.unique, not a loop; renumbered after each key (dense
    # ranks over source and sample together) so that many quasi-identifiers cannot overflow int64.
    source_key = np.zeros(len(pool), dtype=np.int64)
    sample_key = np.zeros(len(sample), dtype=np.int64)
    for key in keys:
        coder = coders.get(key) or _Coder(key, pool[key], weights, max_categories)
        both = np.concatenate([source_key * coder.size + coder.source_codes,
                               sample_key * coder.size + coder.encode(sample[key])])
        dense = np.unique(both, return_inverse=True)[1].ravel().astype(np.int64)
        source_key, sample_key = dense[: len(pool)], dense[len(pool):]
    combos, source_counts = np.unique(source_key, return_counts=True)
    position = np.minimum(np.searchsorted(combos, sample_key), combos.size - 1)
    per_persona = np.where(combos[position] == sample_key, source_counts[position], 0)
    sample_combos, sample_counts = np.unique(sample_key, return_counts=True)
    rare = per_persona < k
    return {
        "k": k,
        "quasi_identifiers": keys,
        "source_combinations": len(combos),
        "source_combinations_below_k": int((source_counts < k).sum()),
        "source_records_below_k": int(source_counts[source_counts < k].sum()),
        "sample_personas_below_k": int(rare.sum()),
        "sample_share_below_k": float(rare.mean()) if rare.size else 0.0,
        "sample_combinations_below_k": int(np.unique(sample_key[rare]).size),
        "sample_combinations": len(sample_combos),
        "sample_unique_personas": int((sample_counts == 1).sum()),
        "what": f"personas whose combination of {', '.join(keys)} (coarsened) is shared by fewer than {k} "
                "source records: sampled personas are copies of real, anonymised records",
    }


_SAMPLE_COLORS = ("#DD8452", "#55A868")


def _figure_png(reports: Sequence[dict[str, Any]], population: Mapping[str, Any] | None = None,
                top: int = 8) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    first = reports[0]
    keys = list(first["one_way"])
    columns = 4
    rows_n = max(1, math.ceil(len(keys) / columns))
    # Figure + Agg canvas directly: no pyplot, so no global backend or figure state is touched.
    figure = Figure(figsize=(columns * 5.2, rows_n * 3.0 + 0.6), dpi=80, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows_n, columns, squeeze=False)
    height = 0.8 / (1 + len(reports))
    for ax, key in itertools.zip_longest(axes.ravel(), keys):
        if key is None:
            ax.set_axis_off()
            continue
        entry = first["one_way"][key]
        census_share = np.asarray(entry["census"])
        shares = census_share + sum(np.asarray(r["one_way"][key]["sample"]) for r in reports if key in r["one_way"])
        order = [i for i in np.argsort(-census_share, kind="stable") if shares[i] > 0][:top]
        # "$" would start matplotlib's mathtext (income bands): escape it.
        names = [str(entry["groups"][i])[:28].replace("$", r"\$") for i in order]
        y = np.arange(len(order))
        ax.barh(y - 0.4 + height / 2, census_share[order], height=height, label="target population (weighted)",
                color="#4C72B0")
        tvds = []
        for j, (report, color) in enumerate(zip(reports, _SAMPLE_COLORS, strict=False)):
            if key not in report["one_way"]:
                continue
            sample = np.asarray(report["one_way"][key]["sample"])
            ax.barh(y - 0.4 + height * (j + 1.5), sample[order], height=height, color=color,
                    label=f"{report.get('label', 'sample')} (n = {report['sample_size']:,})")
            tvds.append(f"{report['one_way'][key]['tvd']:.3f}")
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        suffix = " (derived)" if entry.get("derived") else ""
        ax.set_title(f"{key}{suffix}  TVD {' / '.join(tvds)}", fontsize=9)
    axes.ravel()[0].legend(fontsize=7, loc="lower right")
    sizes = ", ".join(f"{r.get('label', 'sample')} n = {r['sample_size']:,}" for r in reports)
    title = f"Personas vs their target population: {first['source']} ({sizes})"
    if population:
        title += "\n" + "\n".join(textwrap.wrap(str(population.get("text", "")), 170))
    else:
        title += f"\nfilter: {first.get('where') or 'none'}; quotas: {json.dumps(first.get('quotas'))}"
    figure.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_fidelity(report: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``fidelity.json`` and ``fidelity.png`` (a grid of sample-vs-population bar charts) atomically.

    Args:
        report: What :func:`run_fidelity` returned (target draw, published personas, population statement), or a
            single :func:`fidelity_report`.
        out_dir: Folder to write to (created if missing).

    Returns:
        ``{"json": path, "png": path}``.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "fidelity.json", "png": folder / "fidelity.png"}
    if "one_way" in report:  # a single report
        reports, population, content = [report], None, report
    else:
        reports = [r for r in (report["report"], report.get("published")) if r]
        population = report.get("population")
        content = {k: v for k, v in report.items() if k != "paths"}
    # Render both before writing either, so a failure leaves nothing half-written.
    text = json.dumps(content, indent=2, ensure_ascii=False, default=float).encode("utf-8")
    png = _figure_png(reports, population)
    atomic_write_bytes(paths["json"], text)
    atomic_write_bytes(paths["png"], png)
    return paths
