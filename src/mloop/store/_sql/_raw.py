"""Hot-path statements on the driver's cursor, inside the SQLAlchemy transaction.

Creating a run and writing a batch are a handful of tiny statements each. Through SQLAlchemy Core
every one of them paid ~40-100 us of statement caching, parameter processing and result setup,
more than SQLite needed to run it; these paths now hand plain SQL to the driver connection that
the transaction already holds (pool, ``BEGIN IMMEDIATE`` and commit stay SQLAlchemy's).

On PostgreSQL the statements of one transaction go out in psycopg's pipeline mode: they are sent
without waiting for each other's results, so a transaction costs one round trip to the server plus
the commit, not one per statement (``sync`` waits for all of them; results are read after it).

The SQL is written once with ``?`` placeholders and portable syntax (``INSERT ... ON CONFLICT``,
quoted identifiers); for psycopg the placeholders become ``%s``. Driver errors are re-raised as the
SQLAlchemy exception they would have been (``IntegrityError``, ``OperationalError``...), so callers
and ``_errors.classify`` handle both paths the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

__all__ = ["PIPELINE_MAX_BYTES", "Cursor", "Result", "payload_bytes", "sql"]

_translated: dict[tuple[str, bool], str] = {}
_MAX_PARAMS = 30_000  # per statement: SQLite allows 32,766, PostgreSQL 65,535
PIPELINE_MAX_BYTES = 256 * 1024  # writes larger than this are sent statement by statement


def sql(text: str, pg: bool) -> str:
    """``text`` with its ``?`` placeholders in the driver's style (cached)."""
    key = (text, pg)
    out = _translated.get(key)
    if out is None:
        out = _translated[key] = text.replace("?", "%s") if pg else text
    return out


def payload_bytes(*maps: Any, points: int = 0) -> int:
    """About how many bytes a write sends: ``points`` metric points and the ``maps`` of strings."""
    return 24 * points + sum(len(k) + len(str(v)) for m in maps for k, v in m.items())


class Result:
    """What a statement returned, read at once (SQLite; one cursor serves every statement)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class Cursor:
    """Runs statements on the driver connection of ``conn``; errors come out as SQLAlchemy's."""

    __slots__ = ("_cur", "_dbapi_error", "_driver", "_pipeline", "pg")

    def __init__(self, conn: Connection) -> None:
        self.pg = conn.dialect.name == "postgresql"
        self._driver: Any = conn.connection.driver_connection
        self._cur: Any = None if self.pg else self._driver.cursor()  # type: ignore[union-attr]
        self._dbapi_error = conn.dialect.loaded_dbapi.Error
        self._pipeline: Any = None

    def _wrap(self, statement: str, params: Any, exc: Exception) -> Exception:
        return sa_exc.DBAPIError.instance(statement, params, exc, self._dbapi_error, ismulti=False)

    @contextlib.contextmanager
    def pipelined(self, enabled: bool = True) -> Iterator[Cursor]:
        """PostgreSQL: send the statements of the block without waiting (see module doc).

        Only for small writes (``enabled``; see :data:`PIPELINE_MAX_BYTES`): psycopg's pipeline can
        deadlock sending megabytes (psycopg issue #685; a 1M-point batch hung here), and a large
        write is dominated by its data, not by round trips.
        """
        if not (self.pg and enabled):
            yield self
            return
        try:
            with self._driver.pipeline() as self._pipeline:
                yield self
        except self._dbapi_error as exc:
            raise self._wrap("(pipeline)", None, exc) from exc
        finally:
            self._pipeline = None

    def sync(self) -> None:
        """Wait for every statement sent so far (their results become readable)."""
        if self._pipeline is not None:
            try:
                self._pipeline.sync()
            except self._dbapi_error as exc:
                raise self._wrap("(pipeline)", None, exc) from exc

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run (PostgreSQL in a pipeline: send) one statement.

        Returns an object with ``rowcount``, ``fetchone()`` and ``fetchall()``; in a pipeline,
        read them after :meth:`sync`.
        """
        text = sql(statement, self.pg)
        try:
            if self._cur is None:  # psycopg: a cursor per statement keeps each one's result
                cur = self._driver.cursor()
                cur.execute(text, params)
                return cur
            self._cur.execute(text, params)
            return Result(self._cur.rowcount, self._cur.fetchall())
        except self._dbapi_error as exc:
            raise self._wrap(text, params, exc) from exc

    def insert(self, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """``head VALUES (...), (...) tail`` for all ``rows``, in as few statements as fit.

        One multi-row statement instead of ``executemany``: on PostgreSQL that is one statement to
        send, not one per row; on SQLite it is as fast.
        """
        if not rows:
            return
        width = len(rows[0])
        per = max(1, _MAX_PARAMS // width)
        one = "(" + ", ".join(("?",) * width) + ")"
        for i in range(0, len(rows), per):
            part = rows[i : i + per]
            params = [v for row in part for v in row]
            self.execute(f"{head} VALUES {', '.join((one,) * len(part))} {tail}", params)

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
