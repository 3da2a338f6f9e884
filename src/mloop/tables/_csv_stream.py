"""CSV and TSV files read block by block (``pyarrow.csv.open_csv``), so memory stays near a block.

A streaming reader infers each column's type from its first block only. Two things follow, and
are handled here. An integer column whose later rows hold ``1.5`` would fail to convert, so every
column inferred as an integer is read as float64 and cast back, batch by batch, where every value
fits: a file of integers reads as integers (above 2**53 they round through float64), and a column
with a later ``1.5`` has integer and float batches, which a consumer that widens (profiles merge
so) reads as a float column. A column that turns to text after the first block cannot be read in
one pass at all: :class:`TypesChangedError` (a consumer that must not fail reads the file whole).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.tables._files import FileSource

__all__ = ["TypesChangedError", "csv_batches"]


class TypesChangedError(InvalidInputError):
    """A streamed text file holds, after its first block, a value its column's type cannot take."""


def _block_size(batch_rows: int) -> int:
    # about a batch per block (64 bytes a row is typical of numeric tables), 1 to 64 MiB
    return min(max(batch_rows * 64, 1 << 20), 1 << 26)


def _open(src: FileSource, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    import pyarrow.csv as pcsv

    return stack.enter_context(pcsv.open_csv(src.stream(stack), **options))


def csv_batches(
    src: FileSource, columns: Sequence[str] | None, batch_rows: int, stack: contextlib.ExitStack
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema of a CSV/TSV ``src`` and its batches of at most ``batch_rows`` rows.

    The file is opened (its first block parsed) before this returns; ``stack`` closes it. The
    iterator raises :class:`TypesChangedError` for a value that does not fit its column's type.
    """
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter="\t" if src.fmt == "tsv" else ",")
    read = pcsv.ReadOptions(block_size=_block_size(batch_rows))
    include = None if columns is None else list(columns)
    options = {"read_options": read, "parse_options": parse}
    with contextlib.ExitStack() as probe:
        first = _open(src, probe, {**options, "convert_options": _convert(include, {})})
        widen = {f.name: pa.float64() for f in first.schema if pa.types.is_integer(f.type)}
    reader = _open(src, stack, {**options, "convert_options": _convert(include, widen)})
    return first.schema, _batches(src, reader, batch_rows, first.schema, set(widen))


def _batches(
    src: FileSource, reader: Any, batch_rows: int, schema: pa.Schema, widened: set[str]
) -> Iterator[pa.RecordBatch]:
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc).lower():
                raise
            raise TypesChangedError(
                f"cannot stream {src.text!r}: a value after its first {rows:,} rows does not fit "
                f"the column type read from the first rows ({str(exc).rstrip('.')}). Read it "
                "whole, or convert it to Parquet with explicit types."
            ) from exc
        rows += batch.num_rows
        batch = _narrow(batch, schema, widened)
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)


def _narrow(batch: pa.RecordBatch, schema: pa.Schema, widened: set[str]) -> pa.RecordBatch:
    """Integer columns back to their inferred type where every value of the batch fits, so a
    file of integers reads as integers, as it does whole (a batch with ``1.5`` stays float64)."""
    import pyarrow.compute as pc

    if not widened:
        return batch
    arrays = list(batch.columns)
    for i, name in enumerate(batch.schema.names):
        if name in widened:
            with contextlib.suppress(pa.ArrowInvalid):  # a fraction or too big: stays float64
                arrays[i] = pc.cast(arrays[i], schema.field(name).type, safe=True)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _convert(include: list[str] | None, types: dict[str, pa.DataType]) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.ConvertOptions(include_columns=include, column_types=types)
