"""``mloop pipelines list | runs | show | run | resume`` on a project folder, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.store._open import clear_store_cache

FLOW = """
from pathlib import Path

from mloop.pipelines import pipeline, step

HERE = Path(__file__).parent


@step
def make(n: int) -> list:
    with (HERE / "calls.txt").open("a") as f:
        f.write("make\\n")
    return list(range(n))


@step
def total(xs: list, boom: bool) -> int:
    with (HERE / "calls.txt").open("a") as f:
        f.write("total\\n")
    if boom and (HERE / "broken").exists():
        raise ValueError("the data is broken")
    return sum(xs)


@pipeline
def sums(n: int = 3, boom: bool = False):
    return total(make(n), boom)


class Doubler:
    def predict(self, x):
        return [2 * v for v in x]


@step
def publish(n: int) -> int:
    import mloop

    return mloop.log_model(Doubler(), "doubler").version


@pipeline
def release(n: int = 1):
    return publish(n)
"""


@pytest.fixture
def flow(mloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"cliflow_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FLOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOOP_PIPELINE_CACHE", raising=False)
    clear_store_cache()
    yield name
    clear_store_cache()
    sys.modules.pop(name, None)


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(get_app(), list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def calls(root: Path) -> list[str]:
    path = root / "calls.txt"
    out = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return out


def test_run_then_list_runs_and_show(flow: str, tmp_path: Path) -> None:
    code, out, err = cli("pipelines", "run", f"{flow}:sums", "--param", "n=4", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["run"]["status"] == "finished" and first["run"]["params"]["n"] == 4
    assert [s["status"] for s in first["steps"]] == ["finished", "finished"]
    assert calls(tmp_path) == ["make", "total"]
    code, out, err = cli("pipelines", "run", f"{flow}:sums", "-p", "n=4")
    assert code == 0, err
    assert "0 executed, 2 cached" in out and calls(tmp_path) == []
    code, out, _ = cli("pipelines", "run", f"{flow}:sums", "-p", "n=4", "--no-cache", "--json")
    assert code == 0 and calls(tmp_path) == ["make", "total"]
    code, out, _ = cli("pipelines", "list", "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)] == ["sums"]
    code, out, _ = cli("pipelines", "runs", "sums", "--json")
    runs = json.loads(out)
    assert code == 0 and len(runs) == 3 and runs[-1]["id"] == first["run"]["id"]
    code, out, _ = cli("pipelines", "runs")
    assert code == 0 and first["run"]["id"] in out and "manual" in out
    code, out, _ = cli("pipelines", "show", first["run"]["id"])
    assert code == 0 and "make" in out and "total" in out and '"n": 4' in out
    code, out, _ = cli("pipelines", "show", runs[1]["id"], "--json")
    shown = json.loads(out)
    assert code == 0 and [s["cache_hit"] for s in shown["steps"]] == [True, True]


def test_a_failed_run_says_how_to_resume_and_resume_reuses_what_finished(
    flow: str, tmp_path: Path
) -> None:
    (tmp_path / "broken").touch()
    code, _, err = cli("pipelines", "run", f"{flow}:sums", "-p", "boom=true")
    assert code == 2 and "the data is broken" in err and "mloop pipelines resume" in err
    assert calls(tmp_path) == ["make", "total"]
    failed = json.loads(cli("pipelines", "runs", "--status", "failed", "--json")[1])
    (run_id,) = [r["id"] for r in failed]
    code, out, _ = cli("pipelines", "show", run_id)
    assert code == 0 and "failed" in out and "the data is broken" in out
    (tmp_path / "broken").unlink()
    code, out, err = cli("pipelines", "resume", run_id, "--no-cache", "--json")
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["run"]["resumed_from"] == run_id and resumed["run"]["trigger"] == "resume"
    assert [s["status"] for s in resumed["steps"]] == ["cached", "finished"]
    assert calls(tmp_path) == ["total"]
    code, _, err = cli("pipelines", "resume", resumed["run"]["id"])
    assert code == 2 and "only a failed run resumes" in err


def test_bad_targets_and_params_are_clear_errors(flow: str) -> None:
    code, _, err = cli("pipelines", "run", "no_colon")
    assert code == 2 and "module:function" in err
    code, _, err = cli("pipelines", "run", f"{flow}:missing")
    assert code == 2 and "cannot import" in err
    code, _, err = cli("pipelines", "run", f"{flow}:make")
    assert code == 2 and "is not a @pipeline function" in err
    code, _, err = cli("pipelines", "run", f"{flow}:sums", "-p", "nope")
    assert code == 2 and "name=value" in err
    code, _, err = cli("pipelines", "run", f"{flow}:sums", "-p", "m=1")
    assert code == 2 and "unexpected keyword argument 'm'" in err
    code, _, err = cli("pipelines", "run", f"{flow}:sums", "--executor", "dask")
    assert code == 2 and "`executor` must be 'local', 'process', 'ray'" in err
    code, _, err = cli("pipelines", "show", "f" * 32)
    assert code == 2 and "does not exist" in err


def test_the_command_runs_as_a_subprocess(flow: str, tmp_path: Path) -> None:
    env = {**os.environ, "MLOOP_PIPELINE_CACHE": "0"}
    for _ in range(2):  # the switch is off: both runs execute both steps
        proc = subprocess.run(
            [sys.executable, "-m", "mloop", "pipelines", "run", f"{flow}:sums", "--json"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["steps"][0]["cache_note"] == (
            "not cached: the cache is off for this run"
        )
    assert calls(tmp_path) == ["make", "total", "make", "total"]


def test_show_lists_the_versions_a_step_registered(flow: str) -> None:
    code, out, err = cli("pipelines", "run", f"{flow}:release", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["steps"][0]["models"] == ["models:/doubler/1"]
    code, out, err = cli("pipelines", "show", result["run"]["id"])
    assert code == 0, err
    assert "registered" in out and "models:/doubler/1" in out
    code, out, err = cli("models", "lineage", "doubler", "1")
    assert code == 0, err
    assert f"pipeline release run {result['run']['id']} step publish" in out
