"""Several ``log_model`` calls in one run: each version keeps its own, unchanging package.

Runs on every backend (the ``store_uri`` fixture: SQLite, PostgreSQL, and the HTTP store when it
runs), through the SDK a user calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import mloop
from mloop.config import Settings
from mloop.errors import ConflictError
from mloop.registry import Registry
from mloop.store._open import clear_store_cache


class Constant:
    """A python_function model (a second flavor in the same run)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.full(len(data), self.value, dtype=np.int64)


@pytest.fixture
def settings(tmp_path: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOOP_STORE_URI", store_uri)
    yield Settings.from_env(flush_interval_s=0.05)
    clear_store_cache()


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_two_log_model_calls_in_one_run_keep_both_versions_loadable(
    settings: Settings, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    trees = [DecisionTreeClassifier(max_depth=d, random_state=0).fit(X, y) for d in (1, 3, 5)]
    with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
        versions = [
            mloop.log_model(tree, name="iris", run=run, input_example=X[:5]) for tree in trees
        ]
        # A second flavor in the same run, under the same default path scheme.
        pyfunc = mloop.log_model(Constant(7), name="const", run=run, input_example=X[:5])
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.artifact_uri for v in versions] == [
        f"runs:/{run.id}/model",
        f"runs:/{run.id}/model-2",
        f"runs:/{run.id}/model-3",
    ]
    assert pyfunc.artifact_uri == f"runs:/{run.id}/model-4" and pyfunc.flavor == "python_function"
    for v, tree in zip(versions, trees, strict=True):
        got = mloop.load_model(f"models:/iris/{v.version}").predict(X)
        assert np.array_equal(got, tree.predict(X)), v.version
    assert np.array_equal(mloop.load_model("models:/const/1").predict(X), np.full(len(X), 7))
    # Loaded by their run paths too.
    assert np.array_equal(mloop.load_model(f"runs:/{run.id}/model").predict(X), trees[0].predict(X))


def test_no_artifact_write_can_change_a_registered_package(
    settings: Settings, iris: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = iris
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    folder = tmp_path / "tree" / "model"
    folder.mkdir(parents=True)
    (folder / "model.skops").write_bytes(b"not a model")
    with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
        v1 = mloop.log_model(tree, name="iris", run=run, input_example=X[:5])
        attempts = {
            "log_text": lambda: run.log_text("x", "model/model.skops"),
            "log_dict": lambda: run.log_dict({"a": 1}, "model/extra.json"),
            "log_artifact file": lambda: run.log_artifact(
                folder / "model.skops", artifact_path="model"
            ),
            "log_artifact dir": lambda: run.log_artifact(tmp_path / "tree"),  # its contents
            "log_model at the taken path": lambda: mloop.log_model(
                tree, name="iris", run=run, artifact_path="model"
            ),
        }
        for what, write in attempts.items():
            with pytest.raises(ConflictError, match=r"model") as err:
                write()
            assert "models:/iris/1" in str(err.value) or "already holds" in str(err.value), what
        # Plain artifacts no version references can still be overwritten.
        run.log_text("first", "notes/readme.txt")
        run.log_text("second", "notes/readme.txt")
        # A dataset logged after registration does not change the version's lineage snapshot.
        run.log_dataset(X.head(10), name="later")
    assert run.download_artifacts("notes/readme.txt").read_text() == "second"
    reg = Registry(settings=settings)
    assert reg.get_version("iris", 1).datasets == v1.datasets
    assert np.array_equal(mloop.load_model("models:/iris/1").predict(X), tree.predict(X))
    assert len(reg.search_versions("name = 'iris'").items) == 1


def test_an_explicit_artifact_path_that_is_taken_is_refused_before_upload(
    settings: Settings, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
        run.log_text("plain", "checkpoint/notes.txt")
        with pytest.raises(ConflictError) as err:
            mloop.log_model(tree, name="iris", run=run, artifact_path="checkpoint")
        msg = str(err.value)
        assert "'checkpoint'" in msg and run.id in msg and "artifact_path" in msg
        mv = mloop.log_model(tree, name="iris", run=run, artifact_path="best")
    assert mv.artifact_uri == f"runs:/{run.id}/best"
    assert [
        e.path for e in mloop.Client(settings=settings).list_artifacts(run.id, "checkpoint")
    ] == ["checkpoint/notes.txt"]
