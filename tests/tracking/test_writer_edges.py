"""The background writer at its edges: defaults, held batches, replay ordering, refused items with a
status, a write stuck in the store, and what ``stop`` returns."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.store import MetricSeries, SqlStore
from mloop.tracking import replay_spool
from mloop.tracking._quarantine import quarantine_files, read_quarantine
from mloop.tracking._spool import SpoolUnavailableError, SpoolWriter
from mloop.tracking._writer import _FLUSHER, BackgroundWriter, Pending, pack_entries

RID = "a" * 32


def _series(*values: float) -> MetricSeries:
    n = len(values)
    return MetricSeries(np.arange(n), np.full(n, 7), np.array(values, dtype=np.float64))


def _store_with_run(tmp_path: Path, cls: type[SqlStore] = SqlStore) -> SqlStore:
    store = cls(f"sqlite:///{tmp_path / 'm.db'}")
    store.create_run(store.get_or_create_project("p").id, run_id=RID)
    return store


def _spooled(spool: Path) -> list[dict[str, Any]]:
    return [
        json.loads(x) for f in sorted(spool.glob("*.jsonl")) for x in f.read_text().splitlines()
    ]


def test_a_new_writer_starts_with_its_documented_defaults_and_nothing_done(tmp_path: Path) -> None:
    w = BackgroundWriter(None, RID, SpoolWriter(tmp_path))
    assert (w.flush_interval_s, w.heartbeat_s, w.flush_at) == (1.0, 30.0, 20_000)
    assert w.final_written is False and w.refused == 0 and w.held == []
    assert w.quarantine_path is None and w.hold_error is None and w._inflight is None
    assert (w.points_written, w.points_spooled, w.batches_written) == (0, 0, 0)
    assert w._final_status == (None, None)


def test_pack_entries_names_the_key_it_cannot_pack_and_keeps_the_keys_after_it() -> None:
    entries = [(0, 10, {"bad": "x", "good": 1.0}), (1, 11, {"bad": "y", "good": 2.0})]
    series, points, bad = pack_entries(entries)
    assert list(series) == ["good"] and points == 2
    assert series["good"].values.tolist() == [1.0, 2.0]
    assert [(k, step) for k, step, _ts, _v, _why in bad] == [("bad", 0), ("bad", 1)]
    assert all("'bad'" in why or "bad" in why.split() or "`bad`" in why for *_, why in bad), bad


def test_stop_writes_a_deferred_run_even_with_no_data_and_no_status(tmp_path: Path) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = SqlStore(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        w = run._writer
        assert w.stop(timeout_s=30) is True and w.final_written is True
        assert store.get_run(run.id).status == "running"  # written, no status given
        assert w not in _FLUSHER._writers.values()  # the flusher no longer services it
        run.finish()
    finally:
        store.close()


class _NoSpool(SpoolWriter):
    def append(self, record: Any, *, wait_s: float | None = None, points: int = 0) -> Path:
        raise SpoolUnavailableError("the spool folder is read-only")


def test_batches_nothing_can_take_are_held_in_order_and_retried_in_order(tmp_path: Path) -> None:
    errors: list[str] = []
    w = BackgroundWriter(None, RID, _NoSpool(tmp_path), on_error=errors.append)
    batches = [Pending(params={f"p{i}": str(i)}) for i in range(3)]
    for p in batches:
        w._write_safely(p)
    assert w.held == batches and len(errors) == 1  # said once, not per batch
    assert isinstance(w.hold_error, SpoolUnavailableError)
    w._write_held()  # still nowhere to put them: the same three, in order, once each
    assert w.held == batches
    w.spool = SpoolWriter(tmp_path / "ok")  # the spool is writable again
    w._write_held()
    assert w.held == []
    w.spool.close()
    assert [r["params"] for r in _spooled(tmp_path / "ok")] == [
        {"p0": "0"},
        {"p1": "1"},
        {"p2": "2"},
    ]


def test_a_failed_open_waits_10_s_before_the_next_try(tmp_path: Path) -> None:
    def factory() -> SqlStore:
        raise StoreUnavailableError("down")

    w = BackgroundWriter(None, RID, SpoolWriter(tmp_path), store_factory=factory)
    t0 = time.monotonic()
    assert w._ensure_store() is None
    assert 9.0 < w._next_open_try - t0 <= 10.5


class _Flaky(SqlStore):
    down = False

    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if self.down:
            raise StoreUnavailableError("store 'flaky' is down")
        return super()._do_log_batch(run_id, **kw)


def test_the_spool_is_replayed_before_the_next_batch_goes_to_the_store(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path, _Flaky)
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        store.down = True  # type: ignore[attr-defined]
        w._write(Pending(metrics={"m": _series(1.0)}, points=1))
        assert (w.batches_written, w.points_spooled) == (0, 1) and w.spool.pending
        store.down = False  # type: ignore[attr-defined]
        w._write(Pending(metrics={"m": _series(2.0)}, points=1))
        assert (w.batches_written, w.points_written) == (1, 1) and not w.spool.pending
        assert store.get_metric_history(RID, "m").value.tolist() == [1.0, 2.0]
    finally:
        store.close()


class _ReplayFails(SpoolWriter):
    """A spool with records that cannot be replayed right now."""

    def __init__(self, path: Path, exc: Exception) -> None:
        super().__init__(path)
        self.exc = exc
        self.replayed_into: list[Any] = []

    @property
    def pending(self) -> bool:
        return True

    def replay(self, store: Any) -> Any:
        self.replayed_into.append(store)
        raise self.exc


@pytest.mark.parametrize(
    "exc", [StoreUnavailableError("locked"), RuntimeError("a bug in a replayed record")]
)
def test_while_the_spool_cannot_be_replayed_batches_follow_it_there(
    tmp_path: Path, exc: Exception
) -> None:
    store = _store_with_run(tmp_path)
    try:
        spool = _ReplayFails(tmp_path / "spool", exc)
        w = BackgroundWriter(store, RID, spool)
        w._write(Pending(metrics={"m": _series(1.0)}, points=1))
        assert spool.replayed_into == [store]
        assert (w.batches_written, w.points_spooled) == (0, 1)  # behind the spool, not around it
        assert "m" not in store.get_run(RID).metrics
    finally:
        store.close()


class _Refuses(SqlStore):
    """Refuses the tag 'bad' and, when asked, any status change."""

    refuse_status = False

    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if "bad" in (kw.get("tags") or {}):
            raise InvalidInputError("tag 'bad' refused")
        if self.refuse_status and kw.get("status") is not None:
            raise InvalidInputError("status refused by this backend")
        return super()._do_log_batch(run_id, **kw)

    def _do_update_run(self, run_id: str, **kw: Any) -> None:
        if self.refuse_status and kw.get("status") is not None:
            raise InvalidInputError("status refused by this backend")
        super()._do_update_run(run_id, **kw)


def _kept(spool: Path) -> list[Any]:
    return [e for f in quarantine_files(spool) for e in read_quarantine(f)]


def test_a_refused_item_of_a_new_run_keeps_the_run_and_the_rest_of_its_batch(
    tmp_path: Path,
) -> None:
    s = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=3600)
    store = _Refuses(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.set_tags({"bad": "1", "fine": "2"})
        run.log({"m": 1.0})
        run._writer.stop(timeout_s=30, status="failed", end_ms=12345)
        got = store.get_run(run.id)
        assert got.tags.get("fine") == "2" and "bad" not in got.tags
        assert got.metrics["m"].last == 1.0
        assert (got.status, got.end_ms) == ("failed", 12345)
        kept = _kept(s.spool_dir)
        assert len(kept) == 1 and kept[0].record["tags"] == {"bad": "1"}
        assert kept[0].record["status"] is None  # the status was written, not kept
        assert "tag 'bad' refused" in kept[0].error and kept[0].source == f"run {run.id}"
        assert run._writer.refused == 1
        run.finish()
    finally:
        store.close()


def test_a_lone_refused_item_with_a_status_keeps_the_item_and_writes_the_status(
    tmp_path: Path,
) -> None:
    store = _store_with_run(tmp_path, _Refuses)
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        w._write(Pending(tags={"bad": "1"}, status="killed", end_ms=777))
        got = store.get_run(RID)
        assert (got.status, got.end_ms) == ("killed", 777)
        kept = _kept(tmp_path / "spool")
        assert len(kept) == 1 and kept[0].record["tags"] == {"bad": "1"}
        assert kept[0].record["status"] is None
    finally:
        store.close()


def test_a_refused_status_alone_is_kept_once(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path, _Refuses)
    try:
        store.refuse_status = True  # type: ignore[attr-defined]
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        w._write(Pending(status="finished", end_ms=5))
        kept = _kept(tmp_path / "spool")
        assert len(kept) == 1 and w.refused == 1
        assert (kept[0].record["status"], kept[0].record["end_ms"]) == ("finished", 5)
        assert w.quarantine_path == str(quarantine_files(tmp_path / "spool")[0])
        w._write(Pending(status="failed", end_ms=6))
        assert w.refused == 2 and len(_kept(tmp_path / "spool")) == 2  # counted, not reset
        w.spool.close()
    finally:
        store.close()


class _Stuck(SqlStore):
    """A store whose batch write hangs until released (a dropped connection, a hung server)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batch_ids: list[str | None] = []
        self.stick = False

    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if self.stick:
            self.batch_ids.append(kw.get("batch_id"))
            self.entered.set()
            self.release.wait(30)
        return super()._do_log_batch(run_id, **kw)


@pytest.mark.parametrize("spool_busy", [False, True])
def test_a_write_stuck_in_the_store_is_spooled_under_its_own_batch_id(
    tmp_path: Path, spool_busy: bool
) -> None:
    store = _store_with_run(tmp_path, _Stuck)
    spool_dir = tmp_path / "spool"
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(spool_dir), flush_interval_s=3600)
        w.queue.append((0, 1, {"m": 1.0}))
        store.stick = True  # type: ignore[attr-defined]
        t = threading.Thread(target=w.drain)
        t.start()
        assert store.entered.wait(10)  # type: ignore[attr-defined]
        w.queue.append((1, 2, {"m": 2.0}))
        if spool_busy:  # the stuck write also holds the spool's lock: stop uses a file of its own
            assert w.spool._lock.acquire(timeout=5)
        t0 = time.monotonic()
        assert w.stop(timeout_s=0.3, status="finished", end_ms=99) is False
        assert time.monotonic() - t0 < 10
        if spool_busy:
            w.spool._lock.release()
        records = _spooled(spool_dir)
        (stuck_id,) = store.batch_ids  # type: ignore[attr-defined]
        assert stuck_id is not None and records[0]["batch_id"] == stuck_id
        assert records[-1]["status"] == "finished" and records[-1]["end_ms"] == 99
        store.stick = False  # type: ignore[attr-defined]
        store.release.set()  # type: ignore[attr-defined]
        t.join(10)
        w.spool.close()
        # The released write replays the spool itself once it is done; sync replays the rest.
        assert replay_spool(store, spool_dir).failed == 0
        assert not list(spool_dir.glob("*.jsonl"))
        # The stuck batch landed once: its spooled copy carried its batch id, so it was a duplicate.
        assert store.get_metric_history(RID, "m").value.tolist() == [1.0, 2.0]
        assert store.get_run(RID).status == "finished"
    finally:
        store.release.set()  # type: ignore[attr-defined]
        store.close()


def test_stop_returns_true_when_everything_reached_the_spool_in_time(tmp_path: Path) -> None:
    w = BackgroundWriter(None, RID, SpoolWriter(tmp_path), flush_interval_s=3600)
    w.queue.append((0, 1, {"m": 1.0}))
    assert w.stop(timeout_s=30, status="finished", end_ms=1) is True
    assert w.points_spooled == 1
    w.spool.close()


def test_stop_past_its_deadline_says_whether_anything_had_to_be_spooled(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    try:
        idle = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "a"), flush_interval_s=3600)
        # Nothing left to write: nothing spooled, even with no time at all.
        assert idle.stop(timeout_s=0.0) is True and idle.points_spooled == 0
        busy = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "b"), flush_interval_s=3600)
        busy.queue.append((0, 1, {"m": 1.0}))
        # No time left for the store: the point is spooled, and stop says so.
        assert busy.stop(timeout_s=0.0, status="finished") is False
        assert busy.points_spooled == 1 and busy.points_written == 0
        idle.spool.close()
        busy.spool.close()
    finally:
        store.close()


def test_logging_past_flush_at_wakes_the_writer_and_a_woken_flusher_is_not_set_again(
    tmp_path: Path,
) -> None:
    import threading as th

    from mloop.tracking._writer import _Flusher

    s = Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=3600)
    run = mloop.start_run(project="p", settings=s, system_metrics=False)
    wakes: list[int] = []
    run._writer.wake = lambda: wakes.append(len(run._queue))  # type: ignore[method-assign]
    run._flush_at = 5
    for i in range(7):
        run.log({"m": float(i)}, step=i)
    assert wakes == [5, 6, 7]  # every call past flush_at asks, until the writer drains
    run.finish()

    sets: list[bool] = []

    class _Counting(th.Event):
        def set(self) -> None:
            sets.append(True)
            super().set()

    f = _Flusher()
    f._wake = _Counting()
    f.wake()
    f.wake()
    f.wake()
    assert len(sets) == 1  # already set: no lock taken again
    f._wake.clear()
    f.wake()
    assert len(sets) == 2


def test_a_refused_batch_of_two_items_keeps_only_the_refused_one(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path, _Refuses)
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        w._write(Pending(tags={"bad": "1", "fine": "2"}))
        assert store.get_run(RID).tags.get("fine") == "2"
        kept = _kept(tmp_path / "spool")
        assert len(kept) == 1 and kept[0].record["tags"] == {"bad": "1"}
        w.spool.close()
    finally:
        store.close()


def test_direct_writes_are_counted_and_leave_nothing_in_flight(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        for i in range(3):
            w._write(Pending(metrics={"m": _series(float(i))}, points=1))
            assert w._inflight is None
        assert (w.batches_written, w.points_written) == (3, 3)
    finally:
        store.close()


class _DownRecording(SqlStore):
    """Unreachable, but records the batch id each write was attempted under."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.tried: list[str | None] = []

    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        self.tried.append(kw.get("batch_id"))
        raise StoreUnavailableError("store 'down' is unreachable")


def test_a_batch_the_store_could_not_take_is_spooled_under_the_id_it_was_tried_with(
    tmp_path: Path,
) -> None:
    store = _store_with_run(tmp_path, _DownRecording)
    try:
        w = BackgroundWriter(store, RID, SpoolWriter(tmp_path / "spool"))
        w._write(Pending(metrics={"m": _series(1.0)}, points=1))
        w.spool.close()
        (tried,) = store.tried  # type: ignore[attr-defined]
        (record,) = _spooled(tmp_path / "spool")
        assert tried is not None and record["batch_id"] == tried
    finally:
        store.close()
