"""Export annotation tasks from a generated dataset folder, and read them back.

``export_tasks`` picks ``num_personas`` personas and up to ``questions_per_persona`` feedback rows of each
(seeded), shows the original and the persona-aware revision in a seeded random order, and writes:

| file                  | for whom                | holds                                                    |
|-----------------------|-------------------------|----------------------------------------------------------|
| ``tasks.jsonl/.csv``  | raters, crowd platforms | task_id, persona_id, persona, question, answer_a/answer_b |
| ``key.jsonl``         | you only                | which of answer_a/answer_b is the original               |
| ``labels_template.csv`` | crowd platforms       | the columns labels must come back with                    |
| ``export.json``       | you                     | seed, source folder, counts, what was skipped and why     |
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from persona_gen.annotate._io import atomic_write_text, iter_jsonl, jsonl_text, to_json
from persona_gen.annotate.errors import AnnotationError
from persona_gen.annotate.records import CHOICES, AnnotationTask, TaskKey
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import stable_id

__all__ = ["LABEL_COLUMNS", "TASK_COLUMNS", "ExportResult", "TaskSet", "export_tasks", "load_feedback", "read_tasks"]

TASK_COLUMNS: tuple[str, ...] = ("task_id", "persona_id", "persona", "question", "answer_a", "answer_b")
LABEL_COLUMNS: tuple[str, ...] = ("rater_id", "task_id", "choice", "justification")
REQUIRED_FEEDBACK: tuple[str, ...] = ("feedback_id", "persona_id", "persona", "instruction", "original", "data")
FORMAT = "persona_gen.annotation_tasks"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TaskSet:
    """Exported tasks in file order, their answer keys by task id, and the export manifest."""

    folder: Path
    tasks: list[AnnotationTask]
    keys: dict[str, TaskKey]
    manifest: dict[str, Any] = field(default_factory=dict)

    def by_id(self) -> dict[str, AnnotationTask]:
        return {t.task_id: t for t in self.tasks}


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    tasks: list[AnnotationTask]
    manifest: dict[str, Any]

    def summary_lines(self) -> list[str]:
        m = self.manifest
        return [f"annotation tasks: {self.folder / 'tasks.csv'}  (and tasks.jsonl)",
                f"answer key:       {self.folder / 'key.jsonl'}  (keep it away from raters)",
                f"{m['num_tasks']} tasks, {m['num_personas']} personas (asked {m['requested']['num_personas']} x "
                f"{m['requested']['questions_per_persona']}); skipped rows: {m['skipped']}",
                f"serve them: persona-gen task=annotate_serve annotate.tasks_dir={self.folder}"]


def load_feedback(dataset_dir: str | Path, *, root: str | Path | None = None) -> pd.DataFrame:
    """All feedback rows of a dataset, with the columns an export needs checked.

    ``dataset_dir`` is a dataset folder written by ``task=generate`` (``data/feedback/*.parquet``), or any dataset
    in the released PERSONA layout (``persona``, ``instruction``, ``original``, ``critique``, ``data``,
    ``question type``): a local folder or file of parquet/JSONL/CSV, or a Hub dataset id. Released rows get
    content-derived ``persona_id``, ``question_id`` and ``feedback_id`` where they have none.
    """
    folder = Path(dataset_dir) / "data" / "feedback"
    files = sorted(folder.glob("*.parquet"))
    if files:
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    else:
        frame = _released(dataset_dir, root, folder)
    missing = [c for c in REQUIRED_FEEDBACK if c not in frame.columns]
    if missing:
        raise AnnotationError(format_error(
            "feedback columns", expected=f"to include {list(REQUIRED_FEEDBACK)}", got=f"{missing} missing",
            where=str(folder), fix="export from a dataset written by task=generate"))
    return frame


def _released(dataset_dir: str | Path, root: str | Path | None, folder: Path) -> pd.DataFrame:
    from persona_gen.bench.data import local_data_files, read_released, resolve_source

    none = AnnotationError(format_error(
        "feedback parquet files", expected="present (or files in the released PERSONA layout)",
        got=f"none in {folder}", where="annotate.dataset_dir",
        fix="point annotate.dataset_dir at a dataset folder written by task=generate (it holds data/feedback/), "
            "a folder of parquet/JSONL/CSV files in the released PERSONA layout, or a Hub id"))
    try:
        resolved = resolve_source(dataset_dir, root)
    except ConfigError:
        raise none from None
    if isinstance(resolved, Path) and not local_data_files(resolved):
        raise none
    try:
        frame, _ = read_released(resolved, root=root, required=("persona", "instruction", "original", "data"))
    except ConfigError as exc:
        raise AnnotationError(str(exc).replace("bench.dataset_dir / ", "")) from None
    return frame


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def export_tasks(dataset_dir: str | Path, out_dir: str | Path, *, num_personas: int, questions_per_persona: int,
                 seed: int) -> ExportResult:
    """Select, order and write annotation tasks (see the module docstring for the files).

    Args:
        dataset_dir: A dataset folder written by ``task=generate``.
        out_dir: Where the task files go (created).
        num_personas: Personas to pick; fewer are exported when the dataset has fewer.
        questions_per_persona: Feedback rows per persona (the paper used 20 personas x 10 questions).
        seed: Seeds the choice of personas and rows and the A/B order of every task.
    """
    for name, value in (("annotate.num_personas", num_personas),
                        ("annotate.questions_per_persona", questions_per_persona)):
        if int(value) < 1:
            raise AnnotationError(format_error(name, expected=">= 1", got=value, where="conf/annotate/default.yaml",
                                               fix="raise it, e.g. 20 personas x 10 questions as in the paper"))
    frame = load_feedback(dataset_dir)
    texts = {c: frame[c].map(_text) for c in ("original", "data")}
    incomplete = (texts["original"].str.strip() == "") | (texts["data"].str.strip() == "")
    identical = ~incomplete & (texts["original"].str.strip() == texts["data"].str.strip())
    usable = frame[~incomplete & ~identical].sort_values(["persona_id", "feedback_id"], kind="stable")
    usable = usable.drop_duplicates("feedback_id")

    select_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    persona_ids = sorted(usable["persona_id"].unique())
    chosen = [persona_ids[i] for i in select_rng.permutation(len(persona_ids))[:int(num_personas)]]
    groups = {pid: g for pid, g in usable.groupby("persona_id", sort=True)}
    tasks: list[AnnotationTask] = []
    keys: list[TaskKey] = []
    for pid in chosen:
        rows = groups[pid]
        picks = select_rng.permutation(len(rows))[:int(questions_per_persona)]
        for _, row in rows.iloc[sorted(picks)].iterrows():
            original_first = bool(order_rng.random() < 0.5)
            original, revision = _text(row["original"]), _text(row["data"])
            task_id = stable_id("t", row["feedback_id"], int(seed))
            tasks.append(AnnotationTask(
                task_id=task_id, persona_id=str(pid), persona=_text(row["persona"]), question=_text(row["instruction"]),
                answer_a=original if original_first else revision, answer_b=revision if original_first else original))
            qtype = _text(row.get("question type", row.get("question_type", "train"))) or "train"
            keys.append(TaskKey.model_validate({
                "task_id": task_id, "feedback_id": str(row["feedback_id"]), "persona_id": str(pid),
                "question_id": _text(row.get("question_id")) or stable_id("q", _text(row["instruction"])),
                "answer_a": "original" if original_first else "revision",
                "question_type": qtype if qtype in ("train", "test") else "train",
                "seen": bool(row.get("seen", False)), "generator_model": _text(row.get("generator_model"))}))

    out = Path(out_dir)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "seed": int(seed), "dataset_dir": str(dataset_dir),
        "num_tasks": len(tasks), "num_personas": len(chosen),
        "requested": {"num_personas": int(num_personas), "questions_per_persona": int(questions_per_persona)},
        "available": {"personas": len(persona_ids), "rows": len(frame)},
        "skipped": {"incomplete": int(incomplete.sum()), "identical_answers": int(identical.sum())},
        "label_columns": list(LABEL_COLUMNS), "choices": list(CHOICES),
    }
    atomic_write_text(out / "tasks.jsonl", jsonl_text(t.model_dump() for t in tasks))
    atomic_write_text(out / "tasks.csv", _csv([t.model_dump() for t in tasks], TASK_COLUMNS))
    atomic_write_text(out / "key.jsonl", jsonl_text(k.model_dump() for k in keys))
    atomic_write_text(out / "labels_template.csv", _csv([], LABEL_COLUMNS))
    atomic_write_text(out / "export.json", to_json(manifest))
    return ExportResult(out, tasks, manifest)


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_tasks(tasks_dir: str | Path) -> TaskSet:
    """Read ``tasks.jsonl`` and ``key.jsonl`` from a folder written by ``export_tasks``, checking they match."""
    folder = Path(tasks_dir)
    for name in ("tasks.jsonl", "key.jsonl"):
        if not (folder / name).is_file():
            raise AnnotationError(format_error(
                f"{name}", expected="present", got=f"missing in {folder}", where="annotate.tasks_dir",
                fix="point annotate.tasks_dir at the annotation/ folder written by task=annotate_export"))
    tasks = [_record(AnnotationTask, obj, folder / "tasks.jsonl", n) for n, obj in iter_jsonl(folder / "tasks.jsonl")]
    keys = {}
    for n, obj in iter_jsonl(folder / "key.jsonl"):
        key = _record(TaskKey, obj, folder / "key.jsonl", n)
        keys[key.task_id] = key
    unkeyed = [t.task_id for t in tasks if t.task_id not in keys]
    if unkeyed or not tasks:
        raise AnnotationError(format_error(
            "tasks.jsonl and key.jsonl", expected="non-empty, with one key per task",
            got=f"{len(tasks)} tasks, {len(unkeyed)} without a key (e.g. {unkeyed[:3]})", where=str(folder),
            fix="re-run task=annotate_export; do not mix files of two exports"))
    manifest_path = folder / "export.json"
    manifest = {}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return TaskSet(folder, tasks, keys, manifest)


def _record(cls: Any, obj: dict[str, Any], path: Path, line: int) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise AnnotationError(format_error(
            f"field {'.'.join(str(p) for p in err['loc']) or '(row)'}", expected=f"valid for {cls.__name__}",
            got=err["msg"], where=f"{path}:{line}",
            fix="re-run task=annotate_export rather than editing the file")) from None
