"""Open the store that settings point at (one instance per URI per process)."""

from __future__ import annotations

import threading

from mloop.config import Settings
from mloop.store._base import Store

_lock = threading.Lock()
_cache: dict[tuple[str, float], Store] = {}


def open_store(settings: Settings, *, cached: bool = True) -> Store:
    """The :class:`Store` for ``settings.store_uri`` (schema upgraded on first open).

    With ``cached`` (default) one store, and so one connection pool, is shared per URI in a process.
    """
    from mloop.store._sql import SqlStore

    key = (settings.store_uri, settings.heartbeat_s)
    if not cached:
        return SqlStore(settings.store_uri, heartbeat_timeout_s=3 * settings.heartbeat_s)
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = SqlStore(settings.store_uri, heartbeat_timeout_s=3 * settings.heartbeat_s)
            _cache[key] = store
        return store


def clear_store_cache() -> None:
    """Dispose cached stores (tests, and processes that fork)."""
    with _lock:
        for store in _cache.values():
            store.close()
        _cache.clear()
