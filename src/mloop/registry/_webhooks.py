"""Webhook delivery: each hook is a follower of the event log (cursor ``webhook-<id>``) that POSTs
signed JSON.

Each request carries ``X-Mloop-Event`` (the type), ``X-Mloop-Delivery`` (``<hook>-<event>``) and
``X-Mloop-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body under the hook's secret (verify
it with :func:`verify_signature`). Failures are retried with exponential backoff; every attempt goes to
the delivery log; the cursor advances once an event is delivered or has used all its attempts, so one
bad endpoint never blocks the log.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from mloop.codec import dumps
from mloop.delivery import (
    Attempt,
    DeliveryRequest,
    RetryPolicy,
    deliver,
    sign,
    verify_signature,
)
from mloop.errors import PermissionDeniedError
from mloop.store import Event, PollingListener, Store, Webhook

__all__ = ["WebhookDispatcher", "sign", "verify_signature"]

_log = logging.getLogger("mloop.registry")
# deliver_pending checks for stop() between batches of this many events.
_STOP_CHECK_EVERY = 50


class _Stopped(Exception):
    """A delivery interrupted by :meth:`WebhookDispatcher.stop`."""


def event_body(event: Event) -> dict[str, Any]:
    """An event as a webhook receives it: its envelope with its payload's fields beside it.

    For registry events that is the shape hooks received before the event log existed (``model``,
    ``version``, ``alias``, ``before``, ``after``, ``reason``, ``report_id``), plus ``subject``.
    """
    return {
        **event.payload,
        "id": event.id,
        "ts_ms": event.ts_ms,
        "type": event.type,
        "subject": event.subject,
        "actor": event.actor,
    }


class WebhookDispatcher:
    """Deliver events to webhooks: each hook follows the event log from its own cursor.

    Parameters
    ----------
    store : Store
        Where the data is (``store.can_sign_webhooks``): the dispatcher signs each delivery with
        its webhook's secret, which a remote store (``HttpStore``) is never sent.
    max_attempts : int
        Attempts per event before it is given up (and logged as failed).
    backoff_s : float
        First retry delay; doubles each attempt (jittered, and never shorter than a
        ``Retry-After`` the endpoint sends).
    timeout_s : float
        Per-request timeout.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not store.can_sign_webhooks:
            raise PermissionDeniedError(
                f"webhooks cannot be delivered through {store!r}: it is never sent their "
                "secrets, so it cannot sign deliveries. The server delivers them itself; to "
                "deliver by hand, run the dispatcher with MLOOP_STORE_URI set to the database."
            )
        self.store = store
        self.policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base_s=backoff_s,
            backoff_max_s=max(backoff_s * 2 ** (max_attempts - 1), backoff_s),
            max_elapsed_s=max(60.0, timeout_s * max_attempts * 2),
            timeout_s=timeout_s,
        )
        self._client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.policy.timeout_s)
        return self._client

    def deliver_pending(self) -> int:
        """Deliver every event after each hook's cursor; returns the number delivered successfully."""
        delivered = 0
        for hook in self.store.list_webhooks():
            secret = self.store.get_webhook_secret(hook.id)
            follower = self.store.follow(
                f"webhook-{hook.id}",
                types=None if "*" in hook.events else list(hook.events),
                subject=None if hook.model is None else f"models/{hook.model}",
            )
            ok = 0

            def handle(event: Event, hook: Webhook = hook, secret: str = secret) -> None:
                nonlocal ok
                ok += self._deliver(hook, secret, event)

            try:
                while not self._stop.is_set():
                    if follower.poll(handle, max_events=_STOP_CHECK_EVERY) < _STOP_CHECK_EVERY:
                        break
            except _Stopped:
                pass
            delivered += ok
            if self._stop.is_set():
                break
        return delivered

    def _deliver(self, hook: Webhook, secret: str, event: Event) -> bool:
        request = DeliveryRequest(
            hook.url,
            dumps({"event": event_body(event), "webhook_id": hook.id}).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Mloop-Event": event.type,
                "X-Mloop-Delivery": f"{hook.id}-{event.id}",
            },
            label=f"webhook {hook.id} event {event.id}",
        ).signed(secret)

        def record(attempt: Attempt) -> None:
            self.store.record_delivery(
                hook.id,
                event.id,
                attempt=attempt.number,
                ok=attempt.ok,
                status_code=attempt.status,
                error=attempt.error,
                duration_ms=int(attempt.duration_s * 1000),
            )

        result = deliver(
            request, policy=self.policy, client=self._http(), on_attempt=record, cancel=self._stop
        )
        if not result.ok and self._stop.is_set():
            raise _Stopped  # cut short by stop(): leave the cursor before this event
        if not result.ok:
            _log.warning(
                "mloop: webhook %s gave up on event %s (%s)", hook.url, event.id, result.error
            )
        return result.ok

    def start(self, *, poll_s: float = 1.0) -> WebhookDispatcher:
        """Deliver in a background thread: woken by new events where the store can notify
        (PostgreSQL), else checking every ``poll_s``."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    with self.store.event_listener() as listener:
                        while not self._stop.is_set():
                            try:
                                self.deliver_pending()
                            except Exception:
                                _log.exception("mloop: webhook dispatch failed; retrying")
                            if isinstance(listener, PollingListener):
                                self._stop.wait(poll_s)
                            else:
                                listener.wait(poll_s)
                except Exception:  # no listener (the store is down): retry after a pause
                    _log.exception("mloop: webhook dispatcher cannot listen for events")
                    self._stop.wait(poll_s)

        self._thread = threading.Thread(target=loop, name="mloop-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
