"""Spool replay, record by record: every op, exact counts, the line format, the writer's files."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
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
    assert (result.files, result.pending_files, result.failed, result.applied) == (0, 2, 0, 0)
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


def _batch(run_id: str, batch_id: str, **kw: Any) -> dict[str, Any]:
    metrics = encode_metrics({"m": MetricSeries([0], [5], [1.5])})
    return {"op": "log_batch", "run_id": run_id, "batch_id": batch_id, "metrics": metrics, **kw}


def test_status_and_end_time_are_replayed(tmp_path: Path, store: Any) -> None:
    run = store.create_run(store.get_or_create_project("p").id)
    other = store.create_run(store.get_or_create_project("p").id)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text(
        encode_record(_batch(run.id, "b1", status="failed", end_ms=1234))
        + encode_record({"op": "update_run", "run_id": other.id, "status": "killed", "end_ms": 99})
    )
    result = replay_spool(store, spool)
    assert (result.applied, result.failed) == (2, 0)
    got, got2 = store.get_run(run.id), store.get_run(other.id)
    assert (got.status, got.end_ms, got.metrics["m"].last) == ("failed", 1234, 1.5)
    assert (got2.status, got2.end_ms) == ("killed", 99)


def test_a_conflicting_param_keeps_exactly_the_params(tmp_path: Path, store: Any) -> None:
    run = store.create_run(store.get_or_create_project("p").id, params={"lr": "0.1"})
    spool = tmp_path / "spool"
    spool.mkdir()
    rec = _batch(run.id, "b7", params={"lr": "0.2"}, tags={"t": "v"}, status="finished", end_ms=7)
    (spool / "a.jsonl").write_text(encode_record(rec))
    result = replay_spool(store, spool)
    assert (result.applied, result.duplicates, result.failed) == (1, 0, 1)
    got = store.get_run(run.id)
    assert (got.status, got.end_ms, got.tags["t"], got.metrics["m"].last) == (
        "finished",
        7,
        "v",
        1.5,
    )
    (kept,) = [json.loads(x) for x in (quarantine_dir(spool) / "a.jsonl").read_text().splitlines()]
    assert kept["source"] == "a.jsonl" and kept["line"] == 1 and "write-once" in kept["error"]
    assert kept["record"] == {
        "op": "log_batch",
        "run_id": run.id,
        "batch_id": "b7-params",
        "params": {"lr": "0.2"},
    }
    # Retrying: the params still conflict; they stay, exactly as they were.
    retried = retry_quarantined(store, spool)
    assert (retried.files, retried.applied, retried.failed) == (1, 0, 1)
    (again,) = [json.loads(x) for x in (quarantine_dir(spool) / "a.jsonl").read_text().splitlines()]
    assert again == kept


def test_a_malformed_record_is_kept_with_its_place_and_reason(tmp_path: Path, store: Any) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text(encode_record({"op": "log_batch", "batch_id": "x"}))
    result = replay_spool(store, spool)
    assert result.failed == 1
    assert result.errors == ["a.jsonl:1: malformed 'log_batch' record: KeyError('run_id')"]
    (kept,) = [json.loads(x) for x in (quarantine_dir(spool) / "a.jsonl").read_text().splitlines()]
    assert kept == {
        "source": "a.jsonl",
        "line": 1,
        "error": "malformed 'log_batch' record: KeyError('run_id')",
        "record": {"op": "log_batch", "batch_id": "x"},
    }


def test_torn_records_are_counted_per_file(tmp_path: Path, store: Any) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    for name in ("a", "b"):
        (spool / f"{name}.jsonl").write_text('{"op": "update_run", "ru')
    result = replay_spool(store, spool)
    assert (result.files, result.failed, result.torn) == (2, 2, 2)
    assert result.quarantined == [str(quarantine_dir(spool) / f"{n}.jsonl") for n in "ab"]


class _FailsOn:
    """A real store that raises ``exc`` for the run ``run_id`` (and works otherwise)."""

    def __init__(self, store: Any, run_id: str, exc: Exception) -> None:
        self.store, self.run_id, self.exc = store, run_id, exc

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name not in ("log_batch", "set_run_status"):
            return attr

        def call(run_id: str, *a: Any, **k: Any) -> Any:
            if run_id == self.run_id:
                raise self.exc
            return attr(run_id, *a, **k)

        return call


def test_an_outage_in_the_middle_of_a_file_quarantines_nothing_of_it(
    tmp_path: Path, store: Any
) -> None:
    a = store.create_run(store.get_or_create_project("p").id)
    b = store.create_run(store.get_or_create_project("p").id)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text(
        encode_record(_batch(a.id, "b1")) + "damaged\n" + encode_record(_batch(b.id, "b2"))
    )
    down = _FailsOn(store, b.id, StoreUnavailableError("gone"))
    result = replay_spool(down, spool)  # type: ignore[arg-type]
    assert (result.files, result.applied, result.failed, result.torn) == (0, 1, 0, 0)
    assert result.errors == ["a.jsonl: kept for later: gone"] and result.pending_files == 1
    assert count_quarantined(spool) == 0 and (spool / "a.jsonl").exists()
    later = replay_spool(store, spool)  # the first batch again: a duplicate, not applied twice
    assert (later.applied, later.duplicates, later.failed) == (1, 1, 1)


def test_an_unexpected_error_is_quarantined_by_sync_but_kept_by_the_live_writer(
    tmp_path: Path, store: Any
) -> None:
    a = store.create_run(store.get_or_create_project("p").id)
    b = store.create_run(store.get_or_create_project("p").id)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text(
        encode_record(_batch(a.id, "b1")) + encode_record(_batch(b.id, "b2"))
    )
    odd = _FailsOn(store, a.id, RuntimeError("driver bug"))
    result = replay_spool(odd, spool)  # type: ignore[arg-type]
    assert (result.applied, result.failed) == (1, 1)
    assert result.errors == ["a.jsonl:1: RuntimeError: driver bug"]
    w = SpoolWriter(tmp_path / "live")
    w.append(_batch(a.id, "b3"))
    with pytest.raises(RuntimeError, match="driver bug"):
        w.replay(odd)  # type: ignore[arg-type]
    assert w.pending and count_quarantined(tmp_path / "live") == 0
    w.close()


def test_retry_counts_applied_duplicates_and_what_stays(tmp_path: Path, store: Any) -> None:
    run = store.create_run(store.get_or_create_project("p").id)
    spool = tmp_path / "spool"
    store.log_batch(
        run.id, metrics=decode_metrics(_batch(run.id, "dup")["metrics"]), batch_id="dup"
    )
    from mloop.tracking._quarantine import QuarantineEntry, quarantine

    quarantine(
        spool,
        "one.jsonl",
        [
            QuarantineEntry("s1", 1, "was refused", record=_batch(run.id, "new")),
            QuarantineEntry("s1", 2, "was refused", record=_batch(run.id, "dup")),
            QuarantineEntry("s1", 3, "unreadable", raw="garbage"),
        ],
    )
    quarantine(spool, "two.jsonl", [QuarantineEntry("s2", 9, "x", record={"op": "nope"})])
    odd = _FailsOn(store, "0" * 32, RuntimeError("never"))
    result = retry_quarantined(odd, spool)  # type: ignore[arg-type]
    assert (result.files, result.applied, result.duplicates, result.failed) == (2, 1, 1, 2)
    assert result.errors[0] == "s1:3: unreadable" and result.errors[1].startswith("s2:9: unknown")
    assert count_quarantined(spool) == 2
    bad = _FailsOn(store, run.id, ValueError("odd"))
    quarantine(spool, "three.jsonl", [QuarantineEntry("s3", 4, "x", record=_batch(run.id, "z"))])
    again = retry_quarantined(bad, spool)  # type: ignore[arg-type]
    (kept,) = [
        json.loads(x) for x in (quarantine_dir(spool) / "three.jsonl").read_text().splitlines()
    ]
    assert kept == {
        "source": "s3",
        "line": 4,
        "error": "ValueError('odd')",
        "record": _batch(run.id, "z"),
    }
    assert again.failed == 3 and again.pending_files == 0
    down = _FailsOn(store, run.id, StoreUnavailableError("gone"))
    stopped = retry_quarantined(down, spool)  # type: ignore[arg-type]
    assert stopped.pending_files == 1 and "three.jsonl: kept for later: gone" in stopped.errors
    assert count_quarantined(spool) == 3


def test_the_writer_replays_its_late_file_too_and_adds_up_the_counts(
    tmp_path: Path, store: Any
) -> None:
    run = store.create_run(store.get_or_create_project("p").id)
    w = SpoolWriter(tmp_path)
    assert w.path is None and w.paths == []
    with w._lock:  # busy before the first record: the late file has no main file to follow
        late = w.append(_batch(run.id, "b1"), wait_s=0)
    assert re.fullmatch(r"[0-9a-f]{8}\.late-[0-9a-f]{6}\.jsonl", late.name)
    main = w.append(_batch(run.id, "b2"))
    assert re.fullmatch(
        rf"{re.escape(socket.gethostname())}-{os.getpid()}-[0-9a-f]{{8}}\.jsonl", main.name
    )
    with w._lock:
        w.append(_batch(run.id, "b1"), wait_s=0)  # the same batch again: a duplicate
    w.append({"op": "teleport"})
    result = w.replay(store)
    assert (result.applied, result.duplicates, result.failed) == (2, 1, 1)
    assert result.errors == [
        f"{main.name}:2: unknown spool record op 'teleport' (known: create_run, log_batch, update_run, add_artifacts, add_media, log_input, register_version); was it written by a newer mloop? Upgrade mloop, then run `mloop sync --retry-quarantined`."
    ]
    assert len(result.quarantined) == 1
    assert not w.pending and w.path is None and w.paths == [] and not late.exists()
    assert w.replay(store).applied == 0  # nothing is left, the late file included
