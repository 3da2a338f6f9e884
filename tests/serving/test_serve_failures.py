"""A model that raises or stalls: a 500 with the request id, a 504, and the server keeps serving."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _harness import build_models, serve

pytestmark = pytest.mark.no_mutation


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("serve-fail") / "home"
    build_models(home)
    with serve(home, "models:/toy@live", "--timeout-s", "1") as s:
        yield s


def _rows(*a: float) -> dict[str, Any]:
    return {"dataframe_records": [{"a": x, "b": "k"} for x in a]}


def test_a_model_exception_is_a_500_with_the_request_id_and_is_logged(server: Any) -> None:
    r = server.post_json("/invocations", _rows(1.0, 13.0), **{"X-Request-Id": "boom-1"})
    assert r.status_code == 500
    body = r.json()
    assert body["error_code"] == "INTERNAL_ERROR"
    assert body["request_id"] == "boom-1"
    assert "boom-1" in body["message"] and "unlucky thirteen" in body["message"]
    assert r.headers["x-request-id"] == "boom-1"
    assert r.headers["x-mloop-model-version"] == "toy/1"
    ok = server.post_json("/invocations", _rows(1.0, 2.5))
    assert ok.status_code == 200
    assert ok.json() == {"predictions": [2.0, 5.0]}
    log = server.output()
    assert "boom-1" in log and "ValueError: unlucky thirteen" in log  # with its traceback


def test_a_request_past_the_timeout_is_a_504_and_the_server_recovers(server: Any) -> None:
    r = server.post_json("/invocations", _rows(-1.0))
    assert r.status_code == 504
    assert r.json()["error_code"] == "DEADLINE_EXCEEDED"
    # the stalled call goes on in the predict thread; the event loop still answers meanwhile
    assert server.client.get("/ping", timeout=2.0).status_code == 200
    # once it has finished, requests are answered again (the ones queued behind it may 504)
    deadline = time.monotonic() + 30
    while True:
        ok = server.post_json("/invocations", _rows(4.0))
        if ok.status_code == 200 or time.monotonic() > deadline:
            break
        assert ok.status_code == 504
    assert ok.status_code == 200
    assert ok.json() == {"predictions": [8.0]}


def test_a_string_column_given_numbers_is_refused_by_name(server: Any) -> None:
    r = server.post_json("/invocations", {"dataframe_records": [{"a": 1.0, "b": 5}]})
    assert r.status_code == 400
    (problem,) = r.json()["details"]["problems"]
    assert problem["column"] == "b"
