"""Dataset versions: any tabular input -> a canonical Arrow table -> Parquet keyed by a content digest.

The digest (``dataset_digest``) identifies the *data*, not a file: the same rows logged from pandas,
polars, Arrow, a dict of numpy arrays or a Parquet/CSV file give the same digest, however they are
chunked, so the same data logged twice is one stored dataset version.

Canonical form, applied by :func:`to_arrow_table` before hashing and storing:

- schema and field metadata dropped (pandas' and polars' bookkeeping is not data), every field
  nullable;
- string-like columns (``string``, ``large_string``, ``string_view``) become ``large_string``, binary
  ones ``large_binary``, dictionary (categorical) columns are decoded to their values; other types
  are kept, so the types are part of the content (``int32`` and ``int64`` data differ, and so do
  ``timestamp[ns]`` and ``timestamp[us]``);
- a pandas index is dropped unless it is named (``df.set_index("id")``): then it becomes a column,
  as ``reset_index`` would make it.

Digest: sha256 of a version tag, the Arrow IPC stream of the canonical table cut into batches of a
fixed number of rows (so chunking cannot matter), with nulls of primitive and string columns replaced
by a zero value, followed by each such column's validity as a boolean IPC stream (the bytes Arrow
keeps under a null are undefined and differ between producers).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.artifacts._blobstore import BlobStore, IntegrityError, _check_sha
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store._entities import DatasetVersion

__all__ = ["dataset_digest", "load_dataset", "store_dataset", "to_arrow_table"]

_DIGEST_TAG = b"mloop-dataset-digest-v1\n"
_DIGEST_BATCH_ROWS = 1 << 16
_SUPPORTED = (
    "a pandas or polars DataFrame, a pyarrow Table or RecordBatch, a dict of 1-d numpy arrays, "
    "or a path to a .parquet, .csv, .json/.jsonl, .arrow or .feather file"
)


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


def _from_pandas(df: Any) -> pa.Table:
    if any(n is not None for n in df.index.names):
        try:
            df = df.reset_index()
        except ValueError as exc:  # the index's name is also a column's
            raise InvalidInputError(
                f"`data` index names must differ from its column names; got {exc}. Rename the "
                "index or drop it with `df.reset_index(drop=True)`."
            ) from None
    if not all(isinstance(c, str) for c in df.columns):
        bad = next(c for c in df.columns if not isinstance(c, str))
        raise InvalidInputError(
            f"`data` columns must be str names; got column {bad!r} of type {type(bad).__name__}. "
            "Rename the columns, e.g. `df.columns = df.columns.map(str)`."
        )
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata(None)


def _from_dict(data: Mapping[Any, Any]) -> pa.Table:
    import numpy as np

    arrays: dict[str, Any] = {}
    length: int | None = None
    for key, value in data.items():
        if not isinstance(key, str):
            raise InvalidInputError(
                f"`data` dict keys must be str column names; got {key!r} of type "
                f"{type(key).__name__}."
            )
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise InvalidInputError(
                f"`data['{key}']` must be a 1-d array; got shape {arr.shape}. Split the columns "
                "or flatten the array."
            )
        if length is not None and len(arr) != length:
            raise InvalidInputError(
                f"`data` arrays must all have one length; got {length} rows before and "
                f"{len(arr)} in '{key}'."
            )
        length = len(arr)
        arrays[key] = arr
    return pa.table(arrays)


def _from_file(path: Path) -> pa.Table:
    if not path.is_file():
        raise InvalidInputError(
            f"`data` is a path, so it must name an existing file; got '{path}'. "
            f"`data` can be {_SUPPORTED}."
        )
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    base = suffix.removesuffix(".gz")
    try:
        if base in (".parquet", ".pq"):
            return pq.read_table(path)
        if base in (".csv", ".tsv"):
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if base == ".tsv" else ",")
            return pcsv.read_csv(path, parse_options=parse)
        if base in (".json", ".jsonl", ".ndjson"):
            return _read_json(path)
        if base in (".arrow", ".feather", ".ipc"):
            import pyarrow.feather as feather

            return feather.read_table(path)
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read '{path}' as {base[1:]}: {exc}") from exc
    raise InvalidInputError(
        f"`data` file must end in .parquet, .csv, .tsv, .json, .jsonl, .arrow or .feather; got "
        f"'{path.name}'."
    )


def _read_json(path: Path) -> pa.Table:
    import pyarrow.json as pjson

    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"["):
        # A JSON array of records (not newline-delimited): small files only, read whole.
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInputError(
                f"`data` JSON file '{path}' must hold objects, one per line, or an array of "
                "objects."
            )
        return pa.Table.from_pylist(records)
    return pjson.read_json(path)


def to_arrow_table(data: Any) -> pa.Table:
    """Convert tabular data to a canonical :class:`pyarrow.Table`.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table, pyarrow.RecordBatch, dict or path
        A dict maps str column names to 1-d numpy arrays (or sequences numpy can convert) of one
        length. A str or path names a ``.parquet``, ``.csv``, ``.tsv``, ``.json`` / ``.jsonl``
        (newline-delimited, or an array of objects), ``.arrow`` or ``.feather`` file.

    Returns
    -------
    pyarrow.Table
        In the canonical form described in the module docstring.

    Raises
    ------
    InvalidInputError
        For an unsupported type (the message names it), a missing or unreadable file, non-str
        column names, or dict arrays that are not 1-d or differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> to_arrow_table({"x": np.arange(3), "y": np.array(["a", "b", "c"])}).schema
    x: int64
    y: large_string
    """
    table: pa.Table
    pd = sys.modules.get("pandas")
    pl = sys.modules.get("polars")
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif pd is not None and isinstance(data, pd.DataFrame):
        table = _from_pandas(data)
    elif pl is not None and isinstance(data, pl.DataFrame):
        table = data.to_arrow()
    elif pl is not None and isinstance(data, pl.LazyFrame):
        raise InvalidInputError(
            "`data` must be materialized; got a polars LazyFrame. Pass `lazy_frame.collect()`."
        )
    elif isinstance(data, Mapping):
        table = _from_dict(data)
    elif isinstance(data, (str, os.PathLike)):
        table = _from_file(Path(os.fspath(data)))
    else:
        raise InvalidInputError(
            f"`data` must be {_SUPPORTED}; got {type(data).__module__}.{type(data).__qualname__}."
        )
    return _canonicalize(table)


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
        Where the data came from. Defaults to the file's ``file://`` URI when ``data`` is a path.

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
        source_uri = Path(os.fspath(data)).absolute().as_uri()
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
    key = _dataset_key(_check_sha(sha256))
    try:
        with blobstore._open_key(key) as f:
            table = pq.read_table(f)
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
