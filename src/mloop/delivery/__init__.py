"""Outgoing HTTP notifications (alerts, webhooks) under one retry policy, off the caller's thread.

:func:`deliver` sends one :class:`DeliveryRequest` on the calling thread and retries it as a
:class:`RetryPolicy` says: on connection errors and timeouts, on 408, 429 and 5xx answers, with
jittered exponential backoff that never waits less than the server's ``Retry-After`` (seconds or an
HTTP date, capped by the policy). Any other 4xx is final: the endpoint refused the payload and
sending it again will not change its mind. The answer is a :class:`DeliveryResult`, never an
exception, so one bad endpoint cannot break the code that notifies it.

:class:`BackgroundDeliverer` does the same on one worker thread fed by a bounded queue, so an alert
stream or a request handler never sleeps between retries. Its thread starts with the first request
(nothing starts at import time); :meth:`~BackgroundDeliverer.flush` and
:meth:`~BackgroundDeliverer.close` wait for what was queued, with a timeout, and live deliverers are
flushed when the interpreter exits.

Requests can be signed: ``X-Mloop-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
under a shared secret (:func:`sign`, :func:`verify_signature`).

Examples
--------
>>> policy = RetryPolicy(max_attempts=3, backoff_base_s=0.2)
>>> request = DeliveryRequest.json("https://example.com/hook", {"text": "drift"}, secret="s3cret")
>>> request.headers["Content-Type"]
'application/json'
>>> deliverer = BackgroundDeliverer(policy=policy)  # no thread yet
>>> deliverer.running
False
"""

from __future__ import annotations

from mloop.delivery._background import BackgroundDeliverer
from mloop.delivery._model import (
    SIGNATURE_HEADER,
    Attempt,
    DeliveryError,
    DeliveryRequest,
    DeliveryResult,
    RetryPolicy,
    parse_retry_after,
    sign,
    verify_signature,
)
from mloop.delivery._send import deliver

__all__ = [
    "SIGNATURE_HEADER",
    "Attempt",
    "BackgroundDeliverer",
    "DeliveryError",
    "DeliveryRequest",
    "DeliveryResult",
    "RetryPolicy",
    "deliver",
    "parse_retry_after",
    "sign",
    "verify_signature",
]
