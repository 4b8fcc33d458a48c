"""persona_gen: PERSONA (arXiv 2407.17387) as software. The Python API, loaded on first use.

``persona_gen.generate(overrides, *, output_dir)`` runs the pipeline, ``persona_gen.bench(overrides, *,
output_dir, dataset=None)`` runs PERSONA Bench (``persona_gen.bench`` is also the bench's package, and calling it
runs the bench), ``persona_gen.run(cfg)`` runs a config you composed (``persona_gen.compose_config``). See
``docs/api.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona_gen import bench
    from persona_gen.api import BenchRun, GeneratedRun, compose_config, generate
    from persona_gen.pipeline import RunResult, run

__all__ = ["BenchRun", "GeneratedRun", "RunResult", "bench", "compose_config", "generate", "run"]

# Loaded on first use: `import persona_gen` stays cheap (the pipeline pulls in pandas, the bench DSPy).
_LAZY = {"BenchRun": "persona_gen.api", "GeneratedRun": "persona_gen.api", "compose_config": "persona_gen.api",
         "generate": "persona_gen.api", "RunResult": "persona_gen.pipeline", "run": "persona_gen.pipeline"}


def __getattr__(name: str) -> Any:
    if name == "bench":
        return importlib.import_module("persona_gen.bench")  # a callable package: persona_gen.bench(...) runs it
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'persona_gen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
