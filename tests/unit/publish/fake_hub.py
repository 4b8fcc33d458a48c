"""A loopback stand-in for the parts of the Hub API that ``HfApi`` uses to create, upload and download.

It records every request (method, path, headers, body) so tests can check what was sent, and keeps the
committed files of each repo in memory so a download can be compared with the upload. Only regular (non-LFS)
commits are supported: the preupload answer says ``regular`` for every file, so keep test files small.

Endpoints: ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``POST /api/{type}s/{repo}/preupload/{rev}``,
``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON), ``GET /api/{type}s/{repo}[/revision/{rev}]``,
``GET /api/{type}s/{repo}/tree/{rev}[/path]``, ``HEAD|GET /{type}s/{repo}/resolve/{rev}/{path}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class Repo:
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0

    @property
    def sha(self) -> str:
        return hashlib.sha1(f"{self.commits}:{sorted(self.files)}".encode()).hexdigest()


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` is the endpoint to pass to ``HfApi``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.repos: dict[str, Repo] = {}
        self.fail_commits = False
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with hub._lock:
                    hub.requests.append(rec)
                return rec

            def _send(self, code: int, payload: Any = None, *, raw: bytes | None = None,
                      headers: dict[str, str] | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_POST(self) -> None:  # http.server's naming
                rec = self._record()
                hub._post(self, rec)

            def do_GET(self) -> None:
                rec = self._record()
                hub._get(self, rec)

            def do_HEAD(self) -> None:
                rec = self._record()
                hub._get(self, rec)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- handlers ------------------------------------------------------------------------------------------------

    def _repo_from(self, path: str) -> tuple[str, str, str]:
        m = re.match(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(\w[\w-]*)/?(.*)$", path)
        if not m:
            raise KeyError(path)
        return m.group(1)[:-1], m.group(2), m.group(4)

    def _post(self, h: Any, rec: Recorded) -> None:
        path = urlsplit(rec.path).path
        if path == "/api/repos/create":
            body = rec.json()
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            private = body.get("private", body.get("visibility") == "private")
            self.repos.setdefault(repo_id, Repo(body.get("type", "model"), bool(private)))
            return h._send(200, {"url": f"{self.url}/{body.get('type', 'model')}s/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            return h._send(200, {})
        m = re.match(r"/api/(\w+)s/([^/]+/[^/]+)/(preupload|commit)/(.+)$", path)
        if not m or m.group(2) not in self.repos:
            return h._send(404, {"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"})
        repo_type, repo_id, action = m.group(1), m.group(2), m.group(3)
        repo = self.repos[repo_id]
        if action == "preupload":
            files = rec.json()["files"]
            return h._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                            "oid": None} for f in files]})
        if self.fail_commits:  # 403, not 5xx: huggingface_hub retries 5xx with backoff
            return h._send(403, {"error": "commit refused by the fake hub"})
        for line in rec.ndjson():
            if line["key"] == "file":
                repo.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                repo.files.pop(line["value"]["path"], None)
            elif line["key"] == "lfsFile":
                return h._send(400, {"error": "the fake hub takes regular files only"})
        repo.commits += 1
        return h._send(200, {"commitUrl": f"{self.url}/{repo_type}s/{repo_id}/commit/{repo.sha}",
                             "commitOid": repo.sha, "pullRequestUrl": None})

    def _get(self, h: Any, rec: Recorded) -> None:
        path = unquote(urlsplit(rec.path).path)
        m = re.match(r"/(\w+)s/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            repo = self.repos.get(m.group(2))
            if repo is None or m.group(4) not in repo.files:
                return h._send(404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"})
            data = repo.files[m.group(4)]
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            return h._send(200, raw=data, headers={"ETag": f'"{etag}"', "X-Repo-Commit": repo.sha})
        m = re.match(r"/api/(\w+)s/([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(/.*)?)?$", path)
        if not m or m.group(2) not in self.repos:
            return h._send(404, {"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"})
        repo_id, kind = m.group(2), m.group(3)
        repo = self.repos[repo_id]
        if kind == "tree":
            prefix = (m.group(5) or "").strip("/")
            entries = [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                       for p, b in sorted(repo.files.items()) if not prefix or p.startswith(prefix + "/")]
            return h._send(200, entries)
        return h._send(200, {"id": repo_id, "sha": repo.sha, "private": repo.private,
                             "siblings": [{"rfilename": p, "size": len(b)} for p, b in sorted(repo.files.items())]})
