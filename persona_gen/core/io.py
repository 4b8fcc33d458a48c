"""Atomic file writes: the one helper every stage uses, so no reader ever sees half a file (and ``find_non_utf8``,
which names the line of a text file that is not UTF-8).

A temporary file in the target's folder is written, fsynced and renamed over the target (``os.replace``);
on any failure the temporary file is removed and the old target, if any, is left as it was.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persona_gen.core.errors import PersonaGenError, format_error

__all__ = ["atomic_write_bytes", "atomic_write_text", "figure_png", "file_sha256", "find_non_utf8", "jsonl_text",
           "to_json"]


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_json(obj: Any, *, strict: bool = False) -> str:
    """Indented, sorted-key JSON with a final newline: the shape of every manifest, report and info file.

    ``strict`` refuses NaN and objects JSON does not know (reports a person reads); otherwise they are written
    as ``NaN`` and ``str(obj)`` (paths in manifests).
    """
    import json

    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=not strict,
                      default=None if strict else str) + "\n"


def jsonl_text(rows: Any) -> str:
    """One compact JSON object per line, keys sorted, so the same rows give the same bytes."""
    import json

    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)


def atomic_write_bytes(path: str | Path, data: bytes, *, error: type[PersonaGenError] = PersonaGenError) -> Path:
    """Write ``data`` to ``path`` atomically; an OS failure becomes one ``error`` in the house format."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(format_error(
            f"output folder {path.parent}", expected="writable", got=f"{type(exc).__name__}: {exc.strerror or exc}",
            fix="pick another output folder or fix its permissions; nothing was written")) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise error(format_error(
                f"writing {path}", expected="to succeed", got=f"{type(exc).__name__}: {exc.strerror or exc}",
                fix="free disk space or fix permissions; nothing partial was left")) from exc
        raise
    return path


def atomic_write_text(path: str | Path, text: str, *, error: type[PersonaGenError] = PersonaGenError) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), error=error)


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes, then closed. No 'Software' stamp: the same data give the same bytes."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def find_non_utf8(lines: Iterable[bytes]) -> tuple[int, str] | None:
    """The 1-based number and a short excerpt of the first line that is not UTF-8 (an Excel cp1252 export, a
    binary file), or None; for error messages that must name the line."""
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = line[exc.start:exc.start + 1]
            excerpt = line[max(0, exc.start - 20):exc.start + 20]
            return number, f"byte 0x{bad.hex()} at column {exc.start + 1}: {excerpt!r}"
    return None
