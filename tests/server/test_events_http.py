"""The event log over HTTP: long-polls, a remote follower's wake-ups, and a follower that keeps its
promise (every event handled once, the cursor moved only after the handler) across a server that
goes away in the middle and comes back."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from _asgi import http_store_over, in_process_client
from mloop.errors import InvalidInputError
from mloop.server import create_app
from mloop.server._waiters import waiters_for
from mloop.store import MAX_EVENT_WAIT_S, Event, HttpStore, SqlStore

API = "/api/v1"


@pytest.fixture
def db(sql_store_uri: str) -> str:
    """The server's database: SQLite (the watcher reads on a tick) or PostgreSQL (NOTIFY)."""
    return sql_store_uri


@pytest.fixture
def writer(db: str) -> Iterator[SqlStore]:
    """Another client of the server's database: its events never pass through the server."""
    s = SqlStore(db)
    try:
        yield s
    finally:
        s.close()


def _close_server_store(backing: SqlStore) -> None:
    """What a server does when it stops: its event watcher ends (and with it a LISTEN
    connection), then its store is closed."""
    assert waiters_for(backing).close()
    backing.close()


@pytest.fixture
def remote(db: str, writer: SqlStore) -> Iterator[Any]:
    """An HttpStore in front of the app over ``db`` (in-process)."""
    s = http_store_over(SqlStore(db))
    try:
        yield s
    finally:
        assert waiters_for(s.backing).close()
        s.close()


@pytest.fixture
def client(db: str, writer: SqlStore) -> Iterator[httpx.Client]:
    backing = SqlStore(db)
    c = in_process_client(create_app(backing))
    try:
        yield c
    finally:
        c.close()
        _close_server_store(backing)


def _alert(store: Any, n: int = 1) -> list[Event]:
    return [
        store.append_event("monitor_alert", "monitors/prod", payload={"i": i}) for i in range(n)
    ]


def _later(delay_s: float, fn: Any) -> threading.Timer:
    t = threading.Timer(delay_s, fn)
    t.start()
    return t


# ---------------------------------------------------------------------------------- long-polls
def test_a_long_poll_answers_as_soon_as_an_event_commits(
    client: httpx.Client, writer: SqlStore
) -> None:
    first = _alert(writer)[0]
    # Something past 0 already: answered at once.
    r = client.get(f"{API}/events/last-id", params={"after_id": 0, "wait_s": 10})
    assert r.status_code == 200 and r.json() == first.id
    timer = _later(0.3, lambda: _alert(writer))
    t0 = time.monotonic()
    r = client.get(f"{API}/events/last-id", params={"after_id": first.id, "wait_s": 10})
    took = time.monotonic() - t0
    timer.join()
    assert r.json() == first.id + 1
    assert 0.25 <= took < 2.0, took  # woken by the commit (a tick of the watcher), not the wait
    # Nothing comes: the newest id, once wait_s has passed.
    t0 = time.monotonic()
    r = client.get(f"{API}/events/last-id", params={"after_id": first.id + 1, "wait_s": 0.3})
    assert r.json() == first.id + 1 and 0.25 <= time.monotonic() - t0 < 2.0


def test_read_events_waits_for_an_event_that_matches(
    client: httpx.Client, writer: SqlStore
) -> None:
    def later() -> None:
        writer.append_event("monitor_alert", "monitors/a")  # not what the reader waits for
        time.sleep(0.2)
        writer.append_event("monitor_result", "monitors/a", payload={"n_rows": 3})

    timer = _later(0.2, later)
    t0 = time.monotonic()
    r = client.get(f"{API}/events", params={"after_id": 0, "types": "monitor_result", "wait_s": 10})
    took = time.monotonic() - t0
    timer.join()
    got = r.json()
    assert [(e["type"], e["payload"]) for e in got] == [("monitor_result", {"n_rows": 3})]
    assert 0.35 <= took < 3.0, took
    # Without wait_s, an empty answer at once.
    r = client.get(f"{API}/events", params={"after_id": got[0]["id"], "wait_s": 0})
    assert r.json() == []


def test_held_requests_take_no_worker_thread(client: httpx.Client, writer: SqlStore) -> None:
    """More long-polls than the server has worker threads (40): other requests still pass."""
    head = writer.last_event_id()
    answers: list[int] = []

    def hold() -> None:
        r = client.get(f"{API}/events/last-id", params={"after_id": head, "wait_s": 20})
        answers.append(r.json())

    threads = [threading.Thread(target=hold) for _ in range(60)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)  # all of them are held
        t0 = time.monotonic()
        assert client.get(f"{API}/event-cursors").json() == []
        assert time.monotonic() - t0 < 2.0
        new = _alert(writer)[0]
    finally:
        for t in threads:
            t.join(30)
    assert answers == [new.id] * 60  # one commit woke every one of them


@pytest.mark.parametrize(
    "params, match",
    [
        ({"after_id": 0, "wait_s": MAX_EVENT_WAIT_S + 1}, r"`wait_s` must be a number of seconds"),
        ({"after_id": 0, "wait_s": -1}, r"`wait_s` must be a number of seconds in \[0, 30\]"),
        ({"after_id": 0, "wait_s": "NaN"}, r"`wait_s` must be a number of seconds"),
        ({"wait_s": 5}, r"`wait_s` needs `after_id`"),
        ({"after_id": -1, "wait_s": 5}, r"`after_id` must be an int >= 0"),
    ],
)
def test_bad_waits_are_refused(client: httpx.Client, params: dict[str, Any], match: str) -> None:
    r = client.get(f"{API}/events/last-id", params=params)
    assert r.status_code == 400 and r.json()["error_code"] == InvalidInputError.error_code
    assert re.search(match, r.json()["message"]), r.json()["message"]


def test_read_events_refuses_what_the_store_refuses(client: httpx.Client) -> None:
    for params, match in [
        ({"types": "monitor_alert,nope"}, "unknown event type 'nope'"),
        ({"limit": 0}, "`limit` must be an int in"),
        ({"wait_s": 99}, "`wait_s` must be a number of seconds"),
    ]:
        r = client.get(f"{API}/events", params=params)
        assert r.status_code == 400 and match in r.json()["message"], r.text


def test_a_watcher_thread_runs_only_while_requests_are_held(writer: SqlStore) -> None:
    from mloop.server._waiters import EventWaiters

    waiters = EventWaiters(writer, idle_s=0.2)

    async def wait() -> int | None:
        return await waiters.wait_past(writer.last_event_id(), 0.1)

    def watchers() -> int:
        return sum(t.name == "mloop-event-waiters" and t.is_alive() for t in threading.enumerate())

    waiters_for(writer).close()  # (what the tests before left behind)
    before = watchers()
    assert asyncio.run(wait()) is None and waiters.held == 0  # timed out, forgotten
    deadline = time.monotonic() + 5
    while watchers() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watchers() == before  # it ended once idle
    _alert(writer)
    assert asyncio.run(wait()) is None  # past the newest id: waits (nothing new after it)
    e = _alert(writer)[0]
    assert asyncio.run(waiters.wait_past(e.id - 1, 5)) == e.id

    answer: list[int | None] = []

    async def held() -> None:
        answer.append(await waiters.wait_past(e.id, 20))

    t = threading.Thread(target=lambda: asyncio.run(held()))
    t.start()
    time.sleep(0.2)
    assert watchers() == before + 1
    t0 = time.monotonic()
    assert waiters.close(timeout_s=5)  # ended at once, not after its idle spell,
    t.join(5)
    assert answer == [None] and time.monotonic() - t0 < 3  # and the held request is answered
    assert watchers() == before


# ---------------------------------------------------------------------------------- followers
def test_a_remote_follower_is_woken_by_new_events_not_by_its_poll(
    remote: Any, writer: SqlStore
) -> None:
    # A 5 s poll: only the long-poll brings all five events within 2 s (a poll of 5 s, once in
    # about a hundred runs). The follower notices stop() between two waits, so keep them short.
    f = remote.follow("remote", min_wait_s=5, max_wait_s=5)
    seen: dict[int, float] = {}
    f.start(lambda e: seen.setdefault(e.id, time.monotonic()))
    try:
        time.sleep(0.3)  # the follower is waiting
        latencies = []
        for _ in range(5):
            t0 = time.monotonic()
            e = _alert(writer)[0]
            deadline = t0 + 10
            while e.id not in seen and time.monotonic() < deadline:
                time.sleep(0.005)
            assert e.id in seen, "the follower was not woken"
            latencies.append(seen[e.id] - t0)
    finally:
        stopped = f.stop(timeout_s=15)
    latencies.sort()
    print(f"\nlong-poll wake-up latency: median {latencies[2] * 1000:.0f} ms, max "
          f"{latencies[-1] * 1000:.0f} ms")  # fmt: skip
    assert latencies[-1] < 2.0 and stopped
    assert remote.get_cursor("remote").position == max(seen)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """``mloop.server``'s app over a SQLite file, served by uvicorn on a real socket."""

    def __init__(self, db: str, port: int) -> None:
        self.backing = SqlStore(db)
        config = uvicorn.Config(
            create_app(self.backing),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive()
        _close_server_store(self.backing)


@pytest.mark.slow
def test_a_follower_over_a_real_socket_survives_a_server_restart(
    db: str, writer: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stops while the handler works on an event, so its acknowledgement cannot get
    through; events keep coming while the server is down. After the restart, every event is
    handled once, in order, and the cursor ends at the last one."""
    port = _free_port()
    server = _Server(db, port)
    remote = HttpStore(f"http://127.0.0.1:{port}", timeout_s=5)
    events = _alert(writer, 5)
    f = remote.follow("restart", start="beginning", min_wait_s=0.01, max_wait_s=0.3)
    handled: list[int] = []
    in_handler, server_down = threading.Event(), threading.Event()

    def handler(e: Event) -> None:
        if e.id == events[2].id and not server_down.is_set():
            in_handler.set()
            assert server_down.wait(30)
        handled.append(e.id)

    caplog.set_level(logging.WARNING, logger="mloop.events")
    f.start(handler)
    try:
        assert in_handler.wait(20)
        server.stop()  # the handler is still working on event 3
        server_down.set()
        time.sleep(0.5)  # its acknowledgement fails; the follower backs off
        events += _alert(writer, 5)  # the log goes on without the server
        server = _Server(db, port)
        deadline = time.monotonic() + 30
        while len(handled) < len(events) and time.monotonic() < deadline:
            time.sleep(0.02)
        late = _alert(writer)[0]  # and a fresh one is delivered promptly after the restart
        t0 = time.monotonic()
        while late.id not in handled and time.monotonic() < t0 + 10:
            time.sleep(0.005)
        events.append(late)
    finally:
        assert f.stop(timeout_s=30)
        remote.close()
        server.stop()
    assert handled == [e.id for e in events]  # each once, in order, none lost
    assert writer.get_cursor("restart").position == late.id
    assert any("store unavailable" in r.getMessage() for r in caplog.records)
