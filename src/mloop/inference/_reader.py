"""Reading the inference log back: chunks in index order, the whole log as one table, labels.

The index (``store.list_inference_chunks``) says which Parquet blobs hold a deployment's rows and
which time span each covers, so a time range reads only the chunks that overlap it. Delayed labels
(``store.log_labels``) are joined on ``request_id`` as a ``label`` column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop._digest import digest_bytes
from mloop.artifacts import BlobStore, IntegrityError
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.inference._chunks import null_table, unify_concat
from mloop.store import Store, open_store, validate_name
from mloop.tables import check_columns, read_parquet_bytes, value_label

if TYPE_CHECKING:
    from mloop.store import InferenceChunk

__all__ = [
    "TimeLike",
    "iter_inference_chunks",
    "log_labels",
    "read_inference_chunk",
    "read_inference_log",
    "resolve_stores",
    "to_ms",
]

TimeLike = datetime | str | int | np.datetime64
_PAGE = 1000
_LABEL_BATCH = 1000


def resolve_stores(store: Store | None, blobstore: BlobStore | None) -> tuple[Store, BlobStore]:
    """The stores given, or those of the environment's settings (``MLOOP_HOME``, ...)."""
    if store is None or blobstore is None:
        settings = Settings.from_env()
        if store is None:
            store = open_store(settings)
        if blobstore is None:
            blobstore = BlobStore(settings.artifact_uri, token=settings.token)
    return store, blobstore


def to_ms(value: TimeLike | None, name: str) -> int | None:
    """A time as ms since the Unix epoch: a datetime (naive means UTC), an ISO-8601 string, a
    ``numpy.datetime64``, or an int already in ms."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInputError(
            f"`{name}` must be a datetime, ISO string or ms int; got {value!r}."
        )
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                f"`{name}` must be an ISO-8601 time such as '2024-05-01T12:00:00Z'; got {value!r}."
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp() * 1000)
    raise InvalidInputError(
        f"`{name}` must be a datetime, an ISO-8601 string or ms since the epoch (int); "
        f"got {value!r} ({type(value).__name__})."
    )


def _read_chunk(blobstore: BlobStore, chunk: InferenceChunk) -> pa.Table:
    try:
        with blobstore.open(chunk.sha256) as f:
            data = f.read()
    except NotFoundError:
        raise NotFoundError(
            f"inference log {chunk.deployment}: chunk {chunk.id} (blob {chunk.sha256}) is not in "
            f"the artifact store {blobstore.uri}; it was deleted, or the log was written to "
            "another artifact store.",
            details={"chunk_id": chunk.id, "sha256": chunk.sha256},
        ) from None
    if digest_bytes(data, chunk.sha256) != chunk.sha256:
        raise IntegrityError(
            f"inference log {chunk.deployment}: chunk {chunk.id} (blob {chunk.sha256}) is "
            "corrupted: its content does not match its digest.",
            details={"chunk_id": chunk.id, "sha256": chunk.sha256},
        )
    # Read from an Arrow-owned copy, never from `data` itself: the scan behind pq.read_table may
    # release its input on an Arrow pool thread after returning, and releasing a buffer that
    # wraps a Python object takes the GIL, which aborts the process if that happens while the
    # interpreter is finalizing (see mloop.tables.arrow_buffer).
    return read_parquet_bytes(data).replace_schema_metadata(None)


def _select(table: pa.Table, columns: list[str] | None) -> pa.Table:
    if columns is None:
        return table
    n = table.num_rows
    return pa.table(
        {c: table.column(c) if c in table.column_names else pa.nulls(n) for c in columns}
    )


def _between(table: pa.Table, since: int | None, until: int | None) -> pa.Table:
    if since is None and until is None:
        return table
    ts = table.column("ts").cast(pa.int64())
    mask = None
    if since is not None:
        mask = pc.greater_equal(ts, since)
    if until is not None:
        below = pc.less(ts, until)
        mask = below if mask is None else pc.and_(mask, below)
    return table.filter(mask)


def _label_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Labels of several types (numbers and text): all as text, one type per column.
        return pa.array([None if v is None else value_label(v) for v in values], pa.string())


def _join_labels(store: Store, deployment: str, table: pa.Table) -> pa.Table:
    ids = table.column("request_id")
    unique = pc.unique(ids).drop_null().to_pylist()
    found: dict[str, Any] = {}
    for i in range(0, len(unique), _LABEL_BATCH):
        found.update(store.get_labels(deployment, unique[i : i + _LABEL_BATCH]))
    if not found:
        return table.append_column("label", pa.nulls(table.num_rows))
    keys = pa.array(list(found), pa.string())
    values = _label_array(list(found.values()))
    index = pc.index_in(ids, value_set=keys)
    return table.append_column("label", values.take(index))


def _wanted(columns: Sequence[str] | None, with_labels: bool) -> tuple[list[str] | None, list[str]]:
    """The columns to return (None: all) and those to read (request_id for the label join)."""
    if columns is None:
        return None, []
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidInputError(f"`columns` must be a list of column names; got {columns!r}.")
    out = [c for c in dict.fromkeys(columns) if not (with_labels and c == "label")]
    read = list(out)
    for c in ("request_id", "ts"):
        if c not in read:
            read.append(c)
    return out, read


def _chunks(
    store: Store, deployment: str, since: int | None, until: int | None, after_id: int
) -> Iterator[InferenceChunk]:
    while True:
        page = store.list_inference_chunks(
            deployment, after_id=after_id, since_ms=since, until_ms=until, limit=_PAGE
        )
        yield from page
        if len(page) < _PAGE:
            return
        after_id = page[-1].id


def _check_after(after_chunk_id: Any) -> int:
    if (
        isinstance(after_chunk_id, bool)
        or not isinstance(after_chunk_id, int)
        or after_chunk_id < 0
    ):
        raise InvalidInputError(f"`after_chunk_id` must be an int >= 0; got {after_chunk_id!r}.")
    return after_chunk_id


def iter_inference_chunks(
    deployment: str,
    *,
    store: Store | None = None,
    blobstore: BlobStore | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    after_chunk_id: int = 0,
    columns: Sequence[str] | None = None,
    with_labels: bool = False,
) -> Iterator[tuple[InferenceChunk, pa.Table]]:
    """Each chunk of a deployment's log in index order (the order it was written), as a table.

    Parameters
    ----------
    deployment : str
    store, blobstore : optional
        Default: those of the environment (``MLOOP_HOME``, ``MLOOP_STORE_URI``,
        ``MLOOP_ARTIFACT_URI``).
    since, until : datetime, ISO-8601 str or int (ms since the epoch), optional
        Only rows with ``since <= ts < until`` (only chunks overlapping the range are read).
    after_chunk_id : int, default 0
        Only chunks with a larger id: the cursor of a reader that resumes.
    columns : sequence of str, optional
        Only these columns (a column a chunk lacks is null there).
    with_labels : bool, default False
        Join the labels known now as a ``label`` column.

    Yields
    ------
    (InferenceChunk, pyarrow.Table)
        A chunk's index row and its rows (possibly none, when ``since``/``until`` cut them all).
    """
    deployment = validate_name(deployment, what="deployment")
    after = _check_after(after_chunk_id)
    lo, hi = to_ms(since, "since"), to_ms(until, "until")
    _wanted(columns, with_labels)
    store, blobstore = resolve_stores(store, blobstore)
    for chunk in _chunks(store, deployment, lo, hi, after):
        yield (
            chunk,
            read_inference_chunk(
                chunk,
                store=store,
                blobstore=blobstore,
                since=lo,
                until=hi,
                columns=columns,
                with_labels=with_labels,
            ),
        )


def read_inference_chunk(
    chunk: InferenceChunk,
    *,
    store: Store | None = None,
    blobstore: BlobStore | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    columns: Sequence[str] | None = None,
    with_labels: bool = False,
) -> pa.Table:
    """The rows of one chunk (an :class:`~mloop.store.InferenceChunk` from
    ``store.list_inference_chunks``); the parameters are those of :func:`iter_inference_chunks`.

    Raises
    ------
    NotFoundError
        If the chunk's blob is not in the artifact store.
    mloop.artifacts.IntegrityError
        If the blob's content does not match its sha256.
    """
    lo, hi = to_ms(since, "since"), to_ms(until, "until")
    out, read = _wanted(columns, with_labels)
    if with_labels:
        store, blobstore = resolve_stores(store, blobstore)
    elif blobstore is None:
        blobstore = resolve_stores(store, None)[1]
    table = _between(_select(_read_chunk(blobstore, chunk), read or None), lo, hi)
    if with_labels:
        assert store is not None
        table = _join_labels(store, chunk.deployment, table)
    if out is not None:
        table = table.select([*out, *(["label"] if with_labels else [])])
    return table


def read_inference_log(
    deployment: str,
    *,
    store: Store | None = None,
    blobstore: BlobStore | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    after_chunk_id: int = 0,
    with_labels: bool = True,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """A deployment's inference log as one table (chunks concatenated, schemas unified).

    Parameters
    ----------
    deployment : str
    store, blobstore, since, until, after_chunk_id
        As for :func:`iter_inference_chunks`.
    with_labels : bool, default True
        Join the labels logged so far (:func:`log_labels`) as a ``label`` column, null where a
        request has none. Every row of a request gets the request's label.
    columns : sequence of str, optional
        Only these columns, in this order (``label`` is added when ``with_labels``).

    Returns
    -------
    pyarrow.Table
        ``request_id``, ``row``, ``ts`` (timestamp[ms, UTC]), ``model_version``, the features,
        ``prediction`` (or ``prediction_<k>``), ``shadow_version``, ``shadow_prediction``, and
        ``label``; in the order the chunks were written. A column missing from some chunks is
        null there; an int column that became float is float; a column that changed between
        numbers and text is text.

    Raises
    ------
    InvalidInputError
        For bad arguments, or ``columns`` that no chunk has.
    NotFoundError
        If a chunk's blob is missing from the artifact store.
    """
    deployment = validate_name(deployment, what="deployment")
    out, read = _wanted(columns, with_labels)
    store, blobstore = resolve_stores(store, blobstore)
    tables = []
    seen: dict[str, None] = {}
    for _chunk, table in iter_inference_chunks(
        deployment,
        store=store,
        blobstore=blobstore,
        since=since,
        until=until,
        after_chunk_id=after_chunk_id,
    ):
        seen.update(dict.fromkeys(table.column_names))
        tables.append(table)
    if out is not None and tables:
        check_columns(out, list(seen), what="`columns`", where="in the inference log")
    table = unify_concat(tables) if tables else null_table()
    if read:
        table = _select(table, read)
    if with_labels:
        table = _join_labels(store, deployment, table)
    if out is not None:
        table = table.select([*out, *(["label"] if with_labels else [])])
    return table


def log_labels(
    deployment: str,
    labels: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    store: Store | None = None,
    ts_ms: int | None = None,
) -> int:
    """Record the true outcome of requests, to be joined with their predictions.

    Parameters
    ----------
    deployment : str
        The deployment (or served model name) the requests went to.
    labels : mapping or sequence of (request_id, label) pairs
        Each label a JSON scalar (number, str, bool). A request labelled again takes the new label.
    store : Store, optional
        Default: the environment's store.
    ts_ms : int, optional
        When the labels became known (default: now).

    Returns
    -------
    int
        The number of labels stored.

    Examples
    --------
    >>> import mloop
    >>> mloop.log_labels("churn-api", {"req-1": 1, "req-2": 0})  # doctest: +SKIP
    2
    """
    deployment = validate_name(deployment, what="deployment")
    if store is None:
        store = open_store(Settings.from_env())
    return int(store.log_labels(deployment, labels, ts_ms=ts_ms))
