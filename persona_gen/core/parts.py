"""Finished persona parts: markers that record each part file's checksum, and the checks that trust no part blindly.

A part (``part-NNNNNN``) is the feedback and judgments of one persona chunk, written under the parts dir by any
run or shard of one config. Its marker, ``stats/part-NNNNNN.json``, is written last and holds the part's call
counters and the sha256 of each of its files::

    {"stats": {<stage>: CallStats.as_dict()}, "files": {"feedback/part-000000.parquet": "<sha256>", ...}}

A part counts as done only when its marker is there and every file matches its checksum: a truncated or
replaced file is made again by the next run (from the cache, so it costs no LM call), and a merge names the bad
part and the command that remakes it. A part that holds recorded failures is made again too while those
failures may still be retried (``cache.retry_failures``), so a transient fault never becomes permanent data.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from persona_gen.core.errors import PersonaGenError, format_error

__all__ = [
    "PART_KINDS",
    "bad_parts",
    "check_parts",
    "failure_files",
    "file_sha256",
    "part_name",
    "part_status",
    "parts_not_found",
    "read_part_stats",
    "retry_wanted",
    "write_part_marker",
]

PART_KINDS = ("feedback", "judgments")


def part_name(index: int) -> str:
    return f"part-{index:06d}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _marker(parts: Path, index: int) -> Path:
    return parts / "stats" / f"{part_name(index)}.json"


def write_part_marker(parts: Path, index: int, stats: dict[str, Any], tables: Sequence[str] = PART_KINDS) -> Path:
    """Write part ``index``'s marker (last, atomically): its stats and the sha256 of each of its files, one per
    table of the chunk (``tables``: the pipeline's per-chunk tables)."""
    from persona_gen.core.errors import PublishError
    from persona_gen.core.io import atomic_write_text, to_json

    files = {f"{kind}/{part_name(index)}.parquet": file_sha256(parts / kind / f"{part_name(index)}.parquet")
             for kind in tables}
    path = _marker(parts, index)
    atomic_write_text(path, to_json({"stats": stats, "files": files}), error=PublishError)
    return path


def _read_marker(parts: Path, index: int) -> dict[str, Any] | None:
    try:
        data = json.loads(_marker(parts, index).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_part_stats(parts: Path, index: int) -> dict[str, dict[str, Any]]:
    """The stage counters of a finished part (markers written before checksums held the counters alone)."""
    data = _read_marker(parts, index) or {}
    return data["stats"] if isinstance(data.get("stats"), dict) and "files" in data else data


def part_status(parts: Path, index: int, *, retry_failures: bool = False) -> str | None:
    """None when part ``index`` is done and intact; otherwise why it must be made (again)."""
    data = _read_marker(parts, index)
    if data is None:
        return "not finished (no readable marker)"
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        return "its marker records no checksums (written by an older version)"
    for rel, digest in sorted(files.items()):
        path = parts / rel
        if not path.is_file():
            return f"{rel} is missing"
        if file_sha256(path) != digest:
            return f"{rel} does not match the checksum its marker recorded (truncated or replaced)"
    if retry_failures:
        failed = sum(int(s.get("failures", 0)) for s in data.get("stats", {}).values())
        if failed:
            return f"it holds {failed} recorded failure(s) that may be retried"
    return None


def retry_wanted(cache: Any, *clients: Any) -> bool:
    """Whether parts with recorded failures are made again: a retry budget and an LM whose answers can change."""
    return int(getattr(cache, "retry_failures", 0)) > 0 and not all(getattr(c, "deterministic", False)
                                                                       for c in clients)


def bad_parts(parts: Path, indices: Iterable[int]) -> dict[int, str]:
    """Parts among ``indices`` whose marker or files do not check out, with the reason."""
    out = {}
    for i in indices:
        why = part_status(parts, i)
        if why is not None:
            out[i] = why
    return out


def _remake_command(shard_index: int | None, shard_count: int) -> str:
    """The command that makes a part again: this command's overrides, as the run (or that shard) that wrote it."""
    overrides: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except Exception:  # not under @hydra.main (a test, a library call)
        overrides = []
    keep = [o for o in overrides if not o.startswith(("task=", "shard.index=", "shard.count="))]
    if shard_count > 1:
        keep += [f"shard.index={shard_index}", f"shard.count={shard_count}"]
    return "persona-gen " + " ".join(shlex.quote(o) for o in keep) if keep else "persona-gen"


def check_parts(parts: Path, chunks: Sequence[int], *, shard_of: dict[int, int] | None = None,
                shard_count: int = 1) -> None:
    """Raise one ``PersonaGenError`` naming the first part that fails its checksum, and the command remaking it.

    Args:
        parts: The parts dir.
        chunks: The part indices a merge reads.
        shard_of: Which shard makes each part (for the command); None for an unsharded run.
        shard_count: ``shard.count`` of the runs that wrote the parts.
    """
    bad = bad_parts(parts, chunks)
    if not bad:
        return
    index, why = next(iter(sorted(bad.items())))
    shard = (shard_of or {}).get(index)
    command = _remake_command(shard, shard_count)
    raise PersonaGenError(format_error(
        f"persona part {part_name(index)}", expected="intact (its files match the checksums of its marker)",
        got=why, where=f"{parts} ({len(bad)} bad part(s): {[part_name(i) for i in sorted(bad)][:5]})",
        fix=f"run `{command}` to make it again (intact parts are skipped, answers come from the cache), then merge"))


def parts_not_found(parts: Path, config_hash: str) -> PersonaGenError:
    """The error for a parts dir without ``global/info.json``: which config hash was looked for, which exist."""
    found = []
    root = parts.parent
    if root.is_dir():
        for info in sorted(root.glob("*/global/info.json"))[:10]:
            try:
                found.append(f"{info.parent.parent.name} (config_hash {json.loads(info.read_text())['config_hash']})")
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return PersonaGenError(format_error(
        "shard parts", expected=f"a folder with global/info.json for config_hash {config_hash}",
        got=f"{parts} has none", where=f"shard.parts_dir; parts found beside it: {found or 'none'}",
        fix="run the generate task (or every shard) with exactly these content overrides first; a merge must repeat "
            "the shards' overrides (a deleted cache also deletes its parts)"))


# Which files of the parts dir keep each stage's recorded failures (and in which column).
_FAILURES_IN = {"enrich": "global/persona_rejections.parquet (column message)",
                "consistency": "global/persona_rejections.parquet (column message)",
                "questions": "global/questions.parquet and the questions stage's filter counts",
                "answer": "feedback/part-*.parquet (column failures)",
                "critique": "feedback/part-*.parquet (column failures)",
                "revision": "feedback/part-*.parquet (column failures)"}


def failure_files(stage: str, parts: Path | None) -> str:
    """Where the recorded failures of ``stage`` are kept: files under the parts dir (not the run dir)."""
    where = _FAILURES_IN.get(stage, "judgments/part-*.parquet (column failure)" if stage.startswith("judge")
                             else "feedback/ and judgments/ part files")
    return (f"LM answers kept as recorded failures in {parts or 'the parts dir'}/{where}; each failed call's raw "
            "text: <run dir>/failures.jsonl")
