"""Small file helpers of annotation and optimization: atomic writes and JSONL with line numbers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from persona_gen.annotate.errors import AnnotationError
from persona_gen.core.errors import format_error
from persona_gen.core.io import atomic_write_text as _atomic_write_text

__all__ = ["atomic_write_text", "iter_jsonl", "jsonl_text", "to_json"]


def to_json(obj: Any) -> str:
    """``persona_gen.core.io.to_json`` in its strict form (reports a person reads: no NaN, no unknown objects)."""
    from persona_gen.core.io import to_json as _to_json

    return _to_json(obj, strict=True)


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """``persona_gen.core.io.jsonl_text``: one compact JSON object per line, keys sorted."""
    from persona_gen.core.io import jsonl_text as _jsonl_text

    return _jsonl_text(rows)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically (``persona_gen.core.io``); failures are ``AnnotationError``."""
    return _atomic_write_text(path, text, error=AnnotationError)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a line that is not a JSON object is an error."""
    path = Path(path)
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AnnotationError(format_error(
                    "a JSONL line", expected="UTF-8 text", got=f"byte 0x{raw[exc.start:exc.start + 1].hex()} at "
                    f"column {exc.start + 1} (a binary file, or another encoding)", where=f"{path}:{number}",
                    fix="write the file as UTF-8 JSON lines")) from None
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
