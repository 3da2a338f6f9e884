"""Every accepted kind of table reads to the same pyarrow Table; everything else gets one error."""

from __future__ import annotations

import doctest
import gzip
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
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

from mloop import tables
from mloop.errors import InvalidInputError
from mloop.tables import column_names, is_table, iter_batches, read_table, table_kind

N = 50
EXPECTED = pa.table(
    {
        "id": pa.array(np.arange(N), pa.int64()),
        "x": pa.array(np.linspace(0.0, 1.0, N)),
        "city": pa.array([["paris", "lyon", "nice"][i % 3] for i in range(N)], pa.large_string()),
    }
)


def _columns() -> dict[str, np.ndarray]:
    return {
        "id": np.arange(N, dtype=np.int64),
        "x": np.linspace(0.0, 1.0, N),
        "city": np.array([["paris", "lyon", "nice"][i % 3] for i in range(N)]),
    }


def _memory_url(name: str) -> str:
    return f"memory://tables-test/{uuid.uuid4().hex}/{name}"


@pytest.fixture(scope="module", autouse=True)
def _forget_memory_files() -> Iterator[None]:
    yield
    memory = fsspec.filesystem("memory")
    if memory.exists("/tables-test"):
        memory.rm("/tables-test", recursive=True)


def _write(kind: str, tmp_path: Path) -> Any:
    """The same table as the input ``kind``."""
    cols = _columns()
    df = pd.DataFrame(cols)
    table = pa.table(cols)
    if kind == "pandas":
        return df
    if kind == "pandas_shuffled_index":
        return df.set_axis(np.arange(N)[::-1] * 3)
    if kind == "polars":
        return pl.DataFrame(cols)
    if kind == "arrow":
        return table
    if kind == "record_batch":
        return table.to_batches()[0]
    if kind == "dataset":
        return ds.dataset(table)
    if kind == "structured":
        rec = np.zeros(N, dtype=[("id", "i8"), ("x", "f8"), ("city", "U5")])
        for name, values in cols.items():
            rec[name] = values
        return rec
    if kind == "dict":
        return cols
    if kind == "dict_of_lists":
        return {k: v.tolist() for k, v in cols.items()}
    if kind == "records":
        return df.to_dict(orient="records")
    if kind == "parquet":
        pq.write_table(table, tmp_path / "t.parquet", row_group_size=7)
        return tmp_path / "t.parquet"
    if kind == "parquet_str":
        pq.write_table(table, tmp_path / "t.pq")
        return str(tmp_path / "t.pq")
    if kind == "parquet_from_pandas_with_index":  # pandas writes the unnamed index as a column
        df.set_axis(np.arange(N) * 2).to_parquet(tmp_path / "t.parquet")
        return tmp_path / "t.parquet"
    if kind == "folder":
        (tmp_path / "parts").mkdir()
        for i, start in enumerate(range(0, N, 20)):
            pq.write_table(table.slice(start, 20), tmp_path / "parts" / f"part-{i}.parquet")
        return tmp_path / "parts"
    if kind == "csv":
        df.to_csv(tmp_path / "t.csv", index=False)
        return tmp_path / "t.csv"
    if kind == "tsv":
        df.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
        return tmp_path / "t.tsv"
    if kind == "csv_gz":
        with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
            df.to_csv(f, index=False)
        return tmp_path / "t.csv.gz"
    if kind == "jsonl":
        lines = "".join(json.dumps(r) + "\n" for r in df.to_dict(orient="records"))
        (tmp_path / "t.jsonl").write_text(lines)
        return tmp_path / "t.jsonl"
    if kind == "json_array":
        (tmp_path / "t.json").write_text(json.dumps(df.to_dict(orient="records")))
        return tmp_path / "t.json"
    if kind == "feather":
        feather.write_feather(table, tmp_path / "t.feather")
        return tmp_path / "t.feather"
    if kind == "file_url":
        pq.write_table(table, tmp_path / "u.parquet")
        return (tmp_path / "u.parquet").as_uri()
    if kind == "memory_url_parquet":
        url = _memory_url("t.parquet")
        with fsspec.open(url, "wb") as f:
            pq.write_table(table, f, row_group_size=9)
        return url
    if kind == "memory_url_csv":
        url = _memory_url("t.csv")
        with fsspec.open(url, "w") as f:
            df.to_csv(f, index=False)
        return url
    if kind == "memory_url_folder":
        url = _memory_url("parts")
        for i, start in enumerate(range(0, N, 30)):
            with fsspec.open(f"{url}/part-{i}.parquet", "wb") as f:
                pq.write_table(table.slice(start, 30), f)
        return url
    raise AssertionError(kind)


KINDS = [
    "pandas",
    "pandas_shuffled_index",
    "polars",
    "arrow",
    "record_batch",
    "dataset",
    "structured",
    "dict",
    "dict_of_lists",
    "records",
    "parquet",
    "parquet_str",
    "parquet_from_pandas_with_index",
    "folder",
    "csv",
    "tsv",
    "csv_gz",
    "jsonl",
    "json_array",
    "feather",
    "file_url",
    "memory_url_parquet",
    "memory_url_csv",
    "memory_url_folder",
]


def _same(table: pa.Table) -> None:
    assert table.column_names == EXPECTED.column_names
    assert table.schema.metadata is None
    for name in EXPECTED.column_names:
        got = table.column(name).cast(EXPECTED.schema.field(name).type)
        assert got.to_pylist() == EXPECTED.column(name).to_pylist(), name


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_reads_to_the_same_table(kind: str, tmp_path: Path) -> None:
    obj = _write(kind, tmp_path)
    assert is_table(obj)
    _same(read_table(obj))
    assert column_names(obj) == EXPECTED.column_names
    picked = read_table(obj, columns=["city", "id"])
    assert picked.column_names == ["city", "id"]
    assert picked.column("id").to_pylist() == list(range(N))
    batches = list(iter_batches(obj, batch_rows=16))
    assert [b.num_rows for b in batches if b.num_rows] and all(b.num_rows <= 16 for b in batches)
    _same(pa.Table.from_batches(batches))
    picked_batches = list(iter_batches(obj, columns=["x"], batch_rows=16))
    assert {tuple(b.schema.names) for b in picked_batches} == {("x",)}
    assert sum(b.num_rows for b in picked_batches) == N


def test_kinds_are_recognised_by_isinstance() -> None:
    assert table_kind(pd.DataFrame({"a": [1]})) == "pandas"
    assert table_kind(pl.DataFrame({"a": [1]})) == "polars"
    assert table_kind(pa.table({"a": [1]})) == "arrow"
    assert table_kind(ds.dataset(pa.table({"a": [1]}))) == "dataset"
    assert table_kind(np.zeros((2, 2))) == "numpy"
    assert table_kind(np.zeros(2, dtype=[("a", "f8")])) == "numpy"
    assert table_kind({"a": [1]}) == "mapping"
    assert table_kind([{"a": 1}]) == "records"
    assert table_kind("x.parquet") == table_kind(Path("x.parquet")) == "path"
    for not_table in (np.zeros(3), np.zeros((2, 2, 2)), [], [1, 2], 42, None, pd.Series([1])):
        assert table_kind(not_table) is None and not is_table(not_table)

    class DataFrame:  # a class named like pandas' is not pandas'
        columns = ["a"]

    assert table_kind(DataFrame()) is None


def test_the_reader_works_without_pandas_and_polars(tmp_path: Path) -> None:
    """pandas and polars are optional: with neither importable, every other kind still reads."""
    pq.write_table(EXPECTED, tmp_path / "t.parquet")
    code = (
        "import sys\n"
        "class Absent:  # as if neither were installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('pandas', 'polars'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import numpy as np, pyarrow as pa\n"
        "from mloop import tables\n"
        "assert tables.read_table({'a': np.arange(3)}).num_rows == 3\n"
        f"assert tables.read_table({str(tmp_path / 't.parquet')!r}).num_rows == {N}\n"
        "assert [b.num_rows for b in tables.iter_batches([{'a': 1}])] == [1]\n"
        "assert not tables.is_table(42) and tables.table_kind(pa.table({'a': [1]})) == 'arrow'\n"
        "try:\n"
        "    tables.read_table(42)\n"
        "except ValueError as exc:\n"
        "    assert 'got int' in str(exc)\n"
        "assert 'pandas' not in sys.modules and 'polars' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_pandas_conventions() -> None:
    df = pd.DataFrame({"a": [1.0, np.nan], 0: ["x", None]})
    t = read_table(df)
    assert t.column_names == ["a", "0"]  # names become str
    assert t.column("a").null_count == 1  # pandas' NaN is missing
    indexed = pd.DataFrame({"v": [1, 2]}, index=pd.Index([7, 8], name="id"))
    assert read_table(indexed).column_names == ["id", "v"]  # a named index is data
    assert read_table(indexed).column("id").to_pylist() == [7, 8]
    assert column_names(indexed) == ["id", "v"]
    assert read_table(indexed, columns=["v"]).column_names == ["v"]
    cat = read_table(pd.DataFrame({"c": pd.Categorical(["b", "a", "b"])}))
    assert pa.types.is_dictionary(cat.schema.field("c").type)
    nullable = read_table(pd.DataFrame({"n": pd.array([1, None], "Int64")}))
    assert nullable.column("n").type == pa.int64() and nullable.column("n").null_count == 1
    with pytest.raises(InvalidInputError, match="index names must differ"):
        read_table(pd.DataFrame({"id": [1]}, index=pd.Index([3], name="id")))
    with pytest.raises(InvalidInputError, match=r"must be unique; got \['1'\]"):
        read_table(pd.DataFrame([[1, 2]], columns=[1, "1"]))


def test_numpy_conventions() -> None:
    t = read_table({"f": np.array([1.0, np.nan]), "o": np.array(["a", None], dtype=object)})
    assert t.column("f").null_count == 0 and np.isnan(t.column("f").to_pylist()[1])  # NaN stays
    assert t.column("o").null_count == 1  # None in an object array is missing
    assert read_table(np.arange(6).reshape(3, 2), columns=["a", "b"]).to_pydict() == {
        "a": [0, 2, 4],
        "b": [1, 3, 5],
    }
    with pytest.raises(InvalidInputError, match=r"2-D numpy array of shape \(3, 2\) without"):
        read_table(np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match=r"2-D numpy array of shape \(3, 2\) without"):
        column_names(np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match=r"must name every column .* \(2\); got 3 names"):
        read_table(np.zeros((3, 2)), columns=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="structured array must be 1-D"):
        read_table(np.zeros((2, 2), dtype=[("a", "f8")]))
    assert read_table({1: [1, 2]}).column_names == ["1"]
    assert read_table({}).num_rows == 0


def test_records_union_their_keys_and_keep_types() -> None:
    t = read_table([{"a": 1, "s": "x"}, {"a": 2.5, "b": True}])
    assert t.column_names == ["a", "s", "b"]
    assert t.to_pydict() == {"a": [1.0, 2.5], "s": ["x", None], "b": [None, True]}


def test_mixed_columns_are_an_error_or_labelled_text() -> None:
    values = np.array(["a", 7, 2.0, None, True], dtype=object)
    for data in (
        {"m": values},
        pd.DataFrame({"m": values, "ok": range(5)}),
        [{"m": 1}, {"m": "a"}],
    ):
        with pytest.raises(InvalidInputError, match="column 'm' of `data` mixes values of"):
            read_table(data)
    t = read_table({"m": values, "n": np.arange(5)}, mixed="text")
    assert t.column("m").to_pylist() == ["a", "7", "2", None, "True"]
    assert tables.is_mixed(t.schema.field("m")) and not tables.is_mixed(t.schema.field("n"))
    df = read_table(pd.DataFrame({"m": values, "n": np.arange(5)}), mixed="text")
    assert df.column("m").to_pylist() == ["a", "7", "2", None, "True"]
    assert tables.is_mixed(df.schema.field("m"))


def test_string_views_become_large_strings() -> None:
    t = pa.table({"s": pa.array(["a", "b"]).cast(pa.string_view())})
    assert read_table(t).schema.field("s").type == pa.large_string()


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("obj", "hint"),
    [
        (42, r"got int\.$"),
        ([1, 2, 3], r"got list\.$"),
        (np.arange(3), r"got numpy\.ndarray of shape \(3,\)\. Pass a structured array"),
        (pd.Series([1, 2]), r"got pandas\.Series of shape \(2,\)\. Make it a one-column frame"),
        (pl.DataFrame({"a": [1]}).lazy(), r"LazyFrame\. Collect it first: `lazy_frame\.collect"),
        (None, r"got NoneType\.$"),
    ],
)
def test_what_is_not_a_table_gets_one_error(obj: Any, hint: str) -> None:
    for call in (read_table, column_names, iter_batches):
        with pytest.raises(InvalidInputError) as info:
            call(obj, what="reference")
        message = info.value.message
        assert message.startswith("`reference` must be a pandas or polars DataFrame, a pyarrow")
        assert "a list of row dicts" in message and "Parquet" in message
        assert __import__("re").search(hint, message), message


def test_path_errors(tmp_path: Path) -> None:
    cases: list[tuple[Any, str]] = [
        (tmp_path / "nope.parquet", r"`data` file '.*nope\.parquet' does not exist\."),
        (
            tmp_path / "t.xlsx",
            r"cannot read `data` '.*t\.xlsx': expected a \.parquet.*got '\.xlsx'",
        ),
        (tmp_path / "noext", r"got a name without a suffix"),
        (tmp_path / "t.parquet.gz", r"got a compressed '\.parquet' file"),
        ("memory://no-such-bucket/x.csv", r"`data` URL 'memory://no-such-bucket/x\.csv' does not"),
        ("nosuchproto://x/y.csv", r"cannot open `data` URL 'nosuchproto://x/y\.csv'"),
    ]
    for obj, match in cases:
        for call in (read_table, column_names, iter_batches):
            with pytest.raises(InvalidInputError, match=match):
                call(obj)


def test_damaged_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "bad.feather").write_bytes(b"nope")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    (tmp_path / "bad.json").write_text("[1, 2]")
    for name, match in [
        ("bad.parquet", "the Parquet file is truncated or corrupt"),
        ("empty.parquet", r"empty \(0 bytes\), so it is truncated or corrupt"),
        ("bad.feather", "the Arrow IPC/Feather file is truncated or corrupt"),
        ("bad.csv", "the CSV file is malformed or truncated"),
        ("bad.jsonl", "the JSON file is malformed or truncated"),
        ("bad.json", "must hold one object per line, or one array of objects"),
    ]:
        path = tmp_path / name
        for call in (read_table, lambda p: list(iter_batches(p))):
            with pytest.raises(InvalidInputError, match=match) as info:
                call(path)
            assert str(path) in info.value.message
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "empty.jsonl").write_text("")
    for name in ("empty.csv", "empty.jsonl"):  # an export that found nothing
        assert read_table(tmp_path / name).num_rows == 0
        assert column_names(tmp_path / name) == []


def test_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="it has no Parquet files"):
        read_table(tmp_path / "empty")
    (tmp_path / "mixed").mkdir()
    pq.write_table(EXPECTED, tmp_path / "mixed" / "a.parquet")
    (tmp_path / "mixed" / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="must hold only Parquet files of one schema"):
        read_table(tmp_path / "mixed")
    hive = tmp_path / "hive"
    for year in (2023, 2024):
        (hive / f"year={year}").mkdir(parents=True)
        pq.write_table(EXPECTED.slice(0, 5), hive / f"year={year}" / "p.parquet")
    t = read_table(hive)
    assert t.num_rows == 10 and "year" in t.column_names


def test_unknown_and_bad_columns(tmp_path: Path) -> None:
    pq.write_table(EXPECTED, tmp_path / "t.parquet")
    for obj in (EXPECTED, tmp_path / "t.parquet", _columns(), pd.DataFrame(_columns())):
        with pytest.raises(InvalidInputError) as info:
            read_table(obj, columns=["citty"], what="current")
        assert info.value.message.startswith(
            "`columns` names ['citty'], which is not in `current`; it has 3 columns"
        )
        assert "Did you mean 'city'" in info.value.message
        assert info.value.details == {"unknown": ["citty"], "available": ["id", "x", "city"]}
        with pytest.raises(InvalidInputError, match="not in `data`"):
            list(iter_batches(obj, columns=["nope"]))
    with pytest.raises(InvalidInputError, match=r"`columns` must be a list of column names"):
        read_table(EXPECTED, columns="id")
    with pytest.raises(InvalidInputError, match=r"name each column once; got \['id'\]"):
        read_table(EXPECTED, columns=["id", "id"])


def test_dict_shape_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"`data\['a'\]` must be a 1-D array; got shape"):
        read_table({"a": np.zeros((2, 2))})
    with pytest.raises(InvalidInputError, match=r"same length; got 2 rows in 'a' and 3 in 'b'"):
        read_table({"a": np.zeros(2), "b": np.zeros(3)})


def test_batches_are_bounded_and_never_none(tmp_path: Path) -> None:
    pq.write_table(EXPECTED, tmp_path / "t.parquet", row_group_size=10)
    sizes = [b.num_rows for b in iter_batches(tmp_path / "t.parquet", batch_rows=4)]
    assert sum(sizes) == N and max(sizes) <= 4 and len(sizes) >= N // 4
    pq.write_table(EXPECTED.slice(0, 0), tmp_path / "none.parquet")
    for empty in (tmp_path / "none.parquet", EXPECTED.slice(0, 0), {"x": []}):
        (only,) = list(iter_batches(empty))
        assert only.num_rows == 0 and "x" in only.schema.names
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError, match=r"`batch_rows` must be an int >= 1"):
            iter_batches(EXPECTED, batch_rows=bad)  # type: ignore[arg-type]


def test_errors_are_raised_when_called_not_when_iterated(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        iter_batches(tmp_path / "missing.parquet")  # no next() needed
    (tmp_path / "bad.parquet").write_bytes(b"garbage!")
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        iter_batches(tmp_path / "bad.parquet")


def test_reads_in_batches(tmp_path: Path) -> None:
    pq.write_table(EXPECTED, tmp_path / "t.parquet")
    EXPECTED.to_pandas().to_csv(tmp_path / "t.csv", index=False)
    assert tables.reads_in_batches(tmp_path / "t.parquet")
    assert tables.reads_in_batches(tmp_path)
    assert tables.reads_in_batches(ds.dataset(EXPECTED))
    for other in (tmp_path / "t.csv", EXPECTED, _columns(), tmp_path / "missing.parquet", 42):
        assert not tables.reads_in_batches(other)


def test_docstring_examples_run() -> None:
    from mloop.tables import _columns, _kinds, _memory, _reader

    for module in (tables, _columns, _kinds, _memory, _reader):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
