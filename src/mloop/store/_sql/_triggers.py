"""Trigger firings on SQL: the key is the primary key (one firing per cause, whoever records it
first), a firing and its ``trigger_fired`` event commit together, and a lease moves by one
conditional UPDATE (compare-and-set), so two agents never both hold a firing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import AlreadyExistsError, ConflictError, NotFoundError
from mloop.ids import now_ms
from mloop.store._sql import _schema as t
from mloop.store._sql._engine import describe_uri
from mloop.store._sql._errors import classify, translate
from mloop.store._sql._log import SqlEventLogMixin
from mloop.store._triggers_base import TriggerFiring

__all__ = ["SqlTriggersMixin"]

_COLUMNS = (
    "key", "trigger", "pipeline", "kind", "status", "run_id", "reason", "created_ms",
    "updated_ms", "owner", "lease_until_ms", "resumed_from", "error", "actor",
)  # fmt: skip
_OPEN = ("pending", "running")
_NEXT = {"pending": ("running", "finished", "failed"), "running": ("running", "finished", "failed")}


def _firing(row: Any) -> TriggerFiring:
    from mloop.codec import loads

    return TriggerFiring(
        **{c: getattr(row, c) for c in _COLUMNS},
        details=loads(row.details, what="stored firing details"),
    )


class SqlTriggersMixin(SqlEventLogMixin):
    """Mixed into :class:`SqlStore`; ``_log_event`` appends the ``trigger_fired`` event."""

    def _firing_row(self, conn: Connection, key: str) -> Any:
        tf = t.trigger_firings
        row = conn.execute(sa.select(tf).where(tf.c.key == key)).first()
        if row is None:
            raise NotFoundError(f"trigger firing {key!r} does not exist.")
        return row

    def _do_fire_trigger(self, firing: TriggerFiring) -> TriggerFiring:
        from mloop.codec import dumps, to_wire

        f = firing
        details = dumps(to_wire(dict(f.details), what="firing.details"))
        exists = AlreadyExistsError(
            f"trigger firing {f.key!r} already exists: this cause has fired already."
        )
        ts = now_ms()
        try:
            with self._write() as conn:
                tf = t.trigger_firings
                if conn.execute(sa.select(tf.c.key).where(tf.c.key == f.key)).first() is not None:
                    raise exists
                event = self._log_event(
                    conn,
                    "trigger_fired",
                    f"pipelines/{f.pipeline}",
                    actor=f.actor,
                    payload={
                        "key": f.key,
                        "trigger": f.trigger,
                        "pipeline": f.pipeline,
                        "kind": f.kind,
                        "run_id": f.run_id,
                        "reason": f.reason,
                        "details": dict(f.details),
                    },
                )
                values = {c: getattr(f, c) for c in _COLUMNS}
                values.update(created_ms=f.created_ms or ts, updated_ms=ts)
                conn.execute(tf.insert().values(**values, details=details, event_id=event.id))
                return _firing(self._firing_row(conn, f.key))
        except IntegrityError as exc:
            if classify(exc).kind == "unique":
                raise exists from None
            raise translate(exc, describe_uri(self.uri)) from None

    def _do_claim_trigger_firing(
        self, key: str, owner: str, now_ms: int, until_ms: int
    ) -> TriggerFiring | None:
        tf = t.trigger_firings
        with self._write() as conn:
            self._firing_row(conn, key)
            changed = conn.execute(
                tf.update()
                .where(
                    tf.c.key == key,
                    tf.c.status.in_(_OPEN),
                    sa.or_(tf.c.owner.is_(None), tf.c.owner == owner, tf.c.lease_until_ms < now_ms),
                )
                .values(owner=owner, lease_until_ms=until_ms)
            ).rowcount
            if changed != 1:
                return None
            return _firing(self._firing_row(conn, key))

    def _do_update_trigger_firing(
        self,
        key: str,
        owner: str,
        status: str,
        run_id: str | None,
        resumed_from: str | None,
        error: str | None,
    ) -> TriggerFiring:
        tf = t.trigger_firings
        with self._write() as conn:
            row = self._firing_row(conn, key)
            if row.status not in _OPEN:
                raise ConflictError(f"trigger firing {key!r} is already {row.status}.")
            if row.owner != owner:
                raise ConflictError(
                    f"trigger firing {key!r} is held by {row.owner!r}, not {owner!r}; claim it "
                    "first."
                )
            if status not in _NEXT[row.status]:
                raise ConflictError(
                    f"trigger firing {key!r} cannot go from {row.status} to {status}."
                )
            values: dict[str, Any] = {"status": status, "updated_ms": now_ms(), "error": error}
            if run_id is not None:
                values["run_id"] = run_id
                values["resumed_from"] = resumed_from
            if status not in _OPEN:
                values.update(owner=None, lease_until_ms=0)
            changed = conn.execute(
                tf.update()
                .where(tf.c.key == key, tf.c.owner == owner, tf.c.status == row.status)
                .values(**values)
            ).rowcount
            if changed != 1:  # another holder took it between the read and the write
                raise ConflictError(f"trigger firing {key!r} changed hands; claim it again.")
            return _firing(self._firing_row(conn, key))

    def _do_get_trigger_firing(self, key: str) -> TriggerFiring:
        with self._read() as conn:
            return _firing(self._firing_row(conn, key))

    def _do_list_trigger_firings(
        self, trigger: str | None, statuses: list[str], limit: int
    ) -> list[TriggerFiring]:
        tf = t.trigger_firings
        q = sa.select(tf)
        if trigger is not None:
            q = q.where(tf.c.trigger == trigger)
        if statuses:
            q = q.where(tf.c.status.in_(statuses))
        q = q.order_by(tf.c.event_id.desc()).limit(limit)
        with self._read() as conn:
            return [_firing(r) for r in conn.execute(q).all()]
