"""A partitioned table (a folder or prefix of Parquet files) as pieces to read anywhere.

A :class:`Partition` is one Parquet file of a folder (local or an fsspec URL such as ``s3://``),
with what is needed to read it on another process or machine: the folder, the filesystem (fsspec
filesystems pickle with their options: endpoint, credentials) and the folder's schema, so Hive
partition columns (``year=2024/``) are read as the whole folder reads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.tables._files import FileSource, _guarded, _reading, dataset_of, file_batches, resolve
from mloop.tables._kinds import not_a_table, table_kind
from mloop.tables._memory import data_names

__all__ = ["Partition", "count_rows", "partition_batches", "partitions"]


@dataclass(frozen=True)
class Partition:
    """One Parquet file of a partitioned table; picklable, so it can be read in a worker."""

    root: FileSource  # the folder, or the file itself for a single Parquet file
    path: str  # the file, inside ``root.fs``
    schema: pa.Schema  # the whole table's schema (Hive partition columns included)
    hive: bool = False  # whether its path holds Hive partition values (``year=2024/``)

    @property
    def name(self) -> str:
        """The file, as the user would write it (for messages and progress)."""
        if self.root.fmt == "parquet":
            return self.root.text
        return f"{self.root.text.rstrip('/')}/{self.path[len(self.root.path) :].lstrip('/')}"


def partitions(obj: Any, *, what: str = "data") -> list[Partition]:
    """The Parquet files of a folder or prefix (sorted), or ``[obj]`` for one Parquet file.

    Anything else (CSV, JSON, in-memory tables, pyarrow Datasets) has no partitions here: ``[]``.

    Examples
    --------
    >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     pq.write_table(pa.table({"x": [i]}), f"{folder}/part-{i}.parquet")
    >>> [p.name.rsplit("/", 1)[-1] for p in partitions(folder)]
    ['part-0.parquet', 'part-1.parquet', 'part-2.parquet']
    """
    if table_kind(obj) != "path":
        if table_kind(obj) is None:
            raise not_a_table(obj, what)
        return []
    src = resolve(obj, what)
    with _reading(src):
        if src.fmt == "parquet":
            return [Partition(src, src.path, pa.schema([]))]
        if src.fmt != "folder":
            return []
        import pyarrow.dataset as ds

        dataset = dataset_of(src)
        schema = dataset.schema.remove_metadata()
        parts = [
            Partition(src, f.path, schema, bool(ds.get_partition_keys(f.partition_expression)))
            for f in dataset.get_fragments()
        ]
        return sorted(parts, key=lambda p: p.path)


def partition_batches(
    part: Partition, *, columns: Sequence[str] | None = None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The batches of one partition, as :func:`mloop.tables.iter_batches` reads a file.

    One Parquet file is read one batch at a time, as :func:`mloop.tables.iter_batches` reads a
    file (a file under Hive folders through a one-file Dataset, for its partition columns). At
    least one batch (maybe empty) is yielded.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidInputError(f"`batch_rows` must be an int >= 1; got {batch_rows!r}.")
    if not isinstance(part, Partition):
        raise InvalidInputError(f"`part` must be a Partition; got {type(part).__name__}.")
    src = part.root
    if src.fmt == "parquet" or not part.hive:  # one file, read as a file (row group by row group)
        file = src if src.fmt == "parquet" else replace(src, text=part.name, path=part.path)
        batches = file_batches(replace(file, fmt="parquet"), columns, batch_rows)
        assert batches is not None  # a Parquet file is always read in batches
        return batches
    import pyarrow.dataset as ds

    with _reading(src):
        dataset = ds.dataset(
            [part.path],
            schema=part.schema,
            filesystem=src.fs,
            format="parquet",
            partitioning="hive",
            partition_base_dir=src.path,
        )
        wanted = data_names(part.schema) if columns is None else list(columns)
        batches = iter(
            dataset.to_batches(
                columns=wanted, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1
            )
        )
    empty = pa.schema([part.schema.field(n) for n in wanted])
    return _guarded(src, batches, contextlib.ExitStack(), empty)


def count_rows(obj: Any, *, what: str = "data") -> int | None:
    """The rows of a table when they are known without reading it: from Parquet footers, an
    Arrow table or Dataset, a DataFrame; ``None`` for text files and other inputs.

    Examples
    --------
    >>> import pyarrow as pa
    >>> count_rows(pa.table({"x": [1, 2, 3]})), count_rows([{"x": 1}])
    (3, None)
    """
    kind = table_kind(obj)
    if kind is None:
        raise not_a_table(obj, what)
    if kind == "path":
        src = resolve(obj, what)
        if src.fmt not in ("parquet", "folder"):
            return None
        with _reading(src), contextlib.ExitStack() as stack:
            if src.fmt == "folder":
                return int(dataset_of(src).count_rows())
            import pyarrow.parquet as pq

            source = src.path if src.fs is None else stack.enter_context(src.open())
            return int(stack.enter_context(pq.ParquetFile(source)).metadata.num_rows)
    if kind == "dataset":
        return int(obj.count_rows())
    if kind in ("arrow", "pandas", "polars"):
        return int(len(obj) if kind != "arrow" else obj.num_rows)
    return None
