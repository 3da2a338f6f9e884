"""Opening stores: migrations, concurrent openers, corrupted files, unreachable servers."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

from mloop.config import Settings
from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.store import SqlStore, open_store
from mloop.store._sql._engine import HEAD_REVISION, MIGRATIONS_DIR
from mloop.store._sql._schema import metadata


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_migrations_create_exactly_the_declared_schema(sql_store_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    s = SqlStore(sql_store_uri)
    try:
        with s.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            assert diff == []
            assert (
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                == HEAD_REVISION
            )
    finally:
        s.close()


def _open_and_write(uri: str, i: int) -> str:
    s = SqlStore(uri)
    p = s.get_or_create_project("shared")
    r = s.create_run(p.id, name=f"w{i}")
    s.close()
    return r.id


def test_concurrent_processes_open_a_new_store_safely(sql_store_uri: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        ids = pool.starmap(_open_and_write, [(sql_store_uri, i) for i in range(4)])
    s = SqlStore(sql_store_uri)
    try:
        p = s.get_project_by_name("shared")
        assert p is not None
        assert {r.id for r in s.search_runs(p.id).items} == set(ids)
    finally:
        s.close()


def test_corrupted_sqlite_file_gives_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "mloop.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreUnavailableError, match="not a valid mloop database"):
        SqlStore(f"sqlite:///{bad}")
    assert bad.read_bytes().startswith(b"this is not")  # untouched


def test_unreachable_postgres_gives_a_clear_error() -> None:
    from _postgres import free_port

    uri = f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreUnavailableError, match="cannot use store") as info:
        SqlStore(uri)
    assert "secret" not in str(info.value)


def test_unknown_scheme_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="sqlite:///"):
        SqlStore("mysql://x/y")


def test_open_store_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "h")
    s = open_store(settings, cached=False)
    try:
        assert (tmp_path / "h" / "mloop.db").exists()
        with s.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        s.close()


def _kill_other_backends(url: str) -> int:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        )


def test_postgres_pool_replaces_connections_the_server_closed(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping per checkout; a connection that sat idle is pinged and, if dead, replaced."""
    from mloop.store._sql import _engine

    store = SqlStore(pg_database)
    try:
        pid = store.create_project("before").id
        pings: list[int] = []
        real_ping = store.engine.dialect.do_ping
        monkeypatch.setattr(
            store.engine.dialect, "do_ping", lambda c: pings.append(1) or real_ping(c)
        )
        for i in range(3):  # back-to-back transactions: no ping
            store.create_run(pid, name=f"r{i}")
        assert pings == []
        assert _kill_other_backends(pg_database) >= 1  # the pooled connection is now dead
        monkeypatch.setattr(_engine, "PING_IDLE_S", 0.0)  # every idle connection counts as stale
        run = store.create_run(pid, name="after")  # the pool pings, finds it dead, reconnects
        assert pings and store.get_run(run.id).name == "after"
    finally:
        store.close()
