from __future__ import annotations

import csv
import json

import pytest

from persona_gen.annotate import AnnotationError, export_tasks, load_feedback, read_tasks
from tests.unit.annotate.synthetic import feedback_frame, write_dataset


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path, num_personas=4, questions=5)


def _export(dataset, out, **kwargs):
    return export_tasks(dataset, out, **{"num_personas": 3, "questions_per_persona": 4, "seed": 0, **kwargs})


def test_export_tasks_keeps_answer_sources_out_of_rater_files(dataset, tmp_path):
    _export(dataset, tmp_path / "ann")
    with (tmp_path / "ann" / "tasks.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert header == ["task_id", "persona_id", "persona", "question", "answer_a", "answer_b"]
    assert "original" not in (tmp_path / "ann" / "tasks.jsonl").read_text()


def test_export_tasks_is_deterministic_for_a_seed(dataset, tmp_path):
    _export(dataset, tmp_path / "a")
    _export(dataset, tmp_path / "b")
    for name in ("tasks.jsonl", "tasks.csv", "key.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_export_tasks_key_records_the_randomized_order(dataset, tmp_path):
    result = _export(dataset, tmp_path / "ann", num_personas=4, questions_per_persona=5)
    tasks = read_tasks(tmp_path / "ann")
    rows = feedback_frame(4, 5).set_index("feedback_id")
    for task in result.tasks:
        key = tasks.keys[task.task_id]
        shown_a = rows.loc[key.feedback_id, "original" if key.answer_a == "original" else "data"]
        assert task.answer_a == shown_a
    assert {k.answer_a for k in tasks.keys.values()} == {"original", "revision"}


def test_export_tasks_limits_personas_and_questions(dataset, tmp_path):
    result = _export(dataset, tmp_path / "ann", num_personas=2, questions_per_persona=3)
    assert len({t.persona_id for t in result.tasks}) == 2
    assert len(result.tasks) == 6
    assert json.loads((tmp_path / "ann" / "export.json").read_text())["num_tasks"] == 6


def test_export_tasks_skips_rows_with_empty_or_identical_answers(tmp_path):
    frame = feedback_frame(1, 3)
    frame.loc[0, "data"] = ""
    frame.loc[1, "data"] = frame.loc[1, "original"]
    (tmp_path / "dataset" / "data" / "feedback").mkdir(parents=True)
    frame.to_parquet(tmp_path / "dataset" / "data" / "feedback" / "train-00000-of-00001.parquet")
    result = _export(tmp_path / "dataset", tmp_path / "ann", num_personas=1, questions_per_persona=3)
    assert len(result.tasks) == 1
    assert result.manifest["skipped"] == {"incomplete": 1, "identical_answers": 1}


def test_load_feedback_rejects_a_folder_without_parquet(tmp_path):
    with pytest.raises(AnnotationError, match=r"feedback parquet files must be present.*annotate.dataset_dir"):
        load_feedback(tmp_path)


def test_export_tasks_rejects_zero_personas(dataset, tmp_path):
    with pytest.raises(AnnotationError, match=r"annotate.num_personas must be >= 1, but got 0"):
        _export(dataset, tmp_path / "ann", num_personas=0)


def test_read_tasks_rejects_a_folder_without_key(dataset, tmp_path):
    _export(dataset, tmp_path / "ann")
    (tmp_path / "ann" / "key.jsonl").unlink()
    with pytest.raises(AnnotationError, match=r"key.jsonl must be present, but got 'missing in .*task=annotate_export"):
        read_tasks(tmp_path / "ann")
