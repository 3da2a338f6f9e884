"""`mloop sync` applies every spooled record or keeps it in the quarantine, and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.store import open_store
from mloop.store._open import clear_store_cache
from mloop.tracking import count_quarantined, quarantine_dir, replay_spool


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_uri: str) -> Path:
    """An offline MLOOP_HOME whose later sync goes to ``store_uri`` (SQLite or PostgreSQL)."""
    h = tmp_path / "h"
    for name in ("MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(h))
    monkeypatch.setenv("MLOOP_STORE_URI", store_uri)
    yield h
    clear_store_cache()


def _offline_run(home: Path, batches: int = 3, per_batch: int = 1000) -> tuple[str, Path]:
    """Log ``batches`` spooled batches offline; return the run id and its spool file."""
    offline = Settings.from_env({"MLOOP_MODE": "offline"}, home=home, flush_interval_s=3600)
    with mloop.start_run(project="off", settings=offline, system_metrics=False) as run:
        for b in range(batches):
            for i in range(per_batch):
                run.log({"m": float(b * per_batch + i)})
            run.flush()
    (spool,) = offline.spool_dir.glob("*.jsonl")
    return run.id, spool


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _sync(*args: str) -> Any:
    return CliRunner().invoke(get_app(), ["sync", *args])


def _batch_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if '"op":"log_batch"' in line]


def test_a_damaged_record_is_quarantined_and_sync_fails_naming_it(home: Path) -> None:
    run_id, spool = _offline_run(home)
    lines = _lines(spool)
    third = _batch_lines(lines)[2]
    lines[third] = lines[third][:40] + "#garbage#" + lines[third][60:]
    spool.write_text("".join(lines))
    res = _sync()
    assert res.exit_code == 1, res.output
    assert "1 failed" in res.output and f"{spool.name}:{third + 1}" in res.output
    assert "retry-quarantined" in res.output
    assert not spool.exists()  # every record was applied or kept
    (kept,) = quarantine_dir(spool.parent).glob("*.jsonl")
    entry = json.loads(kept.read_text())
    assert entry["line"] == third + 1 and "#garbage#" in entry["raw"]
    store = open_store(Settings.from_env())
    run = store.get_run(run_id)
    assert run.status == "finished" and run.metrics["m"].count == 2000  # 1st, 2nd batch and status
    # A second sync has nothing new to do and does not fail again; it still points at the quarantine.
    again = _sync()
    assert again.exit_code == 0 and "1 record(s) are kept in the quarantine" in again.output


def test_a_record_with_valid_json_but_wrong_values_is_caught_by_its_checksum(home: Path) -> None:
    run_id, spool = _offline_run(home, batches=2)
    lines = _lines(spool)
    first = _batch_lines(lines)[0]
    rec = json.loads(lines[first])
    rec["metrics"]["m"][3] = rec["metrics"]["m"][3].replace("A", "B", 1)  # still valid base64
    lines[first] = (
        lines[first].split(',"metrics"')[0]
        + ","
        + json.dumps({"metrics": rec["metrics"]}, separators=(",", ":"))[1:-1]
        + lines[first][lines[first].index(',"params"') :]
    )
    spool.write_text("".join(lines))
    res = replay_spool(open_store(Settings.from_env()), spool.parent)
    assert res.failed == 1 and "checksum" in res.errors[0]
    store = open_store(Settings.from_env())
    assert store.get_metric_history(run_id, "m").value.tolist() == [
        float(i) for i in range(1000, 2000)
    ]


def test_an_unknown_op_does_not_block_the_records_after_it(home: Path) -> None:
    run_id, spool = _offline_run(home)
    lines = _lines(spool)
    second = _batch_lines(lines)[1]
    from mloop.tracking._spool import encode_record

    lines.insert(second, encode_record({"op": "teleport", "run_id": run_id}))
    spool.write_text("".join(lines))
    res = _sync()
    assert res.exit_code == 1 and "unknown spool record op 'teleport'" in res.output
    store = open_store(Settings.from_env())
    run = store.get_run(run_id)
    assert run.metrics["m"].count == 3000 and run.status == "finished"
    assert count_quarantined(spool.parent) == 1


def test_a_torn_last_line_is_recognised_as_such(home: Path) -> None:
    _, spool = _offline_run(home, batches=2)
    lines = _lines(spool)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]  # the process died mid-write: no newline
    spool.write_text("".join(lines))
    res = _sync("--json")
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["failed"] == 1 and out["torn"] == 1 and "torn last record" in out["errors"][0]
    assert out["quarantined_total"] == 1


def test_retry_quarantined_applies_what_can_be_applied_now(home: Path, store_uri: str) -> None:
    """A record refused for a cause that is later fixed (its run did not exist yet)."""
    from mloop.ids import new_id
    from mloop.store import MetricSeries
    from mloop.tracking._spool import encode_metrics, encode_record

    rid = new_id()
    spool_dir = home / "spool"
    spool_dir.mkdir(parents=True)
    metrics = encode_metrics({"m": MetricSeries([0, 1], [5, 6], [1.0, 2.0])})
    (spool_dir / "x-1-aa.jsonl").write_text(
        encode_record({"op": "log_batch", "run_id": rid, "batch_id": "b1", "metrics": metrics})
    )
    first = _sync()
    assert first.exit_code == 1 and "does not exist" in first.output
    store = open_store(Settings.from_env())
    store.create_run(store.get_or_create_project("late").id, run_id=rid)
    res = _sync("--retry-quarantined")
    assert res.exit_code == 0, res.output
    assert "1 records applied" in res.output
    assert store.get_metric_history(rid, "m").value.tolist() == [1.0, 2.0]
    assert count_quarantined(spool_dir) == 0
    # Idempotent: nothing is applied twice.
    assert _sync("--retry-quarantined").exit_code == 0
    assert len(store.get_metric_history(rid, "m")) == 2


@pytest.mark.no_mutation  # mloop runs in a child process, which never sees a mutant
def test_store_unreachable_keeps_the_spool_and_quarantines_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    monkeypatch.delenv("MLOOP_MODE", raising=False)
    _, spool = _offline_run(home, batches=1)
    env = {**os.environ, "MLOOP_STORE_URI": "postgresql+psycopg://u@127.0.0.1:1/none"}
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "sync"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert spool.exists() and count_quarantined(spool.parent) == 0
    monkeypatch.delenv("MLOOP_STORE_URI", raising=False)
    clear_store_cache()
    assert _sync().exit_code == 0 and not spool.exists()


def test_a_conflicting_param_is_kept_and_the_rest_of_its_batch_written(home: Path) -> None:
    from mloop.store import MetricSeries
    from mloop.tracking._spool import encode_metrics, encode_record

    store = open_store(Settings.from_env())
    run = store.create_run(store.get_or_create_project("p").id, params={"lr": "0.1"})
    spool_dir = home / "spool"
    spool_dir.mkdir(parents=True)
    metrics = encode_metrics({"m": MetricSeries([0], [5], [1.5])})
    rec = {"op": "log_batch", "run_id": run.id, "batch_id": "b1", "metrics": metrics}
    (spool_dir / "x-1-bb.jsonl").write_text(
        encode_record({**rec, "params": {"lr": "0.2"}, "tags": {"t": "v"}})
    )
    res = _sync()
    assert res.exit_code == 1 and "write-once" in res.output
    got = store.get_run(run.id)
    assert got.params == {"lr": "0.1"} and got.tags["t"] == "v" and got.metrics["m"].last == 1.5
    (kept,) = quarantine_dir(spool_dir).glob("*.jsonl")
    assert json.loads(kept.read_text())["record"]["params"] == {"lr": "0.2"}
