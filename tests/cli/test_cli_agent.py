"""``mloop agent run | status | trigger`` on a project folder, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
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
def note(reason: str) -> int:
    with (HERE / "calls.txt").open("a") as f:
        f.write(reason + "\\n")
    return 1


@pipeline
def retrain(trigger: dict):
    return note(trigger["reason"])
"""


@pytest.fixture
def project(mloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    name = f"agentflow_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FLOW))
    (tmp_path / "agent.yaml").write_text(
        "agent: {name: cli, interval: 1s}\n"
        "triggers:\n"
        f"  - name: retrain\n    pipeline: {name}:retrain\n    on: {{manual: true}}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    clear_store_cache()
    return tmp_path


def invoke(*args: str) -> object:
    result = CliRunner().invoke(get_app(args[0]), list(args))
    return result


def test_a_request_is_fired_once_by_the_next_pass(project: Path) -> None:
    r = invoke("agent", "trigger", "retrain", "--reason", "audit labels", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["type"] == "trigger_requested"
    # The agent's cursor starts at the log's end when it first runs: request after it exists.
    assert invoke("agent", "run", "--config", "agent.yaml", "--once").exit_code == 0
    invoke("agent", "trigger", "retrain", "--reason", "audit labels")
    r = invoke("agent", "run", "--config", "agent.yaml", "--once", "--json")
    assert r.exit_code == 0, r.output
    (f,) = json.loads(r.output)["firings"]
    assert (f["trigger"], f["status"], f["reason"]) == ("retrain", "finished", "audit labels")
    assert (project / "calls.txt").read_text() == "audit labels\n"
    r = invoke("agent", "run", "--config", "agent.yaml", "--once", "--json")
    assert json.loads(r.output)["firings"] == []
    r = invoke("agent", "status", "--name", "cli", "--json")
    st = json.loads(r.output)
    assert st["cursor"] == st["head"] or st["cursor"] >= 1
    assert [x["key"] for x in st["firings"]] == [f["key"]]
    r = invoke("agent", "status", "--name", "cli")
    assert "retrain" in r.output and "finished" in r.output


def test_fired_directly_with_the_config(project: Path) -> None:
    r = invoke("agent", "trigger", "retrain", "--reason", "now", "--config", "agent.yaml")
    assert r.exit_code == 0, r.output
    assert "finished" in r.output and (project / "calls.txt").read_text() == "now\n"


def test_a_bad_file_names_the_key_and_line(project: Path) -> None:
    (project / "bad.yaml").write_text(
        "triggers:\n  - name: retrain\n    pipeline: m:f\n    on: {alert: {kinds: [drift]}}\n"
    )
    r = invoke("agent", "run", "--config", "bad.yaml", "--once")
    assert r.exit_code != 0
    assert "bad.yaml, line 4" in r.output and "triggers.0.on.alert.kinds.0" in r.output
    assert "Traceback" not in r.output


def test_run_stops_cleanly_on_sigterm(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(project)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mloop", "agent", "run", "--config", "agent.yaml"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = invoke("agent", "status", "--name", "cli", "--json")
        if r.exit_code == 0 and json.loads(r.output)["cursor"] is not None:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped after" in out
