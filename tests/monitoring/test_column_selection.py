"""Unknown column names are reported with the columns the data actually has.

Every place a column selection is validated: ``drift_report`` (``columns``, ``categorical``, per-column
``methods``/``thresholds``) against raw data of every input type and against a Profile;
``Profile.from_data``; ``Monitor``; ``quality_report``; CBPE's label/score columns; and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.errors import InvalidInputError
from mloop.monitoring import CBPE, Monitor, Profile, drift_report, quality_report

N = 300
NAMES = ["age", "income", "plan", "region"]


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, N),
            "income": rng.lognormal(10, 1, N),
            "plan": rng.choice(["a", "b", "c"], N),
            "region": rng.choice(["n", "s"], N),
        }
    )


def _as(kind: str, df: pd.DataFrame, tmp_path: Path) -> Any:
    if kind == "pandas":
        return df
    if kind == "dict":
        return {c: df[c].to_numpy() for c in df.columns}
    if kind == "arrow":
        return pa.Table.from_pandas(df, preserve_index=False)
    if kind == "polars":
        import polars as pl

        return pl.from_pandas(df)
    path = tmp_path / f"ref.{kind}"
    if kind == "parquet":
        df.to_parquet(path)
    elif kind == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_feather(path)
    return path


def _message(call: Callable[[], Any]) -> str:
    with pytest.raises(InvalidInputError) as info:
        call()
    return info.value.message


def _lists_the_columns(message: str, names: list[str] = NAMES) -> None:
    assert "[]" not in message, message
    for name in names:
        assert repr(name) in message, message


KINDS = ["pandas", "dict", "arrow", "polars", "parquet", "csv", "feather"]


@pytest.mark.parametrize("kind", KINDS)
def test_drift_report_unknown_column_lists_the_reference_columns(kind: str, tmp_path: Path) -> None:
    ref = _as(kind, _frame(0), tmp_path)
    msg = _message(lambda: drift_report(ref, _frame(1), columns=["nosuch"]))
    assert "'nosuch'" in msg and "reference" in msg
    _lists_the_columns(msg)
    # a near miss gets a suggestion
    msg = _message(lambda: drift_report(ref, _frame(1), columns=["age", "incme"]))
    assert "'incme'" in msg and "did you mean 'income'" in msg.lower()


@pytest.mark.parametrize("kind", KINDS)
def test_profile_from_data_unknown_column_lists_the_columns(kind: str, tmp_path: Path) -> None:
    ref = _as(kind, _frame(0), tmp_path)
    msg = _message(lambda: Profile.from_data(ref, columns=["nosuch"]))
    assert "'nosuch'" in msg
    _lists_the_columns(msg)
    msg = _message(lambda: Profile.from_data(ref, categorical=["nosuch"]))
    assert "'nosuch'" in msg and "categorical" in msg
    _lists_the_columns(msg)


def test_drift_report_against_a_profile_lists_the_profile_columns() -> None:
    prof = Profile.from_data(_frame(0))
    msg = _message(lambda: drift_report(prof, _frame(1), columns=["nosuch"]))
    assert "'nosuch'" in msg and "profile" in msg
    _lists_the_columns(msg)


@pytest.mark.parametrize("reference", ["data", "profile"])
def test_categorical_methods_and_thresholds_name_only_compared_columns(reference: str) -> None:
    ref: Any = _frame(0) if reference == "data" else Profile.from_data(_frame(0))
    cur = _frame(1)
    msg = _message(lambda: drift_report(ref, cur, categorical=["nosuch"]))
    assert "'nosuch'" in msg and "categorical" in msg
    _lists_the_columns(msg)
    # a real column that is left out of the selection is "not compared", not "unknown"
    msg = _message(lambda: drift_report(ref, cur, columns=["age"], methods={"income": "psi"}))
    assert "'income'" in msg and "not compared" in msg and "['age']" in msg
    msg = _message(lambda: drift_report(ref, cur, thresholds={"nosuch": 0.2}))
    assert "'nosuch'" in msg
    _lists_the_columns(msg)


def test_categorical_naming_a_column_left_out_of_the_selection() -> None:
    msg = _message(
        lambda: drift_report(_frame(0), _frame(1), columns=["age"], categorical=["plan"])
    )
    assert "'plan'" in msg and "not compared" in msg and "['age']" in msg
    assert "unknown" not in msg


@pytest.mark.parametrize("reference", ["data", "profile", "parquet"])
def test_monitor_unknown_column_lists_the_reference_columns(reference: str, tmp_path: Path) -> None:
    ref: Any = {
        "data": _frame(0),
        "profile": Profile.from_data(_frame(0)),
        "parquet": _as("parquet", _frame(0), tmp_path),
    }[reference]
    msg = _message(lambda: Monitor(ref, window_rows=100, columns=["nosuch"]))
    assert "'nosuch'" in msg
    _lists_the_columns(msg)
    msg = _message(lambda: Monitor(ref, window_rows=100, categorical=["nosuch"]))
    assert "'nosuch'" in msg and "categorical" in msg
    _lists_the_columns(msg)
    msg = _message(
        lambda: Monitor(ref, window_rows=100, columns=["age"], categorical=["plan"], drift=False)
    )
    assert "'plan'" in msg and "not monitored" in msg and "['age']" in msg


@pytest.mark.parametrize("reference", ["data", "profile"])
def test_quality_report_unknown_column_lists_the_reference_columns(reference: str) -> None:
    ref: Any = _frame(0) if reference == "data" else Profile.from_data(_frame(0))
    msg = _message(lambda: quality_report(ref, _frame(1), columns=["nosuch"]))
    assert "'nosuch'" in msg
    _lists_the_columns(msg)


def test_cbpe_missing_label_or_score_column_lists_the_columns() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"label": rng.integers(0, 2, N), "proba": rng.random(N)})
    msg = _message(lambda: CBPE(y_true="lable", y_score="proba").fit(ref))
    assert "'lable'" in msg and "'label'" in msg and "'proba'" in msg
    msg = _message(lambda: CBPE(y_true="label", y_score="probability").fit(ref))
    assert "'probability'" in msg and "did you mean 'proba'" in msg.lower()


def test_cli_unknown_columns_list_the_reference_columns(tmp_path: Path) -> None:
    ref = _as("parquet", _frame(0), tmp_path)
    cur = _as("csv", _frame(1), tmp_path)
    runner = CliRunner()
    for args in (
        ["drift", str(ref), str(cur), "--columns", "nosuch"],
        ["drift", str(ref), str(cur), "--categorical", "nosuch"],
        ["profile", str(ref), "-o", str(tmp_path / "p.profile"), "--columns", "nosuch"],
    ):
        result = runner.invoke(get_app(), args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and "'nosuch'" in result.stderr
        _lists_the_columns(result.stderr)


def test_long_column_lists_are_shortened() -> None:
    wide = {f"col{i:04d}": np.arange(10.0) for i in range(500)}
    msg = _message(lambda: drift_report(wide, wide, columns=["nosuch"]))
    assert "500 columns" in msg and "'col0000'" in msg and "more" in msg
    assert len(msg) < 1000
