"""In-memory tables to one :class:`pyarrow.Table`: pandas, polars, arrow, numpy, dicts and rows.

Conventions, the same for every kind:

- Column names are ``str``; other names (pandas' default ``0, 1, ...``) become ``str(name)``, and
  names that then collide are an error.
- A *named* pandas index is data (``df.set_index("id")``) and becomes the first column(s), as
  ``reset_index`` or ``df.to_parquet`` would keep it; an unnamed index is row numbering and is
  dropped.
- Missing values: pandas' NaN, ``None`` and ``NA`` become nulls (pandas' own semantics); numpy
  float arrays keep NaN as NaN; object arrays and lists turn ``None`` and NaN into nulls.
- A column of Python objects of several types (``["a", 7]``) has no Arrow type: it is an error,
  unless ``mixed="text"``, which stores each value's :func:`value_label` and marks the column (see
  :func:`is_mixed`).
- Schema-level metadata (pandas' bookkeeping) is dropped; ``string_view``/``binary_view`` columns
  become ``large_string``/``large_binary``, so consumers see one family of string types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.tables._kinds import _is_instance, not_a_table

__all__ = [
    "Mixed",
    "data_names",
    "from_memory",
    "is_mixed",
    "memory_names",
    "normalize",
    "value_label",
]

Mixed = Literal["error", "text"]

#: Field metadata key marking a column whose values were of several Python types.
MIXED_KEY = b"mloop.mixed"

_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_INDEX = re.compile(r"__index_level_\d+__")


def value_label(value: Any) -> str:
    """The text of one value used as a category: numbers canonically, so ``1``, ``1.0`` -> ``"1"``.

    Booleans are ``"True"``/``"False"``, integer-valued floats print as integers, other floats by
    ``repr`` (``"0.5"``), anything else by ``str``.

    Examples
    --------
    >>> [value_label(v) for v in (True, 2, 2.0, 0.5, "a")]
    ['True', '2', '2', '0.5', 'a']
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def is_mixed(field: pa.Field) -> bool:
    """Whether ``field`` holds the text labels of values of several types (``mixed="text"``)."""
    return bool(field.metadata) and MIXED_KEY in field.metadata


def _type_names(values: Any) -> str:
    seen: list[str] = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        name = type(v).__name__
        if name not in seen:
            seen.append(name)
        if len(seen) == 4:
            break
    return ", ".join(seen)


def _mixed(values: Any, name: str, what: str, mixed: Mixed, exc: Exception) -> pa.Array:
    objects = np.asarray(values, dtype=object)
    if mixed == "error":
        raise InvalidInputError(
            f"column {name!r} of `{what}` mixes values of different types "
            f"({_type_names(objects)}), so it has no single column type; convert it to one type "
            f"(e.g. `.astype(str)`). ({exc})"
        ) from exc
    labels = [
        None if v is None or (isinstance(v, float) and v != v) else value_label(v) for v in objects
    ]
    return pa.array(labels, type=pa.string())


def _column(
    values: Any, name: str, what: str, mixed: Mixed, *, direct: bool = False
) -> tuple[pa.Array | pa.ChunkedArray, bool]:
    """One column's values as Arrow; the flag says its values were of mixed types.

    ``direct``: a list of row values, converted by Arrow itself rather than through numpy (which
    would turn ``["a", 1]`` into two strings), as ``pa.Table.from_pylist`` does.
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values, False
    if direct:
        try:
            return pa.array(values, from_pandas=True), False
        except _CONVERT_ERRORS as exc:
            return _mixed(values, name, what, mixed, exc), True
    if _is_instance(values, "polars", "Series"):
        return values.to_arrow(), False
    if _is_instance(values, "pandas", "Series") or _is_instance(values, "pandas", "Index"):
        try:
            return pa.array(values, from_pandas=True), False
        except _CONVERT_ERRORS as exc:
            return _mixed(values, name, what, mixed, exc), True
    arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(
            f"`{what}[{name!r}]` must be a 1-D array; got shape {arr.shape}. Split it into "
            "columns or flatten it."
        )
    try:
        if arr.dtype.kind == "O":
            return pa.array(arr, from_pandas=True), False
        return pa.array(np.ascontiguousarray(arr)), False
    except _CONVERT_ERRORS as exc:
        return _mixed(arr, name, what, mixed, exc), True


def _str_names(names: Sequence[Any], what: str) -> list[str]:
    out = [n if isinstance(n, str) else str(n) for n in names]
    if len(set(out)) != len(out):
        dupes = sorted({n for n in out if out.count(n) > 1})
        raise InvalidInputError(
            f"`{what}` column names must be unique; got {dupes} more than once (names are "
            "compared as str, so 1 and '1' collide)."
        )
    return out


def _build(
    columns: Mapping[str, Any], what: str, mixed: Mixed, *, direct: bool = False
) -> pa.Table:
    arrays, fields = [], []
    lengths: dict[str, int] = {}
    for name, values in columns.items():
        arr, is_mixed_col = _column(values, name, what, mixed, direct=direct)
        lengths[name] = len(arr)
        arrays.append(arr)
        meta = {MIXED_KEY: b"1"} if is_mixed_col else None
        fields.append(pa.field(name, arr.type, metadata=meta))
    if len(set(lengths.values())) > 1:
        first, *rest = lengths.items()
        other = next(item for item in rest if item[1] != first[1])
        raise InvalidInputError(
            f"`{what}` columns must all have the same length; got {first[1]} rows in "
            f"{first[0]!r} and {other[1]} in {other[0]!r}."
        )
    if not arrays:
        return pa.table({})
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _pandas_frame(df: Any, what: str) -> Any:
    """The frame with a named index as leading columns and every column name a str."""
    if any(n is not None for n in df.index.names):
        index_names = [str(n) for n in df.index.names if n is not None]
        clash = sorted(set(index_names) & {str(c) for c in df.columns})
        if clash:
            raise InvalidInputError(
                f"`{what}` index names must differ from its column names; got {clash} in both. "
                "Rename the index, or drop it with `df.reset_index(drop=True)`."
            )
        df = df.reset_index()
    return df


def _from_pandas(df: Any, columns: Sequence[str] | None, what: str, mixed: Mixed) -> pa.Table:
    df = _pandas_frame(df, what)
    names = _str_names(list(df.columns), what)
    positions = range(len(names)) if columns is None else [names.index(c) for c in columns]
    if columns is not None:
        df = df.iloc[:, list(positions)]
    try:  # the fast path: every column at once, converted on several threads
        table = pa.Table.from_pandas(df, preserve_index=False)
        return table.rename_columns([names[i] for i in positions])
    except _CONVERT_ERRORS:
        pass  # find the column that failed, and convert it as mixed or say which it is
    cols = {names[p]: df.iloc[:, i] for i, p in enumerate(positions)}
    return _build(cols, what, mixed)


def _from_numpy(arr: np.ndarray, columns: Sequence[str] | None, what: str, mixed: Mixed) -> Any:
    if arr.dtype.names is not None:
        if arr.ndim != 1:
            raise InvalidInputError(
                f"`{what}` as a structured array must be 1-D (one record per row); got shape "
                f"{arr.shape}."
            )
        return {name: arr[name] for name in arr.dtype.names}
    if columns is None:
        raise InvalidInputError(
            f"`{what}` is a 2-D numpy array of shape {arr.shape} without column names; name its "
            "columns: pass a structured array, a dict of 1-D arrays or a DataFrame (or "
            "`columns=` with one name per column when reading it directly)."
        )
    if len(columns) != arr.shape[1]:
        raise InvalidInputError(
            f"`columns` must name every column of the 2-D `{what}` array ({arr.shape[1]}); got "
            f"{len(columns)} names."
        )
    names = _str_names(list(columns), what)
    return {name: arr[:, i] for i, name in enumerate(names)}


def _from_records(rows: Sequence[Mapping[Any, Any]]) -> dict[str, list[Any]]:
    keys: dict[Any, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return {k: [row.get(k) for row in rows] for k in keys}


def _named(names: list[str], values: Any, columns: Sequence[str] | None) -> dict[str, Any]:
    data = dict(zip(names, values, strict=True))
    return data if columns is None else {c: data[c] for c in columns}


def from_memory(
    obj: Any, kind: str, *, columns: Sequence[str] | None, what: str, mixed: Mixed
) -> pa.Table:
    """Convert an in-memory table of ``kind`` (see :func:`table_kind`) to a pyarrow Table.

    ``columns`` are known to exist (the caller checked them), except for an unnamed 2-D numpy
    array, which they name.
    """
    if kind == "arrow":
        table = obj if isinstance(obj, pa.Table) else pa.Table.from_batches([obj])
        table = table.select(data_names(table.schema) if columns is None else list(columns))
    elif kind == "dataset":
        table = obj.to_table(columns=data_names(obj.schema) if columns is None else list(columns))
    elif kind == "pandas":
        table = _from_pandas(obj, columns, what, mixed)
    elif kind == "polars":
        table = obj.to_arrow() if columns is None else obj.select(list(columns)).to_arrow()
    elif kind == "numpy":
        data = _from_numpy(obj, columns, what, mixed)
        table = _build(_named(list(data), data.values(), columns), what, mixed)
    elif kind == "mapping":
        names = _str_names(list(obj), what)
        table = _build(_named(names, obj.values(), columns), what, mixed)
    elif kind == "records":
        cols = _from_records(obj)
        names = _str_names(list(cols), what)
        table = _build(_named(names, cols.values(), columns), what, mixed, direct=True)
    else:
        raise not_a_table(obj, what)
    return normalize(table, what)


def memory_names(obj: Any, kind: str, what: str) -> list[str]:
    """The column names of an in-memory table, without converting its data."""
    if kind in ("arrow", "dataset"):
        return data_names(obj.schema)
    if kind == "pandas":
        return _str_names(list(_pandas_frame(obj.iloc[:0], what).columns), what)
    if kind == "polars":
        return list(obj.columns)
    if kind == "numpy":
        if obj.dtype.names is None:
            _from_numpy(obj, None, what, "error")  # raises: no names
        return list(obj.dtype.names)
    if kind == "mapping":
        return _str_names(list(obj), what)
    if kind == "records":
        return _str_names(list(_from_records(obj)), what)
    raise not_a_table(obj, what)


def _index_columns(schema: pa.Schema) -> set[str]:
    """Columns holding an *unnamed* pandas index (``__index_level_0__``), as pandas writes them."""
    meta = schema.metadata or {}
    if b"pandas" not in meta:
        return set()
    try:
        index = json.loads(meta[b"pandas"]).get("index_columns", [])
    except (ValueError, AttributeError):
        return set()
    return {c for c in index if isinstance(c, str) and _INDEX.fullmatch(c)}


def data_names(schema: pa.Schema) -> list[str]:
    """The columns of ``schema`` that are data (an unnamed pandas index is row numbering)."""
    hidden = _index_columns(schema)
    return [n for n in schema.names if n not in hidden]


def _is_view(t: pa.DataType, check: str) -> bool:
    fn = getattr(pa.types, check, None)  # string_view / binary_view arrived in pyarrow 16
    return bool(fn is not None and fn(t))


def _plain_type(t: pa.DataType) -> pa.DataType:
    if _is_view(t, "is_string_view"):
        return pa.large_string()
    if _is_view(t, "is_binary_view"):
        return pa.large_binary()
    return t


def normalize(table: pa.Table, what: str) -> pa.Table:
    """Drop schema metadata and replace view types (see the module docstring)."""
    if table.schema.metadata:
        table = table.replace_schema_metadata(None)
    if any(_plain_type(t) != t for t in table.schema.types):
        fields = [f.with_type(_plain_type(f.type)) for f in table.schema]
        table = table.cast(pa.schema(fields))
    names = table.column_names
    if len(set(names)) != len(names):
        _str_names(names, what)
    return table
