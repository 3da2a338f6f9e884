from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# The CLI's tables take the width of the terminal they are printed to; tests read them the same
# whoever started pytest (pytest-xdist's workers inherit COLUMNS=80 and LINES=24 from execnet).
for _var in ("COLUMNS", "LINES"):
    os.environ.pop(_var, None)


@pytest.fixture
def mloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated MLOOP_HOME; environment variables that would point elsewhere are cleared."""
    home = tmp_path / "mloop-home"
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Base URL of a PostgreSQL server started for this test session (no database part)."""
    from _postgres import postgres_server
    from _services import service_missing

    try:
        cm = postgres_server()
        url = cm.__enter__().url
    except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        service_missing(f"cannot start PostgreSQL: {exc} {detail.decode(errors='replace')[-300:]}")
        return
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


_db_counter = itertools.count()


@pytest.fixture
def pg_database(pg_url: str) -> str:
    """A fresh, empty database on the session's server; returns its SQLAlchemy URL."""
    from _postgres import create_database

    return create_database(pg_url, f"t{os.getpid()}_{next(_db_counter)}")


# Every backend the contract suites run on: its name -> the URI of a fresh, empty store on it.
# The store is built from the URI by ``mloop.store.create_store`` (the backend registry), so a new
# backend joins every suite that takes ``store``, ``store_factory`` or ``store_uri`` with one line.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "sqlite": lambda request, tmp_path: f"sqlite:///{tmp_path / 'mloop.db'}",
    "postgres": lambda request, tmp_path: request.getfixturevalue("pg_database"),
}
# The HTTP store against the real server app: in-process (``asgi+`` + the server's own store URI,
# httpx's ASGI transport) and over a real socket (uvicorn in a thread on a free loopback port, one
# per store object). MLOOP_TEST_HTTP=0 leaves both out (a quick local run of the SQL backends).
if os.environ.get("MLOOP_TEST_HTTP", "1") != "0":
    BACKENDS["http"] = lambda request, tmp_path: f"asgi+sqlite:///{tmp_path / 'server.db'}"
    BACKENDS["http-socket"] = lambda request, tmp_path: f"socket+sqlite:///{tmp_path / 'srv.db'}"


def _register_test_backends() -> None:
    from _asgi import register_asgi_backend  # a child process with an asgi+ URI does the same

    register_asgi_backend()


_register_test_backends()


@pytest.fixture(params=list(BACKENDS))
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URI on each backend; the contract suite runs once per backend."""
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store_factory(store_uri: str) -> Iterator[Callable[..., Any]]:
    """Makes store objects on the test's backend (several, for tests of concurrent clients)."""
    from mloop.store import create_store

    made: list[Any] = []

    def make(**options: Any) -> Any:
        s = create_store(store_uri, **options)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.close()


@pytest.fixture
def store(store_factory: Callable[..., Any]) -> Any:
    return store_factory()


@pytest.fixture
def data_store(store: Any) -> Any:
    """Where ``store``'s data is: ``store`` itself on SQL backends, the server's own store behind
    the in-process HTTP store. Server-side work (the webhook dispatcher) runs on it."""
    return getattr(store, "backing", store)


# The backends that speak SQL themselves, for tests of SQL (schema, migrations, SqlStore).
SQL_BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=SQL_BACKENDS)
def sql_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQL store URI (SQLite, PostgreSQL): for tests about SQL itself."""
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def sql_store(sql_store_uri: str) -> Iterator[Any]:
    """A fresh ``SqlStore`` (SQLite, PostgreSQL): for tests about SQL itself."""
    from mloop.store import SqlStore

    s = SqlStore(sql_store_uri)
    try:
        yield s
    finally:
        s.close()


_PG_FIXTURES = frozenset({"pg_url", "pg_database"})
# Backends (``BACKENDS`` above) that need a service, and the marker that selects their tests.
_BACKEND_MARKS = {"postgres": pytest.mark.postgres}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses PostgreSQL ``postgres`` (``-m "not postgres"`` leaves them out):
    those that take a PostgreSQL fixture, and those a backend-parametrized fixture runs on it."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        mark = _BACKEND_MARKS.get(params.get("store_uri") or params.get("sql_store_uri"))
        if mark is None and _PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            mark = pytest.mark.postgres
        if mark is not None and item.get_closest_marker(mark.name) is None:
            item.add_marker(mark)
