"""Small file helpers of annotation and optimization: atomic writes and JSONL with line numbers."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from persona_gen.annotate.errors import AnnotationError
from persona_gen.core.errors import format_error

__all__ = ["atomic_write_text", "iter_jsonl", "jsonl_text", "to_json"]


def to_json(obj: Any) -> str:
    """Indented, sorted-key JSON with a final newline: the shape of every report file."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """One compact JSON object per line, keys sorted, so the same rows give the same bytes."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` so that readers see the old file or the whole new one: temp file, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a line that is not a JSON object is an error."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(format_error(
                    "a JSONL line", expected="one JSON object", got=f"invalid JSON ({exc.msg})",
                    where=f"{path}:{number}", fix="write one JSON object per line, or fix the quoting")) from None
            if not isinstance(obj, dict):
                raise AnnotationError(format_error(
                    "a JSONL line", expected="a JSON object", got=type(obj).__name__, where=f"{path}:{number}",
                    fix='write e.g. {"rater_id": "r1", "task_id": "t-...", "choice": "a"}'))
            yield number, obj
