"""PNG plots of the bench's scores (matplotlib, Agg backend): each returns PNG bytes, the caller writes them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from persona_gen.core.io import figure_png

__all__ = ["plot_accuracy", "plot_intersectionality", "plot_leave_one_out", "plot_pass_at_k"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    return figure_png(fig)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def plot_accuracy(modes: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Bars of accuracy per mode, with bootstrap-std error bars and the scored counts."""
    plt = _pyplot()
    names = list(modes)
    acc = [_num(modes[m]["accuracy"]) for m in names]
    std = [0.0 if modes[m]["std"] is None else float(modes[m]["std"]) for m in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(names) + 1), 3.4))
    ax.bar(range(len(names)), [0.0 if math.isnan(a) else a for a in acc], yerr=std, capsize=4, color="#4c72b0")
    for i, m in enumerate(names):
        label = "n/a" if math.isnan(acc[i]) else f"{acc[i]:.2f}"
        ax.text(i, 0.02, f"{label}\nn={modes[m]['n_scored']}", ha="center", va="bottom", fontsize=8, color="white")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (no revision needed)")
    ax.set_title("PERSONA Bench: accuracy by mode (± bootstrap std)")
    return _png(fig)


def plot_pass_at_k(curve: Sequence[Mapping[str, Any]], *, mode: str) -> bytes:
    """pass@k against k."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ks = [p["k"] for p in curve]
    ax.plot(ks, [p["pass_at_k"] for p in curve], marker="o", label=mode)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    if ks:
        ax.set_xticks(ks)
    ax.legend()
    ax.set_title("PERSONA Bench: pass@k")
    return _png(fig)


def plot_leave_one_out(table: Sequence[Mapping[str, Any]], *, mode: str) -> bytes:
    """Left: kappa per dropped attribute (lowest = most influential). Right: histogram of those kappas."""
    plt = _pyplot()
    rows = [r for r in table if r.get("kappa") is not None and not math.isnan(float(r["kappa"]))]
    undefined = len(table) - len(rows)
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(10, max(3.0, 0.22 * len(table) + 1)),
                                     gridspec_kw={"width_ratios": [2, 1]})
    names = [r["attribute"] for r in rows]
    bars.barh(range(len(rows)), [float(r["kappa"]) for r in rows], color="#dd8452")
    bars.set_yticks(range(len(rows)), names, fontsize=7)
    bars.invert_yaxis()
    bars.set_xlim(-1, 1)
    bars.axvline(0, color="grey", lw=0.8)
    bars.set_xlabel("kappa(needs_revision: full vs without)")
    bars.set_title(f"Leave-one-out ({mode})" + (f"; {undefined} undefined" if undefined else ""), fontsize=9)
    hist.hist([float(r["kappa"]) for r in rows], bins=20, range=(-1, 1), color="#55a868")
    hist.set_xlabel("kappa")
    hist.set_ylabel("attributes")
    hist.set_title("kappa histogram", fontsize=9)
    return _png(fig)


def plot_intersectionality(results: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Grouped bars: accuracy per filter (subgroup), one bar per mode, with bootstrap-std error bars."""
    plt = _pyplot()
    modes = list(results)
    filters = list(next(iter(results.values()))["filters"]) if modes else []
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(filters) + 1), 3.6))
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        subs = results[mode]["filters"]
        xs = [j + i * width for j in range(len(filters))]
        ax.bar(xs, [_num(subs[f]["accuracy"]) if subs[f]["accuracy"] is not None else 0.0 for f in filters], width,
               yerr=[subs[f]["std"] or 0.0 for f in filters], capsize=3, label=mode)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(filters))],
                  [f"{f}\nn={results[modes[0]]['filters'][f]['n']}" for f in filters] if modes else [], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("PERSONA Bench: intersectional subgroups")
    if modes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)
