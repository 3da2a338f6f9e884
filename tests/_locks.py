"""Another client holding a store's write lock, for tests of what a locked store does."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def locked(store_uri: str) -> Iterator[None]:
    """Another client holds the write lock (SQLite) or the runs table (PostgreSQL). For the
    in-process HTTP store (``asgi+<URI>``), that is the lock of the server's own database."""
    store_uri = store_uri.removeprefix("asgi+")
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
