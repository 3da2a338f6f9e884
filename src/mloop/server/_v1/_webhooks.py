"""Webhooks and their delivery log (role ``admin``). No handler answers with a secret: the
:class:`~mloop.store.Webhook` entity has no field for it, and ``get_webhook_secret`` has no route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[..., Any]] = {
    "create_webhook": lambda s, url, secret, events, model: s.create_webhook(
        url, secret=secret, events=events, model=model
    ),
    "list_webhooks": lambda s: s.list_webhooks(),
    "delete_webhook": lambda s, webhook_id: s.delete_webhook(webhook_id),
    "advance_webhook_cursor": lambda s, webhook_id, event_id: s.advance_webhook_cursor(
        webhook_id, event_id
    ),
    "record_delivery": lambda s, webhook_id, event_id, **kw: s.record_delivery(
        webhook_id, event_id, **kw
    ),
    "list_deliveries": lambda s, webhook_id, limit: s.list_deliveries(
        webhook_id, limit=1000 if limit is None else limit
    ),
}
