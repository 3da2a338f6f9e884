"""Database errors are classified by the driver's codes (PostgreSQL SQLSTATE, SQLite result code
names), never by the wording of messages: each class is provoked for real on SQLite and on a real
PostgreSQL, and must come out as the mloop error it means."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)
from mloop.store import SqlStore, Store
from mloop.store._sql import _schema as t
from mloop.store._sql._errors import ERROR_CLASS, classify, translate


def _project_row(name: Any) -> Any:
    return t.projects.insert().values(
        name=name, created_ms=0, updated_ms=0, lifecycle_stage="active"
    )


def _violation(store: Store, statement: Any) -> IntegrityError:
    """Run ``statement`` in a write transaction; the integrity error it raises (for its caller)."""
    with pytest.raises(IntegrityError) as info, store._write() as conn:  # type: ignore[attr-defined]
        conn.execute(statement)
    return info.value


def _is_pg(store: Store) -> bool:
    return store.dialect == "postgresql"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- both SQL backends
# (SQL's own errors: an HTTP store never sees them, only the classes they become)
def test_a_unique_violation_means_already_exists(sql_store: SqlStore) -> None:
    sql_store.create_project("p")
    exc = _violation(sql_store, _project_row("p"))
    e = classify(exc)
    assert (e.kind, e.table, e.error_class) == ("unique", "projects", AlreadyExistsError)
    assert e.code == ("23505" if _is_pg(sql_store) else "SQLITE_CONSTRAINT_UNIQUE")
    err = translate(exc, "db")
    assert isinstance(err, AlreadyExistsError) and err.details["code"] == e.code
    with pytest.raises(AlreadyExistsError, match="project 'p' already exists"):
        sql_store.create_project("p")


def test_a_taken_run_id_is_already_exists_and_a_missing_project_not_found(
    sql_store: SqlStore,
) -> None:
    project = sql_store.create_project("p")
    run = sql_store.create_run(project.id)
    with pytest.raises(AlreadyExistsError, match=f"run {run.id} already exists"):
        sql_store.create_run(project.id, run_id=run.id)
    exc = _violation(
        sql_store,
        t.runs.insert().values(
            id=run.id, project_id=int(project.id), name="x", status="running", start_ms=0,
            lifecycle_stage="active",
        ),
    )  # fmt: skip
    e = classify(exc)
    assert (e.kind, e.table) == ("unique", "runs")
    assert e.code == ("23505" if _is_pg(sql_store) else "SQLITE_CONSTRAINT_PRIMARYKEY")
    with pytest.raises(NotFoundError, match="project id '987654' does not exist"):
        sql_store.create_run("987654")


def test_a_foreign_key_or_not_null_violation_is_classified(sql_store: SqlStore) -> None:
    fk = classify(
        _violation(sql_store, t.project_tags.insert().values(project_id=424242, key="k", value="v"))
    )
    assert (fk.kind, fk.error_class) == ("foreign_key", NotFoundError)
    assert fk.code == ("23503" if _is_pg(sql_store) else "SQLITE_CONSTRAINT_FOREIGNKEY")
    nn = classify(_violation(sql_store, _project_row(None)))
    assert (nn.kind, nn.error_class) == ("not_null", InvalidInputError)
    assert nn.code == ("23502" if _is_pg(sql_store) else "SQLITE_CONSTRAINT_NOTNULL")


def test_a_value_out_of_range_is_invalid_input(sql_store: SqlStore) -> None:
    run = sql_store.create_run(sql_store.create_project("p").id)
    with pytest.raises(InvalidInputError, match="refused a value") as info:
        sql_store.update_run(run.id, status="finished", end_ms=2**63)
    assert info.value.details["kind"] == "invalid_value"
    if _is_pg(sql_store):
        assert info.value.details["code"] == "22003"  # numeric_value_out_of_range
    assert sql_store.get_run(run.id).status == "running"  # nothing was written


# ---------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_store(pg_database: str) -> Iterator[SqlStore]:
    s = SqlStore(pg_database)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def other(pg_database: str) -> Iterator[Any]:
    """A second client of the same database."""
    conn = psycopg.connect(pg_database.replace("postgresql+psycopg", "postgresql"))
    try:
        yield conn
    finally:
        conn.close()


def _pg_write_error(store: SqlStore, *statements: Any) -> MloopError:
    with pytest.raises(MloopError) as info, store._write() as conn:
        for s in statements:
            conn.exec_driver_sql(s) if isinstance(s, str) else conn.execute(s)
    return info.value


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        (_project_row("x" * 501), "22001"),  # string_data_right_truncation: VARCHAR(500)
        (sa.text("SELECT convert_from('\\xff'::bytea, 'UTF8')"), "22021"),  # not in repertoire
        (sa.text("SELECT 'abc'::int"), "22P02"),  # invalid_text_representation
    ],
)
def test_postgres_data_exceptions_are_invalid_input(
    pg_store: SqlStore, statement: Any, code: str
) -> None:
    err = _pg_write_error(pg_store, statement)
    assert type(err) is InvalidInputError and err.details["code"] == code
    assert "refused a value" in err.message


def test_postgres_nul_in_text_is_invalid_input(pg_store: SqlStore) -> None:
    err = _pg_write_error(pg_store, _project_row("a\x00b"))  # refused by psycopg: no SQLSTATE
    assert type(err) is InvalidInputError and err.details["kind"] == "invalid_value"
    assert "code" not in err.details


def test_postgres_lock_timeout_is_unavailable(pg_store: SqlStore, other: Any) -> None:
    p = pg_store.create_project("p")
    other.execute("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")  # held until rollback
    try:
        update = t.projects.update().where(t.projects.c.id == int(p.id)).values(updated_ms=1)
        err = _pg_write_error(pg_store, "SET LOCAL lock_timeout = '200ms'", update)
    finally:
        other.rollback()
    assert type(err) is StoreUnavailableError
    assert (err.details["code"], err.details["kind"]) == ("55P03", "locked")
    assert pg_store.get_project(p.id).name == "p"  # the store is usable again


def test_postgres_statement_timeout_of_a_write_deadline_is_unavailable(
    pg_store: SqlStore, other: Any
) -> None:
    other.execute("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
    t0 = time.monotonic()
    try:
        with (
            pg_store.write_deadline(time.monotonic() + 0.5),
            pytest.raises(StoreUnavailableError) as info,
        ):
            pg_store.create_project("p")
    finally:
        other.rollback()
    assert time.monotonic() - t0 < 10
    assert (info.value.details["code"], info.value.details["kind"]) == ("57014", "timeout")
    assert pg_store.create_project("p").name == "p"


def test_postgres_serialization_failure_is_a_conflict(pg_store: SqlStore, other: Any) -> None:
    pid = int(pg_store.create_project("p").id)
    with pytest.raises(ConflictError, match="retry") as info, pg_store._write() as conn:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(sa.select(t.projects.c.updated_ms).where(t.projects.c.id == pid))
        other.execute("UPDATE projects SET updated_ms = 2 WHERE id = %s", (pid,))
        other.commit()
        conn.execute(t.projects.update().where(t.projects.c.id == pid).values(updated_ms=3))
    assert info.value.details["code"] == "40001"


def test_postgres_deadlock_is_a_conflict(pg_store: SqlStore, other: Any, pg_database: str) -> None:
    a, b = (int(pg_store.create_project(n).id) for n in ("a", "b"))
    other.execute("SET deadlock_timeout = '60s'")  # so the store's transaction is the victim
    other_pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
    other.execute("UPDATE projects SET updated_ms = 1 WHERE id = %s", (b,))

    def update(conn: Any, pid: int) -> None:
        conn.execute(t.projects.update().where(t.projects.c.id == pid).values(updated_ms=1))

    def other_side() -> None:
        with contextlib.suppress(psycopg.Error):
            other.execute("UPDATE projects SET updated_ms = 1 WHERE id = %s", (a,))  # waits
        other.rollback()

    watcher = psycopg.connect(pg_database.replace("postgresql+psycopg", "postgresql"))
    th = threading.Thread(target=other_side)
    try:
        with pytest.raises(ConflictError) as info, pg_store._write() as conn:
            conn.exec_driver_sql("SET LOCAL deadlock_timeout = '100ms'")
            update(conn, a)
            th.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until the other side waits for row a
                state = watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (other_pid,)
                ).fetchone()
                if state and state[0] == "Lock":
                    break
                time.sleep(0.02)
            update(conn, b)  # waits for the other side, which waits for us: a deadlock
    finally:
        th.join(30)
        watcher.close()
    assert info.value.details["code"] == "40P01"


def test_postgres_terminated_connection_is_unavailable_then_recovers(
    pg_store: SqlStore, other: Any
) -> None:
    with pytest.raises(StoreUnavailableError) as info, pg_store._read() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        other.commit()
        conn.exec_driver_sql("SELECT 1")
    assert info.value.details["kind"] == "connection"
    assert info.value.details.get("code") in (None, "57P01")  # admin_shutdown, if it was read
    assert pg_store.create_project("after").name == "after"  # the pool replaced the connection


# ---------------------------------------------------------------------------------- SQLite
@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "mloop.db"


@pytest.fixture
def lite(sqlite_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{sqlite_path}")
    try:
        yield s
    finally:
        s.close()


def test_sqlite_locked_database_is_unavailable(lite: SqlStore, sqlite_path: Path) -> None:
    holder = sqlite3.connect(sqlite_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    t0 = time.monotonic()
    try:
        with (
            lite.write_deadline(time.monotonic() + 0.3),
            pytest.raises(StoreUnavailableError) as info,
        ):
            lite.create_project("p")
    finally:
        holder.rollback()
        holder.close()
    assert time.monotonic() - t0 < 10
    assert (info.value.details["code"], info.value.details["kind"]) == ("SQLITE_BUSY", "locked")
    assert "stayed locked by another writer" in info.value.message
    assert lite.create_project("p").name == "p"


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make the file read-only, for root too (which ignores permission bits): immutable."""
    import os

    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    try:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a file read-only for root here (chattr +i failed: {exc})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)


def test_sqlite_read_only_file_is_unavailable(sqlite_path: Path) -> None:
    uri = f"sqlite:///{sqlite_path}"
    s = SqlStore(uri)
    s.create_project("p")
    s.close()  # the last connection checkpoints the WAL into the file
    with _read_only(sqlite_path):
        s = SqlStore(uri)
        try:
            assert [p.name for p in s.list_projects()] == ["p"]  # reading still works
            with pytest.raises(StoreUnavailableError, match="is read-only") as info:
                s.create_project("q")
        finally:
            s.close()
    assert info.value.details["code"].startswith("SQLITE_READONLY")
    assert info.value.details["kind"] == "read_only"


def test_sqlite_full_database_is_unavailable(lite: SqlStore) -> None:
    pid = int(lite.create_project("p").id)
    with pytest.raises(StoreUnavailableError, match="disk is full") as info, lite._write() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")  # no room to grow
        conn.execute(t.project_tags.insert().values(project_id=pid, key="k", value="x" * 200_000))
    assert (info.value.details["code"], info.value.details["kind"]) == ("SQLITE_FULL", "disk_full")


def test_sqlite_file_that_is_not_a_database_is_unavailable(sqlite_path: Path) -> None:
    sqlite_path.write_bytes(b"not a database" * 500)
    with pytest.raises(StoreUnavailableError, match="not a valid mloop database") as info:
        SqlStore(f"sqlite:///{sqlite_path}")
    assert (info.value.details["code"], info.value.details["kind"]) == ("SQLITE_NOTADB", "corrupt")


# ---------------------------------------------------------------------------------- the tables
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("23505", "unique"),
        ("23503", "foreign_key"),
        ("23502", "not_null"),
        ("23514", "check"),
        ("23P01", "constraint"),  # exclusion_violation: by class 23
        ("40001", "conflict"),
        ("40P01", "conflict"),
        ("55P03", "locked"),
        ("57014", "timeout"),
        ("25006", "read_only"),
        ("53100", "disk_full"),
        ("53300", "unavailable"),  # too_many_connections
        ("XX001", "corrupt"),
        ("57P01", "connection"),
        ("57P02", "connection"),
        ("57P03", "connection"),
        ("08006", "connection"),
        ("08001", "connection"),
        ("22001", "invalid_value"),
        ("22003", "invalid_value"),
        ("22021", "invalid_value"),
        ("22P05", "invalid_value"),
        ("58030", "unavailable"),  # io_error
        ("42P01", "unavailable"),  # undefined_table: a schema this version cannot use
    ],
)
def test_each_sqlstate_has_its_kind(code: str, kind: str) -> None:
    exc = psycopg.errors.lookup(code)("message\nmore")
    e = classify(exc)
    assert (e.kind, e.code, e.message) == (kind, code, "message")
    assert isinstance(translate(exc, "db"), ERROR_CLASS[e.kind])


@pytest.mark.parametrize(
    ("cls", "name", "kind"),
    [
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_UNIQUE", "unique"),
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_PRIMARYKEY", "unique"),
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_FOREIGNKEY", "foreign_key"),
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_NOTNULL", "not_null"),
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_CHECK", "check"),
        (sqlite3.IntegrityError, "SQLITE_CONSTRAINT_TRIGGER", "constraint"),
        (sqlite3.OperationalError, "SQLITE_BUSY", "locked"),
        (sqlite3.OperationalError, "SQLITE_BUSY_SNAPSHOT", "locked"),
        (sqlite3.OperationalError, "SQLITE_LOCKED", "locked"),
        (sqlite3.OperationalError, "SQLITE_READONLY", "read_only"),
        (sqlite3.OperationalError, "SQLITE_READONLY_DBMOVED", "read_only"),
        (sqlite3.OperationalError, "SQLITE_FULL", "disk_full"),
        (sqlite3.OperationalError, "SQLITE_CANTOPEN", "cannot_open"),
        (sqlite3.OperationalError, "SQLITE_IOERR_SHORT_READ", "unavailable"),
        (sqlite3.DatabaseError, "SQLITE_NOTADB", "corrupt"),
        (sqlite3.DatabaseError, "SQLITE_CORRUPT", "corrupt"),
        (sqlite3.DataError, "SQLITE_TOOBIG", "invalid_value"),
        (sqlite3.OperationalError, "SQLITE_INTERRUPT", "timeout"),
        (sqlite3.OperationalError, "SQLITE_ERROR", "connection"),  # no such table...: by class
    ],
)
def test_each_sqlite_result_code_has_its_kind(
    cls: type[sqlite3.Error], name: str, kind: str
) -> None:
    exc = cls("text that says nothing")
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    e = classify(exc)
    assert (e.kind, e.code) == (kind, name)


@pytest.mark.parametrize(
    ("cls", "text", "kind", "table"),
    [
        (sqlite3.IntegrityError, "UNIQUE constraint failed: runs.id", "unique", "runs"),
        (sqlite3.IntegrityError, "FOREIGN KEY constraint failed", "foreign_key", None),
        (sqlite3.OperationalError, "database is locked", "locked", None),
        (sqlite3.OperationalError, "attempt to write a readonly database", "read_only", None),
        (sqlite3.IntegrityError, "something else", "constraint", None),
        (sqlite3.OperationalError, "something else", "connection", None),
    ],
)
def test_without_result_codes_sqlites_own_texts_are_read_as_codes(
    cls: type[sqlite3.Error], text: str, kind: str, table: str | None
) -> None:
    """Python 3.10's sqlite3 errors carry no code: SQLite's fixed text for each code is used."""
    e = classify(cls(text))
    assert (e.kind, e.table) == (kind, table)


def test_errors_without_a_code_are_classified_by_their_class() -> None:
    assert classify(psycopg.DataError("PostgreSQL text fields cannot contain NUL")).kind == (
        "invalid_value"
    )
    assert classify(psycopg.OperationalError("connection refused")).kind == "connection"
    assert classify(psycopg.IntegrityError("?")).kind == "constraint"
    assert classify(OverflowError("Python int too large to convert to SQLite INTEGER")).kind == (
        "invalid_value"
    )
    assert classify(psycopg.ProgrammingError("?")).kind == "unavailable"


def test_a_message_is_never_what_decides() -> None:
    """A driver message mentioning 'locked' or 'unique' decides nothing: the code does."""
    exc = psycopg.errors.lookup("22001")("database is locked; UNIQUE constraint failed")
    assert classify(exc).kind == "invalid_value"
    lite_exc = sqlite3.OperationalError("file is not a database")
    lite_exc.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    assert classify(lite_exc).kind == "locked"
