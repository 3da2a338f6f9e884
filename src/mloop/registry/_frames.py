"""Column access over pandas, pyarrow (and polars, through arrow) for signature inference and checks.

:mod:`._signature` states the rules (which dtype may become which); this module applies them to a
concrete container without converting it more than needed: a pandas frame is checked and cast in
pandas (the common case costs a column lookup per spec, and the model gets a pandas frame back);
every other table :func:`mloop.tables.read_table` accepts (polars, Arrow, numpy structured arrays,
dicts, row dicts, paths and URLs of files) goes through the reader's pyarrow table (zero-copy for
polars and Arrow). pandas and polars are never imported here: an object is recognised by
``isinstance`` against the classes of the modules already in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInputError
from mloop.tables import ACCEPTED, read_table, table_kind

DTYPES: tuple[str, ...] = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "string",
    "binary",
    "datetime",
    "category",
    "object",
)

_INTS: dict[str, tuple[bool, int]] = {
    **{f"int{b}": (True, b) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (False, b) for b in (8, 16, 32, 64)},
}
_FLOATS: dict[str, int] = {"float16": 16, "float32": 32, "float64": 64}

CastRule = Literal["same", "cast", "range"]

EXACT_INT_FLOAT64 = 2**53


def in_exact_range(low: Any, high: Any) -> bool:
    """Whether integers from ``low`` to ``high`` all become float64 exactly (the "range" rule)."""
    return bool(low >= -EXACT_INT_FLOAT64 and high <= EXACT_INT_FLOAT64)


def cast_rule(received: str, expected: str) -> CastRule | None:
    """How a column of dtype ``received`` may become ``expected``: as is, by a cast, or not at all.

    ``"range"`` is a 64-bit integer going to float64, safe only while every value is within
    2**53; the caller checks the values. ``"empty"`` (a column of nothing but missing values) can
    become anything; the nullability check decides whether that is allowed.
    """
    if received == expected or expected == "object":
        return "same"
    if received == "empty":
        return "cast"
    src_int, dst_int = _INTS.get(received), _INTS.get(expected)
    if src_int and dst_int:
        (s_signed, s_bits), (d_signed, d_bits) = src_int, dst_int
        if s_bits < d_bits and (s_signed == d_signed or d_signed):
            return "cast"
        return None
    if src_int and expected in _FLOATS:
        bits, fbits = src_int[1], _FLOATS[expected]
        if (bits <= 16 and fbits >= 32) or (bits <= 32 and fbits == 64):
            return "cast"
        return "range" if bits == 64 and fbits == 64 else None
    if received in _FLOATS and expected in _FLOATS:
        return "cast" if _FLOATS[received] < _FLOATS[expected] else None
    if {received, expected} == {"string", "category"}:
        return "cast"
    return None


def numpy_dtype_name(dtype: np.dtype[Any]) -> str:
    """Our dtype name for a numpy dtype."""
    kind = dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iuf":
        return dtype.name
    return {"U": "string", "S": "binary", "M": "datetime"}.get(kind, "object")


def _arrow_dtype_name(t: pa.DataType) -> str:
    types = pa.types
    if types.is_boolean(t):
        return "bool"
    if types.is_integer(t):
        return str(t)
    if types.is_floating(t):
        return f"float{t.bit_width}"
    if types.is_string(t) or types.is_large_string(t) or _is_view(t, "is_string_view"):
        return "string"
    if types.is_binary(t) or types.is_large_binary(t) or _is_view(t, "is_binary_view"):
        return "binary"
    if types.is_timestamp(t) or types.is_date(t):
        return "datetime"
    if types.is_dictionary(t):
        return "category"
    if types.is_null(t):
        return "empty"
    return "object"


def _is_view(t: pa.DataType, check: str) -> bool:
    fn = getattr(pa.types, check, None)  # string_view / binary_view arrived in pyarrow 16
    return bool(fn is not None and fn(t))


def _is_series(obj: Any) -> bool:
    """A pandas or polars Series (only possible when that library is imported)."""
    pd, pl = sys.modules.get("pandas"), sys.modules.get("polars")
    return (pd is not None and isinstance(obj, pd.Series)) or (
        pl is not None and isinstance(obj, pl.Series)
    )


def describe(data: Any) -> str:
    """A short description of a value for error messages."""
    shape = getattr(data, "shape", None)
    name = f"{type(data).__module__}.{type(data).__qualname__}".replace("builtins.", "")
    return f"{name} of shape {tuple(shape)}" if shape is not None else name


def classify(data: Any, *, prefer_columns: bool = False) -> tuple[str, Any]:
    """Sort ``data`` into ``("frame", x)``, ``("tensor", ndarray)`` or ``("tensors", dict)``.

    Frames are the tables :func:`mloop.tables.read_table` accepts, except plain numpy arrays,
    which are tensors (a structured array is a frame: its fields are named columns).
    """
    kind = table_kind(data)
    if kind == "records":
        return "frame", list(data)
    if kind is not None and kind not in ("numpy", "mapping"):
        return "frame", data
    if isinstance(data, np.ndarray):
        return ("frame", data) if data.dtype.names is not None else ("tensor", data)
    if _is_series(data):
        return "tensor", data.to_numpy()
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInputError("Got an empty dict; expected columns or named tensors.")
        arrays = {str(k): _as_array(v, f"entry {k!r}") for k, v in data.items()}
        lengths = {len(a) if a.ndim else -1 for a in arrays.values()}
        if all(a.ndim == 1 for a in arrays.values()) and len(lengths) == 1:
            return "frame", dict(data)
        if prefer_columns:
            raise InvalidInputError(
                "A dict of columns needs 1-D values of one length; got lengths/shapes "
                f"{ {k: a.shape for k, a in arrays.items()} }."
            )
        return "tensors", arrays
    if isinstance(data, list | tuple):
        return "tensor", _as_array(data, "list")
    raise InvalidInputError(
        f"Unsupported input type {describe(data)}; expected a table ({ACCEPTED}), a numpy array "
        "or a list."
    )


def _as_array(value: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(f"Cannot read {where} as an array: {exc}.") from exc


def output_as_data(output: Any) -> Any:
    """Model output in a form :func:`classify` reads (series and lists become arrays)."""
    if _is_series(output):
        return output.to_numpy()
    if isinstance(output, list | tuple) and not (output and isinstance(output[0], Mapping)):
        return np.asarray(output)
    return output


def as_frame(value: Any) -> PandasFrame | ArrowFrame:
    """Wrap a frame-kind value (see :func:`classify`) in a column accessor.

    A pandas frame stays pandas (models that take one get it back); any other table is read by
    :func:`mloop.tables.read_table`, and remembers whether it was polars or Arrow, so that a
    model fed without an explicit container gets the kind it was given.
    """
    kind = table_kind(value)
    if kind == "pandas":
        return PandasFrame(value)
    source = {"polars": "polars", "arrow": "arrow", "dataset": "arrow"}.get(str(kind), "dict")
    return ArrowFrame(read_table(value, what="data"), source)


class PandasFrame:
    """Signature checks and casts on a pandas DataFrame, copying only the columns that change."""

    def __init__(self, df: Any) -> None:
        self.df = df
        self._orig = {str(c): c for c in df.columns}
        self.columns = list(self._orig)
        self.num_rows = len(df)
        self._cast: dict[str, Any] = {}
        # Read per-column facts once for the whole frame: building a Series per column per check
        # dominated validation time on wide frames.
        self._dtypes = dict(zip(self.columns, df.dtypes, strict=True))
        self._nulls: dict[str, int] | None = None

    def _col(self, name: str) -> Any:
        return self._cast.get(name, self.df[self._orig[name]])

    def dtype_name(self, name: str) -> str:
        import pandas as pd

        dt = self._cast[name].dtype if name in self._cast else self._dtypes[name]
        if isinstance(dt, np.dtype) and dt.kind in "biuf":
            return numpy_dtype_name(dt)  # the common case, without touching the column
        s = self._col(name)
        if isinstance(dt, pd.CategoricalDtype):
            return "category"
        if isinstance(dt, pd.ArrowDtype):
            return _arrow_dtype_name(dt.pyarrow_dtype)
        if isinstance(dt, pd.StringDtype):
            return "string"
        if pd.api.types.is_datetime64_any_dtype(dt):
            return "datetime"
        if isinstance(dt, np.dtype) and dt.kind != "O":
            return numpy_dtype_name(dt)
        numpy_dtype = getattr(dt, "numpy_dtype", None)  # Int64, Float32, boolean
        if numpy_dtype is not None:
            return numpy_dtype_name(np.dtype(numpy_dtype))
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        return {
            "string": "string",
            "bytes": "binary",
            "boolean": "bool",
            "integer": "int64",
            "floating": "float64",
            "mixed-integer-float": "float64",
            "datetime": "datetime",
            "datetime64": "datetime",
            "date": "datetime",
            "empty": "empty",
        }.get(inferred, "object")

    def null_count(self, name: str) -> int:
        if name in self._cast:
            return int(self._cast[name].isna().sum())
        if self._nulls is None:
            counts = self.df.isna().sum()  # one vectorised pass over every column
            self._nulls = {
                str(c): int(n) for c, n in zip(self.df.columns, counts.to_numpy(), strict=True)
            }
        return self._nulls[name]

    def fits_float64(self, name: str) -> bool:
        # min and max, not abs().max(): abs(-2**63) wraps around to a negative number
        s = self._col(name).dropna()
        return len(s) == 0 or in_exact_range(s.min(), s.max())

    def cast(self, name: str, dtype: str) -> None:
        s = self._col(name)
        has_nulls = self.null_count(name) > 0
        if dtype in _INTS and has_nulls:
            target: Any = dtype.capitalize().replace("Uint", "UInt")  # pandas' nullable Int64
        elif dtype == "bool" and has_nulls:
            target = "boolean"
        elif dtype == "string":
            target = object
        elif dtype == "datetime":
            target = "datetime64[ns]"
        else:
            target = dtype
        self._cast[name] = s.astype(target)

    def select(self, names: list[str], *, to: str | None) -> Any:
        if names == self.columns and not self._cast:
            out = self.df
        else:
            out = self.df[[self._orig[n] for n in names]]
            if self._cast:
                # assign() returns a new frame: no chained-assignment warning on pandas < 3
                if all(isinstance(self._orig[n], str) for n in self._cast):
                    out = out.assign(**self._cast)
                else:
                    out = out.copy()
                    for name, series in self._cast.items():
                        out[self._orig[name]] = series
        if to in (None, "pandas"):
            return out
        if to == "numpy":
            return out.to_numpy()
        if to == "dict":
            return {c: out[c].to_numpy() for c in out.columns}
        table = pa.Table.from_pandas(out, preserve_index=False)
        return _from_arrow(table, to)

    def to_numpy(self) -> np.ndarray:
        return np.asarray(self.df.to_numpy())


class ArrowFrame:
    """Signature checks and casts on a pyarrow Table (also used for polars frames and dicts)."""

    def __init__(self, table: pa.Table, source: str) -> None:
        self.table = table
        self.source = source
        self.columns = [str(c) for c in table.column_names]
        self.num_rows = table.num_rows

    def _col(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)

    def dtype_name(self, name: str) -> str:
        col = self._col(name)
        if pa.types.is_null(col.type) or (col.null_count == len(col) and len(col)):
            return "empty"
        return _arrow_dtype_name(col.type)

    def null_count(self, name: str) -> int:
        col = self._col(name)
        count = col.null_count
        if pa.types.is_floating(col.type):
            count += int(pc.sum(pc.is_nan(col)).as_py() or 0)
        return int(count)

    def fits_float64(self, name: str) -> bool:
        bounds = pc.min_max(self._col(name)).as_py()  # nulls skipped; None when no values
        return bounds["max"] is None or in_exact_range(bounds["min"], bounds["max"])

    def cast(self, name: str, dtype: str) -> None:
        col = self._col(name)
        if dtype == "category":
            new = pc.dictionary_encode(col)
        elif dtype == "string":
            new = col.cast(pa.string())
        elif dtype == "datetime":
            new = col.cast(pa.timestamp("ns"))
        elif dtype == "bool":
            new = col.cast(pa.bool_())
        else:
            new = col.cast(pa.from_numpy_dtype(np.dtype(dtype)))
        self.table = self.table.set_column(self.columns.index(name), name, new)

    def select(self, names: list[str], *, to: str | None) -> Any:
        table = self.table.select(names)
        if to is None:
            to = {"polars": "polars", "arrow": "arrow"}.get(self.source)
            if to is None:
                to = "pandas" if _pandas_available() else "arrow"
        if to == "numpy":
            return self._numpy(table)
        return _from_arrow(table, to)

    @staticmethod
    def _numpy(table: pa.Table) -> np.ndarray:
        cols = [c.to_numpy() for c in table.columns]
        return np.column_stack(cols) if cols else np.empty((table.num_rows, 0))

    def to_numpy(self) -> np.ndarray:
        return self._numpy(self.table)


def _pandas_available() -> bool:
    if "pandas" in sys.modules:
        return True
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def _from_arrow(table: pa.Table, to: str) -> Any:
    if to == "dict":
        return {n: c.to_numpy() for n, c in zip(table.column_names, table.columns, strict=True)}
    if to == "records":
        return table.to_pylist()
    if to == "arrow":
        return table
    if to == "pandas":
        return table.to_pandas()
    if to == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise InvalidInputError(
        f"`to` must be 'pandas', 'polars', 'arrow', 'numpy', 'dict' or 'records'; got {to!r}."
    )
