"""What kind of table an object is, by ``isinstance`` against lazily found classes.

pandas, polars and ``pyarrow.dataset`` are optional: their classes are looked up in ``sys.modules``
only. An object can only be a pandas DataFrame if pandas is already imported (the object's class
lives there), so a user who has neither library never pays for importing it just to be told that
their dict is not a DataFrame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError

__all__ = ["ACCEPTED", "TableKind", "describe", "is_table", "not_a_table", "table_kind"]

TableKind = Literal["arrow", "dataset", "pandas", "polars", "numpy", "mapping", "records", "path"]

#: What every API that takes a table accepts, for error messages.
ACCEPTED = (
    "a pandas or polars DataFrame, a pyarrow Table, RecordBatch or Dataset, a numpy structured "
    "array (or a 2-D array with column names), a dict of 1-D arrays, a list of row dicts, or the "
    "path or URL of a Parquet, CSV, JSON lines or Arrow IPC/Feather file or of a folder of "
    "Parquet files"
)


def _module(name: str) -> Any:
    return sys.modules.get(name)


def _is_instance(obj: Any, module: str, cls: str) -> bool:
    mod = _module(module)
    return mod is not None and isinstance(obj, getattr(mod, cls))


def is_records(obj: Any) -> bool:
    """A non-empty list or tuple of mappings (rows, as ``json.load`` gives them)."""
    return isinstance(obj, (list, tuple)) and bool(obj) and all(isinstance(r, Mapping) for r in obj)


def table_kind(obj: Any) -> TableKind | None:
    """The kind of table ``obj`` is, or ``None`` when it is not one.

    A numpy array is a table when it is structured (its fields are the columns) or 2-D (it then
    needs column names when read). A ``str`` or path-like object is a path or URL; whether it
    names a readable file is only found out when it is read.
    """
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return "arrow"
    if _is_instance(obj, "pandas", "DataFrame"):
        return "pandas"
    if _is_instance(obj, "polars", "DataFrame"):
        return "polars"
    if _is_instance(obj, "pyarrow.dataset", "Dataset"):
        return "dataset"
    if isinstance(obj, np.ndarray):
        return "numpy" if obj.dtype.names is not None or obj.ndim == 2 else None
    if isinstance(obj, Mapping):
        return "mapping"
    if isinstance(obj, (str, os.PathLike)):
        return "path"
    if is_records(obj):
        return "records"
    return None


def is_table(obj: Any) -> bool:
    """Whether ``obj`` is of a kind the table reader accepts (see :data:`ACCEPTED`).

    Examples
    --------
    >>> import numpy as np
    >>> is_table({"x": np.arange(3)}), is_table(np.arange(3)), is_table(42)
    (True, False, False)
    """
    return table_kind(obj) is not None


def describe(obj: Any) -> str:
    """``module.Class`` of ``obj`` (builtins unqualified), with its shape when it has one."""
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple):
        return f"{name} of shape {shape}"
    return name


def not_a_table(obj: Any, what: str) -> InvalidInputError:
    """The one error for an object that is no table, with a hint for near misses."""
    hint = ""
    if _is_instance(obj, "polars", "LazyFrame"):
        hint = " Collect it first: `lazy_frame.collect()`."
    elif _is_instance(obj, "pandas", "Series") or _is_instance(obj, "polars", "Series"):
        hint = " Make it a one-column frame: `series.to_frame()`."
    elif isinstance(obj, np.ndarray):
        hint = " Pass a structured array or a dict of 1-D arrays, one per column."
    return InvalidInputError(f"`{what}` must be {ACCEPTED}; got {describe(obj)}.{hint}")
