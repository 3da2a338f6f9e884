"""The inference logger: predictions recorded off the request path, in batches.

``InferenceLogger.log`` runs on the serving hot path. It checks its arguments cheaply, draws the
sampling decision, appends one tuple to an in-memory buffer and returns (about a microsecond;
no pandas, no Arrow conversion, no I/O). A background thread wakes every ``flush_interval_s``
(or as soon as ``flush_rows`` rows are buffered), turns the buffer into Parquet chunks of about
``flush_rows`` rows, stores each chunk in the artifact store and then writes its index row
(``store.add_inference_chunk``).

Durability: a chunk is visible to readers once its index row is committed, and the index row is
written only after the blob is stored, so a reader never sees half a chunk. **A crash (SIGKILL,
power loss) loses at most the last unflushed batch**: the rows logged since the last successful
flush, normally at most ``flush_interval_s`` of traffic or ``flush_rows`` rows (more only while
writes are failing: what waits for a retry, up to ``max_buffer_rows``). A clean
:meth:`InferenceLogger.close` (and interpreter exit, through ``atexit``) writes everything. A blob stored without its index row (a crash in between) is
invisible and is reclaimed by the artifact garbage collector.

Failures never reach the server: a chunk whose write fails stays in memory and is retried at the
next flush, in order; what is waiting counts against ``max_buffer_rows``, so an outage holds at
most that many rows, after which new rows are dropped and counted (``stats["rows_dropped"]``)
instead of blocking the caller or growing memory.
"""

from __future__ import annotations

import atexit
import logging
import math
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)
from mloop.inference._chunks import Encoded, Entry, build_table, encode, split_entries
from mloop.store import Store, validate_name
from mloop.tables import read_table

__all__ = ["InferenceLogger"]

_log = logging.getLogger("mloop.inference")
# Errors that retrying cannot fix: the chunk is dropped (and counted) rather than retried forever.
_PERMANENT = (InvalidInputError, NotFoundError, ConflictError, AlreadyExistsError)
_WARN_EVERY_S = 60.0
# Output types whose len() is their number of rows (checked on the hot path; others at write time).
_SIZED = frozenset({list, tuple, np.ndarray})
_LIVE: weakref.WeakSet[InferenceLogger] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def _close_all() -> None:
    for logger in list(_LIVE):
        logger.close(timeout_s=logger.exit_timeout_s)


def _register_atexit(logger: InferenceLogger) -> None:
    global _atexit_registered
    with _atexit_lock:
        _LIVE.add(logger)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True


def _number(value: Any, name: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InvalidInputError(f"`{name}` must be a number; got {value!r}.")
    if value < low or (high is not None and value > high):
        bound = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise InvalidInputError(f"`{name}` must be {bound}; got {value!r}.")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"`{name}` must be an int >= 1; got {value!r}.")
    return value


class InferenceLogger:
    """Records predictions off the request path as Parquet chunks plus an index in the store.

    Parameters
    ----------
    deployment : str
        The name the log is kept under (a deployment, or the served model's name).
    store : Store
        Where the chunk index goes (``store.add_inference_chunk``).
    blobstore : mloop.artifacts.BlobStore
        Where the Parquet chunks go.
    sample : float, default 1.0
        The fraction of requests recorded, each request kept or skipped whole.
    flush_rows : int, default 10000
        Rows per chunk; buffering this many wakes the writer before its interval.
    flush_interval_s : float, default 1.0
        The longest a logged row waits before it is written.
    max_buffer_rows : int, default 1000000
        Rows held in memory (buffered, or waiting for a failed write to be retried) beyond which
        new rows are dropped and counted; ``log`` never blocks.
    seed : int, optional
        Seeds the sampling draws (reproducible sampling in tests).
    exit_timeout_s : float, default 10.0
        How long interpreter exit waits to write what is buffered.

    Examples
    --------
    >>> import pyarrow as pa, tempfile
    >>> from mloop.artifacts import BlobStore
    >>> from mloop.store import create_store
    >>> tmp = tempfile.mkdtemp()
    >>> store, blobs = create_store(f"sqlite:///{tmp}/m.db"), BlobStore(f"{tmp}/a")
    >>> logger = InferenceLogger("churn-api", store=store, blobstore=blobs)  # doctest: +SKIP
    >>> logger.log(request_ids=["r1"], ts_ms=1_700_000_000_000, model_version="churn/3",
    ...            features=pa.table({"x": [0.5]}), predictions=[1])  # doctest: +SKIP
    >>> logger.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        deployment: str,
        *,
        store: Store,
        blobstore: Any,
        sample: float = 1.0,
        flush_rows: int = 10_000,
        flush_interval_s: float = 1.0,
        max_buffer_rows: int = 1_000_000,
        seed: int | None = None,
        exit_timeout_s: float = 10.0,
    ) -> None:
        self.deployment = validate_name(deployment, what="deployment")
        if store is None or blobstore is None:
            raise InvalidInputError("`store` and `blobstore` are both required.")
        self.store = store
        self.blobstore = blobstore
        self.sample = _number(sample, "sample", low=0.0, high=1.0)
        self.flush_rows = _count(flush_rows, "flush_rows")
        self.flush_interval_s = _number(flush_interval_s, "flush_interval_s", low=0.001)
        self.max_buffer_rows = _count(max_buffer_rows, "max_buffer_rows")
        self.exit_timeout_s = _number(exit_timeout_s, "exit_timeout_s", low=0.0)
        self._draw = random.Random(seed).random
        self._lock = threading.Lock()  # the buffer and its counters
        self._io_lock = threading.Lock()  # one writer at a time (thread, flush(), close())
        self._buffer: list[Entry] = []
        self._buffered = 0  # rows in _buffer
        self._held = 0  # rows taken from the buffer, not yet written or dropped
        self._pending: deque[Encoded] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._next_warning = 0.0
        self.rows_logged = 0
        self.rows_sampled_out = 0
        self.rows_dropped = 0
        self.rows_invalid = 0
        self.rows_written = 0
        self.chunks_written = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"mloop-inference-log:{self.deployment}", daemon=True
        )
        self._thread.start()
        _register_atexit(self)

    def __repr__(self) -> str:
        return f"InferenceLogger({self.deployment!r}, sample={self.sample:g})"

    def __enter__(self) -> InferenceLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ hot path
    def log(
        self,
        *,
        request_ids: Sequence[str],
        ts_ms: int,
        model_version: str,
        features: Any,
        predictions: Any,
        shadow_version: str | None = None,
        shadow_predictions: Any = None,
    ) -> None:
        """Record one request (or several answered together); returns at once.

        Parameters
        ----------
        request_ids : sequence of str
            One id for the whole request (every row of ``features`` belongs to it), or one id per
            row (several requests predicted together; rows with the same id form one request).
            A bare str is one id. Labels (:func:`mloop.log_labels`) join on these ids.
        ts_ms : int
            When the request arrived, in ms since the Unix epoch.
        model_version : str
            The version that answered, e.g. ``"churn/3"``.
        features : pyarrow.Table
            The rows predicted on (a RecordBatch, or any table :func:`mloop.tables.read_table`
            accepts, at the cost of converting it here; or a row block: an object with a 2-D
            numpy ``values``, its ``columns`` names and ``num_rows``, which the writer turns into
            columns many requests at a time). It must not change after this call.
        predictions : array-like
            One output per row: 1-D is stored as ``prediction``, column ``k`` of a 2-D output as
            ``prediction_<k>``.
        shadow_version, shadow_predictions : optional
            The shadow model's version and outputs, stored as ``shadow_version`` and
            ``shadow_prediction``.

        Raises
        ------
        InvalidInputError
            If the arguments are of the wrong kind or length (checked cheaply; anything found
            only when the batch is written drops that request and counts it in
            ``stats["rows_invalid"]``).
        """
        try:
            n = features.num_rows
        except AttributeError:
            features = read_table(features, what="features", mixed="text")
            n = features.num_rows
        if isinstance(request_ids, str):
            request_ids = (request_ids,)
        k = len(request_ids)
        if k != 1 and k != n:
            raise InvalidInputError(
                f"`request_ids` must hold one id, or one per row ({n}); got {k}."
            )
        if type(predictions) in _SIZED and len(predictions) != n:
            raise InvalidInputError(
                f"`predictions` must hold one output per row ({n}); got {len(predictions)}."
            )
        if type(ts_ms) is not int:
            raise InvalidInputError(f"`ts_ms` must be an int (ms since the epoch); got {ts_ms!r}.")
        if not isinstance(model_version, str):
            raise InvalidInputError(f"`model_version` must be a str; got {model_version!r}.")
        if shadow_version is not None and not isinstance(shadow_version, str):
            raise InvalidInputError(f"`shadow_version` must be a str; got {shadow_version!r}.")
        keep = None
        kept = n
        if self.sample < 1.0:
            if k == 1:
                if self._draw() >= self.sample:
                    self.rows_sampled_out += n  # a lost update here only skews a counter
                    return
            else:
                distinct = dict.fromkeys(request_ids)
                chosen = frozenset(r for r in distinct if self._draw() < self.sample)
                if len(chosen) < len(distinct):
                    kept = sum(r in chosen for r in request_ids)
                    self.rows_sampled_out += n - kept
                    if not kept:
                        return
                    keep = chosen
        entry = (
            request_ids,
            ts_ms,
            model_version,
            features,
            predictions,
            shadow_version,
            shadow_predictions,
            keep,
        )
        with self._lock:
            if self._closed or self._buffered + self._held + n > self.max_buffer_rows:
                self.rows_dropped += n
                full = not self._closed
            else:
                self._buffer.append(entry)
                self._buffered += n
                self.rows_logged += kept
                if self._buffered >= self.flush_rows and not self._wake.is_set():
                    self._wake.set()
                return
        self._warn_dropped(full)

    def _warn_dropped(self, full: bool) -> None:
        now = time.monotonic()
        if now < self._next_warning:
            return
        self._next_warning = now + _WARN_EVERY_S
        why = (
            f"the buffer holds {self.max_buffer_rows} rows (max_buffer_rows) that are not "
            f"written yet; last write error: {self.last_error}"
            if full
            else "the logger is closed"
        )
        _log.warning(
            "inference log %s: dropping rows because %s (%d dropped so far)",
            self.deployment,
            why,
            self.rows_dropped,
        )

    # ------------------------------------------------------------------ writer
    @property
    def stats(self) -> dict[str, Any]:
        """Counters: rows logged (accepted), written, buffered (not written yet), sampled out,
        dropped (buffer full, closed, or a chunk the store refused), invalid (could not be
        encoded); chunks written; write errors and the last one."""
        with self._lock:
            buffered = self._buffered + self._held
        return {
            "rows_logged": self.rows_logged,
            "rows_written": self.rows_written,
            "rows_buffered": buffered,
            "rows_sampled_out": self.rows_sampled_out,
            "rows_dropped": self.rows_dropped,
            "rows_invalid": self.rows_invalid,
            "chunks_written": self.chunks_written,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._closed:
                return
            with self._io_lock:
                try:
                    self._write_once()
                except Exception:  # a boundary: the writer thread must outlive any one batch
                    _log.exception("inference log %s: flush failed", self.deployment)

    def _take(self) -> list[Entry]:
        with self._lock:
            entries, self._buffer = self._buffer, []
            self._held += self._buffered
            self._buffered = 0
        return entries

    def _release(self, rows: int, *, dropped: int = 0, invalid: int = 0) -> None:
        with self._lock:
            self._held -= rows
            self.rows_dropped += dropped
            self.rows_invalid += invalid

    def _write_once(self) -> bool:
        """Encode what is buffered, then write waiting chunks in order; True if all were written."""
        for group in split_entries(self._take(), self.flush_rows):
            self._encode(group)
        while self._pending:
            chunk = self._pending[0]
            try:
                sha, size = self.blobstore.put_bytes(chunk.data)
                self.store.add_inference_chunk(
                    self.deployment,
                    sha256=sha,
                    size=size,
                    n_rows=chunk.n_rows,
                    first_ts_ms=chunk.first_ts_ms,
                    last_ts_ms=chunk.last_ts_ms,
                    model_versions=chunk.model_versions,
                )
            except _PERMANENT as exc:
                self._pending.popleft()
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._release(chunk.n_rows, dropped=chunk.n_rows)
                _log.error(
                    "inference log %s: the store refused a chunk of %d rows, dropped: %s",
                    self.deployment,
                    chunk.n_rows,
                    exc,
                )
                continue
            except Exception as exc:  # a boundary: any I/O failure is retried at the next flush
                chunk.attempts += 1
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                _log.warning(
                    "inference log %s: writing a chunk of %d rows failed (attempt %d), "
                    "kept for the next flush: %s",
                    self.deployment,
                    chunk.n_rows,
                    chunk.attempts,
                    exc,
                )
                return False
            self._pending.popleft()
            self.rows_written += chunk.n_rows
            self.chunks_written += 1
            self._release(chunk.n_rows)
        return True

    def _encode(self, group: list[Entry]) -> None:
        rows = sum(e[3].num_rows for e in group)
        try:
            tables = [build_table(group)]
        except (InvalidInputError, pa.ArrowException, ValueError, TypeError):
            tables = self._salvage(group)
        kept = 0
        for table in tables:
            if table.num_rows:
                self._pending.append(encode(table, deployment=self.deployment))
                kept += table.num_rows
        # Rows not kept (sampled out within a batch, or invalid, both counted already) leave
        # the memory count now.
        self._release(rows - kept)

    def _salvage(self, group: list[Entry]) -> list[pa.Table]:
        """Build entries one by one to keep the good ones when one of them cannot be stored."""
        tables = []
        for entry in group:
            try:
                tables.append(build_table([entry]))
            except (InvalidInputError, pa.ArrowException, ValueError, TypeError) as exc:
                n = entry[3].num_rows
                with self._lock:
                    self.rows_invalid += n
                self.last_error = f"{type(exc).__name__}: {exc}"
                _log.warning(
                    "inference log %s: a request of %d rows cannot be stored and was skipped: %s",
                    self.deployment,
                    n,
                    exc,
                )
        return tables

    # ------------------------------------------------------------------ public control
    def flush(self, timeout_s: float | None = None) -> None:
        """Write everything logged so far, now, in the calling thread.

        Parameters
        ----------
        timeout_s : float, optional
            How long to wait for a write the background thread has under way.

        Raises
        ------
        TimeoutError
            If the background thread's write did not finish within ``timeout_s``.
        StoreUnavailableError
            If a chunk could not be written; its rows stay buffered and are retried.
        """
        if not self._io_lock.acquire(timeout=-1 if timeout_s is None else max(timeout_s, 0.0)):
            raise TimeoutError(
                f"inference log {self.deployment}: a write still under way after {timeout_s}s."
            )
        try:
            done = self._write_once()
        finally:
            self._io_lock.release()
        if not done:
            raise StoreUnavailableError(
                f"inference log {self.deployment}: {self.stats['rows_buffered']} rows could not "
                f"be written ({self.last_error}); they are kept and retried at the next flush."
            )

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is buffered and stop the background thread (idempotent).

        Rows still unwritten after ``timeout_s`` (the store or artifact store unreachable) are
        counted as dropped and reported in a warning; ``log`` after ``close`` drops and counts.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _LIVE.discard(self)
        self._wake.set()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self._thread.join(timeout=max(timeout_s, 0.0))
        written = False
        while True:
            left = deadline - time.monotonic()
            if not self._io_lock.acquire(timeout=max(left, 0.0)):
                break
            try:
                written = self._write_once()
            finally:
                self._io_lock.release()
            if written or time.monotonic() >= deadline:
                break
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        if not written:
            with self._lock:
                lost = self._buffered + self._held
                self._buffer, self._buffered = [], 0
                self._pending.clear()
                self._held = 0
                self.rows_dropped += lost
            _log.warning(
                "inference log %s: %d rows could not be written before close (%s) and are lost",
                self.deployment,
                lost,
                self.last_error,
            )
