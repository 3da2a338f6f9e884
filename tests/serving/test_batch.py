"""Batch scoring (`predict_file`, `mloop predict`): the model's own predictions, batch by batch, for
Parquet and CSV; bad input named and leaving no output; memory bounded by the batch, not the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.errors import InvalidInputError
from mloop.serving import BatchPredictionStats, predict_file
from mloop.store._open import clear_store_cache

URI = "models:/bc/1"


@pytest.fixture
def model(mloop_home: Path) -> Any:
    """A StandardScaler + LogisticRegression pipeline fitted on the breast-cancer DataFrame,
    registered as bc/1, loaded back."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    mloop.log_model(fitted, "bc", input_example=X.iloc[:5])
    yield mloop.Registry().load(URI)
    clear_store_cache()


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` breast-cancer rows, jittered, with an ``id`` column first."""
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(seed)
    df = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
    df = df * rng.uniform(0.9, 1.1, size=df.shape)
    df.insert(0, "id", np.arange(n, dtype=np.int64))
    return df


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


# ------------------------------------------------------------------------------------ predictions


def test_parquet_predictions_are_the_models_in_batches(model: Any, tmp_path: Path) -> None:
    df = rows(5000)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet",
                   row_group_size=1500)  # fmt: skip
    stats = predict_file(URI, tmp_path / "in.parquet", tmp_path / "out.parquet",
                         batch_size=1234, keep=["id"])  # fmt: skip
    assert isinstance(stats, BatchPredictionStats)
    assert (stats.rows, stats.batches, stats.columns) == (5000, 5, ("id", "prediction"))
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["id", "prediction"]
    assert out["id"].to_pylist() == list(range(5000))
    features = df.drop(columns="id")
    assert np.array_equal(out["prediction"].to_numpy(), model.predict(features))
    assert pq.read_schema(tmp_path / "out.parquet").metadata[b"mloop.model"] == URI.encode()

    # probabilities: one column per class; a loaded model works as well as a URI
    stats = predict_file(model, tmp_path / "in.parquet", tmp_path / "proba.parquet",
                         batch_size=999, method="predict_proba", columns_out="p")  # fmt: skip
    proba = pq.read_table(tmp_path / "proba.parquet")
    assert proba.column_names == ["p_0", "p_1"] and stats.batches == 6
    expected = model.predict(features, method="predict_proba")
    np.testing.assert_allclose(np.column_stack([proba["p_0"], proba["p_1"]]), expected,
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    assert leftovers(tmp_path) == []


def test_csv_predictions_are_the_models(model: Any, tmp_path: Path) -> None:
    df = rows(3000, seed=1)
    df.to_csv(tmp_path / "in.csv", index=False)
    df.to_csv(tmp_path / "in.csv.gz", index=False)
    expected = model.predict(pd.read_csv(tmp_path / "in.csv").drop(columns="id"))
    for name, out_name in (("in.csv", "out.parquet"), ("in.csv.gz", "out.csv")):
        stats = predict_file(URI, tmp_path / name, tmp_path / out_name, batch_size=700,
                             keep=["id"])  # fmt: skip
        assert stats.rows == 3000 and stats.batches == 5
        out = pq.read_table(tmp_path / out_name) if out_name.endswith(".parquet") else None
        got = out.to_pandas() if out is not None else pd.read_csv(tmp_path / out_name)
        assert list(got.columns) == ["id", "prediction"]
        assert np.array_equal(got["id"], np.arange(3000))
        assert np.array_equal(got["prediction"], expected)


def test_csv_columns_are_typed_by_the_signature_not_by_the_first_block(
    mloop_home: Path, tmp_path: Path
) -> None:
    """A streaming CSV reader infers types from its first block: a float column holding only
    whole numbers there would be int64 and fail on a later 1.5. The signature's types are used."""
    train = pd.DataFrame({"a": [0.5, 1.0, 2.5, 4.0], "b": [1.0, 0.0, 2.0, 3.0]})
    mloop.log_model(LinearRegression().fit(train, [1.0, 2.0, 3.0, 5.0]), "lin",
                    input_example=train.iloc[:2])  # fmt: skip
    n = 200_000  # ~1.4 MB of whole numbers: more than the first 1 MB block (batch_size 1000)
    data = pd.DataFrame({"a": np.r_[np.arange(n) % 7, [1.5, 2.25]], "b": np.r_[np.ones(n), 0.5, 3]})
    text = data.astype({"a": object}).copy()
    text.loc[: n - 1, "a"] = (np.arange(n) % 7).astype(str)  # "3", not "3.0"
    text.to_csv(tmp_path / "ints.csv", index=False)
    stats = predict_file("models:/lin/1", tmp_path / "ints.csv", tmp_path / "o.parquet",
                         batch_size=1000)  # fmt: skip
    assert stats.rows == n + 2
    got = pq.read_table(tmp_path / "o.parquet")["prediction"].to_numpy()
    expected = mloop.Registry().load("models:/lin/1").predict(data)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    clear_store_cache()


def test_float_rows_take_the_array_path_only_where_it_predicts_the_same(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scikit-learn model fitted on float64 columns gets each batch as one float64 array; a
    batch that does not fit (an int column) and a model for which an array is not the same (a
    ColumnTransformer picking columns by name) take the DataFrame path, with the same result."""
    from sklearn.compose import ColumnTransformer

    from mloop.serving import _batch

    calls: list[int] = []
    real = _batch._ArrayPath._call

    def spy(self: Any, block: np.ndarray) -> Any:
        calls.append(len(block))
        return real(self, block)

    monkeypatch.setattr(_batch._ArrayPath, "_call", spy)
    df = rows(3000, seed=7)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "f.parquet")
    predict_file(URI, tmp_path / "f.parquet", tmp_path / "o.parquet", batch_size=1000)
    assert calls == [256, 1000, 1000, 1000]  # checked on the first rows, then every batch
    got = pq.read_table(tmp_path / "o.parquet")["prediction"].to_numpy()
    assert np.array_equal(got, model.predict(df.drop(columns="id")))

    calls.clear()
    ints = df.astype({"mean area": "int64"})  # int64 -> float64 is a cast the signature allows
    pq.write_table(pa.Table.from_pandas(ints, preserve_index=False), tmp_path / "i.parquet")
    predict_file(URI, tmp_path / "i.parquet", tmp_path / "o.parquet", batch_size=1000)
    assert calls == []
    got = pq.read_table(tmp_path / "o.parquet")["prediction"].to_numpy()
    assert np.array_equal(got, model.predict(ints.drop(columns="id").astype("float64")))

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    by_name = ColumnTransformer([("s", StandardScaler(), ["mean radius", "worst area"])])
    picky = make_pipeline(by_name, LogisticRegression()).fit(X, y)
    mloop.log_model(picky, "picky", input_example=X.iloc[:5])
    calls.clear()
    predict_file("models:/picky/1", tmp_path / "f.parquet", tmp_path / "p.parquet", batch_size=1000)
    assert calls == [256]  # tried once: an array has no names to pick by, so it failed
    got = pq.read_table(tmp_path / "p.parquet")["prediction"].to_numpy()
    assert np.array_equal(got, picky.predict(df.drop(columns="id")))


def test_an_empty_input_gives_an_empty_output(model: Any, tmp_path: Path) -> None:
    empty = pa.Table.from_pandas(rows(3).iloc[:0], preserve_index=False)
    pq.write_table(empty, tmp_path / "none.parquet")
    stats = predict_file(URI, tmp_path / "none.parquet", tmp_path / "o.parquet", keep=["id"])
    assert (stats.rows, stats.columns) == (0, ("id", "prediction"))
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 0


def test_url_input_and_output(model: Any, tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    df = rows(500, seed=3)
    with fs.open("/h3-batch/in.parquet", "wb") as f:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f)
    try:
        stats = predict_file(URI, "memory://h3-batch/in.parquet", "memory://h3-batch/out.parquet")
        assert stats.rows == 500
        with fs.open("/h3-batch/out.parquet", "rb") as f:
            got = pq.read_table(f)["prediction"].to_numpy()
        assert np.array_equal(got, model.predict(df.drop(columns="id")))
    finally:
        fs.rm("/h3-batch", recursive=True)


# ------------------------------------------------------------------------------------ bad input


def test_a_bad_column_is_named_and_no_partial_output_is_written(model: Any, tmp_path: Path) -> None:
    df = rows(5000)
    df.loc[3500, "mean radius"] = np.nan  # in the 4th batch: three were predicted already
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "nulls.parquet")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"the previous output")
    with pytest.raises(InvalidInputError) as err:
        predict_file(URI, tmp_path / "nulls.parquet", out, batch_size=1000)
    assert "'mean radius'" in err.value.message and "rows 3000-3999" in err.value.message
    assert err.value.details["problems"][0]["column"] == "mean radius"
    assert out.read_bytes() == b"the previous output"  # untouched: replaced only on success
    assert leftovers(tmp_path) == []

    typed = df.fillna(1.0).astype({"mean texture": str})
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), tmp_path / "typed.parquet")
    with pytest.raises(InvalidInputError, match=r"column 'mean texture' must be float64; got"):
        predict_file(URI, tmp_path / "typed.parquet", tmp_path / "typed-out.parquet")
    missing = df.drop(columns=["worst area"])
    pq.write_table(pa.Table.from_pandas(missing, preserve_index=False), tmp_path / "miss.parquet")
    with pytest.raises(InvalidInputError, match=r"\['worst area'\] are missing"):
        predict_file(URI, tmp_path / "miss.parquet", tmp_path / "miss-out.parquet")
    with pytest.raises(InvalidInputError, match=r"`keep` names column\(s\) \['nope'\]"):
        predict_file(URI, tmp_path / "typed.parquet", tmp_path / "k.parquet", keep=["nope"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "miss.parquet", "mloop-home", "nulls.parquet", "out.parquet", "typed.parquet"
    ]  # fmt: skip


def test_a_bad_csv_value_after_the_first_block_names_the_column(model: Any, tmp_path: Path) -> None:
    df = rows(6000, seed=2).astype({"mean smoothness": object})
    df.loc[5500, "mean smoothness"] = "n/a?"  # past the first 1 MB block
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InvalidInputError) as err:
        predict_file(URI, tmp_path / "bad.csv", tmp_path / "out.csv", batch_size=1000)
    message = err.value.message
    assert "column 'mean smoothness' cannot be read as float64" in message and "'n/a?'" in message
    assert err.value.details["problems"] == [{"column": "mean smoothness", "problem": "dtype"}]
    assert not (tmp_path / "out.csv").exists() and leftovers(tmp_path) == []


def test_options_are_checked_before_anything_is_read(model: Any, tmp_path: Path) -> None:
    for kwargs, match in (
        ({"batch_size": 0}, r"`batch_size` must be an int in \[1, "),
        ({"batch_size": True}, r"`batch_size` must be an int"),
        ({"keep": "id"}, r"`keep` must be a list of column names"),
        ({"columns_out": "1x"}, r"`columns_out` must be a column name"),
    ):
        with pytest.raises(InvalidInputError, match=match):
            predict_file(URI, tmp_path / "nothing.parquet", tmp_path / "o.parquet", **kwargs)
    with pytest.raises(InvalidInputError, match=r"`output` must end in .parquet, .pq or .csv"):
        predict_file(URI, tmp_path / "nothing.parquet", tmp_path / "o.json")
    with pytest.raises(InvalidInputError, match=r"folder .* does not exist"):
        predict_file(URI, tmp_path / "nothing.parquet", tmp_path / "no" / "o.parquet")
    with pytest.raises(InvalidInputError, match=r"`input` file .*nothing.parquet' does not exist"):
        predict_file(URI, tmp_path / "nothing.parquet", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


# ------------------------------------------------------------------------------------ memory

MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile, tracemalloc
    import pyarrow as pa, pyarrow.parquet as pq
    import mloop
    from mloop.serving import predict_file

    model = mloop.Registry().load(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports and first-use caches
        first = pq.ParquetFile(sys.argv[2]).read_row_group(0).slice(0, 10)
        pq.write_table(first, os.path.join(tmp, "w.parquet"))
        predict_file(model, os.path.join(tmp, "w.parquet"), os.path.join(tmp, "o.parquet"))
    tracemalloc.start()
    stats = predict_file(model, sys.argv[2], sys.argv[3], batch_size=int(sys.argv[4]))
    print(json.dumps({"rows": stats.rows, "arrow_peak": pa.default_memory_pool().max_memory(),
                      "python_peak": tracemalloc.get_traced_memory()[1]}))
    """
)


def peak_bytes(path: Path, out: Path, batch_size: int) -> dict[str, int]:
    """Peak Arrow memory (its pool) and peak Python/numpy memory (tracemalloc) of one
    ``predict_file`` in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, URI, str(path), str(out), str(batch_size)],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_peak_memory_is_bounded_by_the_batch_not_the_file(model: Any, tmp_path: Path) -> None:
    n = 320_000  # 31 columns of 8 bytes: 79 MB in memory, in row groups of 10,000 rows
    table = pa.Table.from_pandas(rows(n, seed=4), preserve_index=False)
    whole = table.nbytes
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=10_000)
    del table
    small = peak_bytes(tmp_path / "big.parquet", tmp_path / "o1.parquet", 5_000)
    large = peak_bytes(tmp_path / "big.parquet", tmp_path / "o2.parquet", 60_000)
    assert small["rows"] == large["rows"] == n
    total = {k: p["arrow_peak"] + p["python_peak"] for k, p in (("small", small), ("large", large))}
    batch_bytes = whole // n * 5_000  # 1.2 MB
    # about a row group (2.5 MB decoded) and a few copies of a batch, never the file
    assert total["small"] < min(whole / 4, 12 * batch_bytes), (total, whole)
    assert total["large"] < 6 * 12 * batch_bytes, (total, whole)  # 12 times the rows
    assert total["large"] > 3 * total["small"], total  # memory follows the batch


# ------------------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_predict(model: Any, tmp_path: Path) -> None:
    df = rows(800, seed=5)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    res = runner.invoke(get_app(), ["predict", URI, "-i", str(tmp_path / "in.parquet"),
                                    "-o", str(tmp_path / "out.parquet"), "--keep", "id",
                                    "--batch-size", "300", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["rows"], summary["batches"], summary["columns"]) == (
        800,
        3,
        ["id", "prediction"],
    )
    out = pq.read_table(tmp_path / "out.parquet")
    assert np.array_equal(out["prediction"].to_numpy(), model.predict(df.drop(columns="id")))
    res = runner.invoke(get_app(), ["predict", URI, "-i", str(tmp_path / "in.parquet"),
                                    "-o", str(tmp_path / "p.csv"), "-m", "predict_proba"])  # fmt: skip
    assert res.exit_code == 0 and "wrote 800 predictions" in res.stdout, res.output
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["prediction_0", "prediction_1"]


def test_cli_predict_bad_input_as_a_subprocess(model: Any, tmp_path: Path) -> None:
    df = rows(100, seed=6).drop(columns="mean area")
    df.to_csv(tmp_path / "in.csv", index=False)
    mloop_bin = Path(sys.executable).parent / "mloop"
    proc = subprocess.run(
        [str(mloop_bin), "predict", URI, "-i", str(tmp_path / "in.csv"),
         "-o", str(tmp_path / "out.parquet")],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "['mean area'] are missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.parquet").exists()
