"""A real HTTP server on a free loopback port that implements the few GitHub and GitLab endpoints
mloop's PR reports use, with their pagination, authentication and error bodies.

GitHub (REST, ``Authorization: Bearer``)::

    GET   /repos/{owner}/{repo}/issues/{n}/comments?per_page=&page=   (Link: rel="next")
    POST  /repos/{owner}/{repo}/issues/{n}/comments
    PATCH /repos/{owner}/{repo}/issues/comments/{id}

GitLab (v4, ``PRIVATE-TOKEN``)::

    GET  /api/v4/projects/{id}/merge_requests/{iid}/notes?per_page=&page=   (X-Next-Page)
    POST /api/v4/projects/{id}/merge_requests/{iid}/notes
    PUT  /api/v4/projects/{id}/merge_requests/{iid}/notes/{note_id}

Tokens are ``"write-token"`` (may write) and ``"read-token"`` (reads; a write is 403, as a fork's
pull request gets on GitHub); anything else is 401. ``fail_next`` makes the next matching
requests answer an error, to test retries. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WRITE_TOKEN = "write-token"
READ_TOKEN = "read-token"
BODY_LIMIT = 65_536

_GH_LIST = re.compile(r"^/repos/([\w.-]+/[\w.-]+)/issues/(\d+)/comments$")
_GH_EDIT = re.compile(r"^/repos/([\w.-]+/[\w.-]+)/issues/comments/(\d+)$")
_GL_LIST = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$")
_GL_EDIT = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Forge:
    """The server's state; tests read and seed it directly."""

    base_url: str = ""
    max_per_page: int = 100
    # (repository, pr number) -> comments; ("gitlab:" + project, iid) -> notes
    threads: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    _faults: list[tuple[str | None, int, int]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, *, times: int = 1, method: str | None = None) -> None:
        """The next ``times`` requests (of ``method``, or any) answer ``status``."""
        with self.lock:
            self._faults.append((method, status, times))

    def comments(self, repository: str, number: int) -> list[dict[str, Any]]:
        return self.threads.setdefault((repository, number), [])

    def notes(self, project: str, iid: int) -> list[dict[str, Any]]:
        return self.threads.setdefault((f"gitlab:{project}", iid), [])

    def seed(
        self, repository: str, number: int, bodies: list[str], *, user: str = "someone"
    ) -> None:
        """Comments written by someone else before mloop posts."""
        for body in bodies:
            self.comments(repository, number).append(self._comment(repository, number, body, user))

    def _comment(self, repository: str, number: int, body: str, user: str) -> dict[str, Any]:
        cid = next(self._ids)
        return {
            "id": cid,
            "body": body,
            "user": {"login": user},
            "html_url": f"https://github.example/{repository}/pull/{number}#issuecomment-{cid}",
        }

    def take_fault(self, method: str) -> int | None:
        with self.lock:
            for i, (m, status, times) in enumerate(self._faults):
                if m is None or m == method:
                    if times <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = (m, status, times - 1)
                    return status
        return None

    def count(self, method: str, pattern: str = "") -> int:
        return sum(r.method == method and pattern in r.path for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    forge: Forge  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self._body() if method in ("POST", "PATCH", "PUT") else None
        f = self.forge
        f.requests.append(Recorded(method, url.path, query, dict(self.headers.items()), body))
        status = f.take_fault(method)
        if status is not None:
            self._send(status, {"message": f"injected {status}"})
            return
        if url.path.startswith("/api/v4/"):
            self._gitlab(method, url.path, query, body)
        else:
            self._github(method, url.path, query, body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _page(
        self, items: list[dict[str, Any]], query: dict[str, list[str]]
    ) -> tuple[list, int, bool]:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.forge.max_per_page)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        return chunk, page, page * per_page < len(items)

    def _valid_body(self, body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"field": "body", "code": "missing_field"}],
                },
            )
            return None
        if len(body["body"]) > BODY_LIMIT:
            self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"message": f"Body is too long (maximum is {BODY_LIMIT} characters)"}
                    ],
                },
            )
            return None
        return str(body["body"])

    # -- GitHub -------------------------------------------------------------------------------

    def _github_auth(self, write: bool) -> bool:
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("token ").strip()
        if token not in (WRITE_TOKEN, READ_TOKEN):
            self._send(401, {"message": "Bad credentials"})
            return False
        if write and token == READ_TOKEN:
            self._send(403, {"message": "Resource not accessible by integration"})
            return False
        return True

    def _github(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        f = self.forge
        if m := _GH_LIST.match(path):
            repo, number = m.group(1), int(m.group(2))
            if method == "GET":
                if not self._github_auth(False):
                    return
                chunk, page, more = self._page(f.comments(repo, number), query)
                headers = {}
                if more:
                    per_page = query.get("per_page", ["30"])[0]
                    nxt = f"{f.base_url}{path}?per_page={per_page}&page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, chunk, headers)
                return
            if method == "POST":
                if not self._github_auth(True) or (text := self._valid_body(body)) is None:
                    return
                with f.lock:
                    comment = f._comment(repo, number, text, "github-actions[bot]")
                    f.comments(repo, number).append(comment)
                self._send(201, comment)
                return
        if (m := _GH_EDIT.match(path)) and method == "PATCH":
            if not self._github_auth(True) or (text := self._valid_body(body)) is None:
                return
            cid = int(m.group(2))
            for (repo, _), comments in f.threads.items():
                for c in comments:
                    if c["id"] == cid and repo == m.group(1):
                        c["body"] = text
                        self._send(200, c)
                        return
            self._send(404, {"message": "Not Found"})
            return
        self._send(404, {"message": "Not Found"})

    # -- GitLab -------------------------------------------------------------------------------

    def _gitlab_auth(self, write: bool) -> bool:
        token = self.headers.get("PRIVATE-TOKEN", "")
        if token not in (WRITE_TOKEN, READ_TOKEN):
            self._send(401, {"message": "401 Unauthorized"})
            return False
        if write and token == READ_TOKEN:
            self._send(403, {"message": "403 Forbidden"})
            return False
        return True

    def _gitlab(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        f = self.forge
        if m := _GL_LIST.match(path):
            project, iid = m.group(1), int(m.group(2))
            if method == "GET":
                if not self._gitlab_auth(False):
                    return
                chunk, page, more = self._page(f.notes(project, iid), query)
                self._send(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})
                return
            if method == "POST":
                if not self._gitlab_auth(True) or (text := self._valid_body(body)) is None:
                    return
                with f.lock:
                    note = {"id": next(f._ids), "body": text, "system": False}
                    f.notes(project, iid).append(note)
                self._send(201, note)
                return
        if (m := _GL_EDIT.match(path)) and method == "PUT":
            if not self._gitlab_auth(True) or (text := self._valid_body(body)) is None:
                return
            for note in f.notes(m.group(1), int(m.group(2))):
                if note["id"] == int(m.group(3)):
                    note["body"] = text
                    self._send(200, note)
                    return
        self._send(404, {"message": "404 Not found"})


@contextmanager
def running_forge(**options: Any) -> Iterator[Forge]:
    """A :class:`Forge` served on ``http://127.0.0.1:<free port>`` for the ``with`` block."""
    forge = Forge(**options)
    handler = type("Handler", (_Handler,), {"forge": forge})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    forge.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-forge", daemon=True
    )
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
