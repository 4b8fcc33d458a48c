"""Agreement between raters: kappa matrices, the human baseline and attribute influence.

A "rater" is anything that labels the same items: a human annotator, a model, a judge variant
(direct vs chain-of-thought), or one persona with an attribute removed. Ratings are aligned by
position; ``None``/NaN marks an item a rater did not judge.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_gen.metrics._validate import (
    Text,
    as_labels,
    metric_error,
    missing_mask,
    require_nonempty,
    require_same_length,
)
from persona_gen.metrics.kappa import cohen_kappa_score

__all__ = [
    "agreement_matrix",
    "kappa_histogram_data",
    "kappa_pairs",
    "leave_one_out_majority",
    "loo_attribute_influence",
]

TiePolicy = Literal["drop", "smallest"]


def agreement_matrix(ratings: Mapping[str, Sequence[Hashable]], *, min_overlap: int = 1) -> pd.DataFrame:
    """Pairwise Cohen's kappa between every two raters, as in the paper's kappa matrices.

    Each pair is scored on the items both raters judged (pairwise deletion of ``None``/NaN).

    Args:
        ratings: Rater name -> one label per item; all sequences aligned on the same items.
        min_overlap: Fewest items two raters must share for their kappa; fewer gives NaN.

    Returns:
        A symmetric raters x raters DataFrame in the order of ``ratings``. The diagonal is each
        rater's kappa with itself: 1.0, or NaN for a rater who used one label only (kappa is
        undefined there, as in scikit-learn). Undefined pairs are NaN too.

    Raises:
        MetricError: On fewer than one rater, unequal lengths or ``min_overlap < 1``.

    Example:
        >>> m = agreement_matrix({"h1": ["A", "B", "A"], "h2": ["A", "B", "B"], "gpt": ["A", "B", "A"]})
        >>> float(m.loc["h1", "gpt"])
        1.0
    """
    where = "agreement_matrix"
    arrays = _rating_arrays(ratings, where=where)
    if min_overlap < 1:
        raise metric_error("min_overlap", expected=">= 1", got=min_overlap, where=where, fix="use 1 or more")
    names = list(arrays)
    missing = {name: missing_mask(arr) for name, arr in arrays.items()}
    out = np.full((len(names), len(names)), math.nan)
    for i, first in enumerate(names):
        for j in range(i, len(names)):
            second = names[j]
            both = ~(missing[first] | missing[second])
            if both.sum() >= min_overlap:
                out[i, j] = out[j, i] = cohen_kappa_score(arrays[first][both], arrays[second][both])
    return pd.DataFrame(out, index=pd.Index(names, name="rater"), columns=pd.Index(names, name="rater"))


def kappa_pairs(matrix: pd.DataFrame) -> pd.DataFrame:
    """The distinct off-diagonal pairs of a kappa matrix, long format.

    Args:
        matrix: A square, symmetric matrix such as ``agreement_matrix`` returns.

    Returns:
        Columns ``rater_a``, ``rater_b``, ``kappa``, one row per unordered pair (upper triangle).
    """
    where = "kappa_pairs"
    _check_square(matrix, where=where)
    names = list(matrix.index)
    rows = [(names[i], names[j], float(matrix.iat[i, j])) for i in range(len(names)) for j in range(i + 1, len(names))]
    return pd.DataFrame(rows, columns=["rater_a", "rater_b", "kappa"])


def kappa_histogram_data(matrix: pd.DataFrame, *, bins: int | Sequence[float] = 20,
                         value_range: tuple[float, float] = (-1.0, 1.0)) -> pd.DataFrame:
    """Histogram counts of the pairwise kappas of a matrix, ready to plot as bars.

    Args:
        matrix: A square kappa matrix (``agreement_matrix``); NaN pairs are left out.
        bins: Number of equal bins over ``value_range``, or the bin edges.
        value_range: Range of the equal bins; kappa lives in [-1, 1].

    Returns:
        Columns ``bin_left``, ``bin_right``, ``count``, one row per bin.
    """
    values = kappa_pairs(matrix)["kappa"].to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    counts, edges = np.histogram(values, bins=bins, range=value_range if isinstance(bins, int) else None)
    return pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:], "count": counts})


def leave_one_out_majority(ratings: Mapping[str, Sequence[Hashable]], *, ties: TiePolicy = "drop") -> pd.DataFrame:
    """Human-vs-human baseline: each rater against the majority vote of all the others.

    For every rater ``r`` and item, the reference label is the most common label among the other
    raters who judged the item; kappa between ``r`` and that reference is ``r``'s score. The mean
    over raters is the baseline a model-vs-human kappa is compared with.

    Ties among the other raters are handled deterministically by ``ties``:

    * ``"drop"`` (default): the item is left out of ``r``'s comparison and counted in ``n_ties``;
      no label is favoured.
    * ``"smallest"``: the tied label that sorts first wins (first seen, if labels do not sort).

    Args:
        ratings: Rater name -> one label per item (``None``/NaN where not judged); >= 2 raters.
        ties: Tie policy, see above.

    Returns:
        One row per rater, in input order, indexed by ``rater``: ``kappa`` (vs the others'
        majority; NaN if undefined or no item is left), ``n_items`` (items scored) and ``n_ties``
        (items with a tied majority).

    Raises:
        MetricError: On fewer than two raters, unequal lengths or an unknown tie policy.
    """
    where = "leave_one_out_majority"
    if ties not in ("drop", "smallest"):
        raise metric_error("ties", expected="'drop' or 'smallest'", got=ties, where=where, fix="pick one of the two")
    arrays = _rating_arrays(ratings, where=where)
    if len(arrays) < 2:
        raise metric_error("ratings", expected="at least two raters", got=Text(f"{len(arrays)} rater"), where=where,
                           fix="add raters; a majority of the others needs someone else")
    names = list(arrays)
    missing = {name: missing_mask(arr) for name, arr in arrays.items()}
    n_items = len(next(iter(arrays.values())))
    rows = []
    for name in names:
        own: list[Hashable] = []
        reference: list[Hashable] = []
        n_ties = 0
        for i in range(n_items):
            if missing[name][i]:
                continue
            votes = Counter(arrays[o][i] for o in names if o != name and not missing[o][i])
            if not votes:
                continue
            top = max(votes.values())
            winners = [label for label, count in votes.items() if count == top]
            if len(winners) > 1:
                n_ties += 1
                if ties == "drop":
                    continue
                winners = _sort_labels(winners)[:1]
            own.append(arrays[name][i])
            reference.append(winners[0])
        kappa = cohen_kappa_score(own, reference) if own else math.nan
        rows.append({"rater": name, "kappa": kappa, "n_items": len(own), "n_ties": n_ties})
    return pd.DataFrame(rows).set_index("rater")


def loo_attribute_influence(full: Sequence[Hashable], without: Mapping[str, Sequence[Hashable]]) -> pd.DataFrame:
    """Leave-one-out attribute influence: how much judgments change when one attribute is removed.

    For each attribute, Cohen's kappa between the judgments made with the full persona and those
    made with that attribute removed from it. The lower the kappa, the more the attribute
    mattered. Items missing (``None``/NaN) on either side are left out of that attribute's score.

    Args:
        full: One judgment per item with the full persona.
        without: Attribute name -> one judgment per item with that attribute removed, aligned
            with ``full``.

    Returns:
        Columns ``attribute``, ``kappa``, ``agreement`` (share of identical judgments) and ``n``
        (items scored), sorted by ascending kappa (most influential first; NaN last; ties by
        attribute name).

    Raises:
        MetricError: On empty input or lengths that differ from ``full``.
    """
    where = "loo_attribute_influence"
    if not without:
        raise metric_error("without", expected="non-empty (attribute -> judgments)", got=Text("no attributes"),
                           where=where, fix="pass the judgments made with each attribute removed")
    arrays = _rating_arrays({"full": full, **{f"without[{k!r}]": v for k, v in without.items()}}, where=where)
    base = arrays["full"]
    base_missing = missing_mask(base)
    rows = []
    for attribute, key in zip(without, list(arrays)[1:], strict=True):
        other = arrays[key]
        both = ~(base_missing | missing_mask(other))
        n = int(both.sum())
        kappa = cohen_kappa_score(base[both], other[both]) if n else math.nan
        agreement = float(np.mean(base[both] == other[both])) if n else math.nan
        rows.append({"attribute": attribute, "kappa": kappa, "agreement": agreement, "n": n})
    frame = pd.DataFrame(rows, columns=["attribute", "kappa", "agreement", "n"])
    return frame.sort_values(["kappa", "attribute"], na_position="last", kind="stable").reset_index(drop=True)


def _rating_arrays(ratings: Mapping[str, Sequence[Hashable]], *, where: str) -> dict[str, np.ndarray]:
    if not isinstance(ratings, Mapping):
        raise metric_error("ratings", expected="a mapping rater name -> labels", got=Text(type(ratings).__name__),
                           where=where, fix="pass e.g. {'human_1': [...], 'gpt-4': [...]}")
    if not ratings:
        raise metric_error("ratings", expected="non-empty (rater name -> labels)", got=Text("no raters"), where=where,
                           fix="pass at least one rater")
    arrays = {str(name): as_labels(values, f"ratings[{name!r}]", where=where) for name, values in ratings.items()}
    require_same_length({name: len(arr) for name, arr in arrays.items()}, where=where)
    require_nonempty(len(next(iter(arrays.values()))), "each rater's labels", where=where,
                     fix="pass at least one judged item")
    return arrays


def _sort_labels(labels: list[Any]) -> list[Any]:
    try:
        return sorted(labels)
    except TypeError:
        return labels


def _check_square(matrix: pd.DataFrame, *, where: str) -> None:
    if not isinstance(matrix, pd.DataFrame) or matrix.shape[0] != matrix.shape[1]:
        raise metric_error("matrix", expected="a square DataFrame (raters x raters)",
                           got=Text(f"shape {getattr(matrix, 'shape', type(matrix).__name__)}"), where=where,
                           fix="pass the output of agreement_matrix")
