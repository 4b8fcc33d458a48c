"""Dataset and benchmark cards, rendered from the Jinja templates in ``cards/`` into ``huggingface_hub`` cards.

Templates render with ``StrictUndefined``: :func:`card_context` fills every name the dataset template uses,
with a default where a run did not provide it, so a typo in a template fails the tests instead of printing
an empty cell. The YAML header is built by :class:`huggingface_hub.DatasetCardData`; its ``configs`` make
``datasets.load_dataset(folder_or_repo, "<config>")`` and the Hub viewer find the parquet shards.

``DatasetCard.validate()`` posts the card to the Hub's ``/api/validate-yaml``, so it needs the network.
Offline, :func:`validate_card` checks what can be checked locally: the YAML parses into ``DatasetCardData``,
the size category is one the Hub knows, every config's ``data_files`` pattern matches shards in the folder,
every shard belongs to a config, and every linked plot exists.
"""

from __future__ import annotations

import fnmatch
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from persona_gen.core.errors import PublishError, format_error

__all__ = [
    "CONFIG_ORDER",
    "SplitInfo",
    "bench_context",
    "card_context",
    "render_bench_card",
    "render_card",
    "validate_card",
]

PAPER_TAGS = ["synthetic", "personas", "pluralistic-alignment", "preference", "census", "dpf", "arxiv:2407.17387"]
DEFAULT_PRETTY_NAME = "PERSONA-style synthetic preference data"
DEFAULT_LICENSE = "cc-by-4.0"
REPO_PLACEHOLDER = "<user or org>/<dataset name>"
# Known configs first, in the order a reader wants them; unknown ones follow, sorted.
CONFIG_ORDER = ("feedback", "dpo", "personas", "questions", "judgments", "bench", "persona_rejections")
CONFIG_DESCRIPTIONS = {
    "feedback": "the released PERSONA dataset's columns: `persona` (newline-separated `key: value`), "
                "`instruction`, `original` (rejected, no-persona answer), `critique` (in the persona's voice), "
                "`data` (chosen, the revision), `question type` (`train`/`test`), plus `seen`, ids, model ids and "
                "`failures` (a list of `{stage, kind, message, raw}`: every LM failure is kept as data)",
    "dpo": "the feedback rows in TRL's conversational preference format: `prompt` (system message with the "
           "persona, user message with the question), `chosen` (the revision), `rejected` (the no-persona answer), "
           "plus `persona_id`, `question_id`, `question type`, `seen`; rows whose feedback failed are left out",
    "personas": "one row per persona: census attributes (`age`, `income` as integers, null where not applicable, "
                "the census text in `age_label`, `income_label`), psychodemographics, idiosyncrasies, the rendered "
                "`persona` text, its census record id and provenance",
    "questions": "the value-laden questions kept by the filters, with their source and cluster",
    "judgments": "persona-voiced pairwise judgments, one row per (pair, order, variant), with the raw answer",
    "bench": "PERSONA Bench scores: accuracy per mode with its spread",
    "persona_rejections": "enriched candidates the consistency filter rejected, with the reason and the raw text",
    "candidates": "answers of the extra candidate generators (stage.feedback.candidates) to every question used, "
                  "for pairwise data beyond DPF; `model` is `<name>=<model id>`",
}
HUB_SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                       "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
DEFAULT_INPUTS = (
    ("US Census Bureau, American Community Survey {year} 1-Year PUMS, person records ({states})",
     "public domain (17 USC 105)"),
    ("PRISM opening prompts (Kirk et al., 2024)", "CC-BY-4.0"),
    ("SAPA Big Five items (R package psychTools), derived tables only", "GPL-2 | GPL-3"),
    ("ANES 1996 (statsmodels datasets), derived tables only", "public domain"),
    ("GSS 2000-2014 (R package forcats, gss_cat), derived tables only", "MIT"),
    ("Pew Religious Landscape Study 2007 (R package tidyr, relig_income), derived tables only", "MIT"),
    ("Generated text", "produced by {generator_model} and {judge_model}; check their licenses"),
)
PLOT_CAPTIONS = (
    ("population_vs_census", "Population vs census"),
    ("kappa", "Cohen's κ between judge variants"),
    ("pass_at_k", "pass@k"),
    ("pass@k", "pass@k"),
    ("judge_scorecard", "Judge scorecard"),
    ("question_clusters", "Questions per topic cluster (train / held out)"),
)


@dataclass(frozen=True)
class SplitInfo:
    """What the card says about one split: row count, and once written, shard count and bytes."""

    rows: int
    shards: int = 0
    bytes: int = 0


# -- Jinja ---------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """One markdown table cell: no pipe or newline may break the table."""
    if value is None or (isinstance(value, str) and not value):
        return "n/a"
    if isinstance(value, Mapping):
        value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    elif isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value) or "none"
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _num(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, str):
        return _cell(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _cell(value)
    if math.isnan(x):
        return "n/a"
    return str(int(x)) if isinstance(value, int) and not isinstance(value, bool) else f"{x:.{digits}f}"


def _pct(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _cell(value)
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - loop returns at GB


def _environment() -> Any:
    import jinja2

    cards = resources.files("persona_gen.cards")

    def load(name: str) -> str | None:
        path = cards.joinpath(name)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)  # markdown, not HTML
    env.filters.update(cell=_cell, num=_num, pct=_pct)
    return env


def _render(template: str, **kwargs: Any) -> str:
    import jinja2

    try:
        text = _environment().get_template(template).render(**kwargs)
    except jinja2.UndefinedError as exc:
        raise PublishError(format_error(f"card template cards/{template}", expected="to render", got=str(exc),
                                        where="persona_gen.publish.card",
                                        fix="fill the missing name in card_context() or fix the template")) from exc
    # Blank runs left by skipped blocks are noise in the markdown.
    return re.sub(r"\n{3,}", "\n\n", text)


# -- dataset card --------------------------------------------------------------------------------------------------


def _split_infos(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, SplitInfo]]:
    out: dict[str, dict[str, SplitInfo]] = {}
    for name, splits in tables.items():
        out[name] = {}
        for split, value in splits.items():
            if isinstance(value, SplitInfo):
                out[name][split] = value
            elif isinstance(value, pd.DataFrame):
                out[name][split] = SplitInfo(rows=len(value))
            else:
                out[name][split] = SplitInfo(rows=int(value))
    return out


def _config_names(infos: Mapping[str, Any]) -> list[str]:
    known = [n for n in CONFIG_ORDER if n in infos]
    return known + sorted(n for n in infos if n not in CONFIG_ORDER)


def _default_config(names: Sequence[str]) -> str | None:
    return "feedback" if "feedback" in names else (names[0] if names else None)


def _size_category(n: int) -> str:
    for i, bound in enumerate((1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12)):
        if n < bound:
            return HUB_SIZE_CATEGORIES[i]
    return HUB_SIZE_CATEGORIES[-1]


def _card_data(infos: Mapping[str, Mapping[str, SplitInfo]], *, pretty_name: str, license: str,
               extra: Mapping[str, Any] | None = None) -> Any:
    from huggingface_hub import DatasetCardData

    names = [n for n in _config_names(infos) if any(s.rows for s in infos[n].values())]
    default = _default_config(names)
    configs = [{"config_name": name,
                "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"}
                               for split, info in sorted(infos[name].items()) if info.rows],
                **({"default": True} if name == default else {})}
               for name in names]
    largest = max((sum(s.rows for s in splits.values()) for splits in infos.values()), default=0)
    return DatasetCardData(
        license=license, language=["en"], pretty_name=pretty_name, size_categories=[_size_category(largest)],
        task_categories=["text-generation"], annotations_creators=["machine-generated"],
        language_creators=["machine-generated"], multilinguality=["monolingual"], tags=list(PAPER_TAGS),
        configs=configs, **dict(extra or {}))


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None else value


def _plot_entries(plots: Sequence[Any] | Mapping[str, Any]) -> list[dict[str, str]]:
    items = list(plots.items()) if isinstance(plots, Mapping) \
        else [tuple(p) if isinstance(p, tuple | list) else (None, p) for p in plots]
    entries = []
    for caption, path in items:
        rel = PurePosixPath(str(path).replace("\\", "/"))
        if not caption:
            stem = rel.stem.lower()
            caption = next((c for key, c in PLOT_CAPTIONS if key in stem), rel.stem.replace("_", " ").capitalize())
        entries.append({"path": rel.as_posix(), "caption": str(caption)})
    return entries


def _fidelity_rows(fidelity: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    # worst_<suffix> names the variable behind max_tvd_<suffix>; shown beside it, not as a row of its own.
    worst = {k[len("worst_"):]: v for k, v in fidelity.items() if k.startswith("worst_") and isinstance(v, str)}
    for key, value in fidelity.items():
        if key in ("plot", "sample_size") or isinstance(value, Mapping | list | tuple) or \
                (key.startswith("worst_") and key[len("worst_"):] in worst):
            continue
        label = key.replace("tvd_1way", "one-way TVD").replace("tvd_2way", "two-way TVD").replace("_", " ") \
            .replace("1way", "one-way").replace("2way", "two-way").replace("tvd", "TVD")
        text = _num(value)
        suffix = next((f" (worst: {w})" for s, w in worst.items() if key.endswith(f"tvd_{s}")), "")
        rows.append({"name": label, "value": text + suffix})
    return rows


def _agreement_text(agreement: Any) -> str:
    if not agreement:
        return "not computed"
    if isinstance(agreement, str):
        return agreement
    pairs = agreement if isinstance(agreement, list | tuple) else [agreement]
    parts = []
    for a in pairs:
        raters = " and ".join(f"`{r}`" for r in a.get("raters", [])) or "the variants"
        kappa = a.get("kappa")
        value = "undefined (a rater gave one answer only)" if kappa is None else _num(kappa)
        n = f" on {a['n']} preferred answers" if a.get("n") is not None else ""
        parts.append(f"Cohen's κ = {value} between {raters}{n}")
    return "; ".join(parts)


def _verification_text(v: Mapping[str, Any]) -> str:
    rate, ci = v.get("verification_rate"), v.get("verification_ci")
    if rate is None:
        return "n/a"
    return f"{_pct(rate)} [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else _pct(rate)


def card_context(tables: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any], *,
                 plots: Sequence[Any] | Mapping[str, Any] = (), publish_cfg: Any = None) -> dict[str, Any]:
    """Every name ``cards/dataset_card.md.j2`` uses, from the pipeline's ``context`` plus defaults.

    ``tables`` maps config -> split -> DataFrame, row count or :class:`SplitInfo`. ``context`` takes the keys
    ``pipeline.run`` passes (seed, config_hash, signature_hashes, generator_model, judge_model, embedded_model,
    census, enrich, filter_counts, min_words, judge_variants, judge_scorecard, agreement, stage_stats,
    fidelity, content_hash) and optionally ``inputs`` (list of ``{name, license}``), ``bench_scores`` (see
    :func:`render_bench_card`), ``config_descriptions``, ``card_metadata`` (more YAML header fields, e.g.
    ``dataset_info``, ``source_datasets``) and ``extra_files`` (paths listed under "Files"). Missing keys render
    as "n/a" or "not recorded".
    """
    infos = _split_infos(tables)
    names = _config_names(infos)
    default = _default_config([n for n in names if any(s.rows for s in infos[n].values())])
    descriptions = {**CONFIG_DESCRIPTIONS, **dict(context.get("config_descriptions") or {})}
    configs = []
    for name in names:
        splits = [{"split": s, "rows": i.rows, "shards": i.shards or ("none (empty)" if i.rows == 0 else "n/a"),
                   "bytes_human": _human_bytes(i.bytes) if i.bytes else "n/a"}
                  for s, i in sorted(infos[name].items())]
        configs.append({"name": name, "default": name == default, "splits": splits,
                        "description": descriptions.get(name, "see the columns")})
    all_infos = [i for splits in infos.values() for i in splits.values()]
    total_bytes = sum(i.bytes for i in all_infos)
    size = {"rows": sum(i.rows for i in all_infos), "shards": sum(i.shards for i in all_infos) or "n/a",
            "bytes_human": _human_bytes(total_bytes) if total_bytes else "size not measured"}

    generator = context.get("generator_model") or "n/a"
    judge = context.get("judge_model") or "n/a"
    census_in = dict(context.get("census") or {})
    census = {"num_personas": census_in.get("num_personas", "n/a"), "source": census_in.get("source") or "census",
              "year": census_in.get("year") or "(year not recorded)", "states": census_in.get("states") or "n/a",
              "license": census_in.get("license") or "public domain (17 USC 105)",
              "description": census_in.get("description") or "",
              "population": census_in.get("population"), "psychodemographics": census_in.get("psychodemographics")}
    enrich_in = dict(context.get("enrich") or {})
    enrich = {"candidates": enrich_in.get("candidates"), "rejected": enrich_in.get("rejected", 0),
              "drop_rate": enrich_in.get("drop_rate"), "by_reason": enrich_in.get("by_reason") or "none"}

    failures = []
    for stage, s in sorted(dict(context.get("stage_stats") or {}).items()):
        # LM answers per stage (calls + cache hits): a warm rerun renders the same card byte for byte.
        answers = int(s["answers"]) if "answers" in s else int(s.get("lm_calls", 0)) + int(s.get("cache_hits", 0))
        failed = int(s.get("failures", 0))
        failures.append({"stage": stage, "answers": answers, "failures": failed,
                         "rate": failed / answers if answers else 0.0,
                         "by_kind": s.get("failures_by_kind") or "none"})

    scorecard = []
    for v in context.get("judge_scorecard") or []:
        first = v.get("first_position_rate")
        bias = v.get("position_bias", None if first is None else float(first) - 0.5)
        scorecard.append({"variant": v.get("variant"), "pairs": v.get("pairs", "n/a"),
                          "order_consistency": v.get("order_consistency"), "first_position_rate": first,
                          "position_bias": bias, "revision_preferred": v.get("revision_preferred"),
                          "abstentions": v.get("abstentions", "n/a"),
                          "verification": _verification_text(v)})

    plot_entries = _plot_entries(plots)
    plot_paths = {p["path"] for p in plot_entries}
    fidelity = None
    if context.get("fidelity"):
        fid = dict(context["fidelity"])
        fidelity = {"sample_size": fid.get("sample_size"), "rows": _fidelity_rows(fid),
                    "plot": fid.get("plot") if fid.get("plot") in plot_paths else None}
    # The fidelity plot is shown in its section; the plots section shows the others.
    other_plots = [p for p in plot_entries if not fidelity or p["path"] != fidelity["plot"]]

    fmt = {"year": census["year"], "states": census["states"], "generator_model": generator, "judge_model": judge}
    declared = [(i["name"], i["license"]) for i in context.get("inputs") or []] or list(DEFAULT_INPUTS[:-1])
    inputs = [{"name": n.format(**fmt), "license": lic.format(**fmt)} for n, lic in [*declared, DEFAULT_INPUTS[-1]]]
    steps = [dict(s) for s in context.get("steps") or []] or [
        {"step": "n/a", "scope": "n/a", "what": "steps not recorded", "by": "n/a"}]
    bench = context.get("bench_scores")
    rows_of = {name: sum(i.rows for i in splits.values()) for name, splits in infos.items()}
    dpo = {"rows": rows_of["dpo"], "excluded": rows_of.get("feedback", 0) - rows_of["dpo"]} if "dpo" in infos else None
    return {
        "private": bool(_get(publish_cfg, "private", True)), "dpo": dpo,
        "extra_files": list(context.get("extra_files") or []),
        "pretty_name": str(_get(publish_cfg, "pretty_name", DEFAULT_PRETTY_NAME)),
        "license": str(_get(publish_cfg, "license", DEFAULT_LICENSE)),
        "repo_id": str(_get(publish_cfg, "repo_id", REPO_PLACEHOLDER)),
        "generator_model": generator, "judge_model": judge, "steps": steps,
        "embedded_model": bool(context.get("embedded_model", False)),
        "seed": context.get("seed", "n/a"), "config_hash": context.get("config_hash") or "n/a",
        "content_hash": context.get("content_hash") or "n/a",
        "signature_hashes": dict(context.get("signature_hashes") or {}),
        "census": census, "enrich": enrich, "filter_counts": list(context.get("filter_counts") or []),
        "min_words": context.get("min_words", "n/a"), "judge_variants": context.get("judge_variants") or "n/a",
        "judge_scorecard": scorecard, "agreement_text": _agreement_text(context.get("agreement")),
        "failures": failures, "fidelity": fidelity, "plots": other_plots, "inputs": inputs,
        "configs": configs, "size": size, "bench": bench_context(bench) if bench else None,
    }


def render_card(tables: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any], *,
                plots: Sequence[Any] | Mapping[str, Any] = (), publish_cfg: Any = None,
                pretty_name: str | None = None) -> str:
    """Render ``cards/dataset_card.md.j2`` into the text of a :class:`huggingface_hub.DatasetCard`.

    Args:
        tables: config -> split -> DataFrame, row count or :class:`SplitInfo` (shards and bytes once written).
        context: what the run knows (see :func:`card_context`).
        plots: paths relative to the dataset folder (``plots/x.png``), (caption, path) pairs, or a mapping
            caption -> path. Without a caption, one is derived from the file name.
        publish_cfg: the ``publish`` config group: ``repo_id``, ``license``, ``pretty_name`` are read.
        pretty_name: overrides ``publish.pretty_name``.
    """
    from huggingface_hub import DatasetCard

    ctx = card_context(tables, context, plots=plots, publish_cfg=publish_cfg)
    if pretty_name:
        ctx["pretty_name"] = pretty_name
    data = _card_data(_split_infos(tables), pretty_name=ctx["pretty_name"], license=ctx["license"],
                      extra=context.get("card_metadata"))
    text = _render("dataset_card.md.j2", card_data=data.to_yaml(), **ctx)
    return str(DatasetCard(text))  # parses the YAML header back: a malformed header fails here, not on the Hub


# -- benchmark card ------------------------------------------------------------------------------------------------


_BENCH_FIX = "pass {'modes': {'<mode>': {'accuracy': 0.61, 'std': 0.02}}} (None where nothing was scored)"


def _score(m: Mapping[str, Any], key: str, mode: str) -> float | None:
    """A mode's accuracy or std: a number, or None when nothing was scored; absent or text is an error."""
    if key not in m:
        raise PublishError(format_error(f"{key} of mode {mode!r}", expected="a number (or None)", got="missing",
                                        where="render_bench_card(scores)", fix=_BENCH_FIX))
    value = m[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PublishError(format_error(f"{key} of mode {mode!r}", expected="a number (or None)", got=value,
                                        where="render_bench_card(scores)", fix=_BENCH_FIX))
    return None if math.isnan(float(value)) else float(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _model_name(model: Any) -> Any:
    if isinstance(model, Mapping):  # an LM identity: {"kind", "name", "revision", decoding...}
        return ":".join(str(model[k]) for k in ("kind", "name") if model.get(k)) or None
    return model


def _curve(value: Any) -> dict[int, float]:
    """pass@k as {k: value} or as the bench's curve [{"k": 1, "pass_at_k": 0.6}, ...]."""
    if isinstance(value, Mapping):
        return {int(k): float(v) for k, v in value.items() if v is not None}
    return {int(p["k"]): float(p["pass_at_k"]) for p in value or [] if p.get("pass_at_k") is not None}


def bench_context(scores: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize PERSONA Bench scores for the templates (see :func:`render_bench_card` for the shape)."""
    if not isinstance(scores, Mapping) or not scores.get("modes"):
        raise PublishError(format_error(
            "scores['modes']", expected="a non-empty mapping mode -> {accuracy, std} (or a list with 'mode')",
            got="missing" if not isinstance(scores, Mapping) or scores.get("modes") is None else scores["modes"],
            where="render_bench_card(scores)", fix=_BENCH_FIX))
    raw = scores["modes"]
    items = list(raw.items()) if isinstance(raw, Mapping) else [(m.get("mode"), m) for m in raw]
    top = _mapping(scores.get("pass_at_k"))
    modes: list[dict[str, Any]] = []
    ks: set[int] = set()
    for mode, m in items:
        if not mode:
            raise PublishError(format_error("a mode of scores['modes']", expected="named", got="no name",
                                            where="render_bench_card(scores)", fix="give each entry a 'mode' key"))
        pass_at_k = _curve(m.get("pass_at_k"))
        if top.get("mode") == mode and not pass_at_k:
            pass_at_k = _curve(top.get("curve"))
        ks.update(pass_at_k)
        n = m.get("n", m.get("n_scored"))
        modes.append({"mode": str(mode), "accuracy": _score(m, "accuracy", str(mode)),
                      "std": _score(m, "std", str(mode)), "n": n, "n_items": m.get("n_items"),
                      "failures": sum((m.get("failures") or {}).values()) if isinstance(m.get("failures"), Mapping)
                      else m.get("failures"), "pass_at_k": pass_at_k})
    models, inputs = _mapping(scores.get("models")), _mapping(scores.get("inputs"))
    dataset = scores.get("dataset") or (PurePosixPath(str(scores["dataset_dir"]).replace("\\", "/")).name
                                        if scores.get("dataset_dir") else None)
    return {
        "method": scores.get("method"), "model": _model_name(scores.get("model") or models.get("generator")),
        "judge_model": _model_name(scores.get("judge_model") or models.get("judge")),
        "dataset": dataset, "split": scores.get("split") or inputs.get("question_split"),
        "inputs": {k: inputs[k] for k in ("personas", "questions", "pairs") if k in inputs},
        "seed": scores.get("seed"), "config_hash": scores.get("config_hash"),
        "signature_hashes": dict(scores.get("signature_hashes") or {}), "notes": scores.get("notes"),
        "std_over": scores.get("std_over") or "bootstrap resamples of the scored rows",
        "pass_at_k_mode": top.get("mode"), "pass_at_k_samples": top.get("num_samples"),
        "command": scores.get("command") or "persona-gen task=bench", "modes": modes, "ks": sorted(ks),
    }


def render_bench_card(scores: Mapping[str, Any], *, pretty_name: str = "PERSONA Bench results",
                      license: str = DEFAULT_LICENSE) -> str:
    """Render ``cards/bench_card.md.j2``: accuracy per mode with its std, and pass@k where given.

    Takes the ``scores.json`` that ``persona-gen task=bench`` writes as is, or a hand-made dict.

    Args:
        scores: ``{"modes": {mode: {"accuracy": float | None, "std": float | None, "n_scored"/"n": int?,
            "n_items": int?, "failures": {kind: count}?, "pass_at_k": {k: float}?}}}`` (or ``"modes": [{"mode":
            ..., ...}]``); optionally ``pass_at_k: {"mode", "num_samples", "curve": [{"k", "pass_at_k"}]}``,
            ``method``, ``models: {"generator", "judge"}`` (LM identities or names), ``inputs``, ``dataset`` or
            ``dataset_dir``, ``seed``, ``config_hash``, ``signature_hashes``, ``std_over``, ``notes``, ``command``.
            ``None`` for accuracy or std means nothing was scored in that mode and renders as "n/a".
        pretty_name: the card's title.
        license: the results' license.

    Raises:
        PublishError: no modes, a mode without a name, or a mode whose accuracy or std is absent or not a number.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    bench = bench_context(scores)
    data = DatasetCardData(license=license, language=["en"], pretty_name=pretty_name,
                           tags=["persona-bench", "benchmark", "pluralistic-alignment", "arxiv:2407.17387"])
    text = _render("bench_card.md.j2", card_data=data.to_yaml(), pretty_name=pretty_name, bench=bench)
    return str(DatasetCard(text))


# -- offline validation --------------------------------------------------------------------------------------------


def _invalid(what: str, expected: str, got: Any, path: Path, fix: str) -> PublishError:
    return PublishError(format_error(what, expected=expected, got=got, where=str(path), fix=fix))


def validate_card(folder: str | Path) -> Any:
    """Check the folder's ``README.md`` offline the way the Hub and ``datasets`` will read it.

    Returns:
        The loaded :class:`huggingface_hub.DatasetCard`.

    Raises:
        PublishError: unreadable YAML, missing license or pretty name, unknown size category, a config whose
            files match nothing, a shard no config reads, or a linked plot that is missing.
    """
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    path = folder / "README.md"
    try:
        card = DatasetCard.load(path)
    except Exception as exc:  # yaml, OS and huggingface_hub errors all mean "unreadable card"
        raise _invalid("dataset card", "a README.md with a YAML header", f"{type(exc).__name__}: {exc}", path,
                       "rerun publish_folder") from exc
    data = card.data.to_dict()
    for key in ("license", "pretty_name", "configs"):
        if not data.get(key):
            raise _invalid(f"card metadata {key!r}", "set", data.get(key), path, "rerun publish_folder")
    for cat in data.get("size_categories") or []:
        if cat not in HUB_SIZE_CATEGORIES:
            raise _invalid("card metadata size_categories", f"one of {HUB_SIZE_CATEGORIES}", cat, path,
                           "rerun publish_folder")
    configs = data["configs"]
    names = [c.get("config_name") for c in configs]
    if len(set(names)) != len(names) or sum(bool(c.get("default")) for c in configs) > 1:
        raise _invalid("card configs", "unique names and at most one default", names, path, "rerun publish_folder")
    shards = {p.relative_to(folder).as_posix() for p in (folder / "data").rglob("*.parquet")}
    covered: set[str] = set()
    for c in configs:
        files = c.get("data_files") or []
        for entry in files if isinstance(files, list) else [files]:
            pattern = entry["path"] if isinstance(entry, Mapping) else str(entry)
            matched = {s for s in shards if fnmatch.fnmatchcase(s, pattern)}
            if not matched:
                raise _invalid(f"data_files {pattern!r} of config {c.get('config_name')!r}",
                               "to match at least one shard", 0, path, "rerun publish_folder")
            covered |= matched
    if shards - covered:
        raise _invalid("shards under data/", "each read by a config", sorted(shards - covered)[:3], path,
                       "remove stray files under data/ or rerun publish_folder")
    for link in re.findall(r"\]\((plots/[^)\s]+)\)", card.text):
        if not (folder / link).is_file():
            raise _invalid(f"plot {link}", "present in the folder", "missing", path, "rerun publish_folder")
    return card
