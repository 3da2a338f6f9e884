"""``mloop loop template | scenario | replay`` as a user runs them, and replay's input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mloop.cli._app import get_app
from mloop.errors import InvalidInputError
from mloop.loop import SCENARIO_KINDS, generate_scenario, load_replay_dir, replay

runner = CliRunner()

WINDOW_KEYS = {
    "window", "data_drift", "drifted_columns", "quality_alert", "accuracy", "retrain_started",
    "candidate_version", "check_passed", "promoted_version", "serving_version",
}  # fmt: skip


def test_template_writes_the_retraining_pipeline_which_imports(tmp_path: Path) -> None:
    target = tmp_path / "flows" / "retrain.py"
    r = runner.invoke(get_app("loop"), ["loop", "template", str(target)])
    assert r.exit_code == 0, r.output
    code = subprocess.run(
        [sys.executable, "-c", "import retrain; print(retrain.retrain.name)"],
        cwd=target.parent, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert code.stdout.strip() == "retrain"
    again = runner.invoke(get_app("loop"), ["loop", "template", str(target)])
    assert again.exit_code == 2 and "--force" in again.output


def test_scenarios_are_seeded_and_in_the_replay_layout(tmp_path: Path) -> None:
    for kind in SCENARIO_KINDS:
        a = generate_scenario(kind, tmp_path / kind / "a", n_windows=3, rows_per_window=20,
                              change_window=1, seed=5)  # fmt: skip
        generate_scenario(kind, tmp_path / kind / "b", n_windows=3, rows_per_window=20,
                          change_window=1, seed=5)  # fmt: skip
        data = load_replay_dir(tmp_path / kind / "a")
        assert len(data.windows) == 3 and data.features == list(a.features)
        for w in ("w000", "w002"):
            for part in ("windows", "labels"):
                one = (tmp_path / kind / "a" / part / f"{w}.parquet").read_bytes()
                two = (tmp_path / kind / "b" / part / f"{w}.parquet").read_bytes()
                assert one == two, (kind, part, w)
    with pytest.raises(InvalidInputError, match="`kind` must be one of"):
        generate_scenario("meteor", tmp_path / "x")
    with pytest.raises(InvalidInputError, match="`n_windows` must be an int >= 1"):
        generate_scenario("no_change", tmp_path / "x", n_windows=0)


def test_replay_refuses_a_folder_without_the_layout(mloop_home: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"train\.parquet"):
        replay(tmp_path)
    generate_scenario("no_change", tmp_path / "s", n_windows=2, rows_per_window=10)
    with pytest.raises(InvalidInputError, match="`label_delay` must be an int >= 0"):
        replay(tmp_path / "s", label_delay=-1)
    r = runner.invoke(get_app("loop"), ["loop", "replay", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output


def test_replay_json_has_the_issue_fields_per_window(mloop_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    r = runner.invoke(
        get_app("loop"),
        ["loop", "scenario", "broken_feature", str(folder), "--windows", "4", "--rows", "60",
         "--change", "2"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(get_app("loop"), ["loop", "replay", str(folder), "--label-delay", "1",
                                        "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [e["window"] for e in doc["windows"]] == [0, 1, 2, 3]
    for e in doc["windows"]:
        assert set(e) >= WINDOW_KEYS
        assert e["serving_version"] == 1
    # labels of window w arrive after w + 1: every window is judged by the end
    assert all(isinstance(e["accuracy"], float) for e in doc["windows"])
    # served scores (predict_proba): CBPE estimates each window's accuracy before its labels
    assert all(0.0 <= e["estimated_accuracy"] <= 1.0 for e in doc["windows"])
    for e in doc["windows"][:2]:  # before the change, the estimate tracks what labels show
        assert abs(e["estimated_accuracy"] - e["accuracy"]) < 0.1
    assert doc["summary"]["estimated_accuracy_mean"] is not None
    assert doc["windows"][2]["quality_alert"] and doc["windows"][2]["retrain_started"]
    assert doc["summary"]["windows"] == 4 and doc["summary"]["promotions"] == []


def test_make_demo_runs_the_loop_to_a_promotion(tmp_path: Path) -> None:
    import os
    import re

    root = Path(__file__).resolve().parents[2]
    assert "examples/loop_demo.py" in (root / "Makefile").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env["MLOOP_HOME"] = str(tmp_path / ".mloop")
    env["COLUMNS"] = "250"
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "loop_demo.py")], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"serving v(\d+) -> v(\d+)", proc.stdout)
    assert m is not None, proc.stdout[-2000:]
    assert int(m.group(1)) == 1 and int(m.group(2)) > 1  # drift -> retrain -> promote -> swap
    assert re.search(r"alerts: drift [1-9]", proc.stdout)
