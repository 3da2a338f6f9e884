"""Spool replay, record by record: every op, exact counts, the line format, the writer's files."""

from __future__ import annotations

import fcntl
import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import StoreUnavailableError
from mloop.store import MetricSeries, SqlStore
from mloop.tracking import count_quarantined, quarantine_dir, replay_spool, retry_quarantined
from mloop.tracking._spool import (
    SpoolWriter,
    decode_metrics,
    decode_record,
    encode_metrics,
    encode_record,
)


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    return Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=3600)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def _ops(spool_dir: Path) -> list[str]:
    return [
        json.loads(line)["op"]
        for f in sorted(spool_dir.glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_every_op_replays_with_exact_counts_and_again_as_duplicates(
    offline: Settings, store: Any, tmp_path: Path
) -> None:
    art = tmp_path / "weights.bin"
    art.write_bytes(b"w" * 100)
    with mloop.start_run(
        project="off", config={"lr": 0.1}, tags={"t": "1"}, settings=offline, system_metrics=False
    ) as run:
        run.log({"m": 1.0})
        run.log({"m": 2.0})
        run.flush()
        run.log_artifact(art)
        run.log_text("hello", "notes/a.txt")
        ds = run.log_dataset({"x": np.arange(4.0)}, name="train", context="training")
        run.log({"m": 3.0})
    ops = _ops(offline.spool_dir)
    assert ops == [
        "create_run",
        "log_batch",
        "add_artifacts",
        "add_artifacts",
        "log_input",
        "log_batch",  # the last batch carries the status
    ]
    copy = tmp_path / "copy"
    shutil.copytree(offline.spool_dir, copy)
    first = replay_spool(store, offline.spool_dir)
    assert (first.files, first.applied, first.duplicates, first.failed) == (1, 6, 0, 0)
    assert first.errors == [] and first.quarantined == [] and first.pending_files == 0
    assert list(offline.spool_dir.glob("*.jsonl")) == []
    got = store.get_run(run.id)
    assert got.status == "finished" and got.params == {"lr": "0.1"} and got.tags["t"] == "1"
    assert store.get_metric_history(run.id, "m").value.tolist() == [1.0, 2.0, 3.0]
    assert {(a.path, a.size) for a in store.list_artifacts(run.id)} == {
        ("weights.bin", 100),
        ("notes/a.txt", 5),
    }
    assert [(i.dataset_sha256, i.name, i.context) for i in got.inputs] == [
        (ds.sha256, "train", "training")
    ]
    assert store.get_dataset(ds.sha256).num_rows == 4
    # The same records again: creation and batches are recognised; the rest is idempotent.
    again = replay_spool(store, copy)
    assert (again.applied, again.duplicates, again.failed) == (3, 3, 0)
    assert store.get_metric_history(run.id, "m").value.tolist() == [1.0, 2.0, 3.0]
    assert len(store.list_artifacts(run.id)) == 2 and len(store.get_run(run.id).inputs) == 1


def test_metrics_round_trip_bit_for_bit_through_the_spool_encoding() -> None:
    values = np.array([0.1, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308])
    series = MetricSeries(np.arange(7) * 2**40, np.arange(7) + 10**12, values)
    back = decode_metrics(json.loads(json.dumps(encode_metrics({"k": series}))))
    assert list(back) == ["k"]
    assert back["k"].steps.tolist() == series.steps.tolist()
    assert back["k"].timestamps.tolist() == series.timestamps.tolist()
    assert back["k"].values.tobytes() == values.astype("<f8").tobytes()
    assert encode_metrics({"k": series})["k"][0] == 7


def test_a_spool_line_is_json_with_a_checksum_that_pins_every_byte() -> None:
    rec = {"op": "update_run", "run_id": "r", "status": "finished", "end_ms": 5}
    line = encode_record(rec)
    assert line.endswith('"}\n') and line.count("\n") == 1
    body = json.loads(line)
    signed = line[: line.index(',"_crc"')] + "}"
    assert body.pop("_crc") == f"{zlib.crc32(signed.encode()):08x}"
    assert body == rec
    assert decode_record(line) == rec
    assert decode_record(line.rstrip("\n")) == rec  # a last line without its newline is whole
    for i in range(1, len(line) - 14):  # flip any byte of the record: it no longer decodes
        damaged = line[:i] + ("X" if line[i] != "X" else "Y") + line[i + 1 :]
        with pytest.raises(ValueError):
            decode_record(damaged)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"op": "update_run"', "unreadable record"),
        ("[1, 2]", "malformed record"),
        ('{"run_id": "r"}', "malformed record"),
        ('{"op": 5}', "malformed record"),
    ],
)
def test_lines_without_a_checksum_are_still_read_and_checked(line: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode_record(line)
    old = '{"op": "update_run", "run_id": "r", "status": "finished"}'  # before checksums
    assert decode_record(old) == {"op": "update_run", "run_id": "r", "status": "finished"}
    with pytest.raises(ValueError, match="checksum is unreadable"):
        decode_record('{"op": "update_run", "run_id": "r", "_crX": "0"}')


def test_spool_writer_counts_records_and_points_and_discards_after_replay(
    tmp_path: Path, store: Any
) -> None:
    w = SpoolWriter(tmp_path / "spool")
    assert not w.pending and w.paths == [] and w.total_records == 0
    project = store.get_or_create_project("p")
    run = store.create_run(project.id)
    metrics = encode_metrics({"m": MetricSeries([0, 1, 2], [1, 2, 3], [1.0, 2.0, 3.0])})
    path = w.append(
        {"op": "log_batch", "run_id": run.id, "batch_id": "b1", "metrics": metrics}, points=3
    )
    w.append({"op": "update_run", "run_id": run.id, "status": "finished"})
    assert w.pending and w.paths == [path] and path.parent == tmp_path / "spool"
    assert (w.records, w.points, w.total_records, w.total_points) == (2, 3, 2, 3)
    # The file is locked while the writer holds it: `mloop sync` in another process skips it.
    with open(path) as other, pytest.raises(OSError):
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert replay_spool(store, tmp_path / "spool").files == 0
    result = w.replay(store)
    assert (result.applied, result.duplicates, result.failed) == (2, 0, 0)
    assert not w.pending and not path.exists() and (w.records, w.points) == (0, 0)
    assert store.get_run(run.id).status == "finished"
    assert w.replay(store).applied == 0  # nothing left


def test_a_record_written_while_the_file_is_busy_goes_to_a_late_file_that_sorts_after(
    tmp_path: Path,
) -> None:
    w = SpoolWriter(tmp_path)
    main = w.append({"op": "update_run", "run_id": "r", "status": "running"})
    with w._lock:  # another thread (a replay) holds the file
        late = w.append({"op": "update_run", "run_id": "r", "status": "finished"}, wait_s=0.01)
    assert late != main and late.name.startswith(main.stem + ".late-")
    assert sorted([late.name, main.name]) == [main.name, late.name]
    assert w.paths == [main, late] and w.total_records == 2 and w.records == 1
    w.close()
    assert not w.pending


def test_replay_of_a_missing_folder_is_empty(tmp_path: Path, store: Any) -> None:
    result = replay_spool(store, tmp_path / "nope")
    assert (result.files, result.applied, result.duplicates, result.failed) == (0, 0, 0, 0)


class _Down:
    """A store that is unreachable for every call."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_a: Any, **_k: Any) -> Any:
            raise StoreUnavailableError("down")

        return fail


def test_an_unreachable_store_stops_at_the_first_file_and_keeps_all(
    offline: Settings, tmp_path: Path
) -> None:
    for _ in range(2):
        with mloop.start_run(project="p", settings=offline, system_metrics=False) as run:
            run.log({"m": 1.0})
    files = sorted(offline.spool_dir.glob("*.jsonl"))
    assert len(files) == 2
    result = replay_spool(_Down(), offline.spool_dir)  # type: ignore[arg-type]
    assert (result.files, result.pending_files, result.failed, result.applied) == (0, 1, 0, 0)
    assert result.errors == [f"{files[0].name}: kept for later: down"]
    assert sorted(offline.spool_dir.glob("*.jsonl")) == files
    assert count_quarantined(offline.spool_dir) == 0


def test_retry_keeps_unreadable_lines_and_what_still_fails(
    tmp_path: Path, store: Any, offline: Settings
) -> None:
    spool = offline.spool_dir
    spool.mkdir(parents=True)
    project = store.get_or_create_project("p")
    run = store.create_run(project.id)
    good = encode_record({"op": "update_run", "run_id": run.id, "status": "killed"})
    unknown = encode_record({"op": "teleport"})
    (spool / "a.jsonl").write_text("garbage\n" + unknown + good)
    first = replay_spool(store, spool)
    assert (first.applied, first.failed) == (1, 2)
    assert count_quarantined(spool) == 2
    retried = retry_quarantined(store, spool)
    assert (retried.files, retried.applied, retried.failed) == (1, 0, 2)
    kept = [json.loads(x) for x in (quarantine_dir(spool) / "a.jsonl").read_text().splitlines()]
    assert [k["line"] for k in kept] == [1, 2] and kept[0]["raw"] == "garbage\n"
    assert "unknown spool record op 'teleport'" in kept[1]["error"]
    down = retry_quarantined(_Down(), spool)  # type: ignore[arg-type]
    assert down.failed == 2 and count_quarantined(spool) == 2


def test_lines_are_ascii_and_a_stray_byte_on_disk_is_damage(tmp_path: Path, store: Any) -> None:
    rec = {"op": "create_run", "project": "pé ✓", "run": {"name": "naïve"}}
    line = encode_record(rec)
    assert line.isascii() and decode_record(line) == rec
    spool = tmp_path / "spool"
    spool.mkdir()
    raw = line.encode().replace(b"\\u00e9", b"\xff\xfe")  # bytes that are not UTF-8
    (spool / "x.jsonl").write_bytes(raw)
    result = replay_spool(store, spool)
    assert (result.applied, result.failed) == (0, 1) and "damaged" in result.errors[0]


def test_the_spool_folder_is_created_with_its_parents_and_an_unusable_one_is_named(
    tmp_path: Path,
) -> None:
    from mloop.tracking._spool import SpoolUnavailableError

    w = SpoolWriter(tmp_path / "a" / "b" / "spool")
    assert w.append({"op": "update_run", "run_id": "r", "status": "x"}).parent.is_dir()
    w.close()
    (tmp_path / "file").write_text("")
    bad = SpoolWriter(tmp_path / "file" / "spool")
    with pytest.raises(SpoolUnavailableError, match="cannot write the spool") as err:
        bad.append({"op": "update_run", "run_id": "r", "status": "x"})
    assert err.value.details == {"spool_dir": str(tmp_path / "file" / "spool")}
    assert not bad.pending and bad.records == 0


def test_append_waits_for_a_busy_file_unless_told_not_to(tmp_path: Path) -> None:
    import threading
    import time

    w = SpoolWriter(tmp_path)
    main = w.append({"op": "update_run", "run_id": "r", "status": "a"})
    w._lock.acquire()
    threading.Timer(1.5, w._lock.release).start()
    t0 = time.monotonic()
    late = w.append({"op": "update_run", "run_id": "r", "status": "b"}, wait_s=-5)
    assert time.monotonic() - t0 < 1.0 and late != main  # a negative wait is no wait
    assert w.append({"op": "update_run", "run_id": "r", "status": "c"}) == main  # waited
    assert time.monotonic() - t0 >= 1.4
    assert [json.loads(x)["status"] for x in main.read_text().splitlines()] == ["a", "c"]
    w.close()
