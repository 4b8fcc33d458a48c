"""A small local web page where a rater role-plays one persona and picks the answer that person would prefer.

Standard library only (``http.server``), bound to 127.0.0.1 and nothing else. Each rater gets one persona
(personas are filled to ``raters_per_item`` raters one after another, so items overlap) and labels its tasks
one by one with a justification. Every label is
saved at once, atomically (temp file + ``os.replace``), to a JSONL file that ``task=annotate_import`` reads;
restarting the server resumes from that file.

Requests whose ``Host`` is not the loopback address and port are refused (DNS rebinding), and label posts
must be ``application/json`` (so another site's form cannot post one).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from persona_gen.annotate._io import atomic_write_text, jsonl_text
from persona_gen.annotate.errors import AnnotationError
from persona_gen.annotate.export import TaskSet
from persona_gen.annotate.labels import RATER_ID, check_label, read_labels
from persona_gen.annotate.records import Label
from persona_gen.core.errors import format_error

__all__ = ["HOST", "AnnotationApp", "display_value", "make_server", "persona_card", "rater_message"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024


# Census value labels carry code prefixes meant for analysts ("MGR-Chief executives", "EDU-Elementary and middle
# school teachers") and state codes ("Wyoming/WY"); a rater reads the words.
_CODE_PREFIX = re.compile(r"^[A-Z]{2,5}-(?=[A-Za-z])")
_STATE_SUFFIX = re.compile(r"^(?P<name>[A-Z][A-Za-z .]+)/[A-Z]{2}$")


def display_value(key: str, value: str) -> str:
    """A persona value as a rater should read it: no census code prefix, no state code, no repeated key."""
    value = value.strip()
    if key and value.lower().startswith(key.lower() + ":"):
        value = value[len(key) + 1:].strip()  # "detailed job description: Detailed job description: ..."
    value = _CODE_PREFIX.sub("", value)
    state = _STATE_SUFFIX.match(value)
    return state.group("name") if state else value


def persona_card(text: str) -> list[list[str]]:
    """``key: value`` lines as pairs for the page's table; a line without ``:`` is a value with no key."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        rows.append([key.strip(), display_value(key.strip(), value)] if sep else ["", line.strip()])
    return rows


def rater_message(exc: AnnotationError, payload: dict[str, Any] | None = None) -> str:
    """What the page shows a rater for an error, in a rater's words (the technical line stays in ``error``)."""
    text = str(exc)
    if text.startswith("rater id"):
        return "Your rater id may use letters, digits and _ . @ - (1 to 64 characters), for example r01."
    if text.startswith("choice"):
        return "Pick the answer this person would prefer (A, B or no preference) before saving."
    if text.startswith("justification") and "at most" in text:
        return "Your explanation is too long: please keep it under 4,000 characters."
    if text.startswith("justification"):
        return "Say in a few words why this person would prefer that answer, then save."
    if text.startswith("task_id"):
        return "This question belongs to another person than the one you play. Reload the page to continue."
    return f"This answer could not be saved ({text}). Reload the page and try again."


class AnnotationApp:
    """The page's state: tasks, the labels so far, and which rater plays which persona. Thread-safe."""

    def __init__(self, tasks: TaskSet, labels_file: str | Path, *, require_justification: bool = True,
                 raters_per_item: int = 2) -> None:
        if int(raters_per_item) < 1:
            raise AnnotationError(format_error(
                "annotate.raters_per_item", expected=">= 1", got=raters_per_item, where="conf/annotate/default.yaml",
                fix="use 2 or more so that items overlap and human-vs-human agreement can be computed"))
        self.tasks = tasks
        self.labels_file = Path(labels_file)
        self.require_justification = require_justification
        self.raters_per_item = int(raters_per_item)
        self._by_id = tasks.by_id()
        self._personas = list(dict.fromkeys(t.persona_id for t in tasks.tasks))
        self._lock = threading.Lock()
        self._assigned: dict[str, str] = {}
        self.labels: list[Label] = []
        if self.labels_file.is_file() and self.labels_file.stat().st_size:
            # Resume: the file is validated like any import, so a corrupt file is reported, not overwritten.
            self.labels = read_labels([self.labels_file], self._by_id)
        for label in self.labels:
            self._assigned.setdefault(label.rater_id, self._by_id[label.task_id].persona_id)

    # -- state --------------------------------------------------------------------------------------------------

    def _persona_for(self, rater_id: str) -> str:
        """The persona a rater plays: personas are filled up to ``raters_per_item`` raters one after the other, so
        items overlap (human-vs-human agreement needs items with two or more raters); once every persona has
        that many, the least-played one."""
        if rater_id not in self._assigned:
            load = Counter(self._assigned.values())
            order = {p: n for n, p in enumerate(self._personas)}
            open_ = [p for p in self._personas if load[p] < self.raters_per_item]
            if open_:
                # The most advanced unfinished persona first: it reaches raters_per_item before a new one starts.
                pick = min(open_, key=lambda p: (-load[p], order[p]))
            else:
                pick = min(self._personas, key=lambda p: (load[p], order[p]))
            self._assigned[rater_id] = pick
        return self._assigned[rater_id]

    def next_task(self, rater_id: str) -> dict[str, Any]:
        """The rater's persona, progress and next unlabeled task (``task`` is None when all are done)."""
        if not RATER_ID.fullmatch(rater_id or ""):
            raise AnnotationError(format_error("rater id", expected="1-64 letters, digits or _.@-", got=rater_id,
                                               where="the page's rater id box", fix="use e.g. r01"))
        with self._lock:
            persona = self._persona_for(rater_id)
            done = {lab.task_id for lab in self.labels if lab.rater_id == rater_id}
        mine = [t for t in self.tasks.tasks if t.persona_id == persona]
        todo = [t for t in mine if t.task_id not in done]
        task = todo[0] if todo else None
        return {
            "rater_id": rater_id, "persona_id": persona, "persona": persona_card(mine[0].persona),
            "progress": {"labeled": len(mine) - len(todo), "total": len(mine)}, "done": task is None,
            "require_justification": self.require_justification,
            "task": None if task is None else {"task_id": task.task_id, "question": task.question,
                                               "answer_a": task.answer_a, "answer_b": task.answer_b},
        }

    def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Validate and save one label (a rater's second answer to a task replaces the first); return the next task."""
        where = "the page's label form"
        label = check_label(payload, where, self._by_id, require_justification=self.require_justification)
        label = label.model_copy(update={"source": ""})
        with self._lock:
            persona = self._persona_for(label.rater_id)
            if self._by_id[label.task_id].persona_id != persona:
                raise AnnotationError(format_error(
                    "task_id", expected=f"a task of the rater's persona {persona}", got=label.task_id, where=where,
                    fix="reload the page; each rater labels one persona"))
            kept = [lab for lab in self.labels if (lab.rater_id, lab.task_id) != (label.rater_id, label.task_id)]
            self.labels = [*kept, label]
            self._save()
        return self.next_task(label.rater_id)

    def _save(self) -> None:
        rows = [lab.model_dump(exclude={"source"}) for lab in self.labels]
        atomic_write_text(self.labels_file, jsonl_text(rows))


def _page() -> bytes:
    return resources.files("persona_gen.annotate").joinpath("static/index.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "persona-gen-annotate"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                    "script-src 'self' 'unsafe-inline'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        if self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}"):
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": "requests must be addressed to the loopback host"})
        return False

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _page(), "text/html; charset=utf-8")
        elif url.path == "/api/next":
            rater = (parse_qs(url.query).get("rater_id") or [""])[0].strip()
            try:
                self._json(HTTPStatus.OK, self.server.app.next_task(rater))
            except AnnotationError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "message": rater_message(exc)})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/api/labels":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "labels must be posted as application/json"})
            return
        raw_length = self.headers.get("Content-Length") or "0"
        length = int(raw_length) if raw_length.isdigit() else 0
        if length <= 0 or length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body must be 1 to {MAX_BODY} bytes"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"})
            return
        try:
            self._json(HTTPStatus.OK, self.server.app.submit(payload))
        except AnnotationError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "message": rater_message(exc, payload)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: AnnotationApp


def make_server(app: AnnotationApp, port: int = 0) -> _Server:
    """A server for ``app`` on ``127.0.0.1:port`` (0 picks a free port; read it from ``server.server_address``)."""
    if not 0 <= int(port) <= 65535:
        raise AnnotationError(format_error("annotate.port", expected="in 0..65535", got=port,
                                           where="conf/annotate/default.yaml", fix="use e.g. 8765, or 0 for any"))
    try:
        server = _Server((HOST, int(port)), _Handler)
    except OSError as exc:
        raise AnnotationError(format_error(
            f"port {port} on {HOST}", expected="free", got=exc.strerror or str(exc), where="annotate.port",
            fix="pick another port, e.g. annotate.port=8766")) from None
    server.app = app
    return server
