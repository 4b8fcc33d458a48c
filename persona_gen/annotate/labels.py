"""Import human labels (CSV or JSONL from any crowd platform or the local page) and join them to their tasks.

A label file has one row per (rater, task): ``rater_id``, ``task_id``, ``choice`` (``a``, ``b`` or ``tie``)
and an optional free-text ``justification``; other columns (platform metadata) are ignored. Every problem
is reported in the house format with its ``file:line``, all of them at once, so one fix-up pass is enough.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from persona_gen.annotate._io import iter_jsonl
from persona_gen.annotate.errors import AnnotationError
from persona_gen.annotate.export import TaskSet
from persona_gen.annotate.records import CHOICES, Label, LabeledItem, Rating, majority
from persona_gen.core.errors import format_error

__all__ = ["RATER_ID", "build_items", "check_label", "read_items", "read_labels"]

RATER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_JUSTIFICATION = 4000
_SHOWN = 10


def check_label(obj: dict[str, Any], where: str, task_ids: Collection[str], *,
                require_justification: bool = False) -> Label:
    """Validate one raw label row; raise ``AnnotationError`` (house format, with ``where``) on the first problem."""
    rater = str(obj.get("rater_id") or "").strip()
    task = str(obj.get("task_id") or "").strip()
    choice = str(obj.get("choice") or "").strip().lower()
    raw_just = obj.get("justification")
    justification = "" if raw_just is None else str(raw_just).strip()
    if not RATER_ID.fullmatch(rater):
        raise AnnotationError(format_error(
            "rater_id", expected="1-64 letters, digits or _.@-", got=rater, where=where,
            fix="give every rater a short id such as r01 (no spaces)"))
    if task not in task_ids:
        raise AnnotationError(format_error(
            "task_id", expected="one of the exported tasks", got=task, where=where,
            fix="label only tasks of this export (annotate.tasks_dir); check the file belongs to it"))
    if choice not in CHOICES:
        raise AnnotationError(format_error(
            "choice", expected=f"one of {list(CHOICES)}", got=obj.get("choice"), where=where,
            fix="write a (answer_a), b (answer_b) or tie"))
    if require_justification and not justification:
        raise AnnotationError(format_error(
            "justification", expected="non-empty", got="", where=where,
            fix="ask the rater why, or set annotate.require_justification=false"))
    if len(justification) > MAX_JUSTIFICATION:
        raise AnnotationError(format_error(
            "justification", expected=f"at most {MAX_JUSTIFICATION} characters", got=f"{len(justification)} characters",
            where=where, fix="shorten it"))
    return Label.model_validate({"rater_id": rater, "task_id": task, "choice": choice,
                                 "justification": justification, "source": where})


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_jsonl(path)
        return
    if suffix != ".csv":
        raise AnnotationError(format_error(
            f"label file {path.name}", expected="a .csv or .jsonl file", got=path.suffix or "no extension",
            where=str(path), fix="export the labels as CSV or JSONL"))
    try:
        yield from _csv_rows(path)
    except UnicodeDecodeError:
        from persona_gen.core.io import find_non_utf8

        with path.open("rb") as fh:
            line, what = find_non_utf8(fh) or (1, "undecodable bytes")
        raise AnnotationError(format_error(
            f"label file {path.name}", expected="UTF-8 text (CSV)", got=f"{what} (a spreadsheet's cp1252 export, or "
            "a binary file)", where=f"{path}:{line}",
            fix="save it as 'CSV UTF-8' (Excel: Save As > CSV UTF-8), or convert: iconv -f cp1252 -t utf-8")) from None
    except csv.Error as exc:
        raise AnnotationError(format_error(
            f"label file {path.name}", expected="a CSV text file", got=f"{exc} (a binary file?)", where=str(path),
            fix="export the labels as CSV or JSONL")) from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # utf-8-sig: spreadsheet programs put a byte-order mark before the header.
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("rater_id", "task_id", "choice") if c not in columns]
        if missing:
            raise AnnotationError(format_error(
                "label columns", expected="rater_id, task_id, choice (and justification)",
                got=f"{missing} missing from header {header}", where=f"{path}:1",
                fix="rename the platform's columns to these names (see labels_template.csv)"))
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise AnnotationError(format_error(
                    "a CSV row", expected=f"{len(columns)} fields like the header", got=f"{len(values)} fields",
                    where=f"{path}:{line}", fix="quote fields that contain commas or line breaks"))
            yield line, dict(zip(columns, values, strict=True))


def read_labels(paths: Sequence[str | Path], task_ids: Collection[str], *,
                require_justification: bool = False) -> list[Label]:
    """Read and validate label files; every problem of every file is collected into one ``AnnotationError``.

    Raises:
        AnnotationError: On a missing file, a file of another format, an unreadable row, a bad field, or a
            rater who labeled the same task twice; the message lists the first problems with ``file:line``.
    """
    if not paths:
        raise AnnotationError(format_error("annotate.labels", expected="one or more label files", got=[],
                                           where="command line", fix="pass annotate.labels=[labels.csv]"))
    labels: list[Label] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            problems.append(format_error(f"label file {path}", expected="an existing file", got="not found",
                                         where="annotate.labels", fix="check the path"))
            continue
        count = 0
        try:
            for line, obj in _rows(path):
                count += 1
                where = f"{path}:{line}"
                try:
                    label = check_label(obj, where, task_ids, require_justification=require_justification)
                except AnnotationError as exc:
                    problems.append(str(exc))
                    continue
                pair = (label.rater_id, label.task_id)
                if pair in seen:
                    problems.append(format_error(
                        f"rater {label.rater_id} on task {label.task_id}", expected="labeled once",
                        got=f"again (first at {seen[pair]})", where=where, fix="keep one of the two rows"))
                    continue
                seen[pair] = where
                labels.append(label)
        except AnnotationError as exc:  # the file as a whole cannot be read
            problems.append(str(exc))
            continue
        if count == 0:
            problems.append(format_error(f"label file {path}", expected="at least one label row", got="none",
                                         where=str(path), fix="check it is the file the platform exported"))
    if len(problems) == 1:
        raise AnnotationError(problems[0])  # one problem: one line on the command line
    if problems:
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise AnnotationError(f"{len(problems)} problem(s) in the label files:\n  " +
                              "\n  ".join(problems[:_SHOWN]) + more)
    return labels


def build_items(tasks: TaskSet, labels: Iterable[Label]) -> list[LabeledItem]:
    """Join labels with their tasks and keys: one item per labeled task, in export order, with its majority."""
    by_task: dict[str, list[Label]] = {}
    for label in labels:
        by_task.setdefault(label.task_id, []).append(label)
    items = []
    for task in tasks.tasks:
        task_labels = sorted(by_task.get(task.task_id, []), key=lambda lab: lab.rater_id)
        if not task_labels:
            continue
        key = tasks.keys[task.task_id]
        ratings = tuple(Rating.model_validate({"rater_id": lab.rater_id, "preferred": key.preference(lab.choice),
                                               "justification": lab.justification}) for lab in task_labels)
        original, revision = (task.answer_a, task.answer_b) if key.answer_a == "original" else \
            (task.answer_b, task.answer_a)
        items.append(LabeledItem.model_validate({
            "task_id": task.task_id, "feedback_id": key.feedback_id, "persona_id": key.persona_id,
            "question_id": key.question_id, "persona": task.persona, "question": task.question, "original": original,
            "revision": revision, "ratings": ratings, "majority": majority([r.preferred for r in ratings])}))
    return items


def read_items(path: str | Path) -> list[LabeledItem]:
    """Read ``items.jsonl`` written by ``task=annotate_import`` (or by hand, in the same shape)."""
    from pydantic import ValidationError

    path = Path(path)
    if not path.is_file():
        raise AnnotationError(format_error(
            "labeled items file", expected="an existing items.jsonl", got=str(path), where="optimize.labeled_items",
            fix="run task=annotate_import and pass its annotation/items.jsonl"))
    items = []
    for line, obj in iter_jsonl(path):
        try:
            items.append(LabeledItem.model_validate(obj))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise AnnotationError(format_error(
                f"field {'.'.join(str(p) for p in err['loc'])}", expected="valid for a labeled item", got=err["msg"],
                where=f"{path}:{line}", fix="write items with task=annotate_import")) from None
    return items
