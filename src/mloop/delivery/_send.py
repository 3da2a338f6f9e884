"""Send one request on the calling thread, retrying as a :class:`RetryPolicy` says."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import httpx
import tenacity

from mloop.delivery._model import (
    Attempt,
    DeliveryRequest,
    DeliveryResult,
    RetryPolicy,
    parse_retry_after,
)

__all__ = ["deliver"]

# Transport failures worth another attempt: the request may not have reached the server, or the
# server dropped it mid-answer. An unsupported scheme or a proxy misconfiguration is not transient.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Cancelled(Exception):
    pass


def deliver(
    request: DeliveryRequest,
    *,
    policy: RetryPolicy | None = None,
    client: httpx.Client | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    cancel: threading.Event | None = None,
    rng: random.Random | None = None,
) -> DeliveryResult:
    """Send ``request`` on this thread, retrying as ``policy`` says; never raises for HTTP trouble.

    Parameters
    ----------
    request : DeliveryRequest
    policy : RetryPolicy, optional
        Default: ``RetryPolicy()``.
    client : httpx.Client, optional
        Reused (and left open); by default a client is made for this delivery and closed after.
    on_attempt : callable, optional
        Called with an :class:`Attempt` after every attempt.
    cancel : threading.Event, optional
        Setting it interrupts a wait between attempts and ends the delivery.
    rng : random.Random, optional
        Source of the jitter.

    Returns
    -------
    DeliveryResult
    """
    policy = RetryPolicy() if policy is None else policy
    rng = random.Random() if rng is None else rng
    http = httpx.Client(timeout=policy.timeout_s) if client is None else client
    last: list[Attempt] = []
    t0 = time.monotonic()

    def attempt() -> Attempt:
        start = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after = None
        try:
            response = http.request(
                request.method,
                request.url,
                content=request.body,
                headers=dict(request.headers),
                timeout=policy.timeout_s,
            )
            status = response.status_code
            if not 200 <= status <= 299:
                error = f"HTTP {status} {response.reason_phrase}".rstrip()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not isinstance(exc, _TRANSIENT):
                error += " (not retried)"
        done = Attempt(
            number=len(last) + 1,
            ok=error is None,
            status=status,
            error=error,
            duration_s=time.monotonic() - start,
            retry_after_s=retry_after,
        )
        last.append(done)
        if on_attempt is not None:
            on_attempt(done)
        return done

    def retryable(done: Attempt) -> bool:
        if done.ok:
            return False
        if done.status is not None:
            return policy.retries_status(done.status)
        return not (done.error or "").endswith("(not retried)")

    def wait(state: tenacity.RetryCallState) -> float:
        done = last[-1]
        return policy.wait_s(state.attempt_number, retry_after=done.retry_after_s, u=rng.random())

    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
        elif cancel.wait(seconds):
            raise _Cancelled

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts)
        | tenacity.stop_before_delay(policy.max_elapsed_s),
        wait=wait,
        retry=tenacity.retry_if_result(retryable),
        sleep=sleep,
        retry_error_callback=lambda state: last[-1],
        reraise=True,
    )
    cancelled = False
    try:
        if cancel is not None and cancel.is_set():
            cancelled = True
        else:
            retrying(attempt)
    except _Cancelled:
        cancelled = True
    finally:
        if client is None:
            http.close()
    final = last[-1] if last else None
    error = None if final is None else final.error
    if cancelled:
        error = f"cancelled after {len(last)} attempt(s)" + (f"; last: {error}" if error else "")
    return DeliveryResult(
        url=request.url,
        ok=final is not None and final.ok,
        status=None if final is None else final.status,
        attempts=len(last),
        elapsed_s=time.monotonic() - t0,
        error=error,
    )
