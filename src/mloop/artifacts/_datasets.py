"""Dataset versions: any tabular input -> a canonical Arrow table -> Parquet keyed by a content digest.

The digest (``dataset_digest``) identifies the *data*, not a file: the same rows logged from pandas,
polars, Arrow, a dict of numpy arrays or a Parquet/CSV file give the same digest, however they are
chunked, so the same data logged twice is one stored dataset version. Inputs are read by
:func:`mloop.tables.read_table` (the same kinds every table-taking API accepts).

Canonical form, applied by :func:`to_arrow_table` before hashing and storing:

- schema and field metadata dropped (pandas' and polars' bookkeeping is not data), every field
  nullable;
- string-like columns (``string``, ``large_string``, ``string_view``) become ``large_string``, binary
  ones ``large_binary``, dictionary (categorical) columns are decoded to their values; other types
  are kept, so the types are part of the content (``int32`` and ``int64`` data differ, and so do
  ``timestamp[ns]`` and ``timestamp[us]``);
- a pandas index is dropped unless it is named (``df.set_index("id")``): then it becomes a column,
  as ``reset_index`` would make it; column names that are not ``str`` become ``str(name)``
  (both are the reader's conventions).

Digest: sha256 of a version tag, the Arrow IPC stream of the canonical table cut into batches of a
fixed number of rows (so chunking cannot matter), with nulls of primitive and string columns replaced
by a zero value, followed by each such column's validity as a boolean IPC stream (the bytes Arrow
keeps under a null are undefined and differ between producers).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.artifacts._blobstore import BlobStore
from mloop.artifacts._integrity import IntegrityError
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import DatasetVersion, validate_sha256
from mloop.tables import read_parquet_bytes, read_table

__all__ = [
    "dataset_digest",
    "dataset_file_size",
    "load_dataset",
    "open_dataset_file",
    "store_dataset",
    "to_arrow_table",
]

_DIGEST_TAG = b"mloop-dataset-digest-v1\n"
_DIGEST_BATCH_ROWS = 1 << 16


# ---------------------------------------------------------------------------- conversion


def _canonical_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _canonical_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.large_binary()
    return t


def _canonicalize(table: pa.Table) -> pa.Table:
    fields, columns = [], []
    for f, col in zip(table.schema, table.columns, strict=True):
        t = _canonical_type(f.type)
        if t != f.type:
            col = col.cast(t)
        fields.append(pa.field(f.name, t, nullable=True))
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def to_arrow_table(data: Any) -> pa.Table:
    """Convert tabular data to a canonical :class:`pyarrow.Table`.

    Parameters
    ----------
    data : any table :func:`mloop.tables.read_table` accepts
        A pandas or polars DataFrame, a pyarrow Table, RecordBatch or Dataset, a numpy
        structured array, a dict of 1-d arrays, a list of row dicts, or a local path or fsspec
        URL of a Parquet, CSV/TSV, JSON lines (or JSON array), Arrow IPC/Feather file or a folder
        of Parquet files.

    Returns
    -------
    pyarrow.Table
        In the canonical form described in the module docstring.

    Raises
    ------
    InvalidInputError
        For an unsupported type (the message lists what is accepted), a missing or unreadable
        file, dict arrays that are not 1-d or differ in length, a column mixing value types.

    Examples
    --------
    >>> import numpy as np
    >>> to_arrow_table({"x": np.arange(3), "y": np.array(["a", "b", "c"])}).schema
    x: int64
    y: large_string
    """
    return _canonicalize(read_table(data, what="data"))


# ---------------------------------------------------------------------------- digest


class _HashSink:
    """A write-only file object that hashes what Arrow's IPC writer gives it."""

    closed = False

    def __init__(self, h: Any) -> None:
        self._h = h

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._h.update(view)
        return view.nbytes

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


def _zero(t: pa.DataType) -> pa.Scalar | None:
    if pa.types.is_boolean(t):
        return pa.scalar(False)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.scalar(0, type=t)
    if pa.types.is_large_string(t):
        return pa.scalar("", type=t)
    if pa.types.is_large_binary(t):
        return pa.scalar(b"", type=t)
    if pa.types.is_temporal(t) or pa.types.is_decimal(t):
        try:
            return pa.scalar(0, type=pa.int64()).cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _write_ipc(h: Any, table: pa.Table) -> None:
    sink = pa.PythonFile(_HashSink(h), mode="w")
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for start in range(0, max(table.num_rows, 1), _DIGEST_BATCH_ROWS):
            piece = table.slice(start, _DIGEST_BATCH_ROWS).combine_chunks()
            batches = piece.to_batches()
            writer.write_batch(
                batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
            )


def dataset_digest(table: pa.Table) -> str:
    """The sha256 (hex) of a table's content, independent of chunking and metadata.

    Parameters
    ----------
    table : pyarrow.Table
        Usually the output of :func:`to_arrow_table`; other tables are canonicalized first.

    Returns
    -------
    str
        64 hex characters; also the dataset version's id (``datasets:/<sha256>``).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"x": [1, 2, 3]})
    >>> dataset_digest(t) == dataset_digest(pa.concat_tables([t.slice(0, 1), t.slice(1)]))
    True
    """
    table = _canonicalize(table)
    h = hashlib.sha256(_DIGEST_TAG)
    filled, validity = [], []
    for f, col in zip(table.schema, table.columns, strict=True):
        zero = _zero(f.type) if col.null_count else None
        if zero is not None:
            validity.append((f.name, pc.is_valid(col)))
            col = pc.fill_null(col, zero)
        filled.append(col)
    _write_ipc(h, pa.Table.from_arrays(filled, schema=table.schema))
    for name, valid in validity:
        h.update(name.encode("utf-8") + b"\0")
        _write_ipc(h, pa.table({"valid": valid}))
    return h.hexdigest()


# ---------------------------------------------------------------------------- storage


def _dataset_key(sha256: str) -> str:
    return f"datasets/{sha256}.parquet"


def store_dataset(
    blobstore: BlobStore, data: Any, *, name: str, source_uri: str | None = None
) -> DatasetVersion:
    """Store a dataset version as Parquet (zstd), keyed by its content digest.

    Storing the same data again writes nothing and returns a version with the same ``sha256`` and
    ``storage_uri``. The profile is left empty (monitoring computes it).

    Parameters
    ----------
    blobstore : BlobStore
        Where ``datasets/<sha256>.parquet`` is written.
    data : Any
        Anything :func:`to_arrow_table` accepts.
    name : str
        The dataset's name in the run (e.g. ``"train"``).
    source_uri : str, optional
        Where the data came from. Defaults to the file's ``file://`` URI when ``data`` is a path,
        and to the URL itself when it is one.

    Returns
    -------
    DatasetVersion
        ``sha256`` is the content digest (not the Parquet file's hash); ``schema`` maps each column
        to its Arrow type string.

    Raises
    ------
    InvalidInputError
        If ``name`` is empty or ``data`` is not supported (see :func:`to_arrow_table`).

    Examples
    --------
    >>> import tempfile
    >>> store = BlobStore(tempfile.mkdtemp())
    >>> v = store_dataset(store, {"x": [1, 2]}, name="train")
    >>> v.num_rows, dict(v.schema)
    (2, {'x': 'int64'})
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"`name` must be a non-empty str; got {name!r}.")
    if source_uri is None and isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        source_uri = text if "://" in text else Path(text).absolute().as_uri()
    table = to_arrow_table(data)
    digest = dataset_digest(table)
    key = _dataset_key(digest)
    if not blobstore._key_exists(key):
        with blobstore._write_key(key) as out:
            pq.write_table(table, out, compression="zstd")
    return DatasetVersion(
        sha256=digest,
        name=name,
        schema={f.name: str(f.type) for f in table.schema},
        num_rows=table.num_rows,
        source_uri=source_uri,
        storage_uri=blobstore._uri_for_key(key),
        created_ms=time.time_ns() // 1_000_000,
        profile=None,
    )


def load_dataset(blobstore: BlobStore, sha256: str, *, verify: bool = False) -> pa.Table:
    """Read a stored dataset version back as a :class:`pyarrow.Table`.

    Parameters
    ----------
    blobstore : BlobStore
        The store it was written to.
    sha256 : str
        The content digest (``DatasetVersion.sha256``).
    verify : bool, default False
        Recompute the digest and compare (costs one pass over the data).

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    NotFoundError
        If no such dataset version is stored.
    IntegrityError
        If ``verify`` and the content does not match the digest.
    """
    key = _dataset_key(validate_sha256(sha256))
    try:
        # Never a Python file object under Arrow's reader: the scan may release its input on an
        # Arrow pool thread after returning, which needs the GIL (see mloop.tables.arrow_buffer).
        if blobstore.is_local:
            with pa.OSFile(blobstore._full(key)) as native:
                table = pq.read_table(native)
        else:
            with blobstore._open_key(key) as f:
                table = read_parquet_bytes(f.read())
    except FileNotFoundError:
        raise NotFoundError(
            f"Dataset version {sha256} is not in the artifact store {blobstore.uri}.",
            details={"sha256": sha256},
        ) from None
    if verify:
        actual = dataset_digest(table)
        if actual != sha256:
            raise IntegrityError(
                f"Dataset {blobstore._uri_for_key(key)} is corrupted: expected digest {sha256}, "
                f"got {actual}. Log the dataset again from its source.",
                details={"sha256": sha256, "actual_sha256": actual},
            )
    return table


def _dataset_missing(blobstore: BlobStore, sha256: str) -> NotFoundError:
    return NotFoundError(
        f"Dataset version {sha256} is not in the artifact store {blobstore.uri}.",
        details={"sha256": sha256},
    )


def dataset_file_size(blobstore: BlobStore, sha256: str) -> int:
    """The size in bytes of a stored dataset version's Parquet file.

    Raises
    ------
    NotFoundError
        If no such dataset version is stored.
    """
    size = blobstore._key_size(_dataset_key(validate_sha256(sha256)))
    if size is None:
        raise _dataset_missing(blobstore, sha256)
    return size


def open_dataset_file(blobstore: BlobStore, sha256: str) -> BinaryIO:
    """The stored Parquet file of a dataset version, opened for streaming reads (the server sends
    it to clients this way). Use as a context manager.

    Raises
    ------
    NotFoundError
        If no such dataset version is stored.
    """
    try:
        return blobstore._open_key(_dataset_key(validate_sha256(sha256)))
    except FileNotFoundError:
        raise _dataset_missing(blobstore, sha256) from None
