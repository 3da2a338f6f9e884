"""Dataset versions: one digest for the same data whatever its source, Parquet storage on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _artifact_keys import all_keys
from mloop.artifacts import BlobStore, dataset_digest, load_dataset, store_dataset, to_arrow_table
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store._entities import DatasetVersion

N = 1000


@pytest.fixture
def columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "id": np.arange(N, dtype=np.int64),
        "x": rng.normal(size=N),
        "label": rng.integers(0, 2, size=N).astype(bool),
        "city": np.array(["paris", "lyon", "nice", "caen"])[rng.integers(0, 4, size=N)],
    }


def _all_sources(columns: dict[str, np.ndarray], tmp_path: Path) -> dict[str, object]:
    df = pd.DataFrame(columns)
    table = pa.table(columns)
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=100)
    df.to_csv(tmp_path / "d.csv", index=False)
    with open(tmp_path / "d.jsonl", "w") as f:
        for row in df.to_dict(orient="records"):
            f.write(json.dumps(row) + "\n")
    (tmp_path / "d.json").write_text(json.dumps(df.to_dict(orient="records")))
    return {
        "dict": columns,
        "pandas": df,
        "pandas_shuffled_index": df.set_axis(np.arange(N)[::-1] * 3),
        "polars": pl.DataFrame(columns),
        "polars_categorical": pl.DataFrame(columns).with_columns(
            pl.col("city").cast(pl.Categorical)
        ),
        "arrow": table,
        "arrow_rechunked": pa.concat_tables(
            [table.slice(0, 1), table.slice(1, 500), table.slice(501)]
        ),
        "arrow_string_view": table.set_column(3, "city", table["city"].cast(pa.string_view())),
        "record_batch": table.combine_chunks().to_batches()[0],
        "parquet": tmp_path / "d.parquet",
        "parquet_str": str(tmp_path / "d.parquet"),
        "csv": tmp_path / "d.csv",
        "jsonl": tmp_path / "d.jsonl",
        "json_array": tmp_path / "d.json",
    }


def test_same_data_same_digest_from_every_source(
    columns: dict[str, np.ndarray], tmp_path: Path
) -> None:
    digests = {
        name: dataset_digest(to_arrow_table(src))
        for name, src in _all_sources(columns, tmp_path).items()
    }
    assert len(set(digests.values())) == 1, digests
    schema = to_arrow_table(columns).schema
    assert [str(t) for t in schema.types] == ["int64", "double", "bool", "large_string"]


def test_digest_changes_with_the_data(columns: dict[str, np.ndarray]) -> None:
    base = dataset_digest(to_arrow_table(columns))
    x2 = columns["x"].copy()
    x2[500] = np.nextafter(x2[500], np.inf)  # one ulp in one cell
    variants = {
        "value": {**columns, "x": x2},
        "renamed": {"ID": columns["id"], **{k: v for k, v in columns.items() if k != "id"}},
        "reordered": dict(reversed(columns.items())),
        "dtype": {**columns, "id": columns["id"].astype(np.int32)},
        "fewer_rows": {k: v[:-1] for k, v in columns.items()},
        "row_order": {k: v[::-1] for k, v in columns.items()},
    }
    digests = {name: dataset_digest(to_arrow_table(v)) for name, v in variants.items()}
    assert base not in digests.values()
    assert len(set(digests.values())) == len(variants)


def test_nulls_are_content_and_garbage_under_them_is_not() -> None:
    with_null = pa.table({"a": pa.array([1, None, 3], pa.int64())})
    zero = pa.table({"a": pa.array([1, 0, 3], pa.int64())})
    assert dataset_digest(with_null) != dataset_digest(zero)
    # Same logical column, different bytes under the null slot.
    buf = pa.py_buffer(np.array([1, 12345, 3], dtype=np.int64).tobytes())
    validity = pa.array([True, False, True]).buffers()[1]
    garbage = pa.Array.from_buffers(pa.int64(), 3, [validity, buf], null_count=1)
    assert garbage.to_pylist() == [1, None, 3]
    assert dataset_digest(pa.table({"a": garbage})) == dataset_digest(with_null)
    # pandas nullable and polars give the same
    assert dataset_digest(to_arrow_table(pd.DataFrame({"a": pd.array([1, None, 3], "Int64")}))) == (
        dataset_digest(with_null)
    )
    assert dataset_digest(to_arrow_table(pl.DataFrame({"a": [1, None, 3]}))) == dataset_digest(
        with_null
    )
    s_null = pa.table({"s": ["x", None]})
    assert dataset_digest(s_null) != dataset_digest(pa.table({"s": ["x", ""]}))


def test_pandas_index_only_matters_when_named(columns: dict[str, np.ndarray]) -> None:
    df = pd.DataFrame(columns)
    assert dataset_digest(to_arrow_table(df)) == dataset_digest(
        to_arrow_table(df.iloc[::-1].iloc[::-1])
    )
    indexed = df.set_index("id")
    table = to_arrow_table(indexed)
    assert "id" in table.column_names
    assert table.schema.metadata is None
    assert dataset_digest(table) == dataset_digest(to_arrow_table(indexed.reset_index()))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([1, 2, 3], r"^`data` must be a pandas or polars DataFrame, .*; got list\.$"),
        (np.zeros((3, 2)), r"`data` is a 2-D numpy array of shape \(3, 2\) without column names"),
        (42, r"^`data` must be a pandas or polars DataFrame, .*; got int\.$"),
        ({"a": np.zeros((2, 2))}, r"`data\['a'\]` must be a 1-D array; got shape \(2, 2\)"),
        ({"a": np.zeros(2), "b": np.zeros(3)}, "same length; got 2 rows in 'a' and 3 in 'b'"),
        ({"a": np.array(["x", 1], dtype=object)}, "column 'a' of `data` mixes values"),
        ("no/such/file.parquet", r"`data` file 'no/such/file\.parquet' does not exist"),
    ],
)
def test_unsupported_input(data: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        to_arrow_table(data)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "d.xlsx").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"expected a \.parquet, .*; got '\.xlsx'"):
        to_arrow_table(tmp_path / "d.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="the Parquet file is truncated or corrupt"):
        to_arrow_table(tmp_path / "bad.parquet")
    with pytest.raises(InvalidInputError, match=r"collect\(\)"):
        to_arrow_table(pl.DataFrame({"a": [1]}).lazy())
    clash = pd.DataFrame({"id": [1, 2]}, index=pd.Index([3, 4], name="id"))
    with pytest.raises(InvalidInputError, match="index names must differ"):
        to_arrow_table(clash)


def test_names_that_are_not_str_become_str() -> None:
    # the reader's convention, the same for every API: pandas' default labels 0, 1 are "0", "1"
    table = to_arrow_table(pd.DataFrame(np.arange(4).reshape(2, 2)))
    assert table.column_names == ["0", "1"]
    assert dataset_digest(table) == dataset_digest(to_arrow_table({"0": [0, 2], "1": [1, 3]}))
    with pytest.raises(InvalidInputError, match="column names must be unique"):
        to_arrow_table({1: [1], "1": [2]})


def test_url_sources_are_read_and_kept_as_the_source(
    blobstore: BlobStore, columns: dict[str, np.ndarray]
) -> None:
    import fsspec

    url = "memory://datasets-test/train.parquet"
    with fsspec.open(url, "wb") as f:
        pq.write_table(pa.table(columns), f)
    try:
        v = store_dataset(blobstore, url, name="train")
        assert v.source_uri == url
        assert v.sha256 == dataset_digest(to_arrow_table(columns))
    finally:
        fsspec.filesystem("memory").rm("/datasets-test", recursive=True)


def test_store_and_load(
    blobstore: BlobStore, columns: dict[str, np.ndarray], tmp_path: Path
) -> None:
    v = store_dataset(blobstore, pd.DataFrame(columns), name="train")
    assert isinstance(v, DatasetVersion)
    assert v.sha256 == dataset_digest(to_arrow_table(columns))
    assert v.num_rows == N and v.profile is None and v.source_uri is None
    assert dict(v.schema) == {"id": "int64", "x": "double", "label": "bool", "city": "large_string"}
    if blobstore.uri.startswith("http://"):  # the server's own URL for the file
        assert v.storage_uri == f"{blobstore.uri}/api/v1/datasets/{v.sha256}/parquet"
    else:
        assert v.storage_uri == f"{blobstore.uri}/datasets/{v.sha256}.parquet"
    with blobstore._open_key(f"datasets/{v.sha256}.parquet") as f:
        assert pq.read_metadata(f).row_group(0).column(0).compression == "ZSTD"

    table = load_dataset(blobstore, v.sha256, verify=True)
    assert table.equals(to_arrow_table(columns))

    # the same data again, from another source: one dataset version, nothing rewritten
    pq.write_table(pa.table(columns), tmp_path / "d.parquet")
    v2 = store_dataset(blobstore, tmp_path / "d.parquet", name="train-again")
    assert (v2.sha256, v2.storage_uri) == (v.sha256, v.storage_uri)
    assert v2.source_uri == (tmp_path / "d.parquet").as_uri()
    assert all_keys(blobstore) == [f"datasets/{v.sha256}.parquet"]

    other = store_dataset(blobstore, {"a": np.arange(3)}, name="other", source_uri="s3://x/y")
    assert other.sha256 != v.sha256 and other.source_uri == "s3://x/y"


def test_load_missing_and_name_validation(blobstore: BlobStore) -> None:
    with pytest.raises(NotFoundError, match="0" * 64):
        load_dataset(blobstore, "0" * 64)
    with pytest.raises(InvalidInputError, match="sha256"):
        load_dataset(blobstore, "../x")
    with pytest.raises(InvalidInputError, match="`name`"):
        store_dataset(blobstore, {"a": [1]}, name="")
