"""`mloop drift` and `mloop profile` as a user runs them: CliRunner and a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mloop.cli import get_app


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    n = 3000
    ref = pd.DataFrame(
        {"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n), "id": np.arange(n)}
    )
    same = pd.DataFrame(
        {"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n), "id": np.arange(n)}
    )
    shifted = pd.DataFrame(
        {"age": rng.normal(48, 10, n), "plan": rng.choice(["a", "b", "z"], n), "id": np.arange(n)}
    )
    out = {"ref": tmp_path / "ref.parquet", "same": tmp_path / "same.csv"}
    out["shifted"] = tmp_path / "shifted.parquet"
    ref.to_parquet(out["ref"])
    same.to_csv(out["same"], index=False)
    shifted.to_parquet(out["shifted"])
    return out


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(get_app(), [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_drift_exit_codes_and_table(files: dict[str, Path]) -> None:
    code, out, _ = _run("drift", files["ref"], files["same"], "--columns", "age,plan")
    assert code == 0, out
    for word in ("column", "kind", "method", "statistic", "threshold", "verdict", "wasserstein"):
        assert word in out
    assert "no drift" in out
    code, out, _ = _run("drift", files["ref"], files["shifted"], "--columns", "age,plan")
    assert code == 1
    assert "DRIFT" in out and "not in the reference: 'z'" in out


def test_drift_json_and_html(files: dict[str, Path], tmp_path: Path) -> None:
    html = tmp_path / "drift.html"
    code, out, _ = _run(
        "drift", files["ref"], files["shifted"], "--json", "--columns", "age,plan", "--html", html
    )
    assert code == 1
    data = json.loads(out)
    assert data["drifted"] is True and set(data["columns"]) == {"age", "plan"}
    assert data["columns"]["age"]["method"] == "wasserstein"
    assert html.exists() and "age" in html.read_text(encoding="utf-8")


def test_overrides_on_the_command_line(files: dict[str, Path]) -> None:
    code, out, _ = _run(
        "drift",
        files["ref"],
        files["shifted"],
        "--json",
        "--categorical",
        "id",
        "--method",
        "age=psi",
        "--threshold",
        "age=5",
        "--drift-share",
        "0.9",
    )
    data = json.loads(out)
    assert data["columns"]["age"]["method"] == "psi"
    assert data["columns"]["age"]["threshold"] == 5.0
    assert data["columns"]["id"]["kind"] == "categorical"
    assert code == (1 if data["drifted"] else 0)


def test_profile_then_drift_against_it(files: dict[str, Path], tmp_path: Path) -> None:
    prof = tmp_path / "ref.profile"
    code, out, _ = _run("profile", files["ref"], "-o", prof)
    assert code == 0 and prof.exists() and "3,000 rows" in out
    from_profile = json.loads(_run("drift", prof, files["shifted"], "--json")[1])
    from_data = json.loads(_run("drift", files["ref"], files["shifted"], "--json")[1])
    assert from_profile["columns"] == from_data["columns"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("drift", "missing.parquet", "{same}"), "does not exist"),
        (("drift", "{ref}", "{same}", "--columns", "nope"), "which is not in the reference"),
        (("drift", "{ref}", "{same}", "--method", "age=bogus"), "unknown drift method"),
        (("drift", "{ref}", "{same}", "--threshold", "age=high"), "must be numbers"),
        (("profile", "missing.csv", "-o", "x.profile"), "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    argv = [a.format(ref=files["ref"], same=files["same"]) for a in args]
    code, _out, err = _run(*argv)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_subprocess(files: dict[str, Path], tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mloop")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mloop.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    ok = subprocess.run(
        [*cmd, "drift", str(files["ref"]), str(files["same"]), "--columns", "age,plan"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "no drift" in ok.stdout
    bad = subprocess.run(
        [*cmd, "drift", str(files["ref"]), str(tmp_path / "nope.parquet")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
