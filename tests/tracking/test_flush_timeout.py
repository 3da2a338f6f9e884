"""``run.flush(timeout_s=)`` bounds its wait: a store that hangs or stays locked costs about
``timeout_s``, and what was logged is not lost: it is spooled, or stays buffered for later."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import mloop
from _locks import locked
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.store import SqlStore, create_store
from mloop.tracking import replay_spool

SLACK_S = 3.0  # a loaded machine


class _Hangs(SqlStore):
    """A store whose batch writes hang while ``gate`` is closed."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def log_batch(self, run_id: str, **kw: Any) -> bool:
        if not self.gate.is_set():
            self.entered.set()
            self.gate.wait(60)
        return super().log_batch(run_id, **kw)


def _settings(tmp_path: Path, store_uri: str | None = None, interval: float = 3600.0) -> Settings:
    return Settings.from_env(
        {}, home=tmp_path / "h", store_uri=store_uri, flush_interval_s=interval
    )


def test_flush_returns_within_its_timeout_while_a_write_hangs(tmp_path: Path) -> None:
    s = _settings(tmp_path, interval=0.05)
    store = _Hangs(s.store_uri)
    release = threading.Timer(8.0, store.gate.set)  # without a bound, flush waits this long
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 0.0})
        run.flush()  # the run exists
        store.gate.clear()
        run.log({"m": 1.0})
        assert store.entered.wait(10)  # the flusher is stuck writing that point
        run.log({"m": 2.0})
        release.start()
        t0 = time.monotonic()
        assert run.flush(timeout_s=0.5) is False
        took = time.monotonic() - t0
        assert 0.4 <= took < 0.5 + SLACK_S, took
        assert len(run._writer.queue) == 1  # the point logged meanwhile is still buffered
        store.gate.set()
        assert run.flush(timeout_s=30) is True
        run.finish()
        assert store.get_metric_history(run.id, "m").value.tolist() == [0.0, 1.0, 2.0]
    finally:
        release.cancel()
        store.gate.set()
        store.close()


def test_flush_spools_what_a_locked_store_cannot_take_in_time(
    tmp_path: Path, store_uri: str
) -> None:
    s = _settings(tmp_path, store_uri)
    store = create_store(store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 0.0})
        run.flush()
        with locked(store_uri):
            for i in range(1, 101):
                run.log({"m": float(i)})
            t0 = time.monotonic()
            assert run.flush(timeout_s=1.0) is True  # in the spool: nothing left in memory
            took = time.monotonic() - t0
        assert took < 1.0 + SLACK_S, took  # not the store's own lock wait (60 s)
        w = run._writer
        assert w.points_spooled == 100 and len(w.queue) == 0
        run.finish()
        result = replay_spool(store, s.spool_dir)
        assert result.failed == 0 and result.pending_files == 0
        h = store.get_metric_history(run.id, "m")
        assert sorted(h.value.tolist()) == [float(i) for i in range(101)]  # all, once
    finally:
        store.close()


def test_flush_writes_everything_with_or_without_a_timeout(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    store = SqlStore(s.store_uri)
    try:
        run = mloop.start_run(project="p", settings=s, store=store, system_metrics=False)
        run.log({"m": 1.0})
        assert run.flush() is True
        assert run.flush(timeout_s=5) is True  # nothing left: still True
        assert store.get_metric_history(run.id, "m").value.tolist() == [1.0]
        run.log({"m": 2.0})
        assert run.flush(timeout_s=5) is True  # a healthy store takes it within the timeout
        assert store.get_metric_history(run.id, "m").value.tolist() == [1.0, 2.0]
        w = run._writer
        assert (w.points_written, w.points_spooled) == (2, 0)  # written, not spooled
        run.finish()
    finally:
        store.close()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "5"])
def test_flush_refuses_a_timeout_that_is_not_a_positive_number(tmp_path: Path, bad: object) -> None:
    s = Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=3600)
    run = mloop.start_run(project="p", settings=s, system_metrics=False)
    try:
        with pytest.raises(InvalidInputError, match=r"`timeout_s` must be a positive number"):
            run.flush(timeout_s=bad)  # type: ignore[arg-type]
    finally:
        run.finish()
