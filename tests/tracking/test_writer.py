"""The background writer, unit by unit: packing, heartbeats, reopening the store, refused creations,
the flusher's scheduling and what ``stop`` reports."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.store import SqlStore
from mloop.tracking import count_quarantined
from mloop.tracking._spool import SpoolWriter
from mloop.tracking._writer import BackgroundWriter, Pending, pack_entries


def test_pack_entries_groups_points_by_key_in_order() -> None:
    entries = [(0, 10, {"a": 1.0, "b": 2}), (1, 11, {"a": 3.0}), (5, 12, {"b": -4.5})]
    series, points, bad = pack_entries(entries)
    assert points == 4 and bad == [] and list(series) == ["a", "b"]
    assert series["a"].steps.tolist() == [0, 1] and series["a"].timestamps.tolist() == [10, 11]
    assert series["a"].values.tolist() == [1.0, 3.0]
    assert series["b"].steps.tolist() == [0, 5] and series["b"].values.tolist() == [2.0, -4.5]
    assert series["b"].values.dtype == np.float64 and series["b"].steps.dtype == np.int64


def test_pack_entries_keeps_what_packs_and_reports_the_rest() -> None:
    entries = [
        (0, 10, {"a": 1.0, "c": 10**400}),
        (1, 11, {"a": 2.0, "c": 3.0}),
        (2, 12, {"d": "x"}),
    ]
    series, points, bad = pack_entries(entries)
    assert points == 3 and list(series) == ["a", "c"]
    assert series["c"].steps.tolist() == [1] and series["c"].values.tolist() == [3.0]
    assert [(k, step, ts) for k, step, ts, _v, _why in bad] == [("c", 0, 10), ("d", 2, 12)]
    assert "too large for a float64" in bad[0][4] and bad[1][3] == "x"


def test_pending_is_truthy_only_with_data() -> None:
    assert not Pending()
    assert not Pending(status="finished")
    assert Pending(params={"a": "1"}) and Pending(tags={"a": "1"})


def test_heartbeats_are_written_while_the_run_is_live(tmp_path: Path) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=0.05, heartbeat_s=0.2)
    store = SqlStore(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 1.0})
        run.flush()
        first = store.get_run(run.id).heartbeat_ms
        deadline = time.monotonic() + 10
        while store.get_run(run.id).heartbeat_ms == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get_run(run.id).heartbeat_ms > first  # type: ignore[operator]
        run.finish()
    finally:
        store.close()


class _Factory:
    """A store that cannot be opened for the first ``fails`` attempts."""

    def __init__(self, uri: str, fails: int) -> None:
        self.uri, self.fails, self.calls = uri, fails, 0

    def __call__(self) -> SqlStore:
        self.calls += 1
        if self.calls <= self.fails:
            raise StoreUnavailableError("not yet")
        return SqlStore(self.uri)


def test_a_missing_store_is_reopened_at_most_every_10_s(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    factory = _Factory(uri, fails=1)
    w = BackgroundWriter(None, "a" * 32, SpoolWriter(tmp_path / "spool"), store_factory=factory)
    assert w._ensure_store() is None and factory.calls == 1
    assert w._ensure_store() is None and factory.calls == 1  # not again within 10 s
    w._next_open_try = time.monotonic() - 0.001
    store = w._ensure_store()
    assert isinstance(store, SqlStore) and factory.calls == 2
    assert w._ensure_store() is store and factory.calls == 2
    store.close()
    assert BackgroundWriter(None, "b" * 32, SpoolWriter(tmp_path))._ensure_store() is None


def test_a_run_already_written_by_an_attempt_that_seemed_to_fail_gets_its_batch(
    tmp_path: Path,
) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = SqlStore(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        # As if the first write had committed the run and then lost its connection.
        store.create_run(store.get_or_create_project("p").id, run_id=run.id, name="first")
        run.log({"m": 1.0})
        run.finish()
        got = store.get_run(run.id)
        assert got.status == "finished" and got.metrics["m"].last == 1.0 and got.name == "first"
        assert count_quarantined(s.spool_dir) == 0 and not list(s.spool_dir.glob("*.jsonl"))
    finally:
        store.close()


class _RefusesRuns(SqlStore):
    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if kw.get("new_run") is not None:
            raise InvalidInputError("run name refused by this backend")
        return super()._do_log_batch(run_id, **kw)


def test_a_run_the_store_refuses_to_create_is_kept_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = _RefusesRuns(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 1.0})
        run.finish()
        err = capsys.readouterr().err
        assert f"run {run.id}: run name refused by this backend" in err
        # The creation, then the batch and the status that had no run to go to: kept, not lost.
        assert count_quarantined(s.spool_dir) == 3
        kept = "".join(f.read_text() for f in (s.spool_dir / "quarantine").glob("*.jsonl"))
        assert kept.count('"op":"create_run"') == 1 and kept.count('"op":"log_batch"') == 2
    finally:
        store.close()


class _RefusesTag(SqlStore):
    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if "bad" in (kw.get("tags") or {}):
            raise InvalidInputError("tag 'bad' refused")
        return super()._do_log_batch(run_id, **kw)


def test_a_refused_item_alone_keeps_the_status_written(tmp_path: Path) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = _RefusesTag(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.flush()  # the run exists
        run.set_tags({"bad": "1"})
        run.finish("failed")  # the last batch is only the refused tag and the status
        got = store.get_run(run.id)
        assert got.status == "failed" and "bad" not in got.tags and got.end_ms is not None
        assert count_quarantined(s.spool_dir) == 1
        assert run._writer.refused == 1 and run._writer.quarantine_path is not None
    finally:
        store.close()


def test_stop_reports_whether_everything_was_written_in_time(tmp_path: Path) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = SqlStore(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 1.0})
        w = run._writer
        assert w.stop(timeout_s=30, status="finished", end_ms=5) is True
        assert w.final_written and w.points_written == 1 and w.batches_written == 1
        assert w.points_spooled == 0
        got = store.get_run(run.id)
        assert got.status == "finished" and got.end_ms == 5
        run.finish()  # the Run itself (its writer already stopped) leaves the active runs
    finally:
        store.close()


class _Recorder:
    """Stands in for a writer: records when the flusher services it."""

    def __init__(self, interval: float) -> None:
        self.flush_interval_s = interval
        self.calls: list[tuple[float, bool]] = []

    def _service(self, now: float, woken: bool) -> None:
        self.calls.append((now, woken))


def test_the_flusher_services_its_writers_at_their_interval_and_when_woken() -> None:
    from mloop.tracking._writer import _Flusher

    f = _Flusher()
    slow, fast = _Recorder(30.0), _Recorder(0.05)
    f.register(slow)  # type: ignore[arg-type]
    thread = f._thread
    assert thread is not None and thread.daemon and thread.name == "mloop-flusher"
    f.register(fast)  # type: ignore[arg-type]
    assert f._thread is thread  # one thread for every writer
    time.sleep(0.6)
    ticks = [c for c in fast.calls if not c[1]]
    assert len(ticks) >= 3  # the shortest interval drives the loop, for every writer
    assert len(slow.calls) >= len(fast.calls)  # every pass services every writer
    assert all(isinstance(now, float) and now <= time.monotonic() for now, _ in fast.calls)

    def woken() -> int:
        return sum(1 for _, w in list(fast.calls) if w)

    before = woken()  # register() woke the thread too: wake() must do it again
    f.wake()
    deadline = time.monotonic() + 5
    while woken() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert woken() > before
    f.unregister(fast)  # type: ignore[arg-type]
    f.unregister(slow)  # type: ignore[arg-type]
    time.sleep(0.1)
    n = len(fast.calls)
    time.sleep(0.3)
    assert len(fast.calls) == n  # unregistered writers are no longer serviced
    f._pid = -1  # as in a forked child: the thread belongs to the parent
    f.register(fast)  # type: ignore[arg-type]
    assert f._thread is not thread and f._thread is not None and f._thread.is_alive()
    f.unregister(fast)  # type: ignore[arg-type]


def test_offline_writes_count_every_spooled_point(tmp_path: Path) -> None:
    s = Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=3600)
    run = mloop.start_run(project="p", settings=s, system_metrics=False)
    for i in range(7):
        run.log({"a": float(i), "b": 1.0})
    run.flush()
    run.log({"a": 9.0})
    w = run._writer
    run.finish()
    assert (w.points_spooled, w.points_written, w.batches_written) == (15, 0, 0)
    lines = [json.loads(x) for f in s.spool_dir.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert [x["op"] for x in lines] == ["create_run", "log_batch", "log_batch"]
    assert lines[-1]["status"] == "finished" and lines[-1]["end_ms"] >= lines[0]["run"]["start_ms"]
    assert len({x["batch_id"] for x in lines[1:]}) == 2 and all(x["batch_id"] for x in lines[1:])


class _Beats:
    def __init__(self) -> None:
        self.beats: list[str] = []

    def heartbeat(self, run_id: str) -> None:
        self.beats.append(run_id)


def test_a_heartbeat_is_sent_when_due_for_a_written_run_only(tmp_path: Path) -> None:
    store = _Beats()
    w = BackgroundWriter(store, "a" * 32, SpoolWriter(tmp_path), heartbeat_s=1000)  # type: ignore[arg-type]
    w._maybe_heartbeat()
    assert store.beats == []  # not due
    w._last_heartbeat = time.monotonic() - 1001
    w._maybe_heartbeat()
    assert store.beats == ["a" * 32]
    w._maybe_heartbeat()
    assert store.beats == ["a" * 32]  # the clock restarted
    w._last_heartbeat = time.monotonic() - 1001
    w._new_run = object()  # type: ignore[assignment]  # not written yet: nothing to beat for
    w._maybe_heartbeat()
    assert store.beats == ["a" * 32]
    w._new_run = None
    w.store = None
    w._maybe_heartbeat()
    assert store.beats == ["a" * 32]


def test_the_writer_drains_when_due_or_woken_and_never_waits_for_a_busy_writer(
    tmp_path: Path,
) -> None:
    import threading

    w = BackgroundWriter(None, "a" * 32, SpoolWriter(tmp_path), flush_interval_s=5.0)
    w.start()
    assert time.monotonic() < w._next_due <= time.monotonic() + 5.0
    from mloop.tracking._writer import _FLUSHER

    _FLUSHER.unregister(w)
    w.queue.append((0, 1, {"m": 1.0}))
    w._next_due = 100.0
    w._service(99.9, False)
    assert len(w.queue) == 1  # not due, not woken
    w._service(100.0, False)
    assert len(w.queue) == 0 and w.points_spooled == 1 and w._next_due == 105.0
    w.queue.append((1, 2, {"m": 2.0}))
    w._service(0.0, True)  # woken: drains whatever the schedule
    assert len(w.queue) == 0 and w.points_spooled == 2 and w._next_due == 5.0
    w.queue.append((2, 3, {"m": 3.0}))
    with w._io_lock:  # finish() or flush() is writing
        t = threading.Thread(target=w._service, args=(1000.0, True))
        t0 = time.monotonic()
        t.start()
        t.join(2)
        assert not t.is_alive() and time.monotonic() - t0 < 1.5
    assert len(w.queue) == 1  # left for the writer that holds the lock
    w.spool.close()
