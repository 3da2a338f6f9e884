"""Webhooks, the registry's outbound deliveries: subscriptions, their cursors, the delivery log.
Validation here, ``_do_*`` hooks in each backend.

A webhook's secret is written once (``create_webhook``) and is never part of an answer: the
:class:`~mloop.store.Webhook` entity has no field for it on any backend. Only the process that
signs deliveries reads it back, with ``get_webhook_secret``, and only where the data is: a store
that holds the data (SQLite, PostgreSQL) has ``can_sign_webhooks = True``; a remote one (the HTTP
store) has it False and refuses ``get_webhook_secret`` with
:class:`~mloop.errors.PermissionDeniedError`, because the server never sends a secret back.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from typing import ClassVar

from mloop.errors import InvalidInputError
from mloop.store._registry_base import validate_model_name
from mloop.store._registry_entities import Webhook, WebhookDelivery
from mloop.store._validation import storable_text

__all__ = ["WebhookStoreMixin"]


class WebhookStoreMixin(abc.ABC):
    # Whether ``get_webhook_secret`` reads secrets back, so that deliveries can be signed with
    # this store (the webhook dispatcher needs it): True where the data is, False for a remote
    # store, which is never sent a secret.
    can_sign_webhooks: ClassVar[bool] = True

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
        """The secret deliveries of ``webhook_id`` are signed with (HMAC-SHA256).

        Raises
        ------
        PermissionDeniedError
            On a store with ``can_sign_webhooks = False`` (the HTTP store): secrets are never
            served back by the server.
        NotFoundError
            There is no such webhook.
        """
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
        """Record one attempt to deliver event ``event_id`` to webhook ``webhook_id``."""
        for what, n in (("attempt", attempt), ("duration_ms", duration_ms)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidInputError(f"`{what}` must be an int >= 0; got {n!r}.")
        if status_code is not None and (
            isinstance(status_code, bool)
            or not isinstance(status_code, int)
            or not 100 <= status_code <= 599
        ):
            raise InvalidInputError(
                f"`status_code` must be an HTTP status in [100, 599] or None; got {status_code!r}."
            )
        if error is not None and not isinstance(error, str):
            raise InvalidInputError(f"`error` must be a str or None; got {type(error).__name__}.")
        return self._do_record_delivery(
            int(webhook_id),
            int(event_id),
            attempt,
            bool(ok),
            status_code,
            None if error is None else storable_text(error),  # captured text, made storable
            duration_ms,
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
