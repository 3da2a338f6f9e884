"""Tables in files: local paths and fsspec URLs (``s3://``, ``gs://``, ``memory://``, ``file://``).

Formats are chosen by suffix: ``.parquet``/``.pq``, a folder of Parquet files (Spark or Hive style
partitions), ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``/``.json`` (JSON lines, or one JSON array of
row objects), ``.arrow``/``.feather``/``.ipc`` (Arrow IPC). Text formats may be compressed
(``.csv.gz``, ``.jsonl.zst``, ...). A 0-byte text file is an empty table (an export that found
nothing); a 0-byte binary file is truncated.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.tables._buffers import arrow_buffer
from mloop.tables._csv_stream import csv_batches
from mloop.tables._memory import data_names, from_memory

__all__ = [
    "FileSource",
    "dataset_of",
    "empty_batch",
    "file_batches",
    "file_names",
    "read_file",
    "resolve",
    "streamed_formats",
]

_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
}
_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_TEXT = ("csv", "tsv", "json")
_LABELS = {
    "parquet": "Parquet",
    "csv": "CSV",
    "tsv": "TSV",
    "json": "JSON",
    "ipc": "Arrow IPC/Feather",
    "folder": "Parquet folder",
}
_EXPECTED = (
    "expected a .parquet, .pq, .csv, .tsv, .jsonl, .ndjson, .json, .feather, .arrow or .ipc file "
    "(text formats may end in .gz, .bz2 or .zst), or a folder of Parquet files"
)


@dataclass(frozen=True)
class FileSource:
    """A resolved path: where it is, its format, and how to open it."""

    text: str  # as the user gave it, for messages
    path: str  # local path, or the path inside ``fs``
    fs: Any  # an fsspec filesystem for remote URLs; None for local files
    fmt: str
    codec: str | None
    what: str  # the parameter it was passed as

    @property
    def label(self) -> str:
        return _LABELS[self.fmt]

    def open(self) -> Any:
        """A binary file object (the caller closes it)."""
        return open(self.path, "rb") if self.fs is None else self.fs.open(self.path, "rb")

    def stream(self, stack: contextlib.ExitStack) -> Any:
        """An Arrow input stream of the (decompressed) bytes, closed with ``stack``."""
        raw = self.path if self.fs is None else stack.enter_context(self.open())
        return stack.enter_context(pa.input_stream(raw, compression=self.codec))

    def size(self) -> int:
        return os.path.getsize(self.path) if self.fs is None else int(self.fs.size(self.path))


def _split_url(text: str, what: str) -> tuple[Any, str]:
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, path = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its package is missing
        raise InvalidInputError(f"cannot open `{what}` URL {text!r}: {exc}.") from exc
    return (None, path) if isinstance(fs, LocalFileSystem) else (fs, path)


def resolve(obj: Any, what: str) -> FileSource:
    """Find the format of a path or URL and check that it exists."""
    text = os.fspath(obj)
    if not isinstance(text, str):
        raise InvalidInputError(f"`{what}` path must be text; got bytes {text!r}.")
    fs, path = _split_url(text, what) if "://" in text else (None, text)
    try:
        is_dir = os.path.isdir(path) if fs is None else bool(fs.isdir(path))
    except OSError as exc:  # a remote store that cannot be reached
        raise InvalidInputError(f"cannot open `{what}` {text!r}: {exc}.") from exc
    if is_dir:
        return FileSource(text, path, fs, "folder", None, what)
    name = path.rsplit("/", 1)[-1].lower() if fs is not None else os.path.basename(path).lower()
    stem, dot, suffix = name.rpartition(".")
    codec = _CODECS.get(f".{suffix}") if dot else None
    if codec is not None:
        stem, dot, suffix = stem.rpartition(".")
    fmt = _FORMATS.get(f".{suffix}") if dot else None
    if fmt is None or (codec is not None and fmt not in _TEXT):
        got = f"'.{suffix}'" if dot else "a name without a suffix"
        if codec is not None:
            got = f"a compressed '.{suffix}' file"
        raise InvalidInputError(f"cannot read `{what}` {text!r}: {_EXPECTED}; got {got}.")
    exists = os.path.exists(path) if fs is None else bool(fs.exists(path))
    if not exists:
        kind = "file" if fs is None else "URL"
        raise InvalidInputError(f"`{what}` {kind} {text!r} does not exist.")
    return FileSource(text, path, fs, fmt, codec, what)


@contextlib.contextmanager
def _reading(src: FileSource) -> Iterator[None]:
    """Turn what goes wrong reading ``src`` into one clear error naming the file."""
    try:
        yield
    except InvalidInputError:
        raise
    except PermissionError as exc:
        raise InvalidInputError(f"cannot read {src.text!r}: {exc.strerror}.") from exc
    except FileNotFoundError as exc:
        raise InvalidInputError(f"{src.text!r} does not exist.") from exc
    except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
        detail = str(exc).rstrip(".")
        if src.fmt == "folder":
            raise InvalidInputError(
                f"cannot read folder {src.text!r} as Parquet files: {detail}. A folder must hold "
                "only Parquet files of one schema."
            ) from exc
        damage = "malformed or truncated" if src.fmt in _TEXT else "truncated or corrupt"
        action = "Fix or re-export it" if src.fmt in _TEXT else "Re-create or re-download it"
        raise InvalidInputError(
            f"cannot read {src.text!r}: the {src.label} file is {damage} ({detail}). {action}."
        ) from exc


def _empty(src: FileSource) -> bool:
    """Whether the file has 0 bytes: an empty table for text, an error for binary formats."""
    if src.fmt == "folder" or src.size() > 0:
        return False
    if src.fmt in _TEXT and src.codec is None:
        return True
    raise InvalidInputError(
        f"cannot read {src.text!r}: the {src.label} file is empty (0 bytes), so it is truncated "
        "or corrupt. Re-create or re-download it."
    )


def dataset_of(src: FileSource) -> Any:
    """The pyarrow Dataset of a folder of Parquet files (hive partitions are columns)."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(src.path, filesystem=src.fs, format="parquet", partitioning="hive")
    if not dataset.files:
        raise InvalidInputError(f"cannot read folder {src.text!r}: it has no Parquet files.")
    return dataset


def _csv_options(src: FileSource, columns: Sequence[str] | None) -> dict[str, Any]:
    import pyarrow.csv as pcsv

    return {
        "parse_options": pcsv.ParseOptions(delimiter="\t" if src.fmt == "tsv" else ","),
        "convert_options": pcsv.ConvertOptions(
            include_columns=None if columns is None else list(columns)
        ),
    }


def _read_json(src: FileSource, stack: contextlib.ExitStack) -> pa.Table:
    import pyarrow.json as pjson

    data = src.stream(stack).read()  # JSON is read whole: its columns are the union of all rows'
    if data.lstrip()[:1] == b"[":
        return _json_array(src, data)
    return pjson.read_json(pa.BufferReader(arrow_buffer(data)))  # no Python object under Arrow


def _json_array(src: FileSource, data: bytes) -> pa.Table:
    records = json.loads(data)
    if not records:
        return pa.table({})
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInputError(
            f"cannot read {src.text!r}: a JSON file must hold one object per line, or one array "
            "of objects."
        )
    return from_memory(records, "records", columns=None, what=src.what, mixed="error")


def _read_ipc(src: FileSource, stack: contextlib.ExitStack) -> pa.Table:
    import pyarrow.feather as feather

    source = src.path if src.fs is None else stack.enter_context(src.open())
    return feather.read_table(source, memory_map=src.fs is None)


def file_names(src: FileSource) -> list[str]:
    """The column names, reading as little as the format allows (a footer, a first block)."""
    with _reading(src), contextlib.ExitStack() as stack:
        if _empty(src):
            return []
        if src.fmt == "folder":
            return data_names(dataset_of(src).schema)
        if src.fmt == "parquet":
            import pyarrow.parquet as pq

            source = src.path if src.fs is None else stack.enter_context(src.open())
            return data_names(pq.read_schema(source))
        if src.fmt in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(
                src.stream(stack), parse_options=_csv_options(src, None)["parse_options"]
            )
            return list(reader.schema.names)
        if src.fmt == "json":
            return list(_read_json(src, stack).column_names)
        return data_names(_read_ipc(src, stack).schema)


def read_file(src: FileSource, columns: Sequence[str] | None) -> pa.Table:
    """The whole table (only ``columns``, which exist, when given)."""
    with _reading(src), contextlib.ExitStack() as stack:
        if _empty(src):
            return pa.table({})
        if src.fmt == "folder":
            dataset = dataset_of(src)
            return dataset.to_table(columns=_wanted(dataset.schema, columns))
        if src.fmt == "parquet":
            import pyarrow.parquet as pq

            source = src.path if src.fs is None else stack.enter_context(src.open())
            file = stack.enter_context(pq.ParquetFile(source))
            return file.read(columns=_wanted(file.schema_arrow, columns))
        if src.fmt in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            return pcsv.read_csv(src.stream(stack), **_csv_options(src, columns))
        table = _read_json(src, stack) if src.fmt == "json" else _read_ipc(src, stack)
        return table.select(_wanted(table.schema, columns))


def _wanted(schema: pa.Schema, columns: Sequence[str] | None) -> list[str]:
    return data_names(schema) if columns is None else list(columns)


def file_batches(
    src: FileSource, columns: Sequence[str] | None, batch_rows: int, *, stream_csv: bool = False
) -> Iterator[pa.RecordBatch] | None:
    """Batches read one at a time from Parquet files and folders (and CSV/TSV files with
    ``stream_csv``, see :mod:`mloop.tables._csv_stream`); ``None`` for other formats.

    The file is opened (and a damaged one reported) before this returns; errors found later are
    raised by the iterator, as the same clear error. At least one batch (maybe empty) is yielded.
    """
    if src.fmt not in streamed_formats(stream_csv=stream_csv):
        return None
    stack = contextlib.ExitStack()
    with _reading(src):
        if _empty(src):  # a 0-byte text file is an empty table; a 0-byte Parquet file an error
            return None
        if src.fmt in ("csv", "tsv"):
            schema, batches = csv_batches(src, columns, batch_rows, stack)
            wanted = list(schema.names)
        elif src.fmt == "folder":
            dataset = dataset_of(src)
            schema, wanted = dataset.schema, _wanted(dataset.schema, columns)
            batches = iter(dataset.to_batches(columns=wanted, batch_size=batch_rows))
        else:
            import pyarrow.parquet as pq

            source = src.path if src.fs is None else stack.enter_context(src.open())
            options = _PARQUET_OPTIONS if src.fs is None else _REMOTE_PARQUET_OPTIONS
            file = stack.enter_context(pq.ParquetFile(source, **options))
            schema, wanted = file.schema_arrow, _wanted(file.schema_arrow, columns)
            batches = _row_groups(file, wanted, batch_rows)
    empty = pa.schema([schema.field(n) for n in wanted])
    return _guarded(src, batches, stack, empty)


#: Parquet files streamed by :func:`file_batches` read their pages as they are decoded, not a
#: whole row group ahead; remote files in larger reads (each one is a request).
_PARQUET_OPTIONS: dict[str, Any] = {"buffer_size": 1 << 16, "pre_buffer": False}
_REMOTE_PARQUET_OPTIONS: dict[str, Any] = {"buffer_size": 8 << 20, "pre_buffer": False}


def streamed_formats(*, stream_csv: bool) -> tuple[str, ...]:
    """The formats :func:`file_batches` reads piece by piece."""
    return ("parquet", "folder", "csv", "tsv") if stream_csv else ("parquet", "folder")


def _row_groups(file: Any, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Decode one row group at a time, in pieces of a batch. ``ParquetFile.iter_batches`` over
    the whole file reads ahead without a bound (pyarrow 26: 351 MB of Arrow memory to stream a
    300 MB file in 50,000-row batches, against 44 MB this way), so it is asked for one row group
    at a time; and the file is opened unbuffered-ahead (``_PARQUET_OPTIONS``), so a 1M-row row
    group is not decoded whole (27 columns: 631 -> 328 MB of Arrow memory, 826 -> 504 MB RSS)."""
    rest: pa.Table | None = None  # the rows read so far not yielded yet (< batch_rows)
    for i in range(file.num_row_groups):
        for piece in _pieces(file, i, columns, batch_rows):
            table = pa.Table.from_batches([piece])
            if rest is not None:
                table = pa.concat_tables([rest, table])
            full = table.num_rows - table.num_rows % batch_rows
            for start in range(0, full, batch_rows):  # whole batches, across row groups
                yield _one_batch(table.slice(start, batch_rows))
            # a copy: a slice would keep the whole piece's buffers alive
            rest = (
                table.slice(full).take(pa.array(range(table.num_rows - full)))
                if full < table.num_rows
                else None
            )
    if rest is not None and rest.num_rows:
        yield _one_batch(rest)


def _pieces(file: Any, i: int, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Row group ``i`` whole, or in batches when it holds more than two batches of rows."""
    if file.metadata.row_group(i).num_rows <= 2 * batch_rows:
        yield from file.read_row_group(i, columns=columns).to_batches()
    else:
        yield from file.iter_batches(batch_size=batch_rows, row_groups=[i], columns=columns)


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """The rows of ``table`` as one batch, copied only when they span two row groups."""
    batches = table.to_batches()
    return batches[0] if len(batches) == 1 else table.combine_chunks().to_batches()[0]


def _guarded(
    src: FileSource,
    batches: Iterator[pa.RecordBatch],
    stack: contextlib.ExitStack,
    empty: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    with stack:
        yielded = False
        while True:
            with _reading(src):
                batch = next(batches, None)
            if batch is None:
                break
            yielded = True
            yield batch.replace_schema_metadata(None)
        if not yielded:
            yield empty_batch(empty)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of no rows with ``schema`` (without its metadata)."""
    schema = schema.remove_metadata()
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
