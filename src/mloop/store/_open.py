"""Open the store that settings point at (one instance per URI per process), from the backend
registered for its URI scheme (see ``_backends``)."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from mloop.config import Settings
from mloop.errors import StoreUnavailableError
from mloop.store._backends import create_store
from mloop.store._base import Store

_lock = threading.Lock()
_cache: dict[tuple[str, float], Store] = {}


def open_store(settings: Settings, *, cached: bool = True, create: bool = True) -> Store:
    """The :class:`Store` for ``settings.store_uri`` (schema upgraded on first open).

    With ``cached`` (default) one store, and so one connection pool, is shared per URI in a process.
    With ``create=False`` (read-only commands) a SQLite store that does not exist yet is read as an
    empty store, and nothing is created on disk.
    """
    if not create and _missing_sqlite_file(settings.store_uri):
        _check_could_create(settings.store_uri)
        return _empty_store()
    key = (settings.store_uri, settings.heartbeat_s)
    if not cached:
        return create_store(settings.store_uri, **_options(settings))
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = create_store(settings.store_uri, **_options(settings))
            _cache[key] = store
        return store


def _options(settings: Settings) -> dict[str, object]:
    options: dict[str, object] = {"heartbeat_timeout_s": 3 * settings.heartbeat_s}
    if settings.store_uri.lower().startswith(("http://", "https://")):
        options["token"] = settings.token  # a team server's bearer token (MLOOP_TOKEN)
    return options


def store_exists(settings: Settings) -> bool:
    """False only for a SQLite store whose file is not there yet (servers are assumed to exist)."""
    return not _missing_sqlite_file(settings.store_uri)


def _missing_sqlite_file(uri: str) -> bool:
    if not uri.startswith("sqlite"):
        return False
    import sqlalchemy as sa

    db = sa.engine.make_url(uri).database
    return db is not None and db not in ("", ":memory:") and not Path(db).exists()


def _check_could_create(uri: str) -> None:
    """Raise :class:`StoreUnavailableError` if the store's folder could not be created (an
    unusable ``MLOOP_HOME``), without creating anything: a probe folder is made and removed."""
    import sqlalchemy as sa

    folder = Path(str(sa.engine.make_url(uri).database)).absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        os.rmdir(tempfile.mkdtemp(prefix=".mloop-probe-", dir=existing))
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot use store folder {str(folder)!r}: {exc.strerror or exc} at "
            f"{str(exc.filename or existing)!r}. Point MLOOP_HOME (or MLOOP_STORE_URI) at a "
            "writable folder.",
            details={"folder": str(folder)},
        ) from None


def _empty_store() -> Store:
    """One in-memory store with the schema and no rows: what a store not created yet contains."""
    with _lock:
        store = _cache.get(("sqlite://", 0.0))
        if store is None:
            store = _cache[("sqlite://", 0.0)] = create_store("sqlite://")
        return store


def clear_store_cache() -> None:
    """Dispose cached stores (tests, and processes that fork)."""
    with _lock:
        for store in _cache.values():
            store.close()
        _cache.clear()
