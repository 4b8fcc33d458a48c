"""The declared pipeline: its step graph (``graph``) and the runner that executes and publishes it (``runner``)."""

from persona_gen.pipeline.graph import Pipeline, TableSpec
from persona_gen.pipeline.runner import (
    RunResult,
    ShardResult,
    check,
    config_hash,
    merge,
    parts_dir_for,
    prepare,
    publish_parts,
    run,
    run_key,
)

__all__ = [
    "Pipeline",
    "RunResult",
    "ShardResult",
    "TableSpec",
    "check",
    "config_hash",
    "merge",
    "parts_dir_for",
    "prepare",
    "publish_parts",
    "run",
    "run_key",
]
