"""Which class serves a store URI: a small registry of backends keyed by URI scheme.

``sqlite:///...`` and ``postgresql+psycopg://...`` are served by :class:`~mloop.store.SqlStore`.
A new backend is one call (or one entry point in the ``mloop.store_backends`` group, so an installed
package adds its own without mloop importing it)::

    register_backend(["http", "https"], lambda uri, **options: HttpStore(uri, **options))

Factories are called with the URI and keyword options (``heartbeat_timeout_s``); a factory
ignores the options it has no use for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from mloop.errors import InvalidInputError
from mloop.store._base import Store

__all__ = ["BackendFactory", "create_store", "register_backend", "registered_schemes"]

BackendFactory = Callable[..., Store]

_lock = threading.Lock()
_backends: dict[str, BackendFactory] = {}
_entry_points_loaded = False


def _sql_store(uri: str, **options: Any) -> Store:
    from mloop.store._sql import SqlStore

    return SqlStore(uri, **options)


def _http_store(uri: str, **options: Any) -> Store:
    from mloop.store._http import HttpStore

    return HttpStore(uri, **options)


def register_backend(schemes: Sequence[str], factory: BackendFactory) -> None:
    """Serve URIs whose scheme is one of ``schemes`` with ``factory(uri, **options)``.

    A scheme is what comes before ``://``, driver included (``postgresql+psycopg``); a URI whose
    full scheme is not registered is matched on the part before ``+``.
    """
    if isinstance(schemes, str) or not schemes:
        raise InvalidInputError(f"`schemes` must be a non-empty list of strings; got {schemes!r}.")
    if not callable(factory):
        raise InvalidInputError(f"`factory` must be callable; got {factory!r}.")
    with _lock:
        for scheme in schemes:
            if not isinstance(scheme, str) or not scheme or "://" in scheme:
                raise InvalidInputError(
                    f"a scheme is the part of a URI before '://' (e.g. 'https'); got {scheme!r}."
                )
            _backends[scheme.lower()] = factory


def registered_schemes() -> list[str]:
    _load_entry_points()
    with _lock:
        return sorted(_backends)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group="mloop.store_backends"):
        # An entry point named after its scheme(s), "https,http = pkg.module:factory".
        register_backend([s.strip() for s in ep.name.split(",")], ep.load())


def _scheme(uri: str) -> str:
    if not isinstance(uri, str) or ":" not in uri:
        raise InvalidInputError(
            f"a store URI looks like 'sqlite:///path/mloop.db' or "
            f"'postgresql+psycopg://user@host/db'; got {uri!r}."
        )
    return uri.split(":", 1)[0].lower()


def create_store(uri: str, **options: Any) -> Store:
    """A new store for ``uri`` from the backend registered for its scheme."""
    scheme = _scheme(uri)
    with _lock:
        factory = _backends.get(scheme) or _backends.get(scheme.split("+", 1)[0])
    if factory is None:
        _load_entry_points()
        with _lock:
            factory = _backends.get(scheme) or _backends.get(scheme.split("+", 1)[0])
    if factory is None:
        from mloop.store._sql import describe_uri

        raise InvalidInputError(
            f"no store backend serves {describe_uri(uri)!r}; known schemes: "
            f"{registered_schemes()}. Use 'sqlite:///path/mloop.db' or "
            "'postgresql+psycopg://user@host/db'."
        )
    return factory(uri, **options)


register_backend(["sqlite", "postgresql", "postgres"], _sql_store)
register_backend(["http", "https"], _http_store)
