"""The event log and its cursors on SQL; ``LISTEN/NOTIFY`` wake-ups on PostgreSQL."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mloop.errors import NotFoundError, StoreUnavailableError
from mloop.ids import now_ms
from mloop.store._events_base import Event, EventCursor, EventListener, PollingListener
from mloop.store._sql import _schema as t
from mloop.store._sql._tx import SqlBase

__all__ = ["NOTIFY_CHANNEL", "SqlEventLogMixin"]

_log = logging.getLogger("mloop.events")

NOTIFY_CHANNEL = "mloop_events"
# pg_advisory_xact_lock key held by every transaction that appends an event, until it commits:
# ids are then assigned in commit order, so a follower that has read id n never later finds a
# smaller id committed behind it.
_PG_EVENTS_LOCK = 0x6D6C6F6F7065
_EVENT_INSERT = t.events.insert()


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=str, separators=(",", ":"))


def _event(r: Any) -> Event:
    return Event(r.id, r.ts_ms, r.type, r.subject, r.actor, json.loads(r.payload))


def _cursor(r: Any) -> EventCursor:
    return EventCursor(r.name, r.position, r.updated_ms)


class SqlEventLogMixin(SqlBase):
    """Mixed into :class:`SqlStore`; uses its ``_read``/``_write`` transactions."""

    # ------------------------------------------------------------------ appending
    def _log_event(
        self,
        conn: Connection,
        type: str,
        subject: str,
        *,
        actor: str | None = None,
        payload: dict[str, Any],
        event_id: int | None = None,
    ) -> Event:
        """Append an event inside the caller's transaction (it commits with the change)."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EVENTS_LOCK})
        ts = now_ms()
        values: dict[str, Any] = {
            "ts_ms": ts,
            "type": type,
            "subject": subject,
            "actor": actor,
            "payload": _dumps(payload),
        }
        if event_id is not None:
            values["id"] = event_id
        # One statement object, parameters apart: no statement to build per event.
        eid = conn.execute(_EVENT_INSERT, values).inserted_primary_key[0]  # type: ignore[index]
        if self.dialect == "postgresql":
            # Delivered when the transaction commits, and only then.
            conn.execute(
                sa.text("SELECT pg_notify(:c, :id)"), {"c": NOTIFY_CHANNEL, "id": str(eid)}
            )
        return Event(int(eid), ts, type, subject, actor, json.loads(values["payload"]))

    def _do_append_event(
        self, type: str, subject: str, actor: str | None, payload: dict[str, Any]
    ) -> Event:
        with self._write() as conn:
            return self._log_event(conn, type, subject, actor=actor, payload=payload)

    # ------------------------------------------------------------------ reading
    def _do_read_events(
        self,
        after_id: int,
        types: list[str],
        subject: str | None,
        until_id: int | None,
        limit: int,
    ) -> list[Event]:
        e = t.events
        q = sa.select(e).where(e.c.id > after_id)
        if until_id is not None:
            q = q.where(e.c.id <= until_id)
        if types:
            q = q.where(e.c.type.in_(types))
        if subject is not None:
            q = q.where(e.c.subject == subject)
        with self._read() as conn:
            return [_event(r) for r in conn.execute(q.order_by(e.c.id).limit(limit))]

    def _do_last_event_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar() or 0)

    # ------------------------------------------------------------------ cursors
    def _do_get_cursor(self, name: str) -> EventCursor | None:
        c = t.event_cursors
        with self._read() as conn:
            r = conn.execute(sa.select(c).where(c.c.name == name)).first()
        return None if r is None else _cursor(r)

    def _do_list_cursors(self) -> list[EventCursor]:
        c = t.event_cursors
        with self._read() as conn:
            return [_cursor(r) for r in conn.execute(sa.select(c).order_by(c.c.name))]

    def _upsert_cursor(self, conn: Connection, name: str, position: int, *, forward: bool) -> None:
        c = t.event_cursors
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            ins: Any = pg_insert(c)
            newer = sa.func.greatest(c.c.position, ins.excluded.position)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            ins = sqlite_insert(c)
            newer = sa.func.max(c.c.position, ins.excluded.position)
        ts = now_ms()
        stmt = ins.values(name=name, position=position, updated_ms=ts).on_conflict_do_update(
            index_elements=[c.c.name],
            set_={"position": newer if forward else ins.excluded.position, "updated_ms": ts},
        )
        conn.execute(stmt)

    def _do_ack_event(self, name: str, event_id: int) -> None:
        with self._write() as conn:
            self._upsert_cursor(conn, name, event_id, forward=True)

    def _do_set_cursor(self, name: str, position: int) -> EventCursor:
        with self._write() as conn:
            self._upsert_cursor(conn, name, position, forward=False)
            c = t.event_cursors
            return _cursor(conn.execute(sa.select(c).where(c.c.name == name)).one())

    def _do_delete_cursor(self, name: str) -> None:
        c = t.event_cursors
        with self._write() as conn:
            if conn.execute(c.delete().where(c.c.name == name)).rowcount == 0:
                raise NotFoundError(f"no follower named {name!r}.")

    # ------------------------------------------------------------------ waking up
    def _do_event_listener(self) -> EventListener:
        if self.dialect == "postgresql":
            return PgListener(self.engine)
        return PollingListener()


class PgListener(EventListener):
    """A dedicated autocommit connection that ``LISTEN``s on the log's channel.

    Not from the pool: a pooled connection would carry the ``LISTEN`` to its next user.
    """

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
            self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.OperationalError as exc:
            self._conn = None
            raise StoreUnavailableError(f"cannot listen for events: {exc}") from exc

    def wait(self, timeout_s: float) -> bool:
        import psycopg

        try:
            if self._conn is None:
                self._connect()
            for _ in self._conn.notifies(timeout=max(timeout_s, 0.0), stop_after=1):
                return True
            return False
        except (psycopg.OperationalError, StoreUnavailableError) as exc:
            # The server went away: the follower's next read reports it; reconnect next time.
            _log.debug("mloop: event listener lost its connection: %s", exc)
            self.close()
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
