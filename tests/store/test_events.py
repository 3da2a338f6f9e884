"""The event log on every backend: ordering, filters, cursors, followers, crash recovery, wake-ups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mloop.errors import InvalidInputError, NotFoundError, StoreUnavailableError
from mloop.store import EVENT_TYPES, Event, Follower, SqlStore


def _alert(store: Any, monitor: str = "prod", n: int = 1) -> list[Event]:
    return [
        store.append_event("monitor_alert", f"monitors/{monitor}", payload={"i": i})
        for i in range(n)
    ]


def test_events_are_read_in_id_order_with_filters(store: Any) -> None:
    a = store.append_event("monitor_alert", "monitors/a", actor="ci", payload={"x": 1.5})
    b = store.append_event("monitor_result", "monitors/b", payload={"n_rows": 10})
    c = store.append_event("monitor_alert", "monitors/b", payload={"nested": {"k": [1, 2]}})
    assert a.id < b.id < c.id and store.last_event_id() == c.id
    got = store.read_events()
    assert got == [a, b, c]
    assert got[0].actor == "ci" and got[0].payload == {"x": 1.5} and got[0].ts_ms > 0
    assert store.read_events(after_id=a.id) == [b, c]
    assert store.read_events(types=["monitor_alert"]) == [a, c]
    assert store.read_events(subject="monitors/b") == [b, c]
    assert store.read_events(until_id=b.id) == [a, b]
    assert store.read_events(limit=2) == [a, b]
    assert store.read_events(after_id=c.id) == []


def test_bad_event_input_is_refused_and_nothing_is_written(store: Any) -> None:
    with pytest.raises(InvalidInputError, match="unknown event type 'nope'"):
        store.append_event("nope", "monitors/a")
    with pytest.raises(InvalidInputError, match="subject"):
        store.append_event("monitor_alert", "")
    with pytest.raises(InvalidInputError, match="subject"):
        store.append_event("monitor_alert", "x" * 601)
    with pytest.raises(InvalidInputError, match="payload"):
        store.append_event("monitor_alert", "monitors/a", payload=[1])
    with pytest.raises(InvalidInputError, match="list of event types"):
        store.read_events(types="monitor_alert")
    with pytest.raises(InvalidInputError, match="after_id"):
        store.read_events(after_id=-1)
    with pytest.raises(InvalidInputError, match="limit"):
        store.read_events(limit=0)
    for name in ("", "has space", "-leading", "x" * 256, 7):
        with pytest.raises(InvalidInputError, match="name"):
            store.follow(name)
    assert store.last_event_id() == 0 and store.list_cursors() == []


def test_registry_changes_and_monitor_windows_are_logged_with_the_change(store: Any) -> None:
    store.create_registered_model("churn")
    v = store.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    store.set_alias("churn", "champion", v.version, actor="ana", reason="first")
    log = store.read_events(subject="models/churn")
    audit = store.list_events(model="churn")
    # One sequence: the registry's audit trail ids are the log's ids.
    assert [e.id for e in log] == [e.id for e in audit]
    assert [e.type for e in log] == [e.type for e in audit]
    moved = log[-1]
    assert moved.type == "alias_set" and moved.actor == "ana"
    assert moved.payload["alias"] == "champion" and moved.payload["after"] == v.version
    assert moved.payload["reason"] == "first" and moved.payload["model"] == "churn"

    rec = {
        "monitor": "prod",
        "window_index": 3,
        "window_start": 300,
        "window_end": 400,
        "n_rows": 100,
        "result": {"drift": {"share": 0.5}},
        "alerts": [
            {"name": "psi", "severity": "critical", "message": "psi 0.4 > 0.2"},
            {"name": "nulls", "severity": "warning", "message": "x"},
        ],
    }
    result = store.log_monitor_result(rec)
    alerts = store.list_monitor_alerts(monitor="prod")
    events = store.read_events(subject="monitors/prod")
    assert [e.type for e in events] == ["monitor_result", "monitor_alert", "monitor_alert"]
    assert events[0].payload == {
        "monitor": "prod",
        "result_id": result.id,
        "window_index": 3,
        "window_start": 300,
        "window_end": 400,
        "n_rows": 100,
        "n_alerts": 2,
    }
    assert [e.payload["alert_id"] for e in events[1:]] == [a.id for a in alerts]
    assert [e.payload["severity"] for e in events[1:]] == ["critical", "warning"]
    assert events[0].id > moved.id


def test_a_failed_change_logs_no_event(store: Any) -> None:
    store.create_registered_model("m")
    before = store.last_event_id()
    with pytest.raises(NotFoundError):
        store.set_alias("m", "champion", 9)
    assert store.last_event_id() == before


def test_cursors_move_forward_on_ack_and_anywhere_on_set(store: Any) -> None:
    assert store.get_cursor("c") is None
    store.ack_event("c", 5)
    store.ack_event("c", 3)  # a late duplicate acknowledgement never rewinds
    assert store.get_cursor("c").position == 5
    assert store.set_cursor("c", 2).position == 2  # an explicit rewind (to replay)
    store.ack_event("d", 1)
    assert [(c.name, c.position) for c in store.list_cursors()] == [("c", 2), ("d", 1)]
    store.delete_cursor("d")
    assert store.get_cursor("d") is None
    with pytest.raises(NotFoundError, match="no follower named 'd'"):
        store.delete_cursor("d")
    with pytest.raises(InvalidInputError, match="event_id"):
        store.ack_event("c", -1)


def test_a_new_follower_starts_at_the_end_or_the_beginning(store: Any) -> None:
    first = _alert(store, n=2)
    late = store.follow("late")
    early = store.follow("early", start="beginning")
    assert late.position == first[-1].id and early.position == 0
    seen_late: list[int] = []
    seen_early: list[int] = []
    new = _alert(store)
    assert late.poll(lambda e: seen_late.append(e.id)) == 1
    assert early.poll(lambda e: seen_early.append(e.id)) == 3
    assert seen_late == [new[0].id] and seen_early == [e.id for e in first + new]
    # Reopening a follower resumes from its stored cursor, whatever ``start`` says.
    assert store.follow("early", start="beginning").position == new[0].id
    with pytest.raises(InvalidInputError, match="start"):
        store.follow("x", start="middle")


def test_a_handler_that_fails_leaves_its_event_for_the_next_try(store: Any) -> None:
    events = _alert(store, n=3)
    f = store.follow("f", start="beginning")
    seen: list[int] = []

    def flaky(e: Event) -> None:
        if e.id == events[1].id and events[1].id not in seen:
            seen.append(e.id)
            raise RuntimeError("downstream is down")
        seen.append(e.id)

    with pytest.raises(RuntimeError, match="downstream"):
        f.poll(flaky)
    assert f.position == events[0].id and store.get_cursor("f").position == events[0].id
    assert f.poll(flaky) == 2
    assert seen == [events[0].id, events[1].id, events[1].id, events[2].id]


def test_a_follower_sees_only_its_types_and_moves_past_the_rest(store: Any) -> None:
    f = store.follow("results", types=["monitor_result"], start="beginning", batch_size=2)
    for _ in range(5):
        store.append_event("monitor_alert", "monitors/a")
    r = store.append_event("monitor_result", "monitors/a")
    store.append_event("monitor_alert", "monitors/a")
    got: list[Event] = []
    assert f.poll(got.append) == 1 and got == [store.read_events(after_id=r.id - 1, limit=1)[0]]
    assert f.position == store.last_event_id()  # past the alerts it does not want
    assert f.poll(got.append) == 0


def test_followers_with_different_names_each_see_every_event(store: Any) -> None:
    a, b = store.follow("a", start="beginning"), store.follow("b", start="beginning")
    events = _alert(store, n=4)
    seen_a: list[int] = []
    seen_b: list[int] = []
    a.poll(lambda e: seen_a.append(e.id), max_events=1)
    b.poll(lambda e: seen_b.append(e.id))
    a.poll(lambda e: seen_a.append(e.id))
    assert seen_a == seen_b == [e.id for e in events]


def test_two_followers_sharing_a_name_share_one_position(store: Any) -> None:
    events = _alert(store, n=3)
    one, two = store.follow("shared", start="beginning"), store.follow("shared")
    got: list[int] = []
    one.poll(lambda e: got.append(e.id), max_events=2)
    two.poll(lambda e: got.append(e.id))
    assert got == [e.id for e in events]


def test_run_in_a_thread_hands_over_new_events_and_stops(store: Any) -> None:
    f = store.follow("bg", min_wait_s=0.01, max_wait_s=0.05)
    got: list[int] = []
    f.start(lambda e: got.append(e.id))
    events = _alert(store, n=3)
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [e.id for e in events]
    assert f.stop(timeout_s=5)
    with pytest.raises(InvalidInputError, match="min_wait_s"):
        Follower(store, "x", min_wait_s=0)


class _AckFailsOnce(SqlStore):
    """A store that cannot be reached for one acknowledgement (a dropped connection)."""

    fail_next_ack = False

    def _do_ack_event(self, name: str, event_id: int) -> None:
        if self.fail_next_ack:
            self.fail_next_ack = False
            raise StoreUnavailableError("the store went away for a moment")
        super()._do_ack_event(name, event_id)


def test_a_failed_acknowledgement_never_hands_its_event_over_again(tmp_path: Path) -> None:
    store = _AckFailsOnce(f"sqlite:///{tmp_path / 'ack.db'}")
    try:
        events = _alert(store, n=4)
        f = store.follow("f", start="beginning")
        seen: list[int] = []

        def handler(e: Event) -> None:
            seen.append(e.id)
            store.fail_next_ack = e.id == events[1].id

        with pytest.raises(StoreUnavailableError):
            f.poll(handler)
        # Handled, not acknowledged: the follower has moved past it, the stored cursor has not.
        assert f.position == events[1].id and store.get_cursor("f").position == events[0].id
        assert f.poll(handler) == 2  # the acknowledgement goes first, then the rest
        assert seen == [e.id for e in events]  # each handled once
        assert store.get_cursor("f").position == events[-1].id
    finally:
        store.close()


def test_run_retries_a_failing_handler_without_skipping(store: Any) -> None:
    events = _alert(store, n=2)
    f = store.follow("retry", start="beginning", min_wait_s=0.01, max_wait_s=0.02)
    calls: list[int] = []

    def handler(e: Event) -> None:
        calls.append(e.id)
        if calls.count(e.id) < 3:
            raise RuntimeError("not yet")

    f.run(handler, timeout_s=2.0)
    assert calls == [events[0].id] * 3 + [events[1].id] * 3
    assert f.position == events[1].id


_CONSUMER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, TESTS)
    import conftest  # registers the suite's own backends (asgi+ ...), as the session does
    from mloop.store import create_store

    uri, out, mode, kill_at, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    store = create_store(uri)
    f = store.follow("consumer", start="beginning")

    def record(e):
        with open(out, "a") as fh:
            fh.write(f"{e.id}\\n")
            fh.flush()
            os.fsync(fh.fileno())

    def handler(e):
        if e.id == kill_at and mode == "before":  # killed between two events
            open(out + ".ready", "w").close()
            time.sleep(120)
        record(e)
        if e.id == kill_at and mode == "after":  # killed after handling, before the ack
            open(out + ".ready", "w").close()
            time.sleep(120)

    while f.position < total:
        f.poll(handler)
    store.close()
    """
)


@pytest.mark.no_mutation  # the consumer runs in a child process
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_consumer_killed_mid_stream_resumes_without_skipping(
    store: Any, store_uri: str, tmp_path: Path, mode: str
) -> None:
    events = _alert(store, n=12)
    ids = [e.id for e in events]
    out = tmp_path / "seen.txt"
    script = tmp_path / "consumer.py"
    script.write_text(_CONSUMER.replace("TESTS", repr(str(Path(__file__).parents[1]))))
    kill_at = ids[6]
    args = [sys.executable, str(script), store_uri, str(out), mode, str(kill_at), str(ids[-1])]
    proc = subprocess.Popen(args)
    try:
        deadline = time.monotonic() + 60
        while not Path(str(out) + ".ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "consumer never got there"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    acked = store.get_cursor("consumer").position
    assert acked == ids[5]  # the last event whose handler returned
    restarted = subprocess.run([*args[:4], "never", *args[5:]], timeout=120, check=True)
    assert restarted.returncode == 0
    seen = [int(x) for x in out.read_text().split()]
    if mode == "before":
        assert seen == ids  # every event exactly once
    else:  # handled but not acknowledged: delivered again (at least once), nothing skipped
        assert seen == ids[:7] + ids[6:]
    assert store.get_cursor("consumer").position == ids[-1]


def test_migration_copies_the_audit_trail_and_webhook_cursors(sql_store_uri: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from mloop.store._sql._engine import _alembic_config

    engine = sa.create_engine(sql_store_uri.replace("postgresql+psycopg", "postgresql+psycopg"))
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")
        conn.execute(
            sa.text(
                "INSERT INTO registry_events (id, ts_ms, type, model, version, alias, actor, "
                "before, after, reason, report_id) VALUES "
                "(1, 10, 'model_created', 'm', NULL, NULL, 'a', NULL, NULL, NULL, NULL), "
                "(2, 20, 'alias_set', 'm', 1, 'champion', 'b', 'null', '1', 'go', 'r1')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO webhooks (id, url, secret, events, model, active, created_ms, cursor) "
                "VALUES (1, 'http://x', 'secret123', '[\"*\"]', NULL, true, 5, 1)"
            )
        )
    engine.dispose()
    s = SqlStore(sql_store_uri)
    try:
        log = s.read_events()
        assert [(e.id, e.type, e.subject, e.actor) for e in log] == [
            (1, "model_created", "models/m", "a"),
            (2, "alias_set", "models/m", "b"),
        ]
        assert log[1].payload == {
            "model": "m",
            "version": 1,
            "alias": "champion",
            "before": None,
            "after": 1,
            "reason": "go",
            "report_id": "r1",
        }
        assert s.get_cursor("webhook-1").position == 1
        assert s.list_webhooks()[0].cursor == 1
        s.create_registered_model("n")  # new ids continue after the copied ones
        assert s.last_event_id() == 3 and s.list_events(model="n")[0].id == 3
    finally:
        s.close()


def test_event_types_are_one_list() -> None:
    from mloop.store._registry_entities import EVENT_TYPES as REGISTRY

    assert set(REGISTRY) < set(EVENT_TYPES)
    assert {"monitor_result", "monitor_alert"} <= set(EVENT_TYPES)
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)


@pytest.mark.postgres
def test_a_follower_is_woken_by_notify_on_postgresql(pg_database: str) -> None:
    writer, reader = SqlStore(pg_database), SqlStore(pg_database)
    try:
        # A 30 s poll: only NOTIFY can bring an event in time.
        f = reader.follow("fast", min_wait_s=30, max_wait_s=30)
        seen: dict[int, float] = {}
        f.start(lambda e: seen.setdefault(e.id, time.perf_counter()))
        time.sleep(0.3)  # the follower is listening
        latencies = []
        for _ in range(5):
            t0 = time.perf_counter()
            e = writer.append_event("monitor_alert", "monitors/pg")
            deadline = time.monotonic() + 5
            while e.id not in seen and time.monotonic() < deadline:
                time.sleep(0.001)
            assert e.id in seen, "the follower was not woken"
            latencies.append(seen[e.id] - t0)
        f.stop(timeout_s=35)
        latencies.sort()
        print(
            f"\nNOTIFY wake-up latency: median {latencies[2] * 1000:.1f} ms, max "
            f"{latencies[-1] * 1000:.1f} ms"
        )
        assert latencies[2] < 1.0  # generous: the figure is reported, not timed here
    finally:
        writer.close()
        reader.close()


def test_concurrent_writers_never_commit_ids_out_of_order(
    store: Any, store_factory: Callable[..., Any]
) -> None:
    """A follower reading while several threads append never skips an event."""
    stores = [store_factory() for _ in range(4)]
    f = store.follow("race", start="beginning", min_wait_s=0.001, max_wait_s=0.01)
    got: list[int] = []
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(lambda e: got.append(e.id),), kwargs={"stop": stop})
    t.start()
    try:

        def write(s: Any) -> None:
            for _ in range(25):
                s.append_event("monitor_alert", "monitors/race")

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        deadline = time.monotonic() + 10
        while len(got) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(10)
    assert sorted(got) == got and len(got) == 100
    assert got == [e.id for e in store.read_events(limit=1000)]
