"""One table reader behind every API that takes a table.

Drift reports, profiles, monitors, quality and performance estimates, dataset versions and model
input all accept the same kinds of table (:data:`TableInput`) through :func:`read_table`, and
refuse anything else with one error listing what is accepted. Types are recognised with
``isinstance`` against classes looked up lazily: pandas and polars are never imported here.

Examples
--------
>>> import numpy as np
>>> from mloop import tables
>>> t = tables.read_table({"x": np.arange(4.0), "plan": ["a", "b", "a", None]})
>>> t.num_rows, t.column_names
(4, ['x', 'plan'])
>>> tables.is_table(t), tables.is_table(42)
(True, False)
"""

from __future__ import annotations

from mloop.tables._buffers import arrow_buffer, read_parquet_bytes
from mloop.tables._columns import check_columns, unknown_columns_error
from mloop.tables._csv_stream import TypesChangedError
from mloop.tables._kinds import ACCEPTED, TableKind, is_table, table_kind
from mloop.tables._memory import Mixed, is_mixed, value_label
from mloop.tables._partitions import Partition, count_rows, partition_batches, partitions
from mloop.tables._reader import (
    BATCH_ROWS,
    TableInput,
    column_names,
    iter_batches,
    read_table,
    reads_in_batches,
)

__all__ = [
    "ACCEPTED",
    "BATCH_ROWS",
    "Mixed",
    "Partition",
    "TableInput",
    "TableKind",
    "TypesChangedError",
    "arrow_buffer",
    "check_columns",
    "column_names",
    "count_rows",
    "is_mixed",
    "is_table",
    "iter_batches",
    "partition_batches",
    "partitions",
    "read_parquet_bytes",
    "read_table",
    "reads_in_batches",
    "table_kind",
    "unknown_columns_error",
    "value_label",
]
