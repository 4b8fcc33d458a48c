"""Publish a run: parquet shards, a dataset card from ``cards/``, and the push to the Hub."""

from persona_gen.publish.card import SplitInfo, card_context, render_bench_card, render_card, validate_card
from persona_gen.publish.dpo import PERSONALIZATION_INSTRUCTION, dpo_frame
from persona_gen.publish.hub import (
    Published,
    publish_folder,
    read_token,
    retry_command,
    scan_for_secret,
    upload_folder,
    upload_published,
)
from persona_gen.publish.reproduce import reproduction_files, write_reproduction_files
from persona_gen.publish.typed import dataset_info, typed_table
from persona_gen.publish.writer import ShardWriter, atomic_write_bytes, atomic_write_text, write_parquet_shards

__all__ = [
    "PERSONALIZATION_INSTRUCTION",
    "Published",
    "ShardWriter",
    "SplitInfo",
    "atomic_write_bytes",
    "atomic_write_text",
    "card_context",
    "dataset_info",
    "dpo_frame",
    "publish_folder",
    "read_token",
    "render_bench_card",
    "render_card",
    "reproduction_files",
    "retry_command",
    "scan_for_secret",
    "typed_table",
    "upload_folder",
    "upload_published",
    "validate_card",
    "write_parquet_shards",
    "write_reproduction_files",
]
