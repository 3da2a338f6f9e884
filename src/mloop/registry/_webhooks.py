"""Webhook delivery: each hook is a follower of the event log (cursor ``webhook-<id>``) that POSTs
signed JSON.

Each request carries ``X-Mloop-Event`` (the type), ``X-Mloop-Delivery`` (``<hook>-<event>``) and
``X-Mloop-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body under the hook's secret (verify
it with :func:`verify_signature`). Failures are retried with exponential backoff; every attempt goes to
the delivery log; the cursor advances once an event is delivered or has used all its attempts, so one
bad endpoint never blocks the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import httpx

from mloop.store import Event, PollingListener, Store
from mloop.store._registry_entities import Webhook

__all__ = ["WebhookDispatcher", "sign", "verify_signature"]

_log = logging.getLogger("mloop.registry")
# deliver_pending checks for stop() between batches of this many events.
_STOP_CHECK_EVERY = 50


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """Constant-time check of an ``X-Mloop-Signature`` header."""
    return hmac.compare_digest(sign(secret, body), header or "")


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
    """Deliver registry events to webhooks.

    Parameters
    ----------
    store : Store
    max_attempts : int
        Attempts per event before it is given up (and logged as failed).
    backoff_s : float
        First retry delay; doubles each attempt.
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
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
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

            while not self._stop.is_set():
                if follower.poll(handle, max_events=_STOP_CHECK_EVERY) < _STOP_CHECK_EVERY:
                    break
            delivered += ok
            if self._stop.is_set():
                break
        return delivered

    def _deliver(self, hook: Webhook, secret: str, event: Event) -> bool:
        body = json.dumps({"event": event_body(event), "webhook_id": hook.id}, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Mloop-Event": event.type,
            "X-Mloop-Delivery": f"{hook.id}-{event.id}",
            "X-Mloop-Signature": sign(secret, body),
        }
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            t0 = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                resp = self._http().post(hook.url, content=body, headers=headers)
                status = resp.status_code
                ok = 200 <= status < 300
                if not ok:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            self.store.record_delivery(
                hook.id,
                event.id,
                attempt=attempt,
                ok=ok,
                status_code=status,
                error=error,
                duration_ms=int((time.perf_counter() - t0) * 1000),
            )
            if ok:
                return True
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                break  # the endpoint refused this payload: retrying will not help
            if attempt < self.max_attempts and self._stop.wait(delay):
                break
            delay *= 2
        _log.warning("mloop: webhook %s gave up on event %s (%s)", hook.url, event.id, error)
        return False

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
