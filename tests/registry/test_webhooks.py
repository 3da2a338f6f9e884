"""Webhooks as followers of the event log: what they receive, retries, giving up, stopping.

The dispatcher runs where the data is (``data_store``: the server's own store behind the HTTP
store, which is never sent a secret); hooks are registered and their log read through ``store``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mloop.registry import WebhookDispatcher, verify_signature


class _Endpoint(BaseHTTPRequestHandler):
    statuses: list[int] = []  # answered in turn; 200 once exhausted
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = _Endpoint.statuses.pop(0) if _Endpoint.statuses else 200
        _Endpoint.received.append((dict(self.headers), body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Endpoint.statuses, _Endpoint.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _window(store: Any, monitor: str = "prod") -> None:
    store.log_monitor_result(
        {
            "monitor": monitor,
            "window_index": 0,
            "window_start": 0,
            "window_end": 10,
            "n_rows": 10,
            "result": {},
            "alerts": [{"name": "psi", "severity": "critical", "message": "psi high"}],
        }
    )


def test_a_hook_can_follow_monitor_alerts(store: Any, data_store: Any, endpoint: str) -> None:
    hook = store.create_webhook(endpoint, secret="s3cret-key", events=["monitor_alert"])
    _window(store)
    with WebhookDispatcher(data_store, backoff_s=0.01) as d:
        assert d.deliver_pending() == 1
        assert d.deliver_pending() == 0
    ((headers, body),) = _Endpoint.received
    assert headers["X-Mloop-Event"] == "monitor_alert"
    assert verify_signature("s3cret-key", body, headers["X-Mloop-Signature"])
    event = json.loads(body)["event"]
    assert event["subject"] == "monitors/prod" and event["severity"] == "critical"
    assert store.get_cursor(f"webhook-{hook.id}").position == store.last_event_id()


def test_a_refused_payload_is_not_retried_and_the_log_moves_on(
    store: Any, data_store: Any, endpoint: str
) -> None:
    hook = store.create_webhook(endpoint, secret="s3cret-key", events=["*"])
    _Endpoint.statuses = [400]
    _window(store)  # two events: the result (refused with 400) and the alert
    with WebhookDispatcher(data_store, backoff_s=0.01) as d:
        assert d.deliver_pending() == 1
    log = store.list_deliveries(hook.id)
    assert [(x.attempt, x.ok, x.status_code) for x in log] == [(1, False, 400), (1, True, 200)]
    assert len(_Endpoint.received) == 2


def test_a_hook_gives_up_after_its_attempts_with_every_attempt_logged(
    store: Any, data_store: Any, endpoint: str
) -> None:
    hook = store.create_webhook(endpoint, secret="s3cret-key", events=["monitor_result"])
    _Endpoint.statuses = [503, 500, 502]
    _window(store)
    with WebhookDispatcher(data_store, backoff_s=0.01, max_attempts=3) as d:
        assert d.deliver_pending() == 0
    log = store.list_deliveries(hook.id)
    assert [(x.attempt, x.status_code) for x in log] == [(1, 503), (2, 500), (3, 502)]
    assert store.get_cursor(f"webhook-{hook.id}").position == store.last_event_id()


def test_stopping_mid_retry_keeps_the_event_for_later(
    store: Any, data_store: Any, endpoint: str
) -> None:
    hook = store.create_webhook(endpoint, secret="s3cret-key", events=["monitor_result"])
    _Endpoint.statuses = [503] * 3
    _window(store)
    before = store.get_cursor(f"webhook-{hook.id}").position
    d = WebhookDispatcher(data_store, backoff_s=5.0, max_attempts=3)
    t = threading.Thread(target=d.deliver_pending)
    t.start()
    deadline = time.monotonic() + 10
    while not _Endpoint.received and time.monotonic() < deadline:
        time.sleep(0.01)
    d.stop()  # during the 5 s wait before the second attempt
    t.join(10)
    assert not t.is_alive()
    assert store.get_cursor(f"webhook-{hook.id}").position == before
    with WebhookDispatcher(data_store, backoff_s=0.01) as again:
        assert again.deliver_pending() == 1  # the endpoint recovered: delivered now


def test_the_background_dispatcher_delivers_new_events(
    store: Any, data_store: Any, endpoint: str
) -> None:
    store.create_webhook(endpoint, secret="s3cret-key", events=["monitor_alert"])
    with WebhookDispatcher(data_store, backoff_s=0.01).start(poll_s=0.05):
        _window(store)
        deadline = time.monotonic() + 10
        while not _Endpoint.received and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(_Endpoint.received) == 1
