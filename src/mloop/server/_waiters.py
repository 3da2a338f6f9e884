"""Long-polls of the event log: requests held until an event past a given id has committed.

Every held request of a store is woken by one watcher thread: it reads the newest event id (one
indexed ``max(id)``), resolves the requests that id is past, and sleeps in the store's own
listener (``LISTEN``/``NOTIFY`` on PostgreSQL, so a commit anywhere wakes it at once) or for a
short tick (SQLite; a new held request wakes it at once). A held request costs a future on the
event loop, no worker thread and no database connection; the watcher holds at most the
listener's one connection, and only while requests are held: it ends after a short idle spell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from typing import Any

from mloop.store import EventListener, PollingListener, Store

__all__ = ["EventWaiters", "waiters_for"]

_log = logging.getLogger("mloop.server")

_TICK_S = 0.05  # between two reads of the newest id, when the store cannot notify
_LISTEN_TICK_S = 1.0  # the same with a listener (a missed NOTIFY costs at most this)
_IDLE_S = 2.0  # the watcher ends after this long without a held request

_Waiter = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[int | None]"]


class EventWaiters:
    """The held requests of one store and the watcher thread that wakes them."""

    def __init__(self, store: Store, *, tick_s: float = _TICK_S, idle_s: float = _IDLE_S) -> None:
        self._store = weakref.ref(store)  # the registry below is keyed by the store
        self._tick_s = tick_s
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._waiting: dict[int, _Waiter] = {}
        self._head = 0  # the newest id the watcher has read (it only grows)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False

    @property
    def held(self) -> int:
        """How many requests are held now."""
        with self._lock:
            return len(self._waiting)

    async def wait_past(self, after_id: int, timeout_s: float) -> int | None:
        """The newest event id as soon as it is past ``after_id``; None if ``timeout_s`` passes
        first (or the request is cancelled)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        key = id(future)
        with self._lock:
            if self._head > after_id:
                return self._head
            self._waiting[key] = (after_id, loop, future)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="mloop-event-waiters", daemon=True
                )
                self._thread.start()
        self._wake.set()  # read the newest id now, not after a tick
        try:
            done, _ = await asyncio.wait({future}, timeout=max(timeout_s, 0.0))
            return future.result() if done else None
        finally:
            with self._lock:
                self._waiting.pop(key, None)
            if not future.done():
                future.cancel()

    def close(self, *, timeout_s: float = 5.0) -> bool:
        """End the watcher thread now (and release its listener) instead of after its idle
        spell: for whoever closes the store. Held requests are answered at once (as if their
        wait had passed); a later one starts a watcher again. Returns whether the thread ended
        within ``timeout_s``."""
        with self._lock:
            thread = self._thread
            self._closing = thread is not None
        self._wake.set()
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    # ------------------------------------------------------------------ the watcher thread
    def _watch(self) -> None:
        try:
            with contextlib.ExitStack() as stack:
                self._loop(self._open_listener(stack))
        except Exception:  # the boundary of a thread: held requests time out, the next restarts it
            _log.exception("mloop: the event watcher failed")
            with self._lock:
                self._thread = None

    def _open_listener(self, stack: contextlib.ExitStack) -> EventListener:
        store = self._store()
        if store is None:
            return PollingListener()
        try:
            return stack.enter_context(store.event_listener())
        except Exception as exc:  # e.g. PostgreSQL refuses LISTEN now: read on a tick instead
            _log.warning("mloop: event watcher: no listener (%s); reading on a %.2f s tick",
                         exc, self._tick_s)  # fmt: skip
            return PollingListener()

    def _loop(self, listener: EventListener) -> None:
        polling = isinstance(listener, PollingListener)
        idle_since: float | None = None
        while True:
            self._wake.clear()
            head = self._read_head()
            with self._lock:
                if self._closing or self._store() is None:  # closed, or its store is gone
                    for _, loop, future in self._waiting.values():
                        _resolve(loop, future, None)
                    self._waiting.clear()
                    self._closing = False
                    self._thread = None
                    return
                if head is not None and head > self._head:
                    self._head = head
                for key, (after_id, loop, future) in list(self._waiting.items()):
                    if self._head > after_id:
                        del self._waiting[key]
                        _resolve(loop, future, self._head)
                if self._waiting:
                    idle_since = None
                else:
                    now = time.monotonic()
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= self._idle_s:
                        self._thread = None
                        return
            if polling:
                self._wake.wait(self._tick_s)
            else:
                listener.wait(_LISTEN_TICK_S)

    def _read_head(self) -> int | None:
        store = self._store()
        if store is None:  # the store is gone, and with it whoever was waiting on it
            return None
        try:
            return store.last_event_id()
        except Exception as exc:  # the store is down: held requests time out and are retried
            _log.warning("mloop: event watcher cannot read the log: %s", exc)
            time.sleep(self._tick_s)
            return None


def _resolve(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[int | None], head: int | None
) -> None:
    def settle() -> None:
        if not future.done():
            future.set_result(head)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop has closed: nobody is waiting any more
        pass


_BY_STORE: weakref.WeakKeyDictionary[Any, EventWaiters] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def waiters_for(store: Store) -> EventWaiters:
    """The held requests of ``store`` (one watcher per store, however many apps serve it)."""
    with _BY_STORE_LOCK:
        waiters = _BY_STORE.get(store)
        if waiters is None:
            waiters = _BY_STORE[store] = EventWaiters(store)
        return waiters
