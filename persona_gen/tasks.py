"""Tasks that ``persona-gen task=<name>`` runs. Each is ``fn(cfg) -> TaskResult``-like with ``summary_lines()``.

Tasks are looked up by import path so the CLI stays thin and a task's heavy imports load only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from persona_gen.core.errors import ConfigError, format_error

__all__ = ["TASKS", "resolve_task"]

TASKS: dict[str, str] = {
    "generate": "persona_gen.pipeline:run",
    "merge": "persona_gen.pipeline:merge",
    "prepare": "persona_gen.pipeline:prepare",
    "plan": "persona_gen.pipeline.plan:run_plan",
    "optimize": "persona_gen.optimize.task:run_optimize",
    "annotate_export": "persona_gen.annotate.tasks:run_export",
    "annotate_import": "persona_gen.annotate.tasks:run_import",
    "annotate_serve": "persona_gen.annotate.tasks:run_serve",
    "bench": "persona_gen.bench.task:run_bench",
}


def resolve_task(name: str) -> Callable[[Any], Any]:
    if name not in TASKS:
        raise ConfigError(format_error("task", expected=f"one of {sorted(TASKS)}", got=name,
                                       where="command line or conf/config.yaml", fix="e.g. task=generate"))
    module, func = TASKS[name].split(":")
    return getattr(importlib.import_module(module), func)
