"""Deployments, monitor windows and the event log through the REST API itself: what a client other
than HttpStore (curl, a UI) may send, and who a change is recorded as once auth is on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _asgi import http_store_over, in_process_client
from mloop.errors import InvalidInputError
from mloop.server import create_app
from mloop.store import SqlStore

API = "/api/v1"
MODEL = "models:/churn@champion"


@pytest.fixture
def backing(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def client(backing: SqlStore) -> Iterator[httpx.Client]:
    c = in_process_client(create_app(backing))
    try:
        yield c
    finally:
        c.close()


def _refused(r: httpx.Response, match: str) -> None:
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["error_code"] == InvalidInputError.error_code and match in doc["message"], doc


def test_a_deployment_spec_names_known_fields_only(client: httpx.Client) -> None:
    r = client.post(
        f"{API}/deployments", json={"name": "d", "spec": {"model": MODEL, "canary_pct": 5}}
    )
    _refused(r, "`spec` has unknown field(s) ['canary_pct']")
    _refused(client.post(f"{API}/deployments", json={"name": "d", "spec": {}}), "needs `model`")
    r = client.post(f"{API}/deployments", json={"name": "d", "spec": {"model": MODEL}})
    assert r.status_code == 200 and r.json()["revision"] == 1
    r = client.patch(f"{API}/deployments/d", json={"changes": {"modle": "models:/x/1"}})
    _refused(r, "`changes` has unknown field(s) ['modle']")
    r = client.patch(f"{API}/deployments/d", json={"changes": {}})
    _refused(r, "nothing to change in deployment 'd'")
    assert client.get(f"{API}/deployments/d").json()["revision"] == 1  # nothing was written


def test_the_server_knows_every_spec_field() -> None:
    from mloop.server._v1._deployments import _SPEC_FIELDS
    from mloop.store._deploy_base import SPEC_FIELDS

    assert _SPEC_FIELDS == SPEC_FIELDS


def test_a_deployment_lives_its_life_through_the_api(client: httpx.Client) -> None:
    client.post(f"{API}/deployments", json={"name": "d", "spec": {"model": MODEL}, "actor": "a"})
    r = client.patch(
        f"{API}/deployments/d",
        json={"changes": {"canary": "models:/churn/4", "canary_percent": 10}, "reason": "try 4"},
    )
    assert r.json()["canary_percent"] == 10.0 and r.json()["revision"] == 2
    r = client.patch(
        f"{API}/deployments/d", json={"changes": {"canary": None}, "expected_revision": 1}
    )
    assert r.status_code == 409 and r.json()["error_code"] == "CONFLICT"
    r = client.post(f"{API}/deployments/d/rollback", json={"reason": "back"})
    assert r.json()["revision"] == 3 and r.json()["canary"] is None
    revisions = client.get(f"{API}/deployments/d/revisions").json()
    assert [x["reason"] for x in revisions] == [None, "try 4", "back"]
    long_reason = "why " * 1999  # 7,996 characters: a body, never a request line
    r = client.post(f"{API}/deployments/d/delete", json={"reason": long_reason})
    assert r.status_code == 204
    assert client.get(f"{API}/deployments/d").status_code == 404
    log = client.get(f"{API}/events", params={"subject": "deployments/d"}).json()
    assert [e["type"] for e in log] == [
        "deployment_created",
        "deployment_updated",
        "deployment_rollback",
        "deployment_deleted",
    ]
    assert log[-1]["payload"]["reason"] == long_reason


def test_a_monitor_window_reads_back_the_same_on_sql_and_over_http(backing: SqlStore) -> None:
    start, end = dt.datetime(2024, 5, 1, 12, 30), dt.datetime(2024, 5, 1, 13, 30)
    record: dict[str, Any] = {
        "monitor": "prod/churn",  # a monitor name may hold a '/': it never travels in a path
        "window_index": 0,
        "window_start": start,
        "window_end": end,
        "n_rows": 10,
        "result": {"drift": {"share": 0.25}},
        "alerts": [{"name": "psi", "severity": "critical", "message": "psi 0.3 > 0.2"}],
    }
    remote = http_store_over(SqlStore(backing.uri))
    try:
        remote.log_monitor_result(record)
        backing.log_monitor_result({**record, "window_index": 1, "window_start": 2000})
        over_http = remote.list_monitor_results("prod/churn")
        assert over_http == backing.list_monitor_results("prod/churn")
        assert [(r.window_start, r.window_end) for r in over_http] == [
            (str(start), str(end)),  # as SQL keeps a time: its text
            (2000, str(end)),  # and a row offset: an int
        ]
        assert remote.list_monitor_alerts(monitor="prod/churn") == backing.list_monitor_alerts()
    finally:
        remote.close()


def test_a_change_is_recorded_as_the_token_that_made_it(backing: SqlStore) -> None:
    token = backing.create_token("ci-bot", role="write")
    client = in_process_client(create_app(backing, auth=True, rate_limit=None))
    headers = {"Authorization": f"Bearer {token.secret}"}
    try:
        r = client.post(
            f"{API}/deployments",
            json={"name": "d", "spec": {"model": MODEL}, "actor": "someone-else"},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["created_by"] == "ci-bot"
        r = client.post(
            f"{API}/events",
            json={"type": "monitor_alert", "subject": "monitors/m", "actor": "someone-else"},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["actor"] == "ci-bot"
        assert client.get(f"{API}/events").status_code == 401  # no token, no log
        made = backing.read_events(types=["deployment_created", "monitor_alert"])
        assert [e.actor for e in made] == ["ci-bot", "ci-bot"]
    finally:
        client.close()
