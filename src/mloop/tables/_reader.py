"""The table reader: every accepted kind of table to :class:`pyarrow.Table` or record batches."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.tables._columns import check_columns
from mloop.tables._files import (
    empty_batch,
    file_batches,
    file_names,
    read_file,
    resolve,
    streamed_formats,
)
from mloop.tables._kinds import not_a_table, table_kind
from mloop.tables._memory import Mixed, from_memory, memory_names, normalize

__all__ = ["TableInput", "column_names", "iter_batches", "read_table", "reads_in_batches"]

#: What the reader accepts. pandas and polars DataFrames (optional extras) are accepted too; they
#: appear here as ``Any`` so that this module never imports them.
TableInput = Union[
    pa.Table,
    pa.RecordBatch,
    np.ndarray,
    "dict[str, Any]",
    "list[dict[str, Any]]",
    str,
    "os.PathLike[str]",
    Any,
]

#: Rows per batch that :func:`iter_batches` yields by default.
BATCH_ROWS = 65_536


def _columns_arg(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidInputError(f"`columns` must be a list of column names (str); got {columns!r}.")
    cols = list(columns)
    if len(set(cols)) != len(cols):
        twice = sorted({c for c in cols if cols.count(c) > 1})
        raise InvalidInputError(f"`columns` must name each column once; got {twice} twice.")
    return cols


def _unnamed(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) and obj.dtype.names is None


def _check(cols: list[str], available: list[str], what: str) -> None:
    check_columns(cols, available, what="`columns`", where=f"in `{what}`")


def read_table(
    obj: TableInput,
    *,
    columns: Sequence[str] | None = None,
    what: str = "data",
    mixed: Mixed = "error",
) -> pa.Table:
    """Read any accepted table into one :class:`pyarrow.Table`.

    Parameters
    ----------
    obj : TableInput
        A pandas or polars DataFrame, a pyarrow Table, RecordBatch or ``pyarrow.dataset.Dataset``,
        a numpy structured array (or 2-D array with ``columns``), a dict of 1-D arrays or lists, a
        list of row dicts, or a local path or fsspec URL (``s3://``, ``memory://``, ``file://``)
        of a ``.parquet``/``.pq``, ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``/``.json`` or
        ``.arrow``/``.feather``/``.ipc`` file or a folder of Parquet files. pandas and polars frames
        and Arrow data are converted without copying where Arrow allows it.
    columns : sequence of str, optional
        Read only these columns, in this order (only these are read from a file where the format
        allows it). For an unnamed 2-D numpy array they name its columns, one per column.
    what : str, default "data"
        The parameter name ``obj`` was passed as, for error messages (``"reference"``...).
    mixed : {"error", "text"}, default "error"
        What to do with a column of Python objects of several types (``["a", 7]``): an error, or
        store each value's text (:func:`value_label`) and mark the field (:func:`is_mixed`).

    Returns
    -------
    pyarrow.Table
        With ``str`` column names, no schema metadata and no view types; a named pandas index is
        its first column(s). See ``mloop.tables._memory`` for how missing values map.

    Raises
    ------
    InvalidInputError
        For anything that is not an accepted table (the message lists what is accepted and what
        was received), a missing file, an unknown suffix, a damaged file, unknown ``columns``,
        columns of different lengths, and duplicate column names.

    Examples
    --------
    >>> import numpy as np
    >>> read_table({"x": np.arange(3), "c": ["a", "b", None]}).to_pydict()
    {'x': [0, 1, 2], 'c': ['a', 'b', None]}
    >>> read_table(np.zeros((2, 2)), columns=["a", "b"]).column_names
    ['a', 'b']
    """
    kind = table_kind(obj)
    if kind is None:
        raise not_a_table(obj, what)
    cols = _columns_arg(columns)
    if kind == "path":
        src = resolve(obj, what)
        if cols is not None:
            _check(cols, file_names(src), what)
        return normalize(read_file(src, cols), what)
    if cols is not None and not _unnamed(obj):
        _check(cols, memory_names(obj, kind, what), what)
    return from_memory(obj, kind, columns=cols, what=what, mixed=mixed)


def column_names(obj: TableInput, *, what: str = "data") -> list[str]:
    """The names of the columns :func:`read_table` would return, reading as little as possible.

    A Parquet file's footer, a CSV file's first block, an Arrow object's schema, a DataFrame's
    labels: no data is converted. (JSON files are read whole.) An unnamed 2-D numpy array has no
    names: that is an error.

    Examples
    --------
    >>> column_names([{"a": 1}, {"a": 2, "b": 3}])
    ['a', 'b']
    """
    kind = table_kind(obj)
    if kind is None:
        raise not_a_table(obj, what)
    if kind == "path":
        return file_names(resolve(obj, what))
    return memory_names(obj, kind, what)


def reads_in_batches(obj: Any, *, stream_csv: bool = False) -> bool:
    """Whether :func:`iter_batches` reads ``obj`` piece by piece rather than whole.

    True for Parquet files, folders of Parquet files and pyarrow Datasets, and for CSV/TSV files
    with ``stream_csv``: a consumer that can merge partial results (a profile) reads them in
    bounded memory. Everything else is in memory already, or read whole (JSON, Arrow IPC files,
    which are memory-mapped).
    """
    kind = table_kind(obj)
    if kind == "dataset":
        return True
    if kind != "path":
        return False
    try:
        return resolve(obj, "data").fmt in streamed_formats(stream_csv=stream_csv)
    except InvalidInputError:
        return False  # reading it will say what is wrong


def iter_batches(
    obj: TableInput,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    what: str = "data",
    mixed: Mixed = "error",
    stream_csv: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Read a table as record batches of at most ``batch_rows`` rows each.

    Parquet files, folders and pyarrow Datasets are read one batch at a time (memory stays near
    one batch); other inputs are read whole (see :func:`read_table`) and yielded in slices,
    without copying. At least one batch is yielded, with no rows for an empty table, so a
    consumer always sees the schema. The input is opened and checked before this returns.

    Parameters
    ----------
    obj, columns, what, mixed
        As for :func:`read_table`.
    batch_rows : int, default 65536
        The most rows in one batch.
    stream_csv : bool, default False
        Read CSV/TSV files block by block too. Integer columns are then read as float64, and a
        column that turns to text after the first block raises :class:`TypesChangedError` from
        the iterator (see ``mloop.tables._csv_stream``).

    Returns
    -------
    iterator of pyarrow.RecordBatch

    Raises
    ------
    InvalidInputError
        As :func:`read_table`; also for ``batch_rows`` that is not an int >= 1.

    Examples
    --------
    >>> [b.num_rows for b in iter_batches({"x": list(range(5))}, batch_rows=2)]
    [2, 2, 1]
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidInputError(f"`batch_rows` must be an int >= 1; got {batch_rows!r}.")
    kind = table_kind(obj)
    if kind is None:
        raise not_a_table(obj, what)
    cols = _columns_arg(columns)
    if kind == "path":
        src = resolve(obj, what)
        if cols is not None:
            _check(cols, file_names(src), what)
        batches = file_batches(src, cols, batch_rows, stream_csv=stream_csv)
        if batches is not None:
            return batches
        table = normalize(read_file(src, cols), what)
    elif kind == "dataset":
        if cols is not None:
            _check(cols, memory_names(obj, kind, what), what)
        return _dataset_batches(obj, cols, batch_rows)
    else:
        table = read_table(obj, columns=cols, what=what, mixed=mixed)
    return _slices(table, batch_rows)


def _dataset_batches(
    dataset: Any, columns: list[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    from mloop.tables._memory import data_names

    wanted = data_names(dataset.schema) if columns is None else columns
    yielded = False
    for batch in dataset.to_batches(columns=wanted, batch_size=batch_rows):
        yielded = True
        yield batch.replace_schema_metadata(None)
    if not yielded:
        yield empty_batch(pa.schema([dataset.schema.field(n) for n in wanted]))


def _slices(table: pa.Table, batch_rows: int) -> Iterator[pa.RecordBatch]:
    batches = table.to_batches(max_chunksize=batch_rows)
    if not batches:
        yield empty_batch(table.schema)
        return
    yield from batches
