"""Every API that takes a table accepts every kind of table, and gives the same result for each.

One table (a reference and a current window of a scored binary model) is written as every input
kind the reader accepts; each kind is fed to drift_report, Profile.from_data, quality_report,
Monitor, estimate_performance (CBPE), dataset versions and model input checks, and each result is
compared with the result for a plain dict of numpy arrays. Anything that is not a table gets the
same error from every one of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from mloop.artifacts import dataset_digest, to_arrow_table
from mloop.errors import InvalidInputError
from mloop.monitoring import Monitor, Profile, drift_report, estimate_performance, quality_report
from mloop.registry._signature import infer_signature, validate_input

N_REF, N_CUR = 600, 400


def _columns(n: int, seed: int, shift: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = np.round(rng.random(n), 6)
    return {
        "x": np.round(rng.normal(shift, 1.0, n), 6),
        "n": rng.poisson(3 + shift, n).astype(np.int64),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "proba": proba,
        "pred": (proba >= 0.5).astype(np.int64),
        "label": (rng.random(n) < proba).astype(np.int64),
    }


REF = _columns(N_REF, 0, 0.0)
CUR = _columns(N_CUR, 1, 0.4)


def _as(kind: str, cols: dict[str, np.ndarray], folder: Path) -> Any:
    df = pd.DataFrame(cols)
    table = pa.table(cols)
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "dict":
        return cols
    if kind == "dict_of_lists":
        return {k: v.tolist() for k, v in cols.items()}
    if kind == "records":
        return df.to_dict(orient="records")
    if kind == "structured":
        rec = np.zeros(len(df), dtype=[(k, v.dtype) for k, v in cols.items()])
        for k, v in cols.items():
            rec[k] = v
        return rec
    if kind == "pandas":
        return df
    if kind == "polars":
        return pl.DataFrame(cols)
    if kind == "arrow":
        return table
    if kind == "record_batch":
        return table.to_batches()[0]
    if kind == "dataset":
        return ds.dataset(table)
    if kind == "parquet":
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=128)
        return folder / f"{name}.parquet"
    if kind == "parquet_folder":
        (folder / name).mkdir()
        for i, start in enumerate(range(0, len(df), 250)):
            pq.write_table(table.slice(start, 250), folder / name / f"part-{i}.parquet")
        return str(folder / name)
    if kind == "csv":
        df.to_csv(folder / f"{name}.csv", index=False)
        return str(folder / f"{name}.csv")
    if kind == "jsonl":
        lines = "".join(json.dumps(r) + "\n" for r in df.to_dict(orient="records"))
        (folder / f"{name}.jsonl").write_text(lines)
        return folder / f"{name}.jsonl"
    if kind == "feather":
        feather.write_feather(table, folder / f"{name}.feather")
        return folder / f"{name}.feather"
    if kind == "memory_url":
        url = f"memory://every-api/{name}.parquet"
        with fsspec.open(url, "wb") as f:
            pq.write_table(table, f, row_group_size=100)
        return url
    raise AssertionError(kind)


KINDS = [
    "dict",
    "dict_of_lists",
    "records",
    "structured",
    "pandas",
    "polars",
    "arrow",
    "record_batch",
    "dataset",
    "parquet",
    "parquet_folder",
    "csv",
    "jsonl",
    "feather",
    "memory_url",
]


def _profile_facts(p: Profile) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = [("", "n_rows", p.n_rows)]
    for name, col in p.columns.items():
        for key, value in vars(col).items():
            out.append((name, key, value.tolist() if isinstance(value, np.ndarray) else value))
    return out


def _drift(ref: Any, cur: Any) -> Any:
    return drift_report(ref, cur, columns=["x", "n", "plan"]).to_dict()


def _profile(ref: Any, cur: Any) -> Any:
    return _profile_facts(Profile.from_data(ref, categorical=["pred"]))


def _quality(ref: Any, cur: Any) -> Any:
    return quality_report(ref, cur).to_dict()


def _monitor(ref: Any, cur: Any) -> Any:
    mon = Monitor(ref, window_rows=150, y_true="label", y_pred="pred", y_score="proba")
    return [r.to_dict() for r in [*mon.update(cur), *mon.flush()]]


def _performance(ref: Any, cur: Any) -> Any:
    return estimate_performance(ref, cur, y_true="label", y_score="proba", y_pred="pred").to_dict()


def _dataset(ref: Any, cur: Any) -> Any:
    return dataset_digest(to_arrow_table(ref))


def _model_input(ref: Any, cur: Any) -> Any:
    signature = infer_signature(ref)
    specs = [(c.name, c.dtype, c.nullable) for c in signature.inputs.specs]  # type: ignore[union-attr]
    fed = validate_input(cur, signature, to="dict")
    return specs, {k: np.asarray(v).tolist() for k, v in fed.items()}


APIS: dict[str, Callable[[Any, Any], Any]] = {
    "drift_report": _drift,
    "Profile.from_data": _profile,
    "quality_report": _quality,
    "Monitor": _monitor,
    "estimate_performance": _performance,
    "dataset version": _dataset,
    "model input": _model_input,
}


@pytest.fixture(scope="module", autouse=True)
def _forget_memory_files() -> Iterator[None]:
    yield
    memory = fsspec.filesystem("memory")
    if memory.exists("/every-api"):
        memory.rm("/every-api", recursive=True)


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return {name: api(REF, CUR) for name, api in APIS.items()}


@pytest.mark.parametrize("api", list(APIS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_api_gives_the_same_result_for_every_kind(
    kind: str, api: str, expected: dict[str, Any], tmp_path: Path
) -> None:
    ref, cur = _as(kind, REF, tmp_path), _as(kind, CUR, tmp_path)
    assert APIS[api](ref, cur) == expected[api]


def test_the_expected_results_are_not_trivial(expected: dict[str, Any]) -> None:
    assert expected["drift_report"]["columns"]["x"]["drifted"]  # the shift is seen
    assert len(expected["Monitor"]) == 3 and expected["Monitor"][0]["performance"] is not None
    assert expected["estimate_performance"]["n"] == N_CUR
    assert [name for name, _, _ in expected["model input"][0]] == list(REF)


@pytest.mark.parametrize(
    "api",
    [
        lambda bad: drift_report(bad, CUR),
        lambda bad: Profile.from_data(bad),
        lambda bad: quality_report(bad, CUR),
        lambda bad: Monitor(bad, window_rows=10),
        lambda bad: estimate_performance(bad, CUR, y_true="label", y_score="proba"),
        lambda bad: to_arrow_table(bad),
    ],
    ids=["drift", "profile", "quality", "monitor", "performance", "dataset"],
)
def test_what_is_not_a_table_gets_the_same_error_everywhere(api: Callable[[Any], Any]) -> None:
    for bad, got in ((42, "got int."), (pd.Series([1.0]), "got pandas.Series of shape (1,).")):
        with pytest.raises(InvalidInputError) as info:
            api(bad)
        message = info.value.message
        assert "must be a pandas or polars DataFrame, a pyarrow Table, RecordBatch or" in message
        assert got in message
