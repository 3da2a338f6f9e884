"""Nothing accepted is lost: outages, offline mode, spool replay, many processes, kill -9, exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import StoreUnavailableError
from mloop.store import SqlStore, open_store
from mloop.tracking import replay_spool

PY = sys.executable


class FlakyStore(SqlStore):
    """A real SQLite store whose writes fail while ``down`` is set (fault injection at the seam)."""

    down = False

    def _do_log_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailableError("store 'flaky' is down")
        return super()._do_log_batch(*args, **kwargs)

    def _do_update_run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailableError("store 'flaky' is down")
        return super()._do_update_run(*args, **kwargs)


def test_outage_spools_and_next_flush_replays_exactly_once(settings: Settings) -> None:
    store = FlakyStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    for i in range(1000):
        run.log({"loss": float(i)})
    run.flush()
    store.down = True
    for i in range(1000, 3000):
        run.log({"loss": float(i)})
    run.log_params({"lr": 0.1})
    run.flush()
    spool_files = list(settings.spool_dir.glob("*.jsonl"))
    assert len(spool_files) == 1 and spool_files[0].stat().st_size > 0
    store.down = False
    for i in range(3000, 3500):
        run.log({"loss": float(i)})
    run.finish()
    h = store.get_metric_history(run.id, "loss")
    assert h.value.tolist() == [float(i) for i in range(3500)]  # all, once, in order
    got = store.get_run(run.id)
    assert got.status == "finished" and got.params == {"lr": "0.1"}
    assert list(settings.spool_dir.glob("*.jsonl")) == []


def test_store_down_at_finish_leaves_a_spool_that_sync_replays_idempotently(
    settings: Settings, capsys
) -> None:
    store = FlakyStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    run.log({"a": 1.0})
    run.flush()
    store.down = True
    for i in range(1, 500):
        run.log({"a": float(i)})
    run.finish()
    assert "mloop sync" in capsys.readouterr().err
    assert store.get_run(run.id).status == "running"
    files = list(settings.spool_dir.glob("*.jsonl"))
    assert len(files) == 1
    copy = files[0].read_text()
    store.down = False
    result = replay_spool(store, settings.spool_dir)
    assert result.failed == 0 and result.applied >= 1  # the last batch carries the status
    assert list(settings.spool_dir.glob("*.jsonl")) == []
    # Replaying the same records again (a crash between apply and delete) writes nothing twice.
    files[0].write_text(copy)
    again = replay_spool(store, settings.spool_dir)
    assert again.duplicates >= 1
    assert len(store.get_metric_history(run.id, "a")) == 500
    assert store.get_run(run.id).status == "finished"


def test_offline_mode_spools_everything_and_sync_uploads_it(tmp_path: Path) -> None:
    offline = Settings.from_env(
        {"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=0.05
    )
    with mloop.start_run(
        project="offline", config={"k": 1}, settings=offline, system_metrics=False
    ) as run:
        for i in range(200):
            run.log({"m": i * 1.0})
        run.set_tags({"where": "plane"})
    assert not (tmp_path / "h" / "mloop.db").exists()  # nothing touched the store
    online = Settings.from_env({}, home=tmp_path / "h")
    store = open_store(online, cached=False)
    result = replay_spool(store, online.spool_dir)
    assert result.failed == 0
    got = store.get_run(run.id)
    assert got.status == "finished" and got.params == {"k": "1"} and got.tags == {"where": "plane"}
    assert got.metrics["m"].count == 200
    store.close()


def test_postgres_outage_then_recovery(pg_url: str, tmp_path: Path) -> None:
    """A real server going away mid-run: the run goes on, and `mloop sync` completes it."""
    from _postgres import create_database, postgres_server

    with postgres_server() as server:
        uri = create_database(server.url, "outage")
        settings = Settings.from_env({}, home=tmp_path / "h", store_uri=uri, flush_interval_s=0.05)
        run = mloop.start_run(
            project="pg", settings=settings, store=SqlStore(uri), system_metrics=False
        )
        run.log({"x": 0.0})
        run.flush()
        server.stop()
        for i in range(1, 100):
            run.log({"x": float(i)})  # training goes on while the server is down
        run.finish()
        assert list(settings.spool_dir.glob("*.jsonl"))
        server.start()
        proc = subprocess.run(
            [PY, "-m", "mloop", "sync"],
            env={**os.environ, "MLOOP_HOME": str(tmp_path / "h"), "MLOOP_STORE_URI": uri},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        s = SqlStore(uri)
        assert (
            len(s.get_metric_history(run.id, "x")) == 100 and s.get_run(run.id).status == "finished"
        )
        s.close()


WORKER = textwrap.dedent(
    """
    import sys, mloop
    from mloop.config import Settings
    settings = Settings.from_env(flush_interval_s=0.2)
    with mloop.start_run(project="parallel", name=sys.argv[1], settings=settings, system_metrics=False) as run:
        for i in range(int(sys.argv[2])):
            run.log({"a": float(i), "b": -float(i)}, step=i)
    print(run.id)
    """
)


WORKERS_TIMEOUT_S = 180


@pytest.mark.slow
@pytest.mark.no_mutation  # mloop runs in a child process, which never sees a mutant
def test_four_processes_logging_into_one_sqlite_store(tmp_path: Path) -> None:
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "h")}
    env.pop("MLOOP_STORE_URI", None)
    steps = 125_000  # 2 metrics x 125,000 steps = 250,000 points per process
    procs = [
        subprocess.Popen(
            [PY, "-c", WORKER, f"w{i}", str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    # All four together get WORKERS_TIMEOUT_S (about 11 s on a loaded 2-core machine): within
    # pytest-timeout's 300 s cap, with room left for reading the results back.
    deadline = time.monotonic() + WORKERS_TIMEOUT_S
    try:
        outs = [p.communicate(timeout=max(deadline - time.monotonic(), 0.1)) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
            p.communicate()
        pytest.fail(f"4 processes did not log {steps:,} steps each within {WORKERS_TIMEOUT_S} s")
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "spool" not in err, err
    store = SqlStore(f"sqlite:///{tmp_path / 'h' / 'mloop.db'}")
    for out, _ in outs:
        run_id = out.strip().splitlines()[-1]
        got = store.get_run(run_id)
        assert got.status == "finished"
        for key, sign in (("a", 1.0), ("b", -1.0)):
            h = store.get_metric_history(run_id, key)
            assert len(h) == steps  # every point exactly once
            assert np.array_equal(h.step, np.arange(steps))
            assert np.array_equal(h.value, sign * np.arange(steps, dtype=float))
    assert (
        not list((tmp_path / "h" / "spool").glob("*.jsonl"))
        if (tmp_path / "h" / "spool").exists()
        else True
    )
    store.close()


@pytest.mark.no_mutation  # mloop runs in a child process, which never sees a mutant
def test_killed_process_reads_killed_once_heartbeat_lapses(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import time, mloop
        run = mloop.start_run(project="k", system_metrics=False)
        run.log({"x": 1.0}); run.flush()
        print(run.id, flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "h"), "MLOOP_HEARTBEAT_S": "0.2"}
    proc = subprocess.Popen([PY, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    settings = Settings.from_env({"MLOOP_HEARTBEAT_S": "0.2"}, home=tmp_path / "h")
    store = open_store(settings, cached=False)
    assert store.get_run(run_id).status == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    time.sleep(1.0)  # > 3 heartbeats
    got = store.get_run(run_id)
    assert got.status == "killed" and got.end_ms is not None and got.metrics["x"].last == 1.0
    store.close()


@pytest.mark.no_mutation  # mloop runs in a child process, which never sees a mutant
def test_interpreter_exit_flushes_and_finishes(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import mloop
        mloop.init(project="exit", system_metrics=False)
        for i in range(20_000):
            mloop.log({"x": float(i)})
        print(mloop.active_run().id)
        """
    )
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "h")}
    out = subprocess.run(
        [PY, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    run_id = out.stdout.strip()
    store = SqlStore(f"sqlite:///{tmp_path / 'h' / 'mloop.db'}")
    got = store.get_run(run_id)
    assert got.status == "finished" and got.metrics["x"].count == 20_000
    store.close()


@pytest.mark.no_mutation  # mloop runs in a child process, which never sees a mutant
def test_uncaught_exception_at_exit_marks_run_failed(tmp_path: Path) -> None:
    script = "import mloop\nmloop.init(project='exit', system_metrics=False)\nmloop.log({'x': 1.0})\nprint(mloop.active_run().id, flush=True)\nraise SystemExit(1) if False else ValueError('boom')\n"
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "h")}
    out = subprocess.run([PY, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "boom" in out.stderr
    store = SqlStore(f"sqlite:///{tmp_path / 'h' / 'mloop.db'}")
    assert store.get_run(out.stdout.strip()).status == "failed"
    store.close()


def test_unreachable_store_at_start_spools_from_the_first_write(tmp_path: Path, capsys) -> None:
    from _postgres import free_port

    uri = f"postgresql+psycopg://u:pw@127.0.0.1:{free_port()}/db"
    settings = Settings.from_env({}, home=tmp_path / "h", store_uri=uri, flush_interval_s=0.05)
    with mloop.start_run(
        project="later", config={"lr": 0.1}, settings=settings, system_metrics=False
    ) as run:
        for i in range(50):
            run.log({"x": float(i)})
    err = capsys.readouterr().err
    assert "cannot use store" in err and "mloop sync" in err and "pw" not in err
    # The spool is store-agnostic: replay it into any reachable store.
    target = SqlStore(f"sqlite:///{tmp_path / 'target.db'}")
    result = replay_spool(target, settings.spool_dir)
    assert result.failed == 0
    got = target.get_run(run.id)
    assert got.status == "finished" and got.params == {"lr": "0.1"} and got.metrics["x"].count == 50
    target.close()


class BrokenStore(SqlStore):
    """Writes fail with an unexpected (non-mloop) error while ``broken`` is set."""

    broken = False

    def _do_log_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.broken:
            raise RuntimeError("driver exploded")
        return super()._do_log_batch(*args, **kwargs)


def test_unexpected_store_error_spools_the_batch_instead_of_losing_it(
    settings: Settings, caplog
) -> None:
    store = BrokenStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    store.broken = True
    for i in range(10):
        run.log({"m": float(i)})
    run.flush()
    assert "driver exploded" in caplog.text
    store.broken = False
    run.finish()  # the next successful write replays the spool first
    assert store.get_metric_history(run.id, "m").value.tolist() == [float(i) for i in range(10)]


def _block_spool(settings: Settings) -> None:
    settings.spool_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.spool_dir.write_text("a file where the spool folder should be")


def test_writes_neither_store_nor_spool_can_take_are_held_and_written_later(
    settings: Settings, capsys
) -> None:
    store = FlakyStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    run.log({"m": 0.0})
    run.flush()
    store.down = True
    _block_spool(settings)
    for i in range(1, 10):
        run.log({"m": float(i)})
    run.flush()  # nowhere to put them: held in memory, and the user is told
    assert "keeping its writes in memory" in capsys.readouterr().err
    settings.spool_dir.unlink()  # the folder is usable again
    run.flush()
    assert len(list(settings.spool_dir.glob("*.jsonl"))) == 1
    store.down = False
    run.finish()
    assert store.get_metric_history(run.id, "m").value.tolist() == [float(i) for i in range(10)]
    assert store.get_run(run.id).status == "finished"


def test_finish_raises_when_its_writes_could_be_kept_nowhere(settings: Settings) -> None:
    store = FlakyStore(settings.store_uri)
    run = mloop.start_run(project="p", settings=settings, store=store, system_metrics=False)
    run.log({"m": 0.0})
    run.flush()
    store.down = True
    _block_spool(settings)
    for i in range(5):
        run.log({"m": float(i)})
    with pytest.raises(StoreUnavailableError, match="5 metric points") as err:
        run.finish()
    assert "cannot write the spool" in err.value.message
