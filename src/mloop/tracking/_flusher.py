"""The one daemon thread per process that drains every live run's background writer."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mloop.tracking._writer import BackgroundWriter

__all__: list[str] = []


class _Flusher:
    """One daemon thread per process that drains every live run's writer.

    Starting and joining a thread per run cost more than writing a short run; one shared thread
    wakes at the shortest flush interval of the writers it serves, or at once when a buffer fills.
    """

    def __init__(self) -> None:
        self._writers: dict[int, BackgroundWriter] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0  # pragma: no mutate - before any thread: register starts one whatever it is

    def register(self, writer: BackgroundWriter) -> None:
        with self._lock:
            self._writers[id(writer)] = writer
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked child needs its own thread
                self._thread = threading.Thread(
                    target=self._loop, name="mloop-flusher", daemon=True
                )
                self._thread.start()
        self._wake.set()  # re-read the shortest interval now

    def unregister(self, writer: BackgroundWriter) -> None:
        with self._lock:
            self._writers.pop(id(writer), None)

    def wake(self) -> None:
        # Every run.log past flush_at calls this until the flusher wakes and clears the event:
        # setting an event takes its lock, and that lock is what the waiting flusher contends on.
        if not self._wake.is_set():
            self._wake.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                writers = list(self._writers.values())
            # With no writers the default only sets how often an idle thread wakes: unobservable.
            interval = min((w.flush_interval_s for w in writers), default=1.0)  # pragma: no mutate
            woken = self._wake.wait(interval)
            self._wake.clear()
            now = time.monotonic()
            for w in writers:
                w._service(now, woken)
