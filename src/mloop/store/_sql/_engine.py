"""Engines for SQLite and PostgreSQL, and schema upgrades that are safe under concurrent openers."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.store._sql._errors import translate

__all__ = [
    "HEAD_REVISION",
    "create_store_engine",
    "describe_uri",
    "lock_wait",
    "upgrade_schema",
    "upgrade_store",
]

# The newest migration; a test asserts it equals Alembic's head, so the fast path below stays honest.
HEAD_REVISION = "0013"

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 60.0
PING_IDLE_S = 5.0  # PostgreSQL: ping a pooled connection before use when idle this long
_PG_UPGRADE_LOCK = 0x6D6C6F6F70  # "mloop": pg_advisory_lock key serialising schema upgrades


def describe_uri(uri: str) -> str:
    """The URI with any password removed, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


def create_store_engine(uri: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...`` with mloop's settings."""
    if uri.startswith("sqlite"):
        return _sqlite_engine(uri)
    if uri.startswith(("postgresql", "postgres")):
        if uri.startswith("postgres://"):
            uri = "postgresql+psycopg://" + uri[len("postgres://") :]
        elif uri.startswith("postgresql://"):
            uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
        try:
            engine = sa.create_engine(
                uri, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 10}
            )
        except ModuleNotFoundError as exc:
            raise StoreUnavailableError(
                f"PostgreSQL store {describe_uri(uri)!r} needs the psycopg driver: "
                "pip install 'mloop[postgres]'."
            ) from exc
        _ping_when_idle(engine)
        return engine
    raise InvalidInputError(
        f"store URI must start with 'sqlite:///' or 'postgresql+psycopg://'; got {describe_uri(uri)!r}."
    )


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle for ``PING_IDLE_S`` or more.

    ``pool_pre_ping`` would ping on every checkout: a round trip per transaction, ~15% of the
    time it takes to create a run. A connection that was just used is alive; one that sat in the
    pool may have been closed by a server restart or a proxy, so it is pinged, and a dead one is
    replaced (the pool retries the checkout on ``DisconnectionError``).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["mloop_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("mloop_idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def _sqlite_engine(uri: str) -> Engine:
    url = sa.engine.make_url(uri)
    db = url.database
    if db and db != ":memory:":
        try:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the folder of store {describe_uri(uri)!r}: {exc.strerror or exc}. "
                "Point MLOOP_HOME (or MLOOP_STORE_URI) at a writable folder.",
                details={"uri": describe_uri(uri)},
            ) from None
    if db and db != ":memory:":
        pool: dict[str, Any] = {"pool_size": 8, "max_overflow": 8}
    else:  # one in-memory database, shared by every connection of this engine
        pool = {"poolclass": sa.pool.StaticPool}
    engine = sa.create_engine(
        uri,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions defer locks, which turns
        # concurrent writers into "database is locked" deadlocks instead of waits).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            # 32 MB page cache a connection (default 2 MB): a search over a few thousand runs
            # touches more pages than the default holds, and re-reading them cost ~30%.
            cur.execute("PRAGMA cache_size = -32768")
            cur.execute("PRAGMA foreign_keys = ON")
            # LIKE is case-sensitive on PostgreSQL (and in MLflow's grammar); make SQLite agree.
            cur.execute("PRAGMA case_sensitive_like = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front (waiting up to the busy timeout); readers don't.
        write = conn.get_execution_options().get("mloop_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def lock_wait(conn: Connection, seconds: float | None) -> None:
    """How long this SQLite connection waits for the write lock (None: the default again).

    Set on the driver connection, outside any transaction: the ``BEGIN IMMEDIATE`` that the
    transaction opens is what waits. PostgreSQL bounds a write with ``statement_timeout`` instead.
    """
    if conn.dialect.name != "sqlite":
        return
    ms = int((SQLITE_BUSY_TIMEOUT_S if seconds is None else max(seconds, 0.001)) * 1000)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA busy_timeout = {ms}")


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema upgrades across processes: a file lock (SQLite) or an advisory lock (PG)."""
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if not db or db == ":memory:":
            yield
            return
        import fcntl

        lock_path = db + ".upgrade-lock"
        with open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_UPGRADE_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_UPGRADE_LOCK})
                conn.commit()


def upgrade_schema(engine: Engine, *, uri_for_messages: str) -> str:
    """Bring the schema to the newest revision; a no-op (one query) when already there.

    Safe when several processes open the same store at once. Returns the revision now in force.
    Raises :class:`StoreUnavailableError` for an unreachable server or a file that is not a database.
    """
    try:
        with engine.connect() as conn:
            rev = _current_revision(conn)
        if rev == HEAD_REVISION:
            return rev
        with _upgrade_lock(engine), engine.connect() as conn:
            conn.execution_options(mloop_write=True)
            with conn.begin():
                if _current_revision(conn) != HEAD_REVISION:
                    from alembic import command

                    command.upgrade(_alembic_config(conn), "head")
        return HEAD_REVISION
    except DBAPIError as exc:
        raise translate(exc, describe_uri(uri_for_messages)) from exc


def upgrade_store(uri: str) -> str:
    """Bring the store at ``uri`` to the newest schema revision; returns that revision."""
    engine = create_store_engine(uri)
    try:
        return upgrade_schema(engine, uri_for_messages=uri)
    finally:
        engine.dispose()
