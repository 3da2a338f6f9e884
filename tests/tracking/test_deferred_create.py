"""A run's row is written with its first batch: one commit for a short run, nothing lost or hidden."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mloop
from mloop.config import Settings
from mloop.errors import StoreUnavailableError
from mloop.store import SqlStore


class CountingStore(SqlStore):
    """A real SQLite store that counts write transactions and can be taken down."""

    down = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def _do_create_run(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("create_run")
        return super()._do_create_run(*args, **kwargs)

    def _do_log_batch(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("store 'counting' is down")
        self.calls.append("log_batch+create" if kwargs.get("new_run") else "log_batch")
        return super()._do_log_batch(*args, **kwargs)


def test_a_short_run_is_one_transaction(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=60.0)
    store = CountingStore(settings.store_uri)
    with mloop.start_run(
        project="p", config={"lr": 0.1}, settings=settings, store=store, system_metrics=False
    ) as run:
        run.log({"acc": 0.5}, step=0)
    assert store.calls == ["log_batch+create"]
    got = SqlStore(settings.store_uri).get_run(run.id)  # another store object: really written
    assert (got.status, got.params, got.metrics["acc"].last) == ("finished", {"lr": "0.1"}, 0.5)


def test_this_process_sees_its_pending_run_at_once(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=60.0)
    store = CountingStore(settings.store_uri)
    run = mloop.start_run(project="p", name="live", settings=settings, store=store, system_metrics=False)  # fmt: skip
    try:
        assert store.calls == []  # nothing written yet
        client = mloop.Client(store=store)
        assert client.get_run(run.id).status == "running"  # ... until something reads it
        assert store.calls == ["log_batch+create"]
        assert [r.name for r in client.search_runs("p").items] == ["live"]
        note = tmp_path / "note.txt"
        note.write_text("hi")
        run.log_artifact(note)
        assert [a.path for a in store.list_artifacts(run.id)] == ["note.txt"]
    finally:
        run.finish()


def test_registering_a_model_from_a_pending_run_writes_the_run_first(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=60.0)
    store = CountingStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    try:
        mv = store.create_model_version(
            "m", artifact_uri="file:///nowhere", flavor="python_function", source_run_id=run.id
        )
        assert mv.source_run_id == run.id and store.calls == ["log_batch+create"]
    finally:
        run.finish()


def test_a_pending_run_reaches_other_processes_within_a_flush_interval(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=0.2)
    run = mloop.start_run(project="p", settings=settings, system_metrics=False)
    try:
        other = SqlStore(settings.store_uri)  # as another process would read it
        deadline = time.monotonic() + 10
        while not other.search_runs(other.get_project_by_name("p").id).items:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never reached the store"
            time.sleep(0.05)
        assert other.get_run(run.id).status == "running"
    finally:
        run.finish()


def test_creation_is_spooled_ahead_of_its_batches_when_the_store_is_down(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=60.0)
    store = CountingStore(settings.store_uri)
    run = mloop.start_run(project="p", config={"k": 1}, settings=settings, store=store, system_metrics=False)  # fmt: skip
    store.down = True
    for i in range(100):
        run.log({"loss": float(i)})
    run.flush()  # creation and batch go to the spool, in that order
    assert list(settings.spool_dir.glob("*.jsonl"))
    store.down = False
    run.log({"loss": 100.0})
    run.finish()  # replays the spool first: the run, then its points, exactly once
    got = store.get_run(run.id)
    assert got.status == "finished" and got.params == {"k": "1"}
    assert store.get_metric_history(run.id, "loss").value.tolist() == [float(i) for i in range(101)]
    assert list(settings.spool_dir.glob("*.jsonl")) == []


def test_the_pending_runs_live_in_the_sdk_and_the_store_keeps_only_a_barrier(
    tmp_path: Path,
) -> None:
    from mloop.tracking import _pending

    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=60.0)
    store = CountingStore(settings.store_uri)
    other = SqlStore(settings.store_uri)
    a = mloop.start_run(project="p", name="a", settings=settings, store=store, system_metrics=False)  # fmt: skip
    try:
        assert _pending.pending_runs(store) == [a.id] and _pending.pending_runs(other) == []
        # The store holds one callable, not the SDK's runs; another store object has none.
        assert len(vars(store)["_barriers"]) == 1 and "_barriers" not in vars(other)
        store.before_run_access("f" * 32)  # not pending: nothing to do
        assert store.calls == []
        assert store.get_run(a.id).name == "a"  # a read through the store writes it first
        assert store.calls == ["log_batch+create"] and _pending.pending_runs(store) == []
        assert other.get_run(a.id).name == "a"
        _pending.defer(store, "b" * 32, lambda: store.calls.append("b"))
        _pending.defer(store, "c" * 32, lambda: store.calls.append("c"))
        assert len(vars(store)["_barriers"]) == 1  # still one barrier per store
        store.before_run_access(None)  # a search: every pending run of this store, oldest first
        assert store.calls[1:] == ["b", "c"]
        _pending.written(store, "b" * 32)
        _pending.written(store, "c" * 32)
        assert _pending.pending_runs(store) == []
    finally:
        a.finish()
        other.close()


class SlowCreateStore(SqlStore):
    """Holds the run's creating batch in flight until told to go on (a slow store, a busy server)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import threading

        self.creating = threading.Event()
        self.go_on = threading.Event()

    def _do_log_batch(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("new_run") is not None:
            self.creating.set()
            assert self.go_on.wait(30)
        return super()._do_log_batch(*args, **kwargs)


def test_a_read_while_the_flusher_is_creating_the_run_waits_for_it(tmp_path: Path) -> None:
    """The flusher thread has taken the run's creation and is writing it; meanwhile the user's
    thread logs a dataset input to the run. It must wait for the creation, not find no run (the
    race a loaded machine exposed: the run was marked written before its write committed)."""
    import threading

    settings = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=0.05)
    store = SlowCreateStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    try:
        run.log({"acc": 0.5}, step=0)
        assert store.creating.wait(30)  # the flusher is inside the creating write
        threading.Timer(0.3, store.go_on.set).start()
        run.log_dataset({"x": [1.0, 2.0]}, name="train")  # waits for the creation, then lands
        assert [i.name for i in store.get_run(run.id).inputs] == ["train"]
    finally:
        store.go_on.set()
        run.finish()
    assert store.get_run(run.id).metrics["acc"].last == 0.5
