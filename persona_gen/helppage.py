"""The text of ``persona-gen --help``: tasks, config groups with their options, each with one line.

Hydra renders the page from ``conf/hydra/help/persona_gen.yaml``; its template interpolates
``${persona_gen_help:tasks}`` and ``${persona_gen_help:groups}``, answered here. An option's line is the first
comment line of its YAML file, so a new file of ``conf/`` shows up in the help with its own words.
"""

from __future__ import annotations

from importlib import metadata, resources

__all__ = ["GROUP_HELP", "TASK_HELP", "group_options", "groups_text", "register_help_resolver", "tasks_text",
           "version"]

# One line per task of persona_gen.tasks.TASKS (a test keeps the two in step).
TASK_HELP: dict[str, str] = {
    "generate": "the pipeline (default): census personas -> enrichment -> questions -> feedback -> judge -> dataset",
    "merge": "publish one dataset from the persona chunks sharded runs wrote (shard.count, shard.parts_dir)",
    "bench": "PERSONA Bench on a generated dataset (bench.dataset_dir=<run>/dataset, bench.mode, bench.method)",
    "annotate_export": "export human role-play annotation tasks (CSV/JSONL) from a dataset",
    "annotate_serve": "serve the labeling page on 127.0.0.1 (annotate.tasks_dir=<export>/annotation)",
    "annotate_import": "import labels; human-vs-human and human-vs-judge agreement (annotate.labels=[...])",
    "optimize": "compile the persona judge with DSPy on labeled items (optimize.optimizer=...)",
    "prepare": "the run-once work of a config into shard.parts_dir, before sharded runs (they then only read it)",
    "plan": "what a run will cost, no LM call: calls per step and model, tokens, wall time (plan.latency_s=...)",
}

# One line per config group; the options' lines come from their files.
GROUP_HELP: dict[str, str] = {
    "models": "both LM roles at once (generator and judge); one role: models.judge=<option of model>",
    "model": "one LM, for models.generator or models.judge (models.generator=fake)",
    "scale": "how many personas and rows",
    "sampler": "the census source personas are sampled from",
    "stage/enrich": "psychodemographics and LM-written details",
    "stage/questions": "where questions come from",
    "stage/feedback": "how revisions are made",
    "stage/judge": "the persona-voiced judge",
    "pipeline": "the declared steps and published tables (docs/pipeline.md); yours: --config-dir my_conf pipeline=mine",
    "cache": "the LM answer cache (default: the user cache dir)",
    "publish": "where the dataset goes",
    "bench": "PERSONA Bench analyses (task=bench)",
    "annotate": "human annotation (task=annotate_*)",
    "optimize": "judge optimization (task=optimize)",
    "plan": "cost estimates of task=plan (latency per call, typical lengths)",
    "experiment": "presets that override several groups",
    "paths": "where runs, cache and shared data live",
    "local": "your machine's own overrides (optional conf/local/default.yaml)",
}

_HIDDEN_GROUPS = ("hydra", "task")  # tasks have their own section


def version() -> str:
    try:
        return metadata.version("persona_gen")
    except metadata.PackageNotFoundError:
        return "unknown"


def _description(text: str, width: int = 110) -> str:
    """The first sentence of a YAML file's leading comment (``@package`` directives skipped), cut to ``width``."""
    parts = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if parts or stripped:
                break
            continue
        body = stripped.lstrip("#").strip()
        if body.startswith("@package"):
            continue
        if not body:
            if parts:
                break
            continue
        parts.append(body)
    joined = " ".join(parts)
    end = joined.find(". ")
    sentence = joined if end < 0 else joined[: end + 1]
    return sentence if len(sentence) <= width else sentence[: width - 3].rstrip() + "..."


def group_options(group: str) -> dict[str, str]:
    """``{option: one line}`` of a config group, from the files of ``conf/<group>/``."""
    folder = resources.files("persona_gen.conf").joinpath(group)
    if not folder.is_dir():
        return {}
    return {p.name[:-5]: _description(p.read_text(encoding="utf-8"))
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")}


def _groups() -> list[str]:
    root = resources.files("persona_gen.conf")
    found = []

    def walk(node: object, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda p: p.name):  # type: ignore[attr-defined]
            if child.is_dir() and not child.name.startswith(("_", ".")):
                name = f"{prefix}{child.name}"
                if name in _HIDDEN_GROUPS:
                    continue
                if any(p.name.endswith(".yaml") for p in child.iterdir()):
                    found.append(name)
                walk(child, name + "/")

    walk(root, "")
    order = {g: n for n, g in enumerate(GROUP_HELP)}
    return sorted(found, key=lambda g: (order.get(g, len(order)), g))


def groups_text() -> str:
    lines = []
    for group in _groups():
        lines.append(f"{group}: {GROUP_HELP.get(group, '')}".rstrip())
        options = group_options(group)
        width = max((len(o) for o in options), default=0)
        lines += [f"  {option:<{width}}  {line}".rstrip() for option, line in options.items()]
    return _escape("\n".join(lines))


def tasks_text() -> str:
    from persona_gen.tasks import TASKS

    width = max(len(t) for t in TASKS)
    return _escape("\n".join(f"  {name:<{width}}  {TASK_HELP.get(name, '')}".rstrip() for name in TASKS))


def _escape(text: str) -> str:
    # Hydra fills the template with string.Template: a literal $ (e.g. $PERSONA_GEN_BASE_URL) must be $$.
    return text.replace("$", "$$")


def _resolve(what: str) -> str:
    if what == "tasks":
        return tasks_text()
    if what == "groups":
        return groups_text()
    if what == "version":
        return version()
    raise ValueError(f"persona_gen_help: unknown section {what!r} (tasks, groups, version)")


def register_help_resolver() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("persona_gen_help"):
        OmegaConf.register_new_resolver("persona_gen_help", _resolve)
