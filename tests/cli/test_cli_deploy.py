"""`mloop deploy ...` as a user sees it: CliRunner for every command, and a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.cli._deploy import parse_config
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import Registry
from mloop.store._open import clear_store_cache

runner = CliRunner()
CHAMPION = "models:/iris@champion"
CHALLENGER = "models:/iris@challenger"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(get_app(), list(args))


def ok(*args: str):  # type: ignore[no-untyped-def]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "h"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    yield home
    clear_store_cache()


@pytest.fixture
def registered(home: Path) -> Path:
    """``iris`` versions 1 and 2; champion -> 1, challenger -> 2."""
    settings = Settings.from_env()
    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 2):
        with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
            m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            mloop.log_model(m, "iris", run=run, input_example=X[:3])
    reg = Registry(settings=settings)
    reg.set_alias("iris", "champion", 1)
    reg.set_alias("iris", "challenger", 2)
    return home


def test_create_list_status_json(registered: Path) -> None:
    res = ok(
        "deploy", "create", "iris-api", "--model", CHAMPION, "--canary", f"{CHALLENGER}:10%",
        "--shadow", "models:/iris/v2", "--sticky-key", "X-User",
        "--config", "log_sample=0.5", "--config", "max_batch_size=16", "--json",
    )  # fmt: skip
    d = json.loads(res.stdout)
    assert (d["name"], d["model"], d["canary"], d["canary_percent"]) == (
        "iris-api",
        CHAMPION,
        CHALLENGER,
        10.0,
    )
    assert (d["shadow"], d["sticky_key"], d["revision"]) == ("models:/iris/2", "X-User", 1)
    assert d["config"] == {"log_sample": 0.5, "max_batch_size": 16}
    listed = json.loads(ok("deploy", "list", "--json").stdout)
    assert listed == [d]
    status = json.loads(ok("deploy", "status", "iris-api", "--json").stdout)
    assert status["deployment"] == d
    assert [(r["slot"], r["uri"], r["version"]) for r in status["resolved"]] == [
        ("main", CHAMPION, 1),
        ("canary", CHALLENGER, 2),
        ("shadow", "models:/iris/2", 2),
    ]
    assert status["events"] == []


def test_text_output(registered: Path) -> None:
    res = ok("deploy", "create", "iris-api", "--model", CHAMPION, "--canary", f"{CHALLENGER}:10%")
    assert "deployment iris-api created (revision 1)" in res.stdout
    assert f"canary  {CHALLENGER} (10%)" in res.stdout
    res = ok("deploy", "list")
    assert "iris-api" in res.stdout and CHAMPION in res.stdout
    Registry(settings=Settings.from_env()).store.append_event(
        "serving_swapped",
        "deployments/iris-api",
        payload={"slot": "main", "from": "iris/1", "to": "iris/2", "pid": 42},
    )
    res = ok("deploy", "status", "iris-api")
    assert "Resolves to" in res.stdout and "v1" in res.stdout and "v2" in res.stdout
    assert "serving_swapped" in res.stdout and "iris/1 → iris/2" in res.stdout
    res = ok("deploy", "set", "iris-api", "--no-canary", "--reason", "promoted")
    assert "revision 2" in res.stdout and "canary" not in res.stdout.split("\n", 2)[-1]
    res = ok("deploy", "history", "iris-api")
    assert "promoted" in res.stdout


def test_set_rollback_history_delete(registered: Path) -> None:
    ok("deploy", "create", "a", "--model", CHAMPION, "--config", "log_sample=1")
    d = json.loads(ok("deploy", "set", "a", "--canary", f"{CHALLENGER}:20%", "--json").stdout)
    assert (d["canary"], d["canary_percent"], d["revision"]) == (CHALLENGER, 20.0, 2)
    d = json.loads(ok("deploy", "set", "a", "--canary-percent", "30", "--json").stdout)
    assert (d["canary"], d["canary_percent"]) == (CHALLENGER, 30.0)
    d = json.loads(
        ok(
            "deploy", "set", "a", "--no-canary", "--shadow", CHALLENGER,
            "--config", "max_wait_ms=2.5", "--config", "log_sample=null", "--json",
        ).stdout
    )  # fmt: skip
    assert (d["canary"], d["canary_percent"], d["shadow"]) == (None, 0.0, CHALLENGER)
    assert d["config"] == {"max_wait_ms": 2.5}
    d = json.loads(ok("deploy", "set", "a", "--no-shadow", "--json").stdout)
    assert d["shadow"] is None and d["revision"] == 5
    res = invoke("deploy", "set", "a", "--model", "models:/iris/2", "--expected-revision", "4")
    assert res.exit_code == 2 and "is at revision 5, not the expected 4" in res.stderr
    d = json.loads(ok("deploy", "rollback", "a", "--to", "2", "--reason", "oops", "--json").stdout)
    assert (d["revision"], d["canary"], d["canary_percent"]) == (6, CHALLENGER, 20.0)
    res = ok("deploy", "rollback", "a")
    assert "rolled back (revision 7)" in res.stdout
    history = json.loads(ok("deploy", "history", "a", "--json").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert history[5]["reason"] == "oops" and history[5]["spec"]["canary_percent"] == 20.0
    res = ok("deploy", "delete", "a", "--reason", "done")
    assert "deleted deployment a" in res.stdout
    res = invoke("deploy", "status", "a")
    assert res.exit_code == 2 and res.stderr == "error: deployment 'a' does not exist.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "x", "--model", "models:/nope@champion"], "main model models:/nope@champion does not resolve"),
        (["create", "x", "--model", CHAMPION, "--canary", CHALLENGER], "needs its share of the traffic"),
        (["create", "x", "--model", CHAMPION, "--canary", f"{CHALLENGER}:100%"], "(0, 100) percent"),
        (["create", "x", "--model", CHAMPION, "--config", "log_sample"], "--config takes KEY=VALUE"),
        (["create", "x", "--model", CHAMPION, "--config", "workers=2"], "unknown serve option 'workers'"),
        (["create", "bad name", "--model", CHAMPION], "a deployment name must be"),
        (["set", "x", "--canary", f"{CHALLENGER}:5%", "--no-canary"], "give --canary or --no-canary, not both"),
        (["set", "x", "--shadow", CHALLENGER, "--no-shadow"], "give --shadow or --no-shadow, not both"),
        (["set", "x", "--model", CHAMPION], "deployment 'x' does not exist"),
        (["rollback", "x"], "deployment 'x' does not exist"),
        (["delete", "x"], "deployment 'x' does not exist"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_exit_2(registered: Path, args: list[str], message: str) -> None:
    res = invoke("deploy", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert json.loads(ok("deploy", "list", "--json").stdout) == []


def test_read_only_commands_create_no_store(home: Path) -> None:
    assert json.loads(ok("deploy", "list", "--json").stdout) == []
    res = invoke("deploy", "status", "x")
    assert res.exit_code == 2 and "deployment 'x' does not exist" in res.stderr
    assert not (home / "mloop.db").exists()


def test_config_values_are_json_when_they_parse() -> None:
    assert parse_config(["a=1", "b=0.5", "c=true", "d=null", "e=text", "f=", " g =[1]"]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": None,
        "e": "text",
        "f": "",
        "g": [1],
    }
    assert parse_config(None) == {}
    with pytest.raises(InvalidInputError, match="--config takes KEY=VALUE"):
        parse_config(["=1"])


def test_as_a_subprocess(registered: Path) -> None:
    env = {**os.environ, "MLOOP_HOME": str(registered)}
    env.pop("MLOOP_STORE_URI", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mloop", "deploy", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    made = run("create", "iris-api", "--model", CHAMPION, "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["revision"] == 1
    status = run("status", "iris-api", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["resolved"][0]["version"] == 1
    again = run("create", "iris-api", "--model", CHAMPION)
    assert again.returncode == 2
    assert again.stderr == "error: deployment 'iris-api' already exists.\n"
