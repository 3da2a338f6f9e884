"""`mloop drift` exit codes as a CI gate sees them: 0 no drift, 1 drift, 2 usage error, 3 no verdict.

A gate must never pass on data it could not judge: an empty, header-only or all-null current file is
"no verdict" (exit 3) unless the user opts in with ``--allow-empty`` (then 0).
"""

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

N = 600


def _frame(seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = ["a", "b", "c"] if shift == 0 else ["x", "y"]
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, N),
            "plan": rng.choice(plans, N),
            "id": np.arange(N),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("ref.parquet", "same.parquet", "shifted.parquet")}
    _frame(0).to_parquet(out["ref.parquet"])
    _frame(1).to_parquet(out["same.parquet"])
    _frame(2, shift=30).to_parquet(out["shifted.parquet"])
    out["header.csv"] = tmp_path / "header.csv"
    out["header.csv"].write_text("age,plan,id\n")
    out["zero.csv"] = tmp_path / "zero.csv"
    out["zero.csv"].write_bytes(b"")
    out["empty.parquet"] = tmp_path / "empty.parquet"
    _frame(0).iloc[:0].to_parquet(out["empty.parquet"])
    # every watched column (age, plan) is null on every row; `id` still has values
    out["nulls.csv"] = tmp_path / "nulls.csv"
    out["nulls.csv"].write_text("age,plan,id\n" + "".join(f",,{i}\n" for i in range(N)))
    out["nulls.parquet"] = tmp_path / "nulls.parquet"
    pd.DataFrame(
        {"age": [np.nan] * N, "plan": pd.Series([None] * N, dtype=object), "id": np.arange(N)}
    ).to_parquet(out["nulls.parquet"])
    # rows, but none of the reference's columns: a schema mismatch, not "empty" data
    out["other.parquet"] = tmp_path / "other.parquet"
    pd.DataFrame({"x": np.arange(N)}).to_parquet(out["other.parquet"])
    out["ref.profile"] = tmp_path / "ref.profile"
    code, _, err = _run("profile", out["ref.parquet"], "-o", out["ref.profile"])
    assert code == 0, err
    return out


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(get_app(), [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


NO_VERDICT = ["header.csv", "zero.csv", "empty.parquet"]


@pytest.mark.parametrize("reference", ["ref.parquet", "ref.profile"])
@pytest.mark.parametrize("current", NO_VERDICT)
def test_empty_current_data_is_no_verdict_exit_3(
    files: dict[str, Path], reference: str, current: str
) -> None:
    code, out, err = _run("drift", files[reference], files[current])
    assert code == 3, out + err
    assert "no verdict" in out
    assert "no verdict" in err and "--allow-empty" in err and "Traceback" not in err


@pytest.mark.parametrize("current", ["nulls.csv", "nulls.parquet"])
def test_all_null_watched_columns_are_no_verdict(files: dict[str, Path], current: str) -> None:
    code, out, err = _run("drift", files["ref.parquet"], files[current], "--columns", "age,plan")
    assert code == 3, out + err
    assert "no verdict" in out
    # `id` has values, so without a column selection there is a verdict on it
    code, out, err = _run("drift", files["ref.parquet"], files[current])
    assert code in (0, 1), out + err
    assert "no verdict" not in out


@pytest.mark.parametrize("current", [*NO_VERDICT, "nulls.csv"])
def test_allow_empty_exits_0_when_there_is_no_data(files: dict[str, Path], current: str) -> None:
    args = ["drift", files["ref.parquet"], files[current], "--columns", "age,plan"]
    code, out, err = _run(*args, "--allow-empty")
    assert code == 0, out + err
    assert "no verdict" in out


def test_allow_empty_never_hides_drift_or_a_schema_mismatch(files: dict[str, Path]) -> None:
    code, _, _ = _run("drift", files["ref.parquet"], files["shifted.parquet"], "--allow-empty")
    assert code == 1
    code, _, _ = _run("drift", files["ref.parquet"], files["same.parquet"], "--allow-empty")
    assert code == 0
    # the current file has rows but none of the reference's columns: that is not "empty data"
    code, out, err = _run("drift", files["ref.parquet"], files["other.parquet"], "--allow-empty")
    assert code == 3, out + err
    assert "missing" in err


def test_json_output_stays_parseable_with_exit_3(files: dict[str, Path]) -> None:
    code, out, err = _run("drift", files["ref.parquet"], files["header.csv"], "--json")
    assert code == 3
    data = json.loads(out)
    assert data["status"] == "insufficient_data" and data["drifted"] is False
    assert "no verdict" in err


def test_help_documents_the_exit_codes() -> None:
    code, out, _ = _run("drift", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for text in ("0 no drift", "1 drift", "2 usage error", "3 no verdict", "--allow-empty"):
        assert text in flat, text


def test_readme_documents_the_exit_codes() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    flat = " ".join(readme.split())
    for text in ("`0` no drift", "`1` drift", "`2` usage error", "`3` no verdict", "--allow-empty"):
        assert text in flat, text


def test_subprocess_exit_codes(files: dict[str, Path]) -> None:
    exe = Path(sys.executable).with_name("mloop")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mloop"]
    env = {**os.environ, "COLUMNS": "200"}

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        argv = [*cmd, "drift", *(str(a) for a in args)]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    ref = files["ref.parquet"]
    assert run(ref, files["same.parquet"]).returncode == 0
    assert run(ref, files["shifted.parquet"]).returncode == 1
    assert run(ref, files["header.csv"], "--min-samples", "0").returncode == 2
    empty = run(ref, files["header.csv"])
    assert empty.returncode == 3, empty.stderr
    assert "no verdict" in empty.stdout and "no verdict" in empty.stderr
    assert run(ref, files["zero.csv"]).returncode == 3
    assert run(ref, files["nulls.csv"], "--columns", "age,plan").returncode == 3
    assert run(ref, files["header.csv"], "--allow-empty").returncode == 0
