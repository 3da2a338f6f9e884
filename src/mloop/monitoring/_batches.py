"""A monitor's window, joined from the Arrow slices of the batches that filled it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mloop.tables import is_mixed, read_table

__all__ = ["column_values", "concat"]


def column_values(column: pa.ChunkedArray) -> np.ndarray:
    """A column as one numpy array (nulls become NaN, NaT or None, by type)."""
    return np.asarray(column.to_numpy(zero_copy_only=False))


def concat(chunks: list[pa.Table]) -> pa.Table:
    """One window from its chunks (batches differ: a column may be missing, or change type).

    Types that widen (int to float, string to large_string) are unified, a column missing from
    some batches is null there, and a column whose values are of several types across the
    batches (or within one) becomes a mixed column of text labels, as within a single batch.
    """
    if not any(is_mixed(f) for chunk in chunks for f in chunk.schema):
        try:
            return pa.concat_tables(chunks, promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass  # some column changed type: find which, below
    names = list(dict.fromkeys(n for chunk in chunks for n in chunk.column_names))
    arrays, fields = [], []
    for name in names:
        parts = [c.column(name) if name in c.column_names else pa.nulls(c.num_rows) for c in chunks]
        marks = [
            c.schema.field(name).metadata
            for c in chunks
            if name in c.column_names and is_mixed(c.schema.field(name))
        ]
        joined = None if marks else _unify(name, parts)
        if joined is None:
            values = np.concatenate(
                [np.asarray(p.to_numpy(zero_copy_only=False), object) for p in parts]
            )
            joined = read_table({name: values}, what="batch", mixed="text")
        field = joined.schema.field(0)
        if marks and not is_mixed(field):  # every value was already a label: still mixed
            field = field.with_metadata(marks[0])
        arrays.append(joined.column(0))
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _unify(name: str, parts: list[Any]) -> pa.Table | None:
    """The parts of one column as one, their types unified; None if they have no common type."""
    try:
        return pa.concat_tables([pa.table({name: p}) for p in parts], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
