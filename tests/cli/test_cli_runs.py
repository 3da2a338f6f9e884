"""The `mloop` command line as a user sees it: CliRunner and a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.store._open import clear_store_cache


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "h"
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(h))
    yield h
    clear_store_cache()


@pytest.fixture
def runs(home: Path) -> list[str]:
    settings = Settings.from_env()
    ids = []
    for depth, acc in [(4, 0.81), (8, 0.93)]:
        with mloop.start_run(
            project="churn",
            name="shallow" if depth == 4 else "deep",
            config={"depth": depth, "seed": 1},
            settings=settings,
            system_metrics=False,
        ) as run:
            run.log({"acc": acc, "loss": 1 - acc})
        ids.append(run.id)
    return ids


runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(get_app(), list(args))


def test_projects_and_runs_list_json(runs: list[str]) -> None:
    res = invoke("projects", "list", "--json")
    assert res.exit_code == 0, res.output
    assert [p["name"] for p in json.loads(res.stdout)] == ["churn"]
    res = invoke("runs", "list", "churn", "--filter", "metrics.acc > 0.9", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["run_id"] for r in data["runs"]] == [runs[1]]
    assert data["runs"][0]["params"] == {"depth": "8", "seed": "1"}


def test_runs_list_table_orders(runs: list[str]) -> None:
    res = invoke("runs", "list", "churn", "--order-by", "metrics.acc ASC")
    assert res.exit_code == 0, res.output
    assert res.stdout.index("shallow") < res.stdout.index("deep")
    assert "0.93" in res.stdout and "finished" in res.stdout


def test_runs_show_and_prefix(runs: list[str]) -> None:
    res = invoke("runs", "show", runs[0][:10], "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["run_id"] == runs[0] and d["metrics"]["acc"]["last"] == 0.81
    res = invoke("runs", "show", runs[0])
    assert res.exit_code == 0 and "shallow" in res.stdout and "depth" in res.stdout


def test_runs_compare_shows_differing_params_and_best(runs: list[str]) -> None:
    res = invoke("runs", "compare", *runs, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["params"]["depth"] == ["4", "8"] and d["metrics"]["acc"] == [0.81, 0.93]
    res = invoke("runs", "compare", *runs)
    assert "params.depth" in res.stdout and "params.seed" not in res.stdout  # equal params hidden


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "list", "churn", "--filter", "metrics.acc >> 3"), "position 13"),
        (("runs", "list", "nope"), "project 'nope' does not exist"),
        (("runs", "show", "0" * 32), "does not exist"),
        (("runs", "show", "xyz"), "32 hex characters"),
        (("runs", "list", "churn", "--max-results", "0"), "max_results"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(runs: list[str], args, message) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    assert message in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_unreachable_store_is_one_line_as_a_subprocess(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLOOP_HOME": str(tmp_path),
        "MLOOP_STORE_URI": "postgresql+psycopg://u:pw@127.0.0.1:1/db",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "runs", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot use store") and "pw" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_corrupted_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mloop.db").write_bytes(b"garbage" * 1000)
    env = {**os.environ, "MLOOP_HOME": str(tmp_path)}
    env.pop("MLOOP_STORE_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "projects", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "not a valid mloop database" in proc.stderr


def test_db_upgrade_sync_and_gc(home: Path, tmp_path: Path) -> None:
    res = invoke("db", "upgrade")
    from mloop.store._sql._engine import HEAD_REVISION

    assert res.exit_code == 0 and f"revision {HEAD_REVISION}" in res.stdout
    settings = Settings.from_env()
    f = tmp_path / "blob.bin"
    f.write_bytes(b"x" * 1000)
    with mloop.start_run(project="gc", settings=settings, system_metrics=False) as run:
        run.log_artifact(f)
    from mloop.artifacts import BlobStore

    orphan, _ = BlobStore(settings.artifact_uri).put_bytes(b"nobody points at me")
    res = invoke("gc", "--json", "--min-age-s", "0")
    d = json.loads(res.stdout)
    assert [b["sha256"] for b in d["unreferenced"]] == [orphan] and d["deleted"] == []
    res = invoke("gc", "--delete", "--min-age-s", "0")
    assert res.exit_code == 0 and "deleted" in res.stdout
    assert not BlobStore(settings.artifact_uri).exists(orphan)
    assert (
        mloop.Client(settings=settings)
        .download_artifacts(run.id, "blob.bin", dest=tmp_path / "d")
        .read_bytes()
        == b"x" * 1000
    )
    res = invoke("sync", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["failed"] == 0
