"""Annotation export from data in the released PERSONA layout (written here, not by persona_gen)."""

from __future__ import annotations

import pandas as pd
import pytest

from persona_gen.annotate import AnnotationError, export_tasks, load_feedback
from tests.unit.annotate.synthetic import feedback_frame

RELEASED = ["persona", "instruction", "original", "critique", "data", "question type"]


def _released_csv(tmp_path):
    folder = tmp_path / "released"
    folder.mkdir()
    feedback_frame(num_personas=3, questions=4)[RELEASED].to_csv(folder / "persona.csv", index=False)
    return folder


def test_load_feedback_reads_a_released_csv_folder_with_derived_ids(tmp_path):
    frame = load_feedback(_released_csv(tmp_path))
    assert len(frame) == 12 and frame["persona_id"].nunique() == 3 and frame["feedback_id"].is_unique


def test_export_tasks_from_the_released_layout_shows_both_answers(tmp_path):
    result = export_tasks(_released_csv(tmp_path), tmp_path / "out", num_personas=2, questions_per_persona=2, seed=0)
    assert len(result.tasks) == 4
    source = pd.read_csv(tmp_path / "released" / "persona.csv")
    for task in result.tasks:
        row = source[(source["persona"] == task.persona) & (source["instruction"] == task.question)].iloc[0]
        assert {task.answer_a, task.answer_b} == {row["original"], row["data"]}


def test_load_feedback_released_without_answers_is_one_error(tmp_path):
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"persona": ["age: 3"], "instruction": ["Why?"]}).to_json(tmp_path / "bad" / "x.jsonl",
                                                                         orient="records", lines=True)
    with pytest.raises(AnnotationError, match=r"must be the released PERSONA layout.*missing \['original', 'data'\]"):
        load_feedback(tmp_path / "bad")
