"""Input examples stored beside a packaged model, read back in the form the user gave them.

Tables (pandas, polars, pyarrow, dicts of columns, lists of row dicts, files) are stored as
``input_example.parquet``, one array as ``input_example.npy`` and named arrays as
``input_example.npz`` (both without pickle). The manifest records the original container in
``format`` so :func:`read` gives back the same kind of object, and so ``predict`` can feed the model
the container it was trained on whatever the caller passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import InvalidInputError
from mloop.tables import table_kind

from . import _frames

__all__ = ["FEED_FORMATS", "read", "write"]

PARQUET = "input_example.parquet"
NPY = "input_example.npy"
NPZ = "input_example.npz"

#: example format -> the container ``validate_input(to=...)`` hands the model.
FEED_FORMATS: dict[str, Any] = {
    "pandas": "pandas",
    "polars": "polars",
    "arrow": "arrow",
    "dict": "dict",
    "records": "records",
}


def _frame_format(value: Any) -> str:
    kind = table_kind(value)
    if kind in ("pandas", "polars", "records"):
        return str(kind)
    if kind in ("arrow", "dataset"):
        return "arrow"
    if kind == "path":  # a file's rows, given to the model as a DataFrame when pandas is there
        return "pandas" if _frames._pandas_available() else "arrow"
    return "dict"


def write(example: Any, root: Path) -> dict[str, Any]:
    """Store ``example`` in ``root``; returns the manifest's ``input_example`` entry."""
    kind, value = _frames.classify(example)
    try:
        if kind == "frame":
            fmt = _frame_format(value)
            if table_kind(value) == "pandas":
                table = pa.Table.from_pandas(value)  # with its index, for a faithful read back
            else:
                frame = _frames.as_frame(value)
                assert isinstance(frame, _frames.ArrowFrame)
                table = frame.table
            pq.write_table(table, root / PARQUET)
            return {"format": fmt, "path": PARQUET, "num_rows": table.num_rows}
        if kind == "tensor":
            np.save(root / NPY, value, allow_pickle=False)
            fmt = "list" if isinstance(example, list | tuple) else "numpy"
            return {
                "format": fmt,
                "path": NPY,
                "num_rows": int(value.shape[0]) if value.ndim else 1,
            }
        np.savez(root / NPZ, **value)
        return {"format": "tensors", "path": NPZ}
    except (pa.ArrowException, ValueError, TypeError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(
            f"input_example cannot be stored ({type(exc).__name__}: {exc}); pass an example "
            "with plain numeric, boolean, string, datetime or categorical columns."
        ) from exc


def read(root: Path, ref: Mapping[str, Any] | None) -> Any:
    """Read back an example written by :func:`write` (None when ``ref`` is None)."""
    if not ref:
        return None
    fmt, file = ref["format"], root / ref["path"]
    if fmt == "numpy":
        return np.load(file, allow_pickle=False)
    if fmt == "list":
        return np.load(file, allow_pickle=False).tolist()
    if fmt == "tensors":
        with np.load(file, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    table = pq.read_table(file)
    if fmt == "pandas":
        return table.to_pandas()
    if fmt == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if fmt == "dict":
        return {
            name: col.to_numpy()
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    if fmt == "records":
        return table.to_pylist()
    return table
