"""`mloop models ...` through CliRunner: listings, alias moves, history, lineage, diff, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.store._open import clear_store_cache

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(get_app(), list(args))


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "h"))
    settings = Settings.from_env()
    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 3):
        with mloop.start_run(
            project="iris", config={"depth": depth}, settings=settings, system_metrics=False
        ) as run:
            m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            run.log({"acc": m.score(X, y)})
            run.log_dataset(X, name="train")
            mloop.log_model(m, "iris", run=run, input_example=X[:3])
    yield
    clear_store_cache()


def test_list_show_versions_json(registered) -> None:
    res = invoke("models", "list", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["latest_version"] == 2
    res = invoke("models", "versions", "iris", "--filter", "metrics.acc > 0.9", "--json")
    assert [v["version"] for v in json.loads(res.stdout)] == [2]
    res = invoke("models", "show", "iris")
    assert res.exit_code == 0 and "v2" in res.stdout and "sklearn" in res.stdout


def test_alias_history_rollback_lineage_diff(registered) -> None:
    assert invoke("models", "alias", "set", "iris", "champion", "1").exit_code == 0
    res = invoke(
        "models",
        "alias",
        "set",
        "iris",
        "champion",
        "2",
        "--reason",
        "better",
        "--expected-version",
        "1",
    )
    assert res.exit_code == 0 and "iris@champion → v2" in res.stdout
    res = invoke("models", "alias", "set", "iris", "champion", "1", "--expected-version", "1")
    assert res.exit_code == 2 and "another change won" in res.stderr
    assert invoke("models", "alias", "protect", "iris", "champion").exit_code == 0
    res = invoke("models", "rollback", "iris", "champion")
    assert res.exit_code == 2 and "protected" in res.stderr  # a protected alias needs a reason
    res = invoke("models", "rollback", "iris", "champion", "--reason", "v2 misbehaves")
    assert res.exit_code == 0 and "rolled back to v1" in res.stdout
    assert (
        invoke("models", "alias", "set", "iris", "champion", "2", "--reason", "fixed").exit_code
        == 0
    )
    res = invoke("models", "history", "iris", "--alias", "champion", "--json")
    events = json.loads(res.stdout)
    assert [e["type"] for e in events] == [
        "alias_set",
        "alias_set",
        "alias_protected",
        "alias_rollback",
        "alias_set",
    ]
    assert events[3]["reason"] == "v2 misbehaves"
    res = invoke("models", "lineage", "iris", "2")
    assert (
        res.exit_code == 0
        and "datasets" in res.stdout
        and "depth = 3" in res.stdout
        and "train" in res.stdout
    )
    res = invoke("models", "diff", "iris", "1", "2", "--json")
    assert json.loads(res.stdout)["params"] == {"depth": ["1", "3"]}
    res = invoke("models", "delete", "iris", "2")
    assert res.exit_code == 2 and "champion" in res.stderr
    assert invoke("models", "delete", "iris", "1", "--reason", "obsolete").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "alias", "set", "iris", "latest", "1"), "reserved"),
        (("models", "alias", "set", "iris", "champion", "9"), "no version 9"),
        (("models", "show", "nope"), "does not exist"),
        (("models", "lineage", "iris", "x"), "version must be"),
    ],
)
def test_mistakes_are_one_line(registered, args, message) -> None:
    res = invoke(*args)
    assert (
        res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    )
