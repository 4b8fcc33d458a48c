"""PERSONA Bench: score a personalization method with a persona-voiced critic (``persona-gen task=bench``).

The package is callable: ``persona_gen.bench(overrides, *, output_dir, dataset=None)`` is the Python API's
:func:`persona_gen.api.bench` (the package and the function share the name ``persona_gen.bench``).
"""

import sys as _sys
import types as _types

from persona_gen.bench.data import BenchData, BenchPair, load_bench_data, select_pairs
from persona_gen.bench.evaluate import (
    accuracy_summary,
    intersectionality,
    leave_one_out,
    pass_at_k_samples,
    pass_at_k_summary,
    score_pairs,
)
from persona_gen.bench.methods import (
    BenchCritic,
    NoPersonaAnswerer,
    PersonaAnswerer,
    PluggedMethod,
    SummaryAnswerer,
    build_method,
    load_method,
)
from persona_gen.bench.records import BenchRow
from persona_gen.bench.settings import MODES, PAPER_MODES, BenchSettings, read_settings
from persona_gen.bench.task import BenchResult, run_bench

__all__ = [
    "MODES",
    "PAPER_MODES",
    "BenchCritic",
    "BenchData",
    "BenchPair",
    "BenchResult",
    "BenchRow",
    "BenchSettings",
    "NoPersonaAnswerer",
    "PersonaAnswerer",
    "PluggedMethod",
    "SummaryAnswerer",
    "accuracy_summary",
    "build_method",
    "intersectionality",
    "leave_one_out",
    "load_bench_data",
    "load_method",
    "pass_at_k_samples",
    "pass_at_k_summary",
    "read_settings",
    "run_bench",
    "score_pairs",
    "select_pairs",
]


class _CallablePackage(_types.ModuleType):
    def __call__(self, overrides=None, *, output_dir, dataset=None, cwd=None):  # type: ignore[no-untyped-def]
        """Run PERSONA Bench in this process: see :func:`persona_gen.api.bench`."""
        import importlib

        # The API sits above every stage (it composes the config and runs a task); looked up by name at call time
        # so that the bench package never imports it.
        api = importlib.import_module("persona_gen.api")
        return api.bench(overrides, output_dir=output_dir, dataset=dataset, cwd=cwd)


_sys.modules[__name__].__class__ = _CallablePackage
