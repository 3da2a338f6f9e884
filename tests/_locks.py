"""Another client holding a store's write lock, for tests of what a locked store does (the lock of
the server's own database, for the suite's HTTP stores)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

# The wrappers of a store URI that put a server in front of it (``asgi+``, ``socket+``).
SERVER_WRAPPERS = ("asgi+", "socket+")


def server_store_uri(uri: str) -> str | None:
    """The URI of the server's own store when ``uri`` is one of the suite's HTTP backends."""
    for prefix in SERVER_WRAPPERS:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return None


@contextlib.contextmanager
def locked(store_uri: str) -> Iterator[None]:
    """Another client holds the write lock (SQLite) or the runs table (PostgreSQL). For the
    suite's HTTP stores (``asgi+<URI>``...), that is the lock of the server's own database."""
    store_uri = server_store_uri(store_uri) or store_uri
    if store_uri.startswith("sqlite"):
        conn: Any = sqlite3.connect(store_uri[len("sqlite:///") :], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        conn = psycopg.connect(store_uri.replace("postgresql+psycopg", "postgresql"))
        conn.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()
