"""Reading and writing for batch scoring: streamed input batches, an atomically written output.

Parquet is read through :func:`mloop.tables.iter_batches` (one row group at a time); CSV and TSV
through Arrow's streaming CSV reader, with the column types the signature declares, so a column is
typed the same in every block. Batches are cut to exactly the batch size and read one ahead, on a
thread. The output is written to a temporary sibling and renamed into place on success.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa

from mloop import tables
from mloop.errors import InvalidInputError, MloopError

__all__ = [
    "CSV_TYPES",
    "AtomicOutput",
    "Writer",
    "read_ahead",
    "read_batches",
    "rebatch",
    "suffixes",
]

T = TypeVar("T")

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_TEXT_FORMATS = {".csv": ",", ".tsv": "\t"}
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")
#: Signature dtype -> the Arrow type a CSV column is parsed as (others are inferred).
CSV_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    **{f"int{b}": getattr(pa, f"int{b}")() for b in (8, 16, 32, 64)},
    **{f"uint{b}": getattr(pa, f"uint{b}")() for b in (8, 16, 32, 64)},
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "category": pa.string(),
    "datetime": pa.timestamp("ns"),
}


def suffixes(text: str) -> tuple[str, str | None]:
    """The format suffix of a path or URL (``.csv``) and its compression codec, if any."""
    name = text.rstrip("/").rsplit("/", 1)[-1].lower()
    stem, _, last = name.rpartition(".")
    codec = _CODECS.get(f".{last}")
    if codec is not None:
        _, _, last = stem.rpartition(".")
    return f".{last}", codec


def read_batches(
    input: Any, where: str, columns: list[str], header: list[str], model: Any, batch_size: int
) -> Iterator[pa.RecordBatch]:
    suffix, codec = suffixes(where)
    if suffix in _TEXT_FORMATS and not os.path.isdir(where):
        return _csv_batches(where, suffix, codec, columns, header, model, batch_size)
    return tables.iter_batches(input, columns=columns, batch_rows=batch_size, what="input")


def _csv_types(model: Any, columns: list[str]) -> dict[str, str]:
    """Parse the signature's columns as the types it declares: a streaming reader infers types
    from its first block only, so a float column whose first block holds only ``1``, ``2`` would
    become int64 and fail on a later ``1.5``."""
    signature = getattr(model, "signature", None)
    inputs = getattr(signature, "inputs", None)
    if inputs is None or inputs.is_tensor:
        return {}
    wanted = set(columns)
    return {
        spec.name: spec.dtype
        for spec in inputs.specs
        if spec.name in wanted and spec.dtype in CSV_TYPES
    }


def _csv_batches(
    where: str,
    suffix: str,
    codec: str | None,
    columns: list[str],
    header: list[str],
    model: Any,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    types = _csv_types(model, columns)
    with contextlib.ExitStack() as stack:
        if "://" in where:
            import fsspec

            fs, path = fsspec.core.url_to_fs(where)
            raw: Any = stack.enter_context(fs.open(path, "rb"))
        else:
            raw = where
        stream = stack.enter_context(pa.input_stream(raw, compression=codec))
        try:
            reader = pcsv.open_csv(
                stream,
                # blocks of about a batch (1 KB a row is generous), bounded to 64 MB
                read_options=pcsv.ReadOptions(
                    block_size=min(max(batch_size * 1024, 1 << 20), 1 << 26)
                ),
                parse_options=pcsv.ParseOptions(delimiter=_TEXT_FORMATS[suffix]),
                convert_options=pcsv.ConvertOptions(
                    include_columns=columns,
                    column_types={name: CSV_TYPES[dtype] for name, dtype in types.items()},
                ),
            )
        except pa.ArrowInvalid as exc:
            raise _csv_error(exc, where, header, types) from exc
        rows = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _csv_error(exc, where, header, types, after=rows) from exc
            rows += batch.num_rows
            yield batch
        if rows == 0:
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)


def _csv_error(
    exc: Exception,
    where: str,
    header: list[str],
    types: dict[str, str],
    *,
    after: int = 0,
) -> InvalidInputError:
    """A CSV parse error, naming the column (Arrow gives its position in the file's header) and
    the type the signature declares for it."""
    detail = str(exc).strip().rstrip(".")
    found = _CSV_COLUMN.search(detail)
    if found is not None and int(found.group(1)) < len(header):
        column = header[int(found.group(1))]
        declared = types.get(column)
        want = f" as {declared}, the model signature's type" if declared is not None else ""
        return InvalidInputError(
            f"Input {where!r}: column {column!r} cannot be read{want} (in the rows from {after} "
            f"on): {detail}.",
            details={"problems": [{"column": column, "problem": "dtype"}]},
        )
    return InvalidInputError(f"cannot read {where!r} as CSV: {detail}.")


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one fewer); one empty table for an empty input."""
    pending: list[pa.RecordBatch] = []
    count = 0
    schema = None
    yielded = False
    for batch in batches:
        schema = batch.schema
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch if take == batch.num_rows else batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count, yielded = [], 0, True
    if pending:
        yield pa.Table.from_batches(pending)
    elif schema is not None and not yielded:
        yield schema.empty_table()


def read_ahead(
    batches: Iterator[pa.Table], prepare: Callable[[pa.Table], T]
) -> Generator[T, None, None]:
    """``prepare(batch)`` for each batch, the next one read, decoded and prepared on a thread
    while the model predicts this one: Arrow, numpy copies and most numeric models release the
    GIL, so reading stops adding to the time. One batch ahead: memory grows by one batch."""
    from concurrent.futures import ThreadPoolExecutor

    def step() -> T | None:
        batch = next(batches, None)
        return None if batch is None else prepare(batch)

    with ThreadPoolExecutor(1, thread_name_prefix="mloop-predict-read") as pool:
        try:
            ahead = pool.submit(step)
            while True:
                item = ahead.result()
                if item is None:
                    return
                ahead = pool.submit(step)
                yield item
        finally:
            with contextlib.suppress(Exception):  # the error that stopped us is being raised
                ahead.result()
            close = getattr(batches, "close", None)
            if close is not None:
                close()


class AtomicOutput:
    """A temporary sibling of ``output`` (a local temp file for a URL), renamed (or uploaded)
    into place when the block succeeds, deleted when it fails."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.fs: Any = None
        if "://" in output:
            import fsspec

            self.fs, self.path = fsspec.core.url_to_fs(output)
            self.tmp = os.path.join(tempfile.gettempdir(), f"mloop-predict-{uuid.uuid4().hex}")
        else:
            self.path = os.path.abspath(output)
            parent = os.path.dirname(self.path)
            if not os.path.isdir(parent):
                raise InvalidInputError(
                    f"cannot write `output` {output!r}: folder {parent!r} does not exist."
                )
            name = os.path.basename(self.path)
            self.tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")

    def __enter__(self) -> str:
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                if self.fs is None:
                    os.replace(self.tmp, self.path)
                else:
                    self.fs.put_file(self.tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)


class Writer:
    """Appends tables of one schema (the first table's) to a Parquet or CSV file."""

    def __init__(self, path: str, fmt: str, model: str) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self.path, self.fmt, self.model = path, fmt, model
        self._writer: Any = None
        self.schema: pa.Schema | None = None
        # one write in flight, on a thread, while the next batch is predicted
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mloop-predict-write")
        self._pending: Future[None] | None = None

    def _wait(self) -> None:
        """Wait for the write in flight; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def write(self, table: pa.Table) -> None:
        self._wait()
        if self._writer is None:
            self.schema = table.schema.with_metadata({"mloop.model": self.model})
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, self.schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self.path, self.schema.remove_metadata())
        assert self.schema is not None
        if table.schema.remove_metadata() != self.schema.remove_metadata():
            table = self._conform(table)
        if self.fmt == "csv":
            table = table.replace_schema_metadata(None)
        else:
            table = table.replace_schema_metadata(self.schema.metadata)
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _conform(self, table: pa.Table) -> pa.Table:
        assert self.schema is not None
        target = self.schema.remove_metadata()
        if table.column_names != target.names:
            raise MloopError(
                f"The model's output columns changed between batches: {target.names} then "
                f"{table.column_names}."
            )
        try:
            return table.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise MloopError(
                f"The output's column types changed between batches ({target} then "
                f"{table.schema}) and cannot be converted: {exc}"
            ) from exc

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self._wait()
            else:  # the output is thrown away: its last write's outcome does not matter
                with contextlib.suppress(Exception):
                    self._wait()
        finally:
            self._pool.shutdown()
            if self._writer is not None:
                self._writer.close()
