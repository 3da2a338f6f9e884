"""``mloop server`` delivers webhooks itself: it is the only place that holds their secrets (an
HTTP store is never sent one), so a hook registered through the API is signed and delivered by
the server process, once, and ``--no-webhooks`` leaves delivery to another server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _server_process import ServerProcess
from mloop.registry import verify_signature
from mloop.store import HttpStore

pytestmark = pytest.mark.no_mutation


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _wait_for(n: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(_Receiver.received) < n:
        assert time.monotonic() < deadline, f"{len(_Receiver.received)} of {n} deliveries"
        time.sleep(0.05)


@pytest.mark.parametrize("webhooks", [True, False], ids=["delivers", "no-webhooks"])
def test_the_server_signs_and_delivers_what_its_clients_registered(
    tmp_path: Path, receiver: str, webhooks: bool
) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    args = ("--workers", "2") if webhooks else ("--no-webhooks",)
    with ServerProcess(
        srv,
        store_uri=f"sqlite:///{srv / 'server.db'}",
        artifact_uri=str(srv / "artifacts"),
        args=args,
    ) as server:
        store = HttpStore(server.url)
        try:
            hook = store.create_webhook(receiver, secret="team-secret", events=["alias_set"])
            assert "team-secret" not in json.dumps(store.list_webhooks()[0].to_dict())
            store.create_registered_model("churn")
            v = store.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
            store.set_alias("churn", "champion", v.version, actor="alice", reason="first")
            if not webhooks:
                time.sleep(3)  # what a dispatcher would have needed, at least
                assert _Receiver.received == []
                return
            _wait_for(1)
            time.sleep(1.5)  # a second delivery of the same event would arrive by now
            ((headers, body),) = _Receiver.received
            assert headers["X-Mloop-Event"] == "alias_set"
            assert verify_signature("team-secret", body, headers["X-Mloop-Signature"])
            event = json.loads(body)["event"]
            assert event["alias"] == "champion" and event["after"] == v.version
            cursor = store.get_cursor(f"webhook-{hook.id}")
            assert cursor is not None and cursor.position >= 1
        finally:
            store.close()
