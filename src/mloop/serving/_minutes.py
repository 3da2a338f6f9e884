"""Per-minute aggregates of what a deployment's server answered, recorded in the store so latency
and errors can be read over time after the process is gone (``/metrics`` is this process's only).

Every scoring answer adds to its wall-clock minute: a count, an error count (status >= 400), the
latency's sum and maximum and a histogram over :data:`~mloop.store.LATENCY_BOUNDS_MS` (a lock, a
clock read and a bisect: about a microsecond of a ~170 us request). A background thread writes the
minutes that changed every ``interval_s`` seconds; the store replaces a (deployment, replica,
minute) row, so the running minute is simply written again, and a failed write is retried at the
next flush. Closing the server writes what is left.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from mloop.errors import MloopError
from mloop.store import LATENCY_BOUNDS_MS, ServingMinute, Store

__all__ = ["MinuteRecorder"]

log = logging.getLogger("mloop.serving")

MINUTE_MS = 60_000
FLUSH_INTERVAL_S = 10.0
MAX_KEPT_MINUTES = 180  # minutes kept while the store is unreachable (then the oldest are dropped)


class _Minute:
    __slots__ = ("counts", "errors", "n", "top", "total")

    def __init__(self) -> None:
        self.n = 0
        self.errors = 0
        self.total = 0.0
        self.top = 0.0
        self.counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)


def default_replica() -> str:
    """This process: ``host:pid`` (what tells replicas and workers apart)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


class MinuteRecorder:
    """Aggregate answers per minute and write them to ``store`` for ``deployment``.

    Parameters
    ----------
    store : Store
    deployment : str
    replica : str, optional
        Default ``host:pid``.
    interval_s : float, default 10
        How often the changed minutes are written (0: only by :meth:`flush` and :meth:`close`).
    clock : callable, optional
        Seconds since the epoch (``time.time``); tests pass their own.
    """

    def __init__(
        self,
        store: Store,
        deployment: str,
        *,
        replica: str | None = None,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.replica = replica or default_replica()
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._minutes: dict[int, _Minute] = {}
        self._dirty: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.write_errors = 0

    def start(self) -> None:
        if self.interval_s > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="mloop-serving-minutes", daemon=True
            )
            self._thread.start()

    def observe(self, status: int, seconds: float) -> None:
        """One scoring answer (called on the event loop's thread)."""
        ms = seconds * 1000.0
        minute = int(self._clock() * 1000) // MINUTE_MS * MINUTE_MS
        bucket = bisect.bisect_left(LATENCY_BOUNDS_MS, ms)
        with self._lock:
            m = self._minutes.get(minute)
            if m is None:
                m = self._minutes[minute] = _Minute()
            m.n += 1
            if status >= 400:
                m.errors += 1
            m.total += ms
            if ms > m.top:
                m.top = ms
            m.counts[bucket] += 1
            self._dirty.add(minute)

    def snapshot(self) -> list[ServingMinute]:
        """Every minute held now, as the store receives them."""
        with self._lock:
            return [self._entity(k) for k in sorted(self._minutes)]

    def _entity(self, minute: int) -> ServingMinute:
        m = self._minutes[minute]
        return ServingMinute(
            self.deployment, self.replica, minute, m.n, m.errors, m.total, m.top, tuple(m.counts)
        )

    def flush(self) -> bool:
        """Write the minutes that changed since the last write; False when the store refused
        (they are kept and written at the next flush)."""
        with self._lock:
            dirty = sorted(self._dirty)
            batch = [self._entity(k) for k in dirty]
            self._dirty.clear()
        if batch:
            try:
                self.store.record_serving_minutes(batch)
            except (MloopError, OSError) as exc:
                self.write_errors += 1
                log.warning(
                    "mloop serve: could not record %d serving minute(s) of %s (%s); retrying at the "
                    "next flush",
                    len(batch),
                    self.deployment,
                    exc,
                )
                with self._lock:
                    self._dirty.update(dirty)
                self._trim()
                return False
        self._trim()
        return True

    def _trim(self) -> None:
        # A written minute older than the previous one gets no more answers: forget it.
        now = int(self._clock() * 1000) // MINUTE_MS * MINUTE_MS
        with self._lock:
            for k in [k for k in self._minutes if k < now - MINUTE_MS and k not in self._dirty]:
                del self._minutes[k]
            while len(self._minutes) > MAX_KEPT_MINUTES:
                oldest = min(self._minutes)
                del self._minutes[oldest]
                self._dirty.discard(oldest)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
