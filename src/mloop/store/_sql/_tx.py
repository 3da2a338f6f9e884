"""``SqlBase``: what every SQL part of the store shares: the engine and its transactions.

Each concept's SQL mixin (runs, artifacts, registry, aliases, webhooks, monitors, the event log)
derives from it, so its transactions are typed rather than declared ``Any`` by every mixin.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from mloop.errors import InvalidInputError, NotFoundError, StoreUnavailableError
from mloop.store._sql import _schema as t
from mloop.store._sql._engine import create_store_engine, describe_uri, lock_wait, upgrade_schema
from mloop.store._sql._errors import translate
from mloop.store._sql._raw import PIPELINE_MAX_BYTES, Cursor

__all__ = ["SqlBase"]

_RUN_EXISTS = sa.select(t.runs.c.id).where(t.runs.c.id == sa.bindparam("rid"))

# The write deadline of each thread (``Store.write_deadline``).
_deadlines = threading.local()


class SqlBase:
    """The engine, the dialect, read and write transactions, and the write deadline."""

    uri: str
    engine: Engine
    dialect: str
    heartbeat_timeout_ms: int

    def __init__(
        self, uri: str, *, heartbeat_timeout_s: float = 90.0, upgrade: bool = True
    ) -> None:
        self.uri = uri
        self.heartbeat_timeout_ms = int(heartbeat_timeout_s * 1000)
        self.engine = create_store_engine(uri)
        self.dialect = self.engine.dialect.name
        if upgrade:
            upgrade_schema(self.engine, uri_for_messages=uri)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe_uri(self.uri)!r})"

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError):  # the caller knows what a violation means
                raise
            raise translate(exc, describe_uri(self.uri)) from exc

    @contextlib.contextmanager
    def write_deadline(self, deadline: float | None) -> Iterator[None]:
        before = getattr(_deadlines, "value", None)
        _deadlines.value = deadline
        try:
            yield
        finally:
            _deadlines.value = before

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        deadline = getattr(_deadlines, "value", None)
        try:
            with self.engine.connect() as conn:
                conn.execution_options(mloop_write=True)
                if deadline is not None:
                    wait_s = deadline - time.monotonic()
                    if wait_s <= 0:
                        raise StoreUnavailableError(
                            f"store {describe_uri(self.uri)!r}: no time left to wait for it "
                            "(the flush timeout has passed)."
                        )
                    lock_wait(conn, wait_s)
                try:
                    with conn.begin():
                        if deadline is not None and self.dialect == "postgresql":
                            ms = max(int((deadline - time.monotonic()) * 1000), 1)
                            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                        yield conn
                finally:
                    if deadline is not None:
                        lock_wait(conn, None)
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError):  # the caller knows what a violation means
                raise
            raise translate(exc, describe_uri(self.uri)) from exc
        except OverflowError as exc:  # sqlite3: an int beyond 64 bits (PostgreSQL: SQLSTATE 22003)
            raise translate(exc, describe_uri(self.uri)) from None
        except UnicodeEncodeError as exc:  # text validation should have refused it
            raise InvalidInputError(f"the store cannot encode a value: {exc}") from None

    @contextlib.contextmanager
    def _write_cursor(self, payload: int = 0) -> Iterator[Cursor]:
        """A write transaction (see :meth:`_write`) seen through its driver cursor.

        On PostgreSQL its statements are pipelined unless ``payload`` (bytes) is large.
        """
        with self._write() as conn:
            cur = Cursor(conn)
            try:
                with cur.pipelined(payload <= PIPELINE_MAX_BYTES):
                    yield cur
            finally:
                cur.close()

    def _require_run(self, conn: Connection, run_id: str) -> None:
        if conn.execute(_RUN_EXISTS, {"rid": run_id}).first() is None:
            raise NotFoundError(f"run {run_id} does not exist.")
