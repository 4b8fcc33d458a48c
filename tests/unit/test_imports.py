"""The package's shape: stages talk only through records, so no stage imports another, and nothing cycles."""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "persona_gen"
# The pipeline's stages: each a folder whose steps the pipeline config names.
STAGES = {"census", "enrich", "questions", "feedback", "judge", "publish"}
# Shared layers every stage may use.
SHARED = {"core", "signatures", "metrics"}


def _edges() -> dict[str, dict[str, list[str]]]:
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).parts
        source = rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] == "persona_gen" and len(parts) > 1 and parts[1] != source:
                    edges[source][parts[1]].append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return edges


def test_imports_no_stage_imports_another_stage():
    bad = [(src, dst, where[0]) for src, dsts in _edges().items() if src in STAGES
           for dst, where in dsts.items() if dst in STAGES]
    assert bad == []


def test_imports_core_imports_only_core():
    edges = _edges()
    assert {dst: where for dst, where in edges["core"].items()} == {}


def test_imports_package_graph_has_no_cycle():
    graph = {src: set(dsts) for src, dsts in _edges().items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle
    assert "pipeline" in graph and STAGES <= set(graph) | {"publish"}
