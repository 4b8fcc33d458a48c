from __future__ import annotations

import json

import pytest

from persona_gen.annotate import AnnotationError, build_items, export_tasks, majority, read_labels, read_tasks
from tests.unit.annotate.synthetic import write_dataset


@pytest.fixture
def tasks(tmp_path):
    export_tasks(write_dataset(tmp_path, num_personas=2, questions=3), tmp_path / "ann", num_personas=2,
                 questions_per_persona=3, seed=0)
    return read_tasks(tmp_path / "ann")


def _csv(path, rows, header="rater_id,task_id,choice,justification"):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_read_labels_accepts_csv_with_bom_and_extra_columns(tasks, tmp_path):
    t = tasks.tasks[0].task_id
    path = tmp_path / "labels.csv"
    path.write_text(f"\ufeffWorkerTime,Rater_ID,task_id,choice,justification\n12,r1,{t},A,\"I, for one\"\n",
                    encoding="utf-8")
    [label] = read_labels([path], tasks.by_id())
    assert (label.rater_id, label.choice, label.justification) == ("r1", "a", "I, for one")
    assert label.source.endswith("labels.csv:2")


def test_read_labels_reports_unknown_task_with_file_and_line(tasks, tmp_path):
    t = tasks.tasks[0].task_id
    path = _csv(tmp_path / "labels.csv", [f"r1,{t},a,ok", "r1,t-nope,b,ok"])
    with pytest.raises(AnnotationError, match=r"task_id must be one of the exported tasks, but got 't-nope' "
                                              r"\(.*labels.csv:3\); label only tasks of this export"):
        read_labels([path], tasks.by_id())


def test_read_labels_reports_bad_choice(tasks, tmp_path):
    path = _csv(tmp_path / "labels.csv", [f"r1,{tasks.tasks[0].task_id},maybe,ok"])
    with pytest.raises(AnnotationError, match=r"choice must be one of \['a', 'b', 'tie'\], but got 'maybe'"):
        read_labels([path], tasks.by_id())


def test_read_labels_rejects_a_rater_labeling_a_task_twice(tasks, tmp_path):
    t = tasks.tasks[0].task_id
    first = _csv(tmp_path / "a.csv", [f"r1,{t},a,ok"])
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"rater_id": "r1", "task_id": t, "choice": "b"}) + "\n")
    with pytest.raises(AnnotationError, match=r"labeled once, but got 'again \(first at .*a.csv:2\)' .*b.jsonl:1"):
        read_labels([first, second], tasks.by_id())


def test_read_labels_rejects_missing_columns(tasks, tmp_path):
    path = _csv(tmp_path / "labels.csv", ["r1,x"], header="rater_id,task")
    with pytest.raises(AnnotationError, match=r"label columns .*\['task_id', 'choice'\] missing.*labels.csv:1"):
        read_labels([path], tasks.by_id())


def test_read_labels_reports_invalid_json_line(tasks, tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"rater_id": "r1"\n')
    with pytest.raises(AnnotationError, match=r"JSONL line must be one JSON object.*labels.jsonl:1"):
        read_labels([path], tasks.by_id())


def test_read_labels_rejects_other_file_formats(tasks, tmp_path):
    path = tmp_path / "labels.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(AnnotationError, match=r"must be a .csv or .jsonl file, but got '.xlsx'"):
        read_labels([path], tasks.by_id())


def test_read_labels_requires_justification_when_asked(tasks, tmp_path):
    path = _csv(tmp_path / "labels.csv", [f"r1,{tasks.tasks[0].task_id},a,"])
    with pytest.raises(AnnotationError, match=r"justification must be non-empty.*require_justification=false"):
        read_labels([path], tasks.by_id(), require_justification=True)


def test_read_labels_lists_every_problem_at_once(tasks, tmp_path):
    path = _csv(tmp_path / "labels.csv", ["r1,t-x,a,ok", "r 2,t-y,a,ok", "r3,t-z,q,ok"])
    with pytest.raises(AnnotationError, match=r"^3 problem\(s\) in the label files"):
        read_labels([path], tasks.by_id())


def test_build_items_maps_choices_through_the_answer_key(tasks, tmp_path):
    task = tasks.tasks[0]
    key = tasks.keys[task.task_id]
    path = _csv(tmp_path / "labels.csv", [f"r1,{task.task_id},a,x", f"r2,{task.task_id},a,y",
                                          f"r3,{task.task_id},b,z"])
    [item] = build_items(tasks, read_labels([path], tasks.by_id()))
    assert item.majority == key.answer_a
    assert (item.original if key.answer_a == "original" else item.revision) == task.answer_a


def test_majority_is_none_on_a_split_vote():
    assert majority(["original", "revision"]) is None
