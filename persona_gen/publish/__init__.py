"""Publish a run: parquet shards, a dataset card from ``cards/``, and the push to the Hub."""

from persona_gen.publish.card import SplitInfo, card_context, render_bench_card, render_card, validate_card
from persona_gen.publish.hub import Published, publish_folder, read_token, scan_for_secret, upload_folder
from persona_gen.publish.writer import ShardWriter, atomic_write_bytes, atomic_write_text, write_parquet_shards

__all__ = [
    "Published",
    "ShardWriter",
    "SplitInfo",
    "atomic_write_bytes",
    "atomic_write_text",
    "card_context",
    "publish_folder",
    "read_token",
    "render_bench_card",
    "render_card",
    "scan_for_secret",
    "upload_folder",
    "validate_card",
    "write_parquet_shards",
]
