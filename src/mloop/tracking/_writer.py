"""The background writer: turns buffered ``run.log`` calls into one store transaction per batch.

``run.log`` appends ``(step, timestamp_ms, {key: value})`` to a deque and returns. This thread wakes
every ``flush_interval_s`` (or when the buffer passes ``flush_at`` entries), drains the deque, packs
each key's points into numpy columns and writes them with one ``store.log_batch`` call. When the store
cannot be reached (or is locked past its busy timeout, or the mode is offline) the batch goes to the
spool instead, and every later write goes there too until the spool has been replayed, so the store
never sees a batch before the records it depends on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop._lazy import LazyModule
from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)
from mloop.ids import new_batch_id
from mloop.store import MetricSeries, NewRun, Store, validate_metric_value
from mloop.tracking import _pending
from mloop.tracking._flusher import _Flusher
from mloop.tracking._quarantine import QuarantineEntry, live_name, quarantine
from mloop.tracking._spool import SpoolUnavailableError, SpoolWriter, encode_metrics

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


__all__ = ["BackgroundWriter", "Pending"]

_log = logging.getLogger("mloop.tracking")


@dataclass
class Pending:
    """What one drain collected."""

    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    points: int = 0
    status: str | None = None  # set on a finishing run's last batch: recorded in the same commit
    end_ms: int | None = None

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


def pack_entries(
    entries: list[tuple[int, int, Mapping[str, Any]]],
) -> tuple[dict[str, MetricSeries], int, list[tuple[str, int, int, Any, str]]]:
    """Group ``(step, ts, {key: value})`` entries into one :class:`MetricSeries` per key.

    Returns the series, the number of points packed, and the points that cannot be a float64 as
    ``(key, step, ts, value, why)``: ``run.log`` refuses those, so this list is empty unless a value
    slipped past it; the caller keeps them rather than losing the whole batch over one value.
    """
    cols: dict[str, tuple[list[int], list[int], list[Any]]] = {}
    points = 0
    for step, ts, values in entries:
        for k, v in values.items():
            c = cols.get(k)
            if c is None:
                c = cols[k] = ([], [], [])
            c[0].append(step)
            c[1].append(ts)
            c[2].append(v)
            points += 1
    out = {}
    bad: list[tuple[str, int, int, Any, str]] = []
    for k, (s, t, v) in cols.items():
        try:
            column = np.array(v, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            keep = []
            for i, x in enumerate(v):
                try:
                    validate_metric_value(k, x)
                    keep.append(i)
                except InvalidInputError as exc:
                    bad.append((k, s[i], t[i], x, exc.message))
            s, t = [s[i] for i in keep], [t[i] for i in keep]
            column = np.array([float(v[i]) for i in keep], dtype=np.float64)
            points -= len(v) - len(keep)
            if not keep:
                continue
        out[k] = MetricSeries(np.array(s, dtype=np.int64), np.array(t, dtype=np.int64), column)
    return out, points, bad


class BackgroundWriter:
    """Owns a run's buffer, its writer thread, its heartbeat and its spool.

    Parameters
    ----------
    store : Store or None
        None in offline mode: everything is spooled.
    run_id : str
    spool : SpoolWriter
    flush_interval_s : float
        Maximum batching delay.
    heartbeat_s : float
        Interval of heartbeats (``store.heartbeat``) while the run is live.
    flush_at : int
        Buffer length (log calls) that wakes the writer early.
    on_error : callable
        Called with a one-line message for problems the user must hear about (param conflicts found
        at write time); default logs a warning.
    """

    def __init__(
        self,
        store: Store | None,
        run_id: str,
        spool: SpoolWriter,
        *,
        flush_interval_s: float = 1.0,
        heartbeat_s: float = 30.0,
        flush_at: int = 20_000,
        on_error: Callable[[str], None] | None = None,
        store_factory: Callable[[], Store] | None = None,
    ) -> None:
        self.store = store
        self.store_factory = store_factory
        self._next_open_try = 0.0
        self.run_id = run_id
        self.spool = spool
        self.flush_interval_s = flush_interval_s
        self.heartbeat_s = heartbeat_s
        self.flush_at = flush_at
        self.queue: deque[tuple[int, int, Mapping[str, Any]]] = deque()
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self._meta_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._creating: int | None = None  # the thread writing the run's creation, while it does
        self._next_due = 0.0
        self._last_heartbeat = time.monotonic()
        self._on_error = on_error or _warn
        self._final_status: tuple[str | None, int | None] = (None, None)  # set by stop()
        # A run created by start_run is written with its first batch (see ``defer_creation``).
        self._new_run: NewRun | None = None
        self._create_record: dict[str, Any] | None = None
        self.final_written = False
        self.points_written = 0
        self.points_spooled = 0
        self.batches_written = 0
        self.refused = 0  # items the store refused, kept in the quarantine
        self.quarantine_path: str | None = None
        # Batches neither the store nor the spool could take (an unwritable MLOOP_HOME), in order.
        self.held: list[Pending] = []
        self.hold_error: MloopError | None = None
        # The batch a store call is writing right now: spooled too if that call never returns.
        self._inflight: tuple[str, Pending] | None = None

    # ------------------------------------------------------------------ producer side
    def add_params(self, params: Mapping[str, str]) -> None:
        with self._meta_lock:
            self.params.update(params)
        _FLUSHER.wake()

    def add_tags(self, tags: Mapping[str, str]) -> None:
        with self._meta_lock:
            self.tags.update(tags)
        _FLUSHER.wake()

    def wake(self) -> None:
        _FLUSHER.wake()

    def defer_creation(self, new_run: NewRun, spool_record: dict[str, Any]) -> None:
        """Write the run itself with its first batch: one commit for a short run, not two.

        The flusher writes it at its next tick (within ``flush_interval_s``) if nothing else does
        first; ``finish`` writes it with the last batch; and every mloop API in this process that
        reads or changes the run writes it first (see ``_pending``). If the store is
        unreachable, ``spool_record`` goes to the spool ahead of the run's batches.
        """
        assert self.store is not None
        self._new_run = new_run
        self._create_record = spool_record
        _pending.defer(self.store, self.run_id, self.write_creation)

    def write_creation(self) -> None:
        """Write the run now if it is still pending (called through ``_pending.ensure_written``).

        While another thread is writing the run, this waits for that write to finish (so the
        caller then finds the run in the store); called from inside that write, it returns.
        """
        if self._creating == threading.get_ident():
            return
        with self._io_lock:
            if self._new_run is not None:
                self._write(Pending())

    # ------------------------------------------------------------------ scheduling
    def start(self) -> None:
        """Hand this writer to the process's flusher thread (no thread per run)."""
        self._next_due = time.monotonic() + self.flush_interval_s
        _FLUSHER.register(self)

    def _service(self, now: float, woken: bool) -> None:
        """Called by the flusher: drain when due (or woken), heartbeat when due."""
        if not (woken or now >= self._next_due):
            return
        self._next_due = now + self.flush_interval_s
        if not self._io_lock.acquire(blocking=False):
            return  # finish() or flush() is writing right now
        self._io_lock.release()
        try:
            self.drain()
            self._maybe_heartbeat()
        except Exception:  # the flusher must never die silently
            _log.exception("mloop: background writer for run %s failed; will retry", self.run_id)

    def _final_drain(self) -> None:
        """Write what is left as one batch carrying the run's final status (one commit).

        The caller holds ``_io_lock``.
        """
        self._write_held()
        p = self._collect()
        p.status, p.end_ms = self._final_status
        if p or p.status is not None or self._new_run is not None:
            self._write_safely(p)
        self.final_written = True

    def _maybe_heartbeat(self) -> None:
        if (
            self.store is None
            or self._new_run is not None
            or time.monotonic() - self._last_heartbeat < self.heartbeat_s
        ):
            return
        self._last_heartbeat = time.monotonic()
        try:
            self.store.heartbeat(self.run_id)
        except MloopError as exc:
            _log.debug("mloop: heartbeat for run %s failed: %s", self.run_id, exc)

    # ------------------------------------------------------------------ draining
    def _collect(self) -> Pending:
        q = self.queue
        n = len(q)
        entries = [q.popleft() for _ in range(n)]
        metrics, points, bad = pack_entries(entries)
        if bad:
            self._keep_refused(
                [
                    self._entry(
                        None,
                        f"metric {k!r} at step {step} ({why})",
                        raw=json.dumps({"key": k, "step": step, "timestamp": ts, "value": repr(v)}),
                    )
                    for k, step, ts, v, why in bad
                ]
            )
        with self._meta_lock:
            params, self.params = self.params, {}
            tags, self.tags = self.tags, {}
        return Pending(metrics, params, tags, points)

    def drain(self) -> None:
        """Write everything buffered so far (called by the thread, ``flush()`` and exit)."""
        with self._io_lock:
            self._drain_locked()

    def flush(self, timeout_s: float) -> bool:
        """:meth:`drain` within ``timeout_s``, bounded as :meth:`stop` is.

        A write the flusher is in the middle of is given until the deadline to finish; then this
        write gets what is left of it (the store waits for its locks no longer than that, and
        spools what it cannot take). Returns whether everything buffered reached the store or the
        spool; False if a write stuck in the store held the writer past the deadline: what is
        buffered then stays buffered, for the next flush (or ``stop``, which spools it).
        """
        deadline = time.monotonic() + timeout_s
        if not self._io_lock.acquire(timeout=timeout_s):
            return False
        try:
            store = self.store
            with store.write_deadline(deadline) if store is not None else nullcontext():
                self._drain_locked()
        finally:
            self._io_lock.release()
        return True

    def _drain_locked(self) -> None:
        """:meth:`drain`'s work; the caller holds ``_io_lock``."""
        self._write_held()
        while not self.held:
            pending = self._collect()
            if not pending and self._new_run is None:
                if self.spool.pending and self._ensure_store() is not None:
                    self._try_replay()
                return
            self._write_safely(pending)

    def _write_safely(self, p: Pending) -> None:
        """Write ``p`` to the store, else the spool; if neither can take it, hold it in memory."""
        try:
            try:
                self._write(p)
            except SpoolUnavailableError:
                raise
            except Exception:  # an unexpected store error must not lose the batch
                _log.exception(
                    "mloop: unexpected error writing run %s's batch; spooling it", self.run_id
                )
                self._spool_batch(p)
        except SpoolUnavailableError as exc:
            if not self.held:
                self._on_error(
                    f"run {self.run_id}: {exc.message}; keeping its writes in memory and retrying "
                    "(they are lost if the process ends first)."
                )
            self.held.append(p)
            self.hold_error = exc

    def _write_held(self) -> None:
        """Retry, in order, the batches neither the store nor the spool could take."""
        held, self.held = self.held, []
        for i, p in enumerate(held):
            self._write_safely(p)
            if self.held:  # still nowhere to put them: keep the rest, in order
                self.held.extend(held[i + 1 :])
                return

    def _ensure_store(self) -> Store | None:
        """The store, (re)opened through ``store_factory`` at most every 10 s while it is missing."""
        if (
            self.store is None
            and self.store_factory is not None
            and time.monotonic() >= self._next_open_try
        ):
            self._next_open_try = time.monotonic() + 10.0
            try:
                self.store = self.store_factory()
            except MloopError as exc:
                _log.debug("mloop: store still unavailable: %s", exc)
        return self.store

    def _try_replay(self) -> bool:
        assert self.store is not None
        try:
            self.spool.replay(self.store)
            return True
        except (StoreUnavailableError, NotFoundError) as exc:
            _log.debug("mloop: spool replay deferred: %s", exc)
            return False
        except Exception:  # keep the spool for later; never lose it or kill the writer
            _log.exception("mloop: spool replay for run %s failed; will retry", self.run_id)
            return False

    def _write(self, p: Pending) -> None:
        batch_id = new_batch_id()
        creating = self._new_run is not None
        if creating:
            # This write owns the creation now: a store call it makes must not re-enter it, and
            # another thread's read of the run waits for it (the run stays pending until written:
            # a reader let through earlier would not find it).
            self._creating = threading.get_ident()
        try:
            self._write_now(p, batch_id)
        finally:
            if creating:
                self._creating = None
                if self._new_run is None and self.store is not None:
                    _pending.written(self.store, self.run_id)

    def _write_now(self, p: Pending, batch_id: str) -> None:
        if self._ensure_store() is not None and (not self.spool.pending or self._try_replay()):
            assert self.store is not None
            self._inflight = (batch_id, p)
            try:
                self.store.log_batch(
                    self.run_id,
                    metrics=p.metrics,
                    params=p.params,
                    tags=p.tags,
                    batch_id=batch_id,
                    status=p.status,  # type: ignore[arg-type]
                    end_ms=p.end_ms,
                    new_run=self._new_run,
                )
                self._new_run = self._create_record = None
                self.points_written += p.points
                self.batches_written += 1
                return
            except AlreadyExistsError:
                if self._new_run is None:
                    raise
                # The run's id is this process's own uuid4: an earlier attempt that failed after
                # its commit (a dropped connection) wrote it. Write the batch into it.
                self._new_run = self._create_record = None
                return self._write(p)
            except (InvalidInputError, ConflictError) as exc:
                # run.log validates, so this is rare (a param that conflicts with a resumed run's
                # value, a limit of one backend): write the batch item by item; keep what is refused.
                return self._write_items(p, exc)
            except (StoreUnavailableError, NotFoundError) as exc:
                _log.warning(
                    "mloop: store unavailable (%s); spooling run %s's writes under %s",
                    exc.message,
                    self.run_id,
                    self.spool.dir,
                )
            finally:
                self._inflight = None
        self._spool_batch(p, batch_id)

    def _write_items(self, p: Pending, exc: MloopError) -> None:
        """Write a refused batch one item at a time: the store refuses only the bad items."""
        if self._new_run is not None:
            if not p and p.status is None:  # the run itself is refused: keep its creation
                self._keep_refused(
                    [self._entry(self._create_record or {}, f"run {self.run_id}: {exc.message}")]
                )
                self._new_run = self._create_record = None
                return
            self._write(Pending())  # the run first, alone
        items = [Pending(metrics={k: s}, points=len(s)) for k, s in p.metrics.items()]
        items += [Pending(params={k: v}) for k, v in p.params.items()]
        items += [Pending(tags={k: v}) for k, v in p.tags.items()]
        if len(items) <= 1:  # this is what the store refuses
            bad = items[0] if items else p
            record = {"op": "log_batch", "run_id": self.run_id, "batch_id": new_batch_id()}
            self._keep_refused([self._entry({**record, **_batch_body(bad)}, exc.message)])
            if items and p.status is not None:
                self._write(Pending(status=p.status, end_ms=p.end_ms))
            return
        for item in items:
            self._write(item)
        if p.status is not None:
            self._write(Pending(status=p.status, end_ms=p.end_ms))

    def _entry(
        self, record: Mapping[str, Any] | None, why: str, raw: str | None = None
    ) -> QuarantineEntry:
        return QuarantineEntry(f"run {self.run_id}", None, why, record=record, raw=raw)

    def _keep_refused(self, entries: list[QuarantineEntry]) -> None:
        """Quarantine what the store refused (``mloop sync --retry-quarantined`` applies it later)."""
        path = quarantine(self.spool.dir, live_name(self.run_id), entries)
        self.refused += len(entries)
        self.quarantine_path = str(path)
        for e in entries:
            self._on_error(
                f"run {self.run_id}: the store refused {e.error}; kept in {path} "
                "(`mloop sync --retry-quarantined` applies it after a fix)."
            )

    def _spool_creation(self, *, wait_s: float | None = None) -> None:
        """Spool the pending creation of the run (ahead of its batches)."""
        if self._create_record is not None:
            self.spool.append(self._create_record, wait_s=wait_s)
        if self.store is not None:
            _pending.written(self.store, self.run_id)
        self._new_run = self._create_record = None

    def _spool_batch(
        self, p: Pending, batch_id: str | None = None, *, wait_s: float | None = None
    ) -> None:
        self._spool_creation(wait_s=wait_s)
        if not p and p.status is None:
            return  # the run's creation alone
        self.spool.append(
            {
                "op": "log_batch",
                "run_id": self.run_id,
                "batch_id": batch_id or new_batch_id(),
                **_batch_body(p),
            },
            wait_s=wait_s,
            points=p.points,
        )
        self.points_spooled += p.points

    def spool_op(self, record: Mapping[str, Any]) -> None:
        """Spool a non-batch operation (run creation, status update...) in order with batches."""
        with self._io_lock:
            self.spool.append(record)

    def stop(
        self, *, timeout_s: float, status: str | None = None, end_ms: int | None = None
    ) -> bool:
        """Stop the thread and write what is left with ``status`` (one commit), within ``timeout_s``.

        The flusher is given until the deadline to finish a write it is in the middle of, and the
        last write (on the caller's thread: handing it to the flusher cost more than the write)
        gets what is left of it: the store waits for its locks no longer than that. If the store
        cannot take the writes in time they are spooled, the batch stuck in a write included
        (under its own batch id, so whichever copy lands first wins). Returns whether everything
        reached the store or the spool in time; :attr:`points_spooled` counts what was spooled.
        """
        deadline = time.monotonic() + timeout_s
        self._final_status = (status, end_ms)
        _FLUSHER.unregister(self)
        if not self._io_lock.acquire(timeout=timeout_s):
            # A write is stuck (the store hangs). Spool its batch and the rest, and do not wait
            # for the spool file either if the stuck thread holds it: use a file of its own.
            inflight = self._inflight
            if inflight is not None:
                self._spool_batch(inflight[1], inflight[0], wait_s=0.5)
            left = self._collect()
            left.status, left.end_ms = status, end_ms
            self._spool_batch(left, wait_s=0.5)
            return False
        try:
            store = self.store
            with store.write_deadline(deadline) if store is not None else nullcontext():
                self._final_drain()
        finally:
            self._io_lock.release()
        return time.monotonic() <= deadline or self.points_spooled == 0


_FLUSHER = _Flusher()


def _batch_body(p: Pending) -> dict[str, Any]:
    """A batch as the spool and the quarantine record it (``log_batch`` without its ids)."""
    return {
        "metrics": encode_metrics(p.metrics),
        "params": p.params,
        "tags": p.tags,
        "status": p.status,
        "end_ms": p.end_ms,
    }


def _warn(message: str) -> None:
    """What the user must hear about their data: on stderr (always) and in the log."""
    import sys

    # flush: the line must be out before a crash that may follow; unobservable in a test.
    print(f"mloop: {message}", file=sys.stderr, flush=True)  # pragma: no mutate
    _log.info("mloop: %s", message)
