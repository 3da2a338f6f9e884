"""How step inputs and outputs become bytes (deterministically, never with pickle) and back.

- numpy arrays (not of ``object`` dtype) as ``.npy`` (``allow_pickle=False``);
- pandas DataFrames and Arrow tables as Parquet through :func:`mloop.artifacts.to_arrow_table`
  (canonical column types; a DataFrame's index is not kept);
- JSON values (None, bool, int, float, str, lists, tuples and str-keyed dicts of them) through the
  wire codec, with sorted keys (a tuple reads back as a list);
- anything else through a serializer registered for its type (:func:`register_serializer`), or
  refused with a message that says how to store it.

The same bytes give the same sha256, which is the value's identity in the cache and the lineage.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInputError

__all__ = [
    "Serializer",
    "UnstorableValueError",
    "decode_value",
    "encode_value",
    "register_serializer",
]


class UnstorableValueError(InvalidInputError):
    """A value that mloop cannot store deterministically without a registered serializer."""


@dataclass(frozen=True)
class Serializer:
    """An explicit way to store objects of one type.

    ``format`` names it in step records (``custom:<format>``); ``dumps(obj) -> bytes`` must give
    the same bytes for equal objects (the bytes are the value's identity in the cache) and
    ``loads(bytes) -> obj`` must read them back.
    """

    format: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


_lock = threading.Lock()
_custom: dict[type, Serializer] = {}


def register_serializer(cls: type, serializer: Serializer) -> None:
    """Store objects of ``cls`` (and its subclasses) with ``serializer``.

    Examples
    --------
    >>> from fractions import Fraction
    >>> register_serializer(Fraction, Serializer(
    ...     "fraction", lambda f: str(f).encode(), lambda b: Fraction(b.decode())))
    >>> decode_value(*encode_value(Fraction(1, 3)))
    Fraction(1, 3)
    """
    if not isinstance(cls, type):
        raise InvalidInputError(f"`cls` must be a type; got {cls!r}.")
    if not isinstance(serializer, Serializer):
        raise InvalidInputError(f"`serializer` must be a Serializer; got {serializer!r}.")
    if not serializer.format or not serializer.format.replace("_", "").replace("-", "").isalnum():
        raise InvalidInputError(
            f"`serializer.format` must be letters, digits, _ and -; got {serializer.format!r}."
        )
    with _lock:
        _custom[cls] = serializer


def _custom_for(value: Any) -> Serializer | None:
    for klass in type(value).__mro__:
        found = _custom.get(klass)
        if found is not None:
            return found
    return None


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def encode_value(value: Any) -> tuple[str, bytes]:
    """``(format, bytes)`` for ``value``.

    Raises
    ------
    UnstorableValueError
        For a type with no deterministic encoding and no registered serializer.
    """
    custom = _custom_for(value)
    if custom is not None:
        data = custom.dumps(value)
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInputError(
                f"serializer {custom.format!r} must return bytes; got {type(data).__name__}."
            )
        return f"custom:{custom.format}", bytes(data)
    module = _module_of(value)
    if module == "numpy" and type(value).__name__ == "ndarray":
        import numpy as np

        if value.dtype.hasobject:
            raise UnstorableValueError(
                "a numpy array of dtype object cannot be stored without pickle; convert it to a "
                "numeric or string dtype, or register a serializer."
            )
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return "npy", buf.getvalue()
    if module in ("pandas", "pyarrow", "polars") and type(value).__name__ in (
        "DataFrame",
        "Table",
    ):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from mloop.artifacts import to_arrow_table

        sink = pa.BufferOutputStream()
        pq.write_table(to_arrow_table(value), sink, compression="zstd")
        kind = "arrow" if module == "pyarrow" else module
        return f"parquet:{kind}", sink.getvalue().to_pybytes()
    if _is_json(value):
        from mloop.codec import dumps

        return "json", dumps(value, sort_keys=True, what="value").encode()
    raise UnstorableValueError(
        f"a {type(value).__module__}.{type(value).__qualname__} cannot be stored: mloop stores "
        "numpy arrays, pandas/polars DataFrames, Arrow tables and JSON values, and never pickles "
        "by default. Return one of those, or register a serializer for the type with "
        "mloop.pipelines.register_serializer."
    )


def decode_value(fmt: str, data: bytes) -> Any:
    """The value that :func:`encode_value` wrote as ``(fmt, data)``."""
    if fmt == "json":
        from mloop.codec import loads

        return loads(data, what="stored step value")
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt.startswith("parquet:"):
        from mloop.tables import read_parquet_bytes

        table = read_parquet_bytes(data)
        kind = fmt.split(":", 1)[1]
        if kind == "pandas":
            return table.to_pandas()
        if kind == "polars":
            import polars as pl

            return pl.from_arrow(table)
        return table
    if fmt.startswith("custom:"):
        name = fmt.split(":", 1)[1]
        with _lock:
            found = [s for s in _custom.values() if s.format == name]
        if not found:
            raise InvalidInputError(
                f"a stored value has format {fmt!r}, but no serializer named {name!r} is "
                "registered in this process; register it before loading."
            )
        return found[0].loads(data)
    raise InvalidInputError(f"unknown stored value format {fmt!r}.")
