from __future__ import annotations

import http.client
import json
import threading

import pytest

from persona_gen.annotate import AnnotationApp, AnnotationError, export_tasks, make_server, read_labels, read_tasks
from tests.unit.annotate.synthetic import write_dataset


@pytest.fixture
def tasks(tmp_path):
    export_tasks(write_dataset(tmp_path, num_personas=3, questions=2), tmp_path / "ann", num_personas=3,
                 questions_per_persona=2, seed=0)
    return read_tasks(tmp_path / "ann")


@pytest.fixture
def server(tasks, tmp_path):
    srv = make_server(AnnotationApp(tasks, tmp_path / "ann" / "web_labels.jsonl"), 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _request(srv, method, path, body=None, headers=None):
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body=body, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.read()


def _label(rater, task_id, choice="a", why="fits me"):
    return {"rater_id": rater, "task_id": task_id, "choice": choice, "justification": why}


def test_app_raters_per_item_one_gives_each_new_rater_the_least_covered_persona(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl", raters_per_item=1)
    personas = [app.next_task(f"r{n}")["persona_id"] for n in range(4)]
    assert len(set(personas[:3])) == 3
    assert personas[3] == personas[0]


def test_app_raters_per_item_fills_each_persona_before_the_next(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl", raters_per_item=2)
    personas = [app.next_task(f"r{n}")["persona_id"] for n in range(7)]
    assert personas[0] == personas[1] != personas[2] == personas[3] != personas[4] == personas[5]
    assert len(set(personas[:6])) == 3
    assert personas[6] == personas[0]  # every persona has 2 raters: the least played one again


def test_app_rejects_zero_raters_per_item(tasks, tmp_path):
    with pytest.raises(AnnotationError, match=r"annotate\.raters_per_item must be >= 1, but got 0"):
        AnnotationApp(tasks, tmp_path / "labels.jsonl", raters_per_item=0)


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("industry category", "EDU-Elementary And Secondary Schools", "Elementary And Secondary Schools"),
    ("occupation category", "MGR-Chief Executives And Legislators", "Chief Executives And Legislators"),
    ("place of birth", "Wyoming/WY", "Wyoming"),
    ("detailed job description", "Detailed job description: fixes roofs", "fixes roofs"),
    ("age", "42", "42"),
    ("race", "White alone", "White alone"),
])
def test_persona_card_shows_labels_without_census_codes(key, value, shown):
    from persona_gen.annotate.server import persona_card

    assert persona_card(f"{key}: {value}") == [[key, shown]]


def test_page_errors_come_back_in_a_raters_words(server, tasks):
    task = tasks.tasks[0].task_id
    status, body = _request(server, "POST", "/api/labels", json.dumps(_label("r1", task, why="")),
                            {"Content-Type": "application/json"})
    data = json.loads(body)
    assert status == 400 and data["error"].startswith("justification must be non-empty")
    assert data["message"] == "Say in a few words why this person would prefer that answer, then save."
    status, body = _request(server, "GET", "/api/next?rater_id=bad%20id")
    assert status == 400 and json.loads(body)["message"].startswith("Your rater id may use letters")


def test_page_state_tells_whether_a_justification_is_required(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl", require_justification=False)
    assert app.next_task("r1")["require_justification"] is False


def test_app_saves_labels_as_jsonl_that_import_reads(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl")
    state = app.next_task("r1")
    app.submit(_label("r1", state["task"]["task_id"]))
    [label] = read_labels([tmp_path / "labels.jsonl"], tasks.by_id(), require_justification=True)
    assert (label.rater_id, label.task_id) == ("r1", state["task"]["task_id"])
    assert not list(tmp_path.glob(".labels.jsonl.*"))  # no temporary file left behind


def test_app_resumes_a_rater_from_the_labels_file(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl")
    first = app.next_task("r1")
    app.submit(_label("r1", first["task"]["task_id"]))
    again = AnnotationApp(tasks, tmp_path / "labels.jsonl").next_task("r1")
    assert again["persona_id"] == first["persona_id"]
    assert again["progress"]["labeled"] == 1


def test_app_rejects_a_task_of_another_persona(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl")
    mine = app.next_task("r1")["persona_id"]
    other = next(t.task_id for t in tasks.tasks if t.persona_id != mine)
    with pytest.raises(AnnotationError, match=r"task_id must be a task of the rater's persona"):
        app.submit(_label("r1", other))


def test_app_requires_a_justification(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl", require_justification=True)
    task_id = app.next_task("r1")["task"]["task_id"]
    with pytest.raises(AnnotationError, match=r"justification must be non-empty"):
        app.submit(_label("r1", task_id, why="  "))


def test_app_reports_done_after_the_last_task(tasks, tmp_path):
    app = AnnotationApp(tasks, tmp_path / "labels.jsonl")
    state = app.next_task("r1")
    while not state["done"]:
        state = app.submit(_label("r1", state["task"]["task_id"]))
    assert state["progress"] == {"labeled": 2, "total": 2}


def test_server_serves_the_page_and_the_next_task(server):
    status, page = _request(server, "GET", "/")
    assert status == 200 and b'id="rater-id"' in page
    status, body = _request(server, "GET", "/api/next?rater_id=r1")
    assert status == 200 and json.loads(body)["task"]["task_id"].startswith("t-")


def test_server_refuses_a_foreign_host_header(server):
    status, _ = _request(server, "GET", "/", headers={"Host": "evil.example:80"})
    assert status == 403


def test_server_refuses_labels_not_posted_as_json(server):
    status, _ = _request(server, "POST", "/api/labels", body="rater_id=r1",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


def test_server_answers_a_bad_label_with_the_house_error(server):
    body = json.dumps(_label("r1", "t-nope"))
    status, answer = _request(server, "POST", "/api/labels", body=body, headers={"Content-Type": "application/json"})
    assert status == 400
    assert "task_id must be one of the exported tasks" in json.loads(answer)["error"]


def test_make_server_listens_on_loopback_only(tasks, tmp_path):
    srv = make_server(AnnotationApp(tasks, tmp_path / "labels.jsonl"), 0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()
