"""``log_model`` with the store out of reach: the package and its registration are spooled, and
``mloop sync`` registers the version exactly once, in order after the run and its artifacts.

The spool is replayed into every backend (the ``store_uri`` fixture: SQLite, PostgreSQL, and the
HTTP store when it runs).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.errors import ConflictError
from mloop.registry import ModelVersion, PendingModelVersion, Registry
from mloop.store import create_store
from mloop.store._open import clear_store_cache
from mloop.tracking import replay_spool


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
    clear_store_cache()


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _offline(tmp_path: Path) -> Settings:
    return Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h", flush_interval_s=0.05)


def test_offline_log_model_is_registered_by_sync_exactly_once(
    tmp_path: Path, store_uri: str, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    trees = [DecisionTreeClassifier(max_depth=d, random_state=0).fit(X, y) for d in (1, 3)]
    offline = _offline(tmp_path)
    with mloop.start_run(
        project="iris", config={"depth": 1}, settings=offline, system_metrics=False
    ) as run:
        run.log({"acc": 0.5})
        run.log_dataset(X, name="train")
        pending = [
            mloop.log_model(t, "iris", run=run, input_example=X[:5], tags={"k": "v"}) for t in trees
        ]
        run.log({"acc": 0.9})  # after log_model: not in the versions' snapshots
    assert not (tmp_path / "h" / "mloop.db").exists()  # offline touched no store
    assert all(isinstance(p, PendingModelVersion) and p.pending for p in pending)
    assert [p.artifact_uri for p in pending] == [
        f"runs:/{run.id}/model",
        f"runs:/{run.id}/model-2",
    ]
    assert pending[0].name == "iris" and pending[0].flavor == "sklearn"
    assert pending[0].source_run_id == run.id and "mloop sync" in repr(pending[0])
    assert pending[0].registration_id != pending[1].registration_id

    # Keep a copy of the spool to replay it a second time after a successful sync.
    copy = tmp_path / "spool-copy"
    shutil.copytree(offline.spool_dir, copy)
    store = create_store(store_uri)
    try:
        result = replay_spool(store, offline.spool_dir)
        assert result.failed == 0, result.errors
        again = replay_spool(store, copy)
        assert again.failed == 0, again.errors
        versions = store.search_model_versions("name = 'iris'").items
        assert sorted(v.version for v in versions) == [1, 2]  # replayed twice, registered once
        online = Settings.from_env(
            {}, home=tmp_path / "h", store_uri=store_uri, flush_interval_s=0.05
        )
        reg = Registry(settings=online, store=store)
        for p, tree in zip(pending, trees, strict=True):
            mv = next(v for v in versions if v.artifact_uri == p.artifact_uri)
            assert mv.source_run_id == run.id and mv.tags["k"] == "v"
            assert mv.tags["mloop.registration_id"] == p.registration_id
            assert mv.metrics == {"acc": 0.5} and mv.params == {"depth": "1"}
            assert mv.datasets and mv.datasets[0]["name"] == "train"
            model = reg.load(f"models:/iris/{mv.version}")
            assert np.array_equal(model.predict(X), tree.predict(X))
    finally:
        store.close()


def test_sync_cli_registers_an_offline_version(
    tmp_path: Path,
    store_uri: str,
    iris: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = iris
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    with mloop.start_run(project="iris", settings=_offline(tmp_path), system_metrics=False) as run:
        pending = mloop.log_model(tree, "iris", run=run, input_example=X[:5])
    assert isinstance(pending, PendingModelVersion)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("MLOOP_STORE_URI", store_uri)
    res = CliRunner().invoke(get_app(), ["sync"])
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output
    loaded = mloop.load_model("models:/iris/latest")
    assert np.array_equal(loaded.predict(X), tree.predict(X))
    res = CliRunner().invoke(get_app(), ["sync"])  # nothing left: still one version
    assert res.exit_code == 0, res.output
    assert mloop.Registry().get_version("iris", "latest").version == 1


def test_online_log_model_still_returns_a_registered_version(
    tmp_path: Path, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    online = Settings.from_env({}, home=tmp_path / "h", flush_interval_s=0.05)
    with mloop.start_run(project="iris", settings=online, system_metrics=False) as run:
        mv = mloop.log_model(DecisionTreeClassifier().fit(X, y), "iris", run=run)
    assert isinstance(mv, ModelVersion) and not mv.pending and mv.version == 1
    assert "mloop.registration_id" not in mv.tags


def test_offline_log_model_skips_a_folder_taken_by_plain_artifacts(
    tmp_path: Path, store_uri: str, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    """Offline, the run's own record of what it logged says `model` is taken (no store to ask)."""
    X, y = iris
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    offline = _offline(tmp_path)
    with mloop.start_run(project="iris", settings=offline, system_metrics=False) as run:
        run.log_text("my notes", "model/notes.txt")
        pending = mloop.log_model(tree, "iris", run=run)
    assert pending.artifact_uri == f"runs:/{run.id}/model-2"
    store = create_store(store_uri)
    try:
        assert replay_spool(store, offline.spool_dir).failed == 0
        online = Settings.from_env({}, home=tmp_path / "h", store_uri=store_uri)
        model = Registry(settings=online, store=store).load("models:/iris/1")
        assert np.array_equal(model.predict(X), tree.predict(X))
    finally:
        store.close()


def test_offline_writes_into_a_pending_versions_folder_are_refused_at_call_time(
    tmp_path: Path, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    offline = _offline(tmp_path)
    note = tmp_path / "note.txt"
    note.write_text("x")
    with mloop.start_run(project="iris", settings=offline, system_metrics=False) as run:
        mloop.log_model(DecisionTreeClassifier().fit(X, y), "iris", run=run, input_example=X[:5])
        with pytest.raises(ConflictError, match="waiting to be registered"):
            run.log_text("changed", "model/MLOOP_MODEL.json")
        with pytest.raises(ConflictError, match="waiting to be registered"):
            run.log_artifact(note, artifact_path="model/extra")
        run.log_artifact(note, artifact_path="notes")  # elsewhere is fine
