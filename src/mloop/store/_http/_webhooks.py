"""Webhooks and their delivery log over HTTP, every endpoint with role ``admin`` (a hook's URL
may itself be a credential, as Slack's are).

A webhook's secret goes to the server once, in ``create_webhook``, and never comes back: no
endpoint answers with it, so ``get_webhook_secret`` refuses without asking
(``can_sign_webhooks`` is False). Deliveries are signed where the store is: the server runs the
webhook dispatcher on its own store.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mloop.errors import PermissionDeniedError
from mloop.store._http._endpoint import Endpoint
from mloop.store._registry_entities import Webhook, WebhookDelivery

__all__ = ["WEBHOOK_ENDPOINTS", "HttpWebhooksMixin"]

_HOOK = "/webhooks/{webhook_id}"

_E = Endpoint
WEBHOOK_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("create_webhook", "POST", "/webhooks",
       {"url": str, "secret": str, "events": list[str], "model": str | None}, Webhook,
       role="admin",
       summary="Subscribe a URL to events (the secret signs deliveries; it is never served back)"),
    _E("list_webhooks", "GET", "/webhooks", {}, list[Webhook], role="admin",
       summary="Active webhooks with their position in the event log (no secrets)"),
    _E("delete_webhook", "DELETE", _HOOK, {"webhook_id": int}, None, role="admin",
       summary="Deactivate a webhook"),
    _E("advance_webhook_cursor", "POST", _HOOK + "/cursor",
       {"webhook_id": int, "event_id": int}, None, role="admin",
       summary="Move a webhook's cursor forward (never back)"),
    _E("record_delivery", "POST", _HOOK + "/deliveries",
       {"webhook_id": int, "event_id": int, "attempt": int, "ok": bool,
        "status_code": int | None, "error": str | None, "duration_ms": int},
       WebhookDelivery, role="admin", summary="Log one delivery attempt"),
    _E("list_deliveries", "GET", _HOOK + "/deliveries", {"webhook_id": int, "limit": int | None},
       list[WebhookDelivery], role="admin", summary="A webhook's delivery log, oldest first"),
)  # fmt: skip


class HttpWebhooksMixin:
    """The webhook part of the store contract, each hook one request."""

    can_sign_webhooks: ClassVar[bool] = False  # the server never sends a secret back

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_create_webhook(
        self, url: str, secret: str, events: tuple[str, ...], model: str | None
    ) -> Webhook:
        return self._call(
            "create_webhook", url=url, secret=secret, events=list(events), model=model
        )

    def _do_list_webhooks(self) -> list[Webhook]:
        return self._call("list_webhooks")

    def _do_get_webhook_secret(self, webhook_id: int) -> str:
        raise PermissionDeniedError(
            f"the secret of webhook {webhook_id} is never served back by the server; "
            "deliveries are signed where the store is: the server delivers webhooks itself "
            "(or run `mloop webhooks deliver` with MLOOP_STORE_URI set to the database).",
            details={"webhook_id": webhook_id},
        )

    def _do_delete_webhook(self, webhook_id: int) -> None:
        self._call("delete_webhook", webhook_id=webhook_id)

    def _do_advance_webhook_cursor(self, webhook_id: int, event_id: int) -> None:
        self._call("advance_webhook_cursor", webhook_id=webhook_id, event_id=event_id)

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
        return self._call(
            "record_delivery",
            webhook_id=webhook_id,
            event_id=event_id,
            attempt=attempt,
            ok=ok,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )

    def _do_list_deliveries(self, webhook_id: int, limit: int) -> list[WebhookDelivery]:
        return self._call("list_deliveries", webhook_id=webhook_id, limit=limit)
