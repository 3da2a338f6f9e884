"""Webhooks, the registry's outbound deliveries: subscriptions, their cursors, the delivery log.
Validation here, ``_do_*`` hooks in each backend."""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence

from mloop.errors import InvalidInputError
from mloop.store._registry_base import validate_model_name
from mloop.store._registry_entities import Webhook, WebhookDelivery

__all__ = ["WebhookStoreMixin"]


class WebhookStoreMixin(abc.ABC):
    def create_webhook(
        self, url: str, *, secret: str, events: Sequence[str] = ("*",), model: str | None = None
    ) -> Webhook:
        from mloop.store._events_base import EVENT_TYPES

        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise InvalidInputError(
                f"webhook url must start with http:// or https://; got {url!r}."
            )
        if not isinstance(secret, str) or len(secret) < 8:
            raise InvalidInputError("webhook secret must be a str of at least 8 characters.")
        bad = [e for e in events if e != "*" and e not in EVENT_TYPES]
        if bad:
            raise InvalidInputError(
                f"unknown webhook event types {bad}; known: {list(EVENT_TYPES)} or '*'."
            )
        if model is not None:
            validate_model_name(model)
        return self._do_create_webhook(url, secret, tuple(events), model)

    def list_webhooks(self) -> list[Webhook]:
        return self._do_list_webhooks()

    def get_webhook_secret(self, webhook_id: int) -> str:
        return self._do_get_webhook_secret(int(webhook_id))

    def delete_webhook(self, webhook_id: int) -> None:
        self._do_delete_webhook(int(webhook_id))

    def advance_webhook_cursor(self, webhook_id: int, event_id: int) -> None:
        self._do_advance_webhook_cursor(int(webhook_id), int(event_id))

    def record_delivery(
        self,
        webhook_id: int,
        event_id: int,
        *,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> WebhookDelivery:
        return self._do_record_delivery(
            int(webhook_id),
            int(event_id),
            int(attempt),
            bool(ok),
            status_code,
            error,
            int(duration_ms),
        )

    def list_deliveries(self, webhook_id: int, *, limit: int = 1000) -> list[WebhookDelivery]:
        return self._do_list_deliveries(int(webhook_id), int(limit))

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _do_create_webhook(
        self, url: str, secret: str, events: tuple[str, ...], model: str | None
    ) -> Webhook: ...
    @abc.abstractmethod
    def _do_list_webhooks(self) -> list[Webhook]: ...
    @abc.abstractmethod
    def _do_get_webhook_secret(self, webhook_id: int) -> str: ...
    @abc.abstractmethod
    def _do_delete_webhook(self, webhook_id: int) -> None: ...
    @abc.abstractmethod
    def _do_advance_webhook_cursor(self, webhook_id: int, event_id: int) -> None: ...
    @abc.abstractmethod
    def _do_record_delivery(
        self,
        webhook_id: int,
        event_id: int,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> WebhookDelivery: ...
    @abc.abstractmethod
    def _do_list_deliveries(self, webhook_id: int, limit: int) -> list[WebhookDelivery]: ...
