"""Per-column summaries (kind, counts, range, categories) that the quality checks compare.

A summary comes from data (any supported frame) or from a stored ``Profile``, so a monitor can check
quality against a profile without the reference rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError

__all__ = ["ColumnSummary", "DataSummary", "frame_columns", "summarize"]

Kind = Literal["numeric", "categorical", "mixed", "empty"]


@dataclass
class ColumnSummary:
    """What the quality checks need to know about one column."""

    kind: Kind
    value_type: str
    n: int
    n_missing: int
    n_inf: int = 0
    min: float | None = None
    max: float | None = None
    n_unique: int = 0
    only_value: Any = None
    categories: dict[Any, int] | None = None
    values: np.ndarray | None = None  # finite-or-inf numeric values (data summaries only)

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n if self.n else 0.0

    @property
    def inf_share(self) -> float:
        return self.n_inf / self.n if self.n else 0.0

    @property
    def type_name(self) -> str:
        return f"{self.kind} ({self.value_type})" if self.value_type else self.kind

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (no values)."""
        return {
            "kind": self.kind,
            "type": self.value_type,
            "n": self.n,
            "n_missing": self.n_missing,
            "missing_share": self.missing_share,
            "n_inf": self.n_inf,
            "min": self.min,
            "max": self.max,
            "n_unique": self.n_unique,
        }


@dataclass
class DataSummary:
    n_rows: int
    columns: dict[str, ColumnSummary]


def frame_columns(data: Any) -> dict[str, np.ndarray]:
    """Column name -> 1-D numpy array of a pandas/polars frame, pyarrow Table, mapping or Parquet path."""
    if isinstance(data, (str, os.PathLike)):
        import pyarrow.parquet as pq

        try:
            data = pq.read_table(data)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"Cannot read Parquet data from {str(data)!r}: {exc}") from exc
    if isinstance(data, Mapping):
        out = {}
        for k, v in data.items():
            arr = _to_numpy(v)
            if arr.ndim != 1:
                raise InvalidInputError(f"Column {k!r} must be one-dimensional; got {arr.shape}.")
            out[str(k)] = arr
        _same_length(out)
        return out
    if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow Table
        return {str(n): _to_numpy(data.column(n)) for n in data.column_names}
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas / polars
        return {str(c): _to_numpy(data[c]) for c in data.columns}
    raise InvalidInputError(
        "Data must be a pandas or polars DataFrame, a pyarrow Table, a mapping of column -> array "
        f"or a Parquet path; got {type(data).__name__}."
    )


def _to_numpy(col: Any) -> np.ndarray:
    if hasattr(col, "to_numpy") and not isinstance(col, np.ndarray):
        try:
            return np.asarray(col.to_numpy(zero_copy_only=False))  # pyarrow
        except TypeError:
            return np.asarray(col.to_numpy())
    return np.asarray(col)


def _same_length(cols: dict[str, np.ndarray]) -> None:
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"Columns have different lengths: {lengths}.")


def summarize(data: Any, *, categorical: set[str] | frozenset[str] = frozenset()) -> DataSummary:
    """Summarise every column of ``data`` (or of a ``Profile``)."""
    if hasattr(data, "columns") and _is_profile(data):
        return _from_profile(data)
    cols = frame_columns(data)
    n_rows = len(next(iter(cols.values()))) if cols else 0
    return DataSummary(n_rows, {k: _summarize(v, k in categorical) for k, v in cols.items()})


def _is_profile(obj: Any) -> bool:
    return type(obj).__name__ == "Profile" and hasattr(obj, "n_rows")


def _missing_mask(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind == "M" or arr.dtype.kind == "m":
        return np.isnat(arr)
    if arr.dtype.kind == "O":
        return np.fromiter(
            (
                v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType"
                for v in arr
            ),
            dtype=bool,
            count=len(arr),
        )
    return np.zeros(len(arr), dtype=bool)


def _summarize(arr: np.ndarray, force_categorical: bool) -> ColumnSummary:
    n = len(arr)
    miss = _missing_mask(arr)
    present = arr[~miss]
    n_missing = int(miss.sum())
    kind = arr.dtype.kind
    if kind in "mM":
        present = present.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
        kind = "f"
    if kind == "O" or kind == "U" or kind == "S":
        types = {type(v) for v in present}
        if not types:
            return ColumnSummary("empty", "", n, n_missing)
        if all(issubclass(t, (bool, np.bool_)) for t in types):
            return _categorical(present, "bool", n, n_missing)
        if all(issubclass(t, (int, float, np.number)) and not issubclass(t, bool) for t in types):
            if force_categorical:
                return _categorical(present, "int", n, n_missing)
            return _numeric(present.astype(np.float64), "number", n, n_missing)
        if all(issubclass(t, str) for t in types):
            return _categorical(present, "str", n, n_missing)
        names = ", ".join(sorted(t.__name__ for t in types))
        return ColumnSummary("mixed", names, n, n_missing, n_unique=_n_unique_obj(present))
    if kind == "b":
        return _categorical(present, "bool", n, n_missing)
    if force_categorical:
        return _categorical(present, "int" if kind in "iu" else "float", n, n_missing)
    if len(present) == 0:
        return ColumnSummary("empty", "", n, n_missing)
    return _numeric(present.astype(np.float64), "int" if kind in "iu" else "float", n, n_missing)


def _n_unique_obj(values: np.ndarray) -> int:
    try:
        return len(set(values.tolist()))
    except TypeError:
        return len(values)


def _numeric(values: np.ndarray, vtype: str, n: int, n_missing: int) -> ColumnSummary:
    finite = values[np.isfinite(values)]
    uniq = np.unique(values)
    return ColumnSummary(
        "numeric",
        vtype,
        n,
        n_missing,
        n_inf=int(len(values) - len(finite)),
        min=float(finite.min()) if len(finite) else None,
        max=float(finite.max()) if len(finite) else None,
        n_unique=len(uniq),
        only_value=_plain(uniq[0]) if len(uniq) == 1 else None,
        values=values,
    )


def _categorical(values: np.ndarray, vtype: str, n: int, n_missing: int) -> ColumnSummary:
    if values.dtype.kind == "O":
        import pyarrow as pa

        try:
            counts = pa.array(values.tolist()).value_counts()
            cats = {
                _plain(v): int(c)
                for v, c in zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                )
            }
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            uniq, cnt = np.unique(values.astype(str), return_counts=True)
            cats = {str(u): int(c) for u, c in zip(uniq, cnt, strict=True)}
    else:
        uniq, cnt = np.unique(values, return_counts=True)
        cats = {_plain(u): int(c) for u, c in zip(uniq, cnt, strict=True)}
    only = next(iter(cats)) if len(cats) == 1 else None
    return ColumnSummary(
        "categorical", vtype, n, n_missing, n_unique=len(cats), only_value=only, categories=cats
    )


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _from_profile(profile: Any) -> DataSummary:
    """Adapter over ``mloop.monitoring.Profile`` (read through its public attributes only)."""
    cols: dict[str, ColumnSummary] = {}
    for name, col in profile.columns.items():
        kind = getattr(col, "kind", "numeric")
        n = int(getattr(col, "n", getattr(col, "count", 0)) or 0)
        n_missing = int(getattr(col, "n_missing", getattr(col, "missing", 0)) or 0)
        n_inf = int(getattr(col, "n_inf", 0) or 0)
        if kind == "categorical":
            freq = getattr(col, "categories", None) or getattr(col, "frequencies", None)
            cats = dict(freq) if isinstance(freq, Mapping) else None
            if cats is None and freq is not None:
                counts = getattr(col, "category_counts", None)
                if counts is not None:
                    cats = {k: int(c) for k, c in zip(freq, counts, strict=False)}
            vtype = str(getattr(col, "value_type", "") or _guess_type(cats))
            cols[str(name)] = ColumnSummary(
                "categorical",
                vtype,
                n,
                n_missing,
                n_inf,
                n_unique=len(cats) if cats else int(getattr(col, "n_unique", 0) or 0),
                categories=cats,
            )
        else:
            lo, hi = getattr(col, "min", None), getattr(col, "max", None)
            cols[str(name)] = ColumnSummary(
                "numeric",
                str(getattr(col, "value_type", "") or "float"),
                n,
                n_missing,
                n_inf,
                min=None if lo is None else float(lo),
                max=None if hi is None else float(hi),
                n_unique=int(getattr(col, "n_unique", 2) or 2),
            )
    return DataSummary(int(profile.n_rows), cols)


def _guess_type(cats: dict[Any, int] | None) -> str:
    if not cats:
        return ""
    types = {type(k).__name__ for k in cats}
    return types.pop() if len(types) == 1 else "mixed"
