"""Monitoring's columnar view of a table: each column's kind, and conversions done only when asked.

Tables are read by :mod:`mloop.tables` (every accepted kind: DataFrames, Arrow, numpy, dicts, rows,
paths and URLs of Parquet, CSV, JSON lines, Arrow IPC files); a :class:`Frame` wraps the resulting
Arrow table without copying it, and converts a column to numpy only when a statistic needs it, so
peak memory stays near one converted column per worker.

Kinds:

- numeric: integer, floating and decimal columns; missing -> NaN.
- categorical: strings, dictionary (pandas/polars categorical) columns and booleans; values become
  string labels. Numbers declared categorical are labelled canonically
  (:func:`mloop.tables.value_label`: ``1``, ``1.0`` -> ``"1"``, other floats by ``repr``, booleans
  as ``"True"/"False"``), so categories given as ints in one frame and strings in the other
  compare equal. A column of Python objects of several types is categorical with source
  ``"mixed"``, its values labelled the same way.
- unsupported: dates, times, durations, nested and binary values (reported by their Arrow type,
  e.g. ``date32[day]``, never guessed at).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInputError
from mloop.tables import column_names, is_mixed, read_table, value_label

__all__ = [
    "CategoricalData",
    "ColumnKind",
    "Frame",
    "as_frame",
    "number_labels",
    "read",
    "refuse_profile",
]

ColumnKind = Literal["numeric", "categorical", "unsupported"]


@dataclass(frozen=True)
class CategoricalData:
    """Integer codes (``-1`` = missing) into ``categories`` (distinct string labels)."""

    codes: np.ndarray
    categories: list[str]
    source: str

    def counts(self) -> np.ndarray:
        """Occurrences of each category (missing values left out)."""
        codes = self.codes[self.codes >= 0]
        return np.bincount(codes, minlength=len(self.categories)).astype(np.int64)

    @property
    def n_missing(self) -> int:
        return int(np.count_nonzero(self.codes < 0))


def number_labels(values: np.ndarray) -> list[str]:
    """Canonical labels of numbers used as categories (``2.0`` -> ``"2"``, ``0.5`` -> ``"0.5"``)."""
    if values.dtype.kind == "b":
        return [str(bool(v)) for v in values]
    if values.dtype.kind in "iu":
        return [str(int(v)) for v in values]
    out = []
    for v in values.astype(np.float64):
        fv = float(v)
        out.append(str(int(fv)) if fv.is_integer() else repr(fv))
    return out


_label = value_label


def _dedupe(codes: np.ndarray, labels: list[str], source: str) -> CategoricalData:
    """Merge categories whose labels coincide (e.g. ``1`` and ``1.0``) and drop unused ones."""
    first: dict[str, int] = {}
    remap = np.empty(len(labels) + 1, dtype=np.int64)
    out_labels: list[str] = []
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    for i, lab in enumerate(labels):
        if counts[i] == 0:
            remap[i] = -1
            continue
        if lab not in first:
            first[lab] = len(out_labels)
            out_labels.append(lab)
        remap[i] = first[lab]
    remap[-1] = -1  # code -1 indexes the last slot: missing stays missing
    if len(out_labels) == len(labels) and np.array_equal(remap[:-1], np.arange(len(labels))):
        return CategoricalData(codes.astype(np.int64, copy=False), out_labels, source)
    return CategoricalData(remap[codes], out_labels, source)


def _numbers_to_categorical(values: np.ndarray, source: str) -> CategoricalData:
    if values.dtype.kind == "f":
        present = ~np.isnan(values)
        uniq, inv = np.unique(values[present], return_inverse=True)
        codes = np.full(values.size, -1, dtype=np.int64)
        codes[present] = inv
    else:
        uniq, inv = np.unique(values, return_inverse=True)
        codes = inv.astype(np.int64)
    return _dedupe(codes, number_labels(uniq), source)


def _arrow_to_categorical(arr: pa.ChunkedArray | pa.Array, source: str) -> CategoricalData:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    dictionary = arr.dictionary
    indices = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        labels = [str(x) for x in dictionary.to_pylist()]
    else:
        labels = [_label(x) for x in dictionary.to_pylist()]
    return _dedupe(indices.astype(np.int64, copy=False), labels, source)


def _arrow_kind(t: pa.DataType) -> tuple[ColumnKind, str]:
    if pa.types.is_boolean(t):
        return "categorical", "boolean"
    if pa.types.is_integer(t):
        return "numeric", "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric", "float"
    if pa.types.is_null(t):
        return "numeric", "null"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "categorical", "string"
    if pa.types.is_dictionary(t):
        inner = _arrow_kind(t.value_type)[1]
        return "categorical", inner
    return "unsupported", str(t)


class _Column:
    """One column of a :class:`Frame`: its kind, and conversions to float64 or categorical codes."""

    def __init__(self, arr: pa.ChunkedArray | pa.Array, source: str | None = None) -> None:
        if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
            arr = arr.chunk(0)  # one chunk converts to numpy without a copy
        self.arr = arr
        self.kind: ColumnKind
        self.kind, inferred = _arrow_kind(arr.type)
        self.source = source or inferred

    @property
    def reads_as_numbers(self) -> bool:
        """Numeric columns, and booleans (as 0/1)."""
        return self.kind == "numeric" or pa.types.is_boolean(self.arr.type)

    def numeric_raw(self) -> np.ndarray:
        """Integers as stored when there is nothing missing (cheaper to count), else float64."""
        if pa.types.is_integer(self.arr.type) and self.arr.null_count == 0:
            return np.asarray(self.arr.to_numpy())
        return self.numeric()

    def numeric(self) -> np.ndarray:
        """float64, missing values as NaN (integers beyond 2**53 rounded, as numpy would)."""
        arr = self.arr
        if pa.types.is_null(arr.type):
            return np.full(len(arr), np.nan)
        if arr.null_count == 0 and pa.types.is_float64(arr.type):
            return np.asarray(arr.to_numpy(zero_copy_only=False))
        floats = pc.fill_null(pc.cast(arr, pa.float64(), safe=False), np.nan)
        return np.asarray(floats.to_numpy(zero_copy_only=False))

    def categorical(self) -> CategoricalData:
        if self.kind == "numeric":
            return _numbers_to_categorical(self.numeric(), self.source)
        if pa.types.is_boolean(self.arr.type):
            values = self.numeric()
            codes = np.where(np.isnan(values), -1, values).astype(np.int64)
            return _dedupe(codes, ["False", "True"], "boolean")
        return _arrow_to_categorical(self.arr, self.source)


class Frame:
    """Named columns of equal length, each converted to numpy only when asked for."""

    def __init__(self, table: pa.Table, available: Sequence[str] | None = None) -> None:
        self._columns = {
            field.name: _Column(column, "mixed" if is_mixed(field) else None)
            for field, column in zip(table.schema, table.columns, strict=True)
        }
        self.n_rows = table.num_rows
        self._available = list(self._columns) if available is None else list(available)

    @property
    def names(self) -> list[str]:
        """The columns read (only the selected ones when ``as_frame`` got ``columns=``)."""
        return list(self._columns)

    @property
    def available(self) -> list[str]:
        """Every column of the source, read or not: what error messages list as "it has"."""
        return list(self._available)

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def kind(self, name: str) -> ColumnKind:
        return self._columns[name].kind

    def source(self, name: str) -> str:
        return self._columns[name].source

    def numeric(self, name: str) -> np.ndarray:
        """The column as float64 (missing values are NaN)."""
        col = self._columns[name]
        if not col.reads_as_numbers:
            raise InvalidInputError(
                f"column {name!r} holds {col.source} values; it cannot be read as numbers."
            )
        return col.numeric()

    def numeric_raw(self, name: str) -> np.ndarray:
        """Like :meth:`numeric`, but complete integer columns keep their integer dtype."""
        col = self._columns[name]
        if col.kind != "numeric":
            return self.numeric(name)
        return col.numeric_raw()

    def categorical(self, name: str) -> CategoricalData:
        """The column as categorical codes with string labels."""
        col = self._columns[name]
        if col.kind == "unsupported":
            raise InvalidInputError(
                f"column {name!r} has unsupported type {col.source}; drop it or convert it."
            )
        return col.categorical()


def refuse_profile(data: Any) -> None:
    """A saved profile passed where rows are needed: say so (or that it is damaged)."""
    from mloop.monitoring._profile_io import looks_like_profile, not_a_table

    if isinstance(data, (str, os.PathLike)) and "://" not in os.fspath(data):
        path = Path(data)
        if looks_like_profile(path):
            raise not_a_table(path)  # or "the profile is corrupt" / "does not exist", if it is


def read(data: Any, *, columns: Sequence[str] | None = None, what: str = "data") -> pa.Table:
    """``data`` as a pyarrow Table through the one table reader (mixed-type columns as text)."""
    refuse_profile(data)
    return read_table(data, columns=columns, what=what, mixed="text")


def as_frame(data: Any, *, columns: Sequence[str] | None = None, what: str = "data") -> Frame:
    """Wrap any table :func:`mloop.tables.read_table` accepts as a :class:`Frame`.

    Parameters
    ----------
    data : TableInput or Frame
        The table.
    columns : sequence of str, optional
        Read only these columns (of a file, only these are read where the format allows it);
        names the data lacks are not an error here: the caller reports them with
        :attr:`Frame.available`.
    what : str, default "data"
        The parameter name ``data`` was passed as, for error messages.

    Raises
    ------
    InvalidInputError
        For an unsupported object, an unreadable file or columns of different lengths.
    """
    if isinstance(data, Frame):
        return data
    if columns is None:
        return Frame(read(data, what=what))
    refuse_profile(data)
    available = column_names(data, what=what)
    present = set(available)
    table = read(data, columns=[c for c in columns if c in present], what=what)
    return Frame(table, available)
