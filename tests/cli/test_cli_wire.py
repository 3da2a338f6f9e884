"""Every `--json` output writes non-finite numbers the codec's way: "NaN", "Infinity", "-Infinity"
(strict JSON that any parser reads; never a bare NaN token, never null, never "inf")."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.store._open import clear_store_cache

runner = CliRunner()


def _json(*args: str) -> Any:
    res = runner.invoke(get_app(), list(args))
    assert res.exit_code in (0, 1), res.output  # drift exits 1 on drift
    return json.loads(res.stdout, parse_constant=_no_bare_tokens)


def _no_bare_tokens(token: str) -> Any:
    raise AssertionError(f"bare {token} in --json output")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "h"))
    yield Settings.from_env()
    clear_store_cache()


@pytest.fixture
def run_id(home: Settings) -> str:
    """A run whose metric `m` went -inf, +inf, then NaN; `acc` is finite."""
    with mloop.start_run(project="p", settings=home, system_metrics=False) as run:
        for step, v in enumerate([-math.inf, math.inf, math.nan]):
            run.log({"m": v, "acc": 0.5}, step=step)
    return run.id


def test_runs_list_json(run_id: str) -> None:
    (run,) = _json("runs", "list", "p", "--json")["runs"]
    assert run["metrics"] == {"m": "NaN", "acc": 0.5}


def test_runs_show_json(run_id: str) -> None:
    m = _json("runs", "show", run_id, "--json")["metrics"]["m"]
    assert (m["last"], m["min"], m["max"], m["count"]) == ("NaN", "-Infinity", "Infinity", 3)


def test_runs_compare_json(run_id: str, home: Settings) -> None:
    with mloop.start_run(project="p", settings=home, system_metrics=False) as other:
        other.log({"m": math.inf})
    d = _json("runs", "compare", run_id, other.id, "--json")
    assert d["metrics"]["m"] == ["NaN", "Infinity"]


@pytest.fixture
def model(home: Settings) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    for loss in (math.inf, math.nan):
        with mloop.start_run(project="p", settings=home, system_metrics=False) as run:
            run.log({"loss": loss, "gain": -math.inf})
            mloop.log_model(DecisionTreeClassifier().fit(X, y), "clf", run=run, input_example=X[:2])


def test_models_versions_json(model: None) -> None:
    versions = _json("models", "versions", "clf", "--json")
    assert sorted(json.dumps(v["metrics"], sort_keys=True) for v in versions) == [
        '{"gain": "-Infinity", "loss": "Infinity"}',
        '{"gain": "-Infinity", "loss": "NaN"}',
    ]


def test_models_show_json(model: None) -> None:
    shown = _json("models", "show", "clf", "--json")
    assert {v["metrics"]["loss"] for v in shown["versions"]} == {"Infinity", "NaN"}


def test_models_diff_json(model: None) -> None:
    d = _json("models", "diff", "clf", "1", "2", "--json")
    # NaN reads as "no value" in a diff; +inf vs none differs, with no delta
    assert d["metrics"] == {"loss": ["Infinity", None, None]}


def test_drift_json(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"x": rng.normal(size=500)}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": rng.normal(2, 1, size=500)}), tmp_path / "cur.parquet")
    d = _json("drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json")
    edges = d["columns"]["x"]["histogram"]["edges"]
    assert (edges[0], edges[-1]) == ("-Infinity", "Infinity")
