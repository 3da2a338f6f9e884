"""The server's boundary: hostile or malformed requests get a 4xx JSON error naming the problem,
never a 500, a traceback or a body read whole past the limit; valid requests are unchanged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _asgi import in_process_client
from mloop.codec import loads
from mloop.errors import InvalidInputError
from mloop.server import create_app
from mloop.store import Store, create_store

API = "/api/v1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = create_store(f"sqlite:///{tmp_path / 'api.db'}")
    yield s
    s.close()


@pytest.fixture
def client(store: Store) -> Iterator[httpx.Client]:
    with in_process_client(create_app(store)) as c:
        yield c


@pytest.fixture
def run(store: Store):  # type: ignore[no-untyped-def]
    return store.create_run(store.create_project("p").id)


def _error(response: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert set(doc) == {"error_code", "message", "details"} and doc["error_code"] == code, doc
    for word in words:
        assert word in doc["message"], (word, doc["message"])
    return doc


# ------------------------------------------------------------------------------ path traversal
@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "a/../../b", "/etc/passwd", "a\\..\\b", "a\x00b", "C:/x", "a/\x01"],
)
def test_artifact_paths_that_leave_the_run_are_refused(
    client: httpx.Client, run: Any, path: str
) -> None:
    response = client.get(f"{API}/runs/{run.id}/artifact", params={"path": path})
    _error(response, 400, "INVALID_PARAMETER_VALUE", "artifact_path")
    response = client.post(
        f"{API}/runs/{run.id}/artifacts",
        json={"entries": [{"path": path, "size": 1, "sha256": "0" * 64}]},
    )
    _error(response, 400, "INVALID_PARAMETER_VALUE", "artifact_path")
    response = client.get(f"{API}/runs/{run.id}/artifacts", params={"prefix": path.lstrip("/")})
    assert response.status_code in (200, 400)  # '/etc/passwd' as a prefix is just 'etc/passwd'
    if path.startswith(".."):
        _error(response, 400, "INVALID_PARAMETER_VALUE", "prefix")


@pytest.mark.parametrize(
    "raw",
    [
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/%2e%2e/%2e%2e/etc/passwd",
        "/datasets/%2e%2e%2f%2e%2e%2fetc",
        "/runs/%00",
        "/projects/%00",
        "/datasets/%00",
        "/runs/RUN/artifact?path=..%2F..%2Fetc%2Fpasswd",
        "/runs/RUN/artifact?path=a%00b",
        "/runs/RUN/artifacts?prefix=%2e%2e%2f",
        "/runs/RUN/metric-history?key=..%2Fx",
        "/project-by-name?name=%00",
    ],
)
def test_encoded_traversal_and_nul_in_any_parameter_is_a_4xx(
    client: httpx.Client, run: Any, raw: str
) -> None:
    response = client.get(API + raw.replace("RUN", run.id))
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"error_code", "message", "details"}


# --------------------------------------------------------------------------------- body limits
def _asgi(
    app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Send a request straight to the ASGI app: (status, JSON answer, body chunks it read)."""
    read = 0
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {
                "type": "http.request",
                "body": chunks[read - 1],
                "more_body": read < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("mloop.test", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    return out["status"], loads(out["body"]), read


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(store: Store) -> None:
    app = create_app(store, max_body_bytes=1000)
    headers = {"content-type": "application/json", "content-length": str(10**12)}
    status, doc, read = _asgi(app, "POST", f"{API}/projects", headers, [b"{"] * 10)
    assert (status, doc["error_code"], read) == (413, "PAYLOAD_TOO_LARGE", 0)
    assert "1,000,000,000,000 bytes; the limit is 1,000" in doc["message"]


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(store: Store) -> None:
    app = create_app(store, max_body_bytes=1000)
    chunks = [b" " * 400] * 50  # 20 kB without a Content-Length (chunked)
    status, doc, read = _asgi(
        app, "POST", f"{API}/projects", {"content-type": "application/json"}, chunks
    )
    assert (status, doc["error_code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert read == 3  # 1,200 bytes read, 18,800 never asked for


def test_a_body_within_the_limit_is_served(store: Store) -> None:
    app = create_app(store, max_body_bytes=1000)
    body = b'{"name": "ok", "tags": {}}'
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    status, doc, _ = _asgi(app, "POST", f"{API}/projects", headers, [body[:5], body[5:]])
    assert status == 200 and doc["name"] == "ok"


def test_a_huge_body_over_a_real_socket_gets_413(store: Store) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    import socket
    import threading

    app = create_app(store, max_body_bytes=1000)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections wait in the backlog until the server accepts them
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: 50000000\r\n\r\n" + b" " * 2000
            )
            answer = conn.recv(65536).decode()  # answered without the other 49.998 MB
        head, _, body = answer.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 413")
        assert '"error_code":"PAYLOAD_TOO_LARGE"' in body
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_non_numeric_content_length_is_a_400(store: Store) -> None:
    app = create_app(store)
    status, doc, _ = _asgi(app, "POST", f"{API}/projects", {"content-length": "12abc"}, [b"{}"])
    assert (status, doc["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "Content-Length" in doc["message"]


# ------------------------------------------------------------------------------ malformed bodies
def _post(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(API + path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"name": ', ["not valid JSON", "line 1 column 10"]),
        (b"{'name': 'x'}", ["not valid JSON"]),
        (b"\xff\xfe\xfa", ["not valid JSON"]),
        (b"[" * 100_000, ["nests too deeply"]),
        (b'["x"]', ["must be a JSON object", "got a JSON array"]),
        (b'"x"', ["must be a JSON object", "got a JSON string"]),
        (b"null", ["must be a JSON object", "got a JSON null"]),
        (b'{"name": 5, "tags": {}}', ["`name` must be a string; got 5 (int)"]),
        (b'{"name": "x", "tags": []}', ["`tags` must be a JSON object"]),
        (b'{"name": "x", "tags": {"a": 1}}', ["`tags['a']` must be a string"]),
        (b'{"name": "x", "tags": {}, "colour": 1}', ["takes no argument(s) ['colour']"]),
        (b'{"tags": {}}', ["needs the argument `name`"]),
        (b'{"name": "x", "tags": {}, "name2": 1, "z": 2}', ["['name2', 'z']"]),
    ],
)
def test_malformed_bodies_are_a_400_naming_the_problem(
    client: httpx.Client, body: bytes, words: list[str]
) -> None:
    _error(_post(client, "/projects", body), 400, "INVALID_PARAMETER_VALUE", *words)


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/runs/RUN/heartbeat", b'{"ts_ms": ' + b"9" * 5000 + b"}", ["4300 digits"]),
        ("/runs/RUN/heartbeat", b'{"ts_ms": 9223372036854775808}', ["`ts_ms`", "integer in"]),
        ("/runs/RUN/heartbeat", b'{"ts_ms": NaN}', ["`ts_ms` must be an integer", "nan"]),
        ("/runs/RUN/heartbeat", b'{"ts_ms": "NaN"}', ["`ts_ms` must be an integer"]),
        ("/runs/RUN/heartbeat", b'{"ts_ms": 1.5}', ["`ts_ms` must be an integer"]),
        ("/runs/RUN/heartbeat", b'{"ts_ms": true}', ["`ts_ms` must be an integer"]),
        (
            "/runs/RUN/batches",
            b'{"metrics": {}, "tags": {}, "params": {"a": NaN}}',
            ["`params['a']` must be a string"],
        ),
        (
            "/runs/RUN/batches",
            b'{"metrics": {}, "tags": {}, "params": {}, "end_ms": -9223372036854775809}',
            ["`end_ms` must be an integer in [-9223372036854775808"],
        ),
        (
            "/runs/RUN/batches",
            b'{"metrics": {"m": {"steps": [0], "timestamps": [0], "values": ["nan"]}}}',
            ["MetricSeries.values", "'NaN'"],
        ),
        (
            "/runs/RUN/batches",
            b'{"metrics": {"m": {"steps": [0], "timestamps": [0], "values": [1], "unit": 1}}}',
            ["`metrics['m']` has unknown key(s) ['unit']"],
        ),
        (
            "/runs/RUN/batches",
            b'{"metrics": {"m": {"steps": [0, 1], "timestamps": [0], "values": [1]}}}',
            ["one length"],
        ),
        (
            "/runs/RUN/inputs",
            b'{"run_input": {"dataset_sha256": "' + b"a" * 64 + b'", "name": "t", "ctx": 1}}',
            ["`run_input` has unknown key(s) ['ctx']", "'context'"],
        ),
        ("/runs/RUN/lifecycle", b'{"stage": "gone"}', ["`stage` must be one of"]),
        ("/runs/search", b'{"project_ids": "1", "max_results": 5}', ["`project_ids` must be"]),
        ("/runs/search", b'{"project_ids": ["1"], "max_results": 0}', ["[1, 50000]"]),
    ],
)
def test_wrong_types_huge_numbers_and_nan_where_not_allowed_are_a_400(
    client: httpx.Client, run: Any, path: str, body: bytes, words: list[str]
) -> None:
    response = _post(client, path.replace("RUN", run.id), body)
    _error(response, 400, "INVALID_PARAMETER_VALUE", *words)


def test_nan_and_infinities_are_accepted_where_a_float_is(client: httpx.Client, run: Any) -> None:
    body = b'{"params": {}, "tags": {}, "metrics": {"m": {"steps": [0, 1, 2], '
    body += b'"timestamps": [0, 0, 0], "values": ["NaN", "Infinity", -1e308]}}}'
    assert _post(client, f"/runs/{run.id}/batches", body).json() is True
    history = client.get(f"{API}/runs/{run.id}/metric-history", params={"key": "m"}).json()
    assert history["value"] == ["NaN", "Infinity", -1e308]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"include_deleted": "yes"}, ["`include_deleted` must be true or false"]),
        ({"colour": "red"}, ["takes no argument(s) ['colour']"]),
        ([("include_deleted", "true"), ("include_deleted", "false")], ["more than once"]),
    ],
)
def test_bad_query_strings_are_a_400(client: httpx.Client, query: Any, words: list[str]) -> None:
    _error(client.get(f"{API}/projects", params=query), 400, "INVALID_PARAMETER_VALUE", *words)


@pytest.mark.parametrize(
    "text", ["1_000", " 5", "5 ", "0x10", "٣", "1e3", "99999999999999999999", ""]
)
def test_query_integers_are_decimal_int64_text(client: httpx.Client, run: Any, text: str) -> None:
    response = client.get(
        f"{API}/runs/{run.id}/metric-history", params={"key": "m", "max_points": text}
    )
    _error(response, 400, "INVALID_PARAMETER_VALUE", "`max_points` must be an integer in")


# ------------------------------------------------------------------------- routes and methods
@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v2/projects", "/nope", "/api/v1/runs/a/b/c"]
)  # "/" is the web UI's: it redirects to /ui/
def test_unknown_routes_are_a_404_in_json(client: httpx.Client, path: str) -> None:
    doc = _error(client.get(path), 404, "ENDPOINT_NOT_FOUND", path, "openapi.json")
    assert doc["details"] == {}


def test_a_wrong_method_is_a_405_in_json_with_allow(client: httpx.Client) -> None:
    response = client.delete(f"{API}/projects")
    doc = _error(response, 405, "METHOD_NOT_ALLOWED", "/api/v1/projects", "DELETE")
    assert response.headers["allow"] == "GET, POST"
    assert doc["details"]["allowed"] == ["GET", "POST"]
    response = client.put(f"{API}/runs/{'a' * 32}")
    _error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, PATCH"


# ------------------------------------------------------------------------ unexpected failures
def test_an_unexpected_failure_is_a_500_without_details_and_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /srv/db password=hunter2")

    monkeypatch.setattr(store, "list_projects", broken)
    with in_process_client(create_app(store)) as client, caplog.at_level(logging.ERROR):
        response = client.get(f"{API}/projects", headers={"x-request-id": "req-42"})
        anonymous = client.get(f"{API}/projects")
    doc = _error(response, 500, "INTERNAL_ERROR", "RuntimeError", "req-42")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert doc["details"] == {"request_id": "req-42"}
    assert response.headers["x-request-id"] == "req-42"
    generated = anonymous.headers["x-request-id"]
    assert len(generated) == 32 and generated in anonymous.json()["message"]
    logged = [r for r in caplog.records if r.name == "mloop.server"]
    assert any("req-42" in r.getMessage() and r.exc_info for r in logged)


def test_a_request_id_that_is_not_a_plain_token_is_replaced(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store, "list_projects", lambda **kw: 1 / 0)
    with in_process_client(create_app(store)) as client, caplog.at_level(logging.CRITICAL):
        response = client.get(f"{API}/projects", headers={"x-request-id": "a b\tc<script>"})
    assert response.status_code == 500
    assert "<script>" not in response.text and len(response.headers["x-request-id"]) == 32


# ------------------------------------------------------------------------- the codec's reader
def test_loads_refuses_integers_past_pythons_digit_limit_as_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="4300 digits"):
        loads("[" + "7" * 5000 + "]", what="the body")
    assert loads("[" + "7" * 4000 + "]") == [int("7" * 4000)]


# ---------------------------------------------------------------------------- artifact routes
@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/uploads", {"sha256": "0" * 64, "size": 3, "sise": 3}, "['sise']"),
        ("/blobs/missing", {"sha256": [], "sha": ["0" * 64]}, "['sha']"),
    ],
)
def test_artifact_json_bodies_refuse_unknown_keys(
    store: Store, tmp_path: Path, path: str, body: dict[str, Any], unknown: str
) -> None:
    from mloop.artifacts import BlobStore

    app = create_app(store, artifacts=BlobStore(str(tmp_path / "blobs")))
    with in_process_client(app) as client:
        response = client.post(API + path, json=body)
    _error(response, 400, "INVALID_PARAMETER_VALUE", "unknown key(s)", unknown)


@pytest.mark.parametrize(
    "raw", ["/blobs/..%2F..%2Fetc%2Fpasswd", "/blobs/%00", "/blobs/" + "A" * 64, "/uploads/..%2Fx"]
)
def test_artifact_paths_take_digests_and_ids_only(store: Store, tmp_path: Path, raw: str) -> None:
    from mloop.artifacts import BlobStore

    app = create_app(store, artifacts=BlobStore(str(tmp_path / "blobs")))
    with in_process_client(app) as client:
        response = client.get(API + raw)
    assert response.status_code in (400, 404), response.text
    assert set(response.json()) == {"error_code", "message", "details"}
