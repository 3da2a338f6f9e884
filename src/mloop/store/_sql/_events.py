"""The registry event log (audit trail, followed from a cursor) and webhooks, on SQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mloop.errors import NotFoundError
from mloop.ids import now_ms
from mloop.store._registry_entities import RegistryEvent, Webhook, WebhookDelivery
from mloop.store._sql import _schema as t
from mloop.store._sql._registry import SqlRegistryMixin


def _loads(v: str | None) -> Any:
    return None if v is None else json.loads(v)


class SqlEventsMixin(SqlRegistryMixin):
    """Mixed into :class:`SqlStore` with :class:`SqlRegistryMixin` (which owns ``_event``)."""

    # ------------------------------------------------------------------ events
    def _do_list_events(
        self,
        model: str | None,
        alias: str | None,
        types: list[str] | None,
        after_id: int,
        limit: int,
        newest_first: bool,
    ) -> list[RegistryEvent]:
        ev = t.registry_events
        q = sa.select(ev).where(ev.c.id > after_id)
        if model is not None:
            q = q.where(ev.c.model == model)
        if alias is not None:
            q = q.where(ev.c.alias == alias)
        if types:
            q = q.where(ev.c.type.in_(types))
        q = q.order_by(ev.c.id.desc() if newest_first else ev.c.id.asc()).limit(limit)
        with self._read() as conn:
            return [
                RegistryEvent(
                    r.id,
                    r.ts_ms,
                    r.type,
                    r.model,
                    r.version,
                    r.alias,
                    r.actor,
                    _loads(r.before),
                    _loads(r.after),
                    r.reason,
                    r.report_id,
                )
                for r in conn.execute(q)
            ]

    def _do_add_event(
        self,
        type: str,
        model: str,
        version: int | None,
        alias: str | None,
        actor: str | None,
        before: Any,
        after: Any,
        reason: str | None,
        report_id: str | None,
    ) -> RegistryEvent:
        with self._write() as conn:
            self._lock_model(conn, model)
            if version is not None:
                self._version_row(conn, model, version)
            return self._event(
                conn,
                type,
                model,
                version=version,
                alias=alias,
                actor=actor,
                before=before,
                after=after,
                reason=reason,
                report_id=report_id,
            )

    # ------------------------------------------------------------------ webhooks
    def _webhook(self, r: Any) -> Webhook:
        return Webhook(
            r.id,
            r.url,
            tuple(json.loads(r.events)),
            r.model,
            bool(r.active),
            r.created_ms,
            r.position or 0,
        )

    def _hooks_query(self) -> Any:
        """Webhooks with their position in the event log (the follower ``webhook-<id>``)."""
        w, c = t.webhooks, t.event_cursors
        name = sa.literal("webhook-") + sa.cast(w.c.id, sa.String)
        return sa.select(w, c.c.position).select_from(w.outerjoin(c, c.c.name == name))

    def _do_create_webhook(
        self, url: str, secret: str, events: tuple[str, ...], model: str | None
    ) -> Webhook:
        with self._write() as conn:
            wid = conn.execute(
                t.webhooks.insert().values(
                    url=url,
                    secret=secret,
                    events=json.dumps(list(events)),
                    model=model,
                    active=True,
                    created_ms=now_ms(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            # New hooks start at the end of the log: they deliver what happens from now on.
            head = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar() or 0
            self._upsert_cursor(conn, f"webhook-{wid}", int(head), forward=False)
            return self._webhook(
                conn.execute(self._hooks_query().where(t.webhooks.c.id == wid)).one()
            )

    def _do_list_webhooks(self) -> list[Webhook]:
        with self._read() as conn:
            return [
                self._webhook(r)
                for r in conn.execute(
                    self._hooks_query()
                    .where(t.webhooks.c.active == sa.true())
                    .order_by(t.webhooks.c.id)
                )
            ]

    def _do_get_webhook_secret(self, webhook_id: int) -> str:
        with self._read() as conn:
            secret = conn.execute(
                sa.select(t.webhooks.c.secret).where(t.webhooks.c.id == webhook_id)
            ).scalar()
            if secret is None:
                raise NotFoundError(f"webhook {webhook_id} does not exist.")
            return str(secret)

    def _do_delete_webhook(self, webhook_id: int) -> None:
        with self._write() as conn:
            n = conn.execute(
                t.webhooks.update().where(t.webhooks.c.id == webhook_id).values(active=False)
            ).rowcount
            if n == 0:
                raise NotFoundError(f"webhook {webhook_id} does not exist.")

    def _do_advance_webhook_cursor(self, webhook_id: int, event_id: int) -> None:
        with self._write() as conn:
            self._upsert_cursor(conn, f"webhook-{webhook_id}", event_id, forward=True)

    def _do_record_delivery(
        self,
        webhook_id: int,
        event_id: int,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> WebhookDelivery:
        ts = now_ms()
        try:
            did = self._insert_delivery(
                webhook_id, event_id, attempt, ok, status_code, error, ts, duration_ms
            )
        except IntegrityError:  # the only foreign key: the webhook (deleted meanwhile?)
            raise NotFoundError(f"webhook {webhook_id} does not exist.") from None
        return WebhookDelivery(
            did, webhook_id, event_id, attempt, ok, status_code, error, ts, duration_ms
        )

    def _insert_delivery(
        self,
        webhook_id: int,
        event_id: int,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        ts: int,
        duration_ms: int,
    ) -> int:
        with self._write() as conn:
            return conn.execute(
                t.webhook_deliveries.insert().values(
                    webhook_id=webhook_id,
                    event_id=event_id,
                    attempt=attempt,
                    ok=ok,
                    status_code=status_code,
                    error=error,
                    ts_ms=ts,
                    duration_ms=duration_ms,
                )
            ).inserted_primary_key[0]  # type: ignore[index]

    def _do_list_deliveries(self, webhook_id: int, limit: int) -> list[WebhookDelivery]:
        d = t.webhook_deliveries
        with self._read() as conn:
            return [
                WebhookDelivery(
                    r.id,
                    r.webhook_id,
                    r.event_id,
                    r.attempt,
                    bool(r.ok),
                    r.status_code,
                    r.error,
                    r.ts_ms,
                    r.duration_ms,
                )
                for r in conn.execute(
                    sa.select(d).where(d.c.webhook_id == webhook_id).order_by(d.c.id).limit(limit)
                )
            ]
