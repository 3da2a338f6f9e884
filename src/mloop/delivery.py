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

import atexit
import email.utils
import hashlib
import hmac
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity

from mloop.errors import InvalidInputError, MloopError

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

SIGNATURE_HEADER = "X-Mloop-Signature"
log = logging.getLogger("mloop.delivery")

# Transport failures worth another attempt: the request may not have reached the server, or the
# server dropped it mid-answer. An unsupported scheme or a proxy misconfiguration is not transient.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class DeliveryError(MloopError):
    """A notification could not be delivered (raised only when a caller asks for it)."""

    error_code = "DELIVERY_FAILED"
    http_status = 502


def sign(secret: str, body: bytes) -> str:
    """The ``X-Mloop-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 under ``secret``.

    Examples
    --------
    >>> sign("s3cret", b'{"a":1}')[:7]
    'sha256='
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header against the raw body a receiver got.

    Examples
    --------
    >>> verify_signature("s3cret", b"{}", sign("s3cret", b"{}"))
    True
    >>> verify_signature("s3cret", b"{}", sign("other", b"{}"))
    False
    """
    return hmac.compare_digest(sign(secret, body), header or "")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date).

    Returns ``None`` for a missing or malformed header; a date in the past gives ``0.0``.

    Examples
    --------
    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; a naive parse means "-0000"
        when = when.replace(tzinfo=timezone.utc)
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"`{name}` must be a finite number {bound}; got {value!r}.")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, total time, backoff and per-request timeout.

    The wait before retry ``n`` (1 for the first retry) is ``d = min(backoff_max_s,
    backoff_base_s * 2 ** (n - 1))`` shortened by a random share of at most ``jitter``: it lies in
    ``[d * (1 - jitter), d]``. A ``Retry-After`` answer raises the wait to what the server asked,
    but never beyond ``backoff_max_s``. No attempt starts later than ``max_elapsed_s`` after the
    first one: a retry that would is not made.

    Parameters
    ----------
    max_attempts : int, default 5
        Attempts in all (1 means no retry).
    max_elapsed_s : float, default 60.0
    backoff_base_s : float, default 0.5
    backoff_max_s : float, default 30.0
    jitter : float, default 0.5
        In ``[0, 1]``; 0 waits exactly ``d``.
    timeout_s : float, default 10.0
        Per attempt (connect, read, write and pool), also with a caller's own client.

    Raises
    ------
    InvalidInputError
        For an option outside its range.
    """

    max_attempts: int = 5
    max_elapsed_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter: float = 0.5
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_attempts, int)
            or isinstance(self.max_attempts, bool)
            or self.max_attempts < 1
        ):
            raise InvalidInputError(
                f"`max_attempts` must be an int >= 1; got {self.max_attempts!r}."
            )
        _positive("max_elapsed_s", self.max_elapsed_s)
        _positive("backoff_base_s", self.backoff_base_s, allow_zero=True)
        _positive("backoff_max_s", self.backoff_max_s, allow_zero=True)
        _positive("timeout_s", self.timeout_s)
        if self.backoff_max_s < self.backoff_base_s:
            raise InvalidInputError(
                f"`backoff_max_s` must be >= `backoff_base_s` ({self.backoff_base_s!r}); "
                f"got {self.backoff_max_s!r}."
            )
        _positive("jitter", self.jitter, allow_zero=True)
        if self.jitter > 1:
            raise InvalidInputError(f"`jitter` must be in [0, 1]; got {self.jitter!r}.")

    def retries_status(self, status: int) -> bool:
        """Whether an answer with this status is worth another attempt (408, 429, 5xx)."""
        return status in (408, 429) or 500 <= status <= 599

    def wait_s(self, retry: int, *, retry_after: float | None = None, u: float = 0.0) -> float:
        """Seconds to wait before retry number ``retry`` (>= 1); ``u`` in [0, 1] draws the jitter.

        Examples
        --------
        >>> p = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0, jitter=0.5)
        >>> [p.wait_s(n, u=0.0) for n in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 4.0]
        >>> p.wait_s(1, u=0.5), p.wait_s(1, retry_after=3.0), p.wait_s(1, retry_after=60.0)
        (0.75, 3.0, 4.0)
        """
        if not isinstance(retry, int) or retry < 1:
            raise InvalidInputError(f"`retry` must be an int >= 1; got {retry!r}.")
        full = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(retry - 1, 64))
        wait = full * (1.0 - self.jitter * u)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.backoff_max_s))
        return wait


@dataclass(frozen=True)
class DeliveryRequest:
    """One HTTP request to deliver: method, URL, headers and the exact body bytes.

    Build JSON requests with :meth:`json`; :meth:`signed` adds an HMAC signature of the body.
    ``label`` names the request in log lines (e.g. which alert it carries).

    Raises
    ------
    InvalidInputError
        For a URL that is not http(s) or a body that is not bytes.
    """

    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise InvalidInputError(f"`url` must be an http(s) URL; got {self.url!r}.")
        if not isinstance(self.body, bytes):
            raise InvalidInputError(
                f"`body` must be bytes; got {type(self.body).__name__}. "
                "Use DeliveryRequest.json(url, payload) for JSON."
            )
        if self.method.upper() not in ("POST", "PUT", "PATCH", "GET", "DELETE"):
            raise InvalidInputError(
                f"`method` must be one of POST, PUT, PATCH, GET, DELETE; got {self.method!r}."
            )
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    @classmethod
    def json(
        cls,
        url: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        method: str = "POST",
        label: str = "",
        default: Callable[[Any], Any] | None = None,
    ) -> DeliveryRequest:
        """A request whose body is ``payload`` as compact UTF-8 JSON, encoded now.

        Encoding on the caller's side keeps a snapshot of the payload and reports a value JSON
        cannot carry (NaN, an arbitrary object without ``default``) where it was made.

        Raises
        ------
        InvalidInputError
            When ``payload`` is not JSON-serialisable.
        """
        try:
            body = json.dumps(
                payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"`payload` must be JSON-serialisable (no NaN or infinity); {exc}."
            ) from exc
        request = cls(
            url,
            body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method=method,
            label=label,
        )
        return request if secret is None else request.signed(secret)

    def signed(self, secret: str, *, header: str = SIGNATURE_HEADER) -> DeliveryRequest:
        """A copy with ``header: sha256=<hmac of the body>`` (see :func:`sign`)."""
        if not isinstance(secret, str) or not secret:
            raise InvalidInputError("`secret` must be a non-empty string.")
        return DeliveryRequest(
            self.url,
            self.body,
            headers={**self.headers, header: sign(secret, self.body)},
            method=self.method,
            label=self.label,
        )


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery (given to ``on_attempt``, e.g. for a delivery log)."""

    number: int
    ok: bool
    status: int | None
    error: str | None
    duration_s: float
    retry_after_s: float | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended: ``ok`` for a 2xx answer, else the last status and error."""

    url: str
    ok: bool
    status: int | None
    attempts: int
    elapsed_s: float
    error: str | None = None

    def raise_for_error(self) -> DeliveryResult:
        """Return ``self`` when delivered, else raise :class:`DeliveryError` saying why."""
        if self.ok:
            return self
        raise DeliveryError(
            f"Could not deliver to {_safe_url(self.url)} after {self.attempts} attempt(s) in "
            f"{self.elapsed_s:.1f}s: {self.error}.",
            details={"status": self.status, "attempts": self.attempts},
        )


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


def _safe_url(url: str) -> str:
    """The URL without credentials or query string (which may carry tokens), for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# ---------------------------------------------------------------- background delivery


class _Generation:
    """One worker thread's life: closing it stops that thread even if a new one starts."""

    def __init__(self) -> None:
        self.stopping = False
        self.cancel = threading.Event()


_LIVE: weakref.WeakSet[BackgroundDeliverer] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _flush_at_exit() -> None:
    for deliverer in list(_LIVE):
        deliverer.close(timeout=deliverer.exit_timeout_s)


class BackgroundDeliverer:
    """Deliver requests on one background thread, in order, without blocking the submitter.

    Parameters
    ----------
    policy : RetryPolicy, optional
    client : httpx.Client, optional
        Shared by every delivery; by default the worker owns one.
    maxsize : int, default 1000
        Requests waiting at most; beyond it a request is dropped (logged, counted in
        :attr:`dropped`, its future resolved as not delivered) rather than blocking the caller.
    on_result : callable, optional
        Called on the worker thread with ``(request, result)`` after each request.
    exit_timeout_s : float, default 5.0
        How long interpreter exit waits for queued requests.
    name : str, default "mloop-delivery"
        The worker thread's name.
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        maxsize: int = 1000,
        on_result: Callable[[DeliveryRequest, DeliveryResult], None] | None = None,
        exit_timeout_s: float = 5.0,
        name: str = "mloop-delivery",
    ) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise InvalidInputError(f"`maxsize` must be an int >= 1; got {maxsize!r}.")
        _positive("exit_timeout_s", exit_timeout_s, allow_zero=True)
        if on_result is not None and not callable(on_result):
            raise InvalidInputError(f"`on_result` must be callable; got {on_result!r}.")
        self.policy = RetryPolicy() if policy is None else policy
        self.maxsize = maxsize
        self.exit_timeout_s = float(exit_timeout_s)
        self.name = name
        self._client = client
        self._on_result = on_result
        self._init_state()

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[tuple[DeliveryRequest, Future[DeliveryResult]]] = deque()
        self._unfinished = 0
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._generation = _Generation()
        self._pid = os.getpid()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Requests queued or being delivered."""
        return self._unfinished

    @property
    def dropped(self) -> int:
        """Requests refused because the queue was full."""
        return self._dropped

    def submit(self, request: DeliveryRequest) -> Future[DeliveryResult]:
        """Queue ``request`` and return at once; the future resolves to its :class:`DeliveryResult`."""
        if not isinstance(request, DeliveryRequest):
            raise InvalidInputError(
                f"`request` must be a DeliveryRequest; got {type(request).__name__}."
            )
        if self._pid != os.getpid():  # a forked child: the parent delivers what it had queued
            self._init_state()
        future: Future[DeliveryResult] = Future()
        with self._cond:
            full = len(self._items) >= self.maxsize
            if not full:
                self._items.append((request, future))
                self._unfinished += 1
                self._start_locked()
                self._cond.notify_all()
            else:
                self._dropped += 1
        if full:
            log.warning(
                "delivery queue full (%d waiting): dropped %s to %s",
                self.maxsize,
                request.label or "a request",
                _safe_url(request.url),
            )
            future.set_result(
                DeliveryResult(
                    request.url, False, None, 0, 0.0, f"dropped: the queue is full ({self.maxsize})"
                )
            )
        return future

    def _start_locked(self) -> None:
        global _exit_hook_registered
        if self._thread is not None and self._thread.is_alive() and not self._generation.stopping:
            return
        self._generation = _Generation()
        self._thread = threading.Thread(
            target=self._work, args=(self._generation,), name=self.name, daemon=True
        )
        self._thread.start()
        _LIVE.add(self)
        with _exit_hook_lock:
            if not _exit_hook_registered:
                atexit.register(_flush_at_exit)
                _exit_hook_registered = True

    def _work(self, generation: _Generation) -> None:
        http = self._client or httpx.Client(timeout=self.policy.timeout_s)
        try:
            while True:
                with self._cond:
                    while not self._items and not generation.stopping:
                        self._cond.wait()
                    if generation.stopping:
                        return
                    request, future = self._items.popleft()
                try:
                    result = deliver(
                        request, policy=self.policy, client=http, cancel=generation.cancel
                    )
                except Exception as exc:  # a boundary: the worker must outlive any one request
                    log.exception("delivery to %s failed unexpectedly", _safe_url(request.url))
                    result = DeliveryResult(
                        request.url, False, None, 0, 0.0, f"{type(exc).__name__}: {exc}"
                    )
                self._finish(request, future, result)
        finally:
            if self._client is None:
                http.close()

    def _finish(
        self, request: DeliveryRequest, future: Future[DeliveryResult], result: DeliveryResult
    ) -> None:
        if not result.ok:
            log.warning(
                "could not deliver %s to %s after %d attempt(s) in %.1fs: %s",
                request.label or "a request",
                _safe_url(request.url),
                result.attempts,
                result.elapsed_s,
                result.error,
            )
        try:
            if self._on_result is not None:
                self._on_result(request, result)
        except Exception:  # a boundary: a failing callback must not stop deliveries
            log.exception("delivery on_result callback failed")
        finally:
            future.set_result(result)
            with self._cond:
                self._unfinished -= 1
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued request is delivered or given up; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush for at most ``timeout`` seconds, then stop the worker.

        Requests still queued after the timeout are resolved as not delivered, and a wait between
        retries is cut short. Returns whether everything was delivered (or given up) in time. A
        later :meth:`submit` starts a new worker.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self.flush(timeout)
        with self._cond:
            generation, thread = self._generation, self._thread
            generation.stopping = True
            if not done:
                generation.cancel.set()
            abandoned = list(self._items)
            self._items.clear()
            self._unfinished -= len(abandoned)
            self._cond.notify_all()
        for request, future in abandoned:
            future.set_result(
                DeliveryResult(request.url, False, None, 0, 0.0, "not delivered: closed first")
            )
        if abandoned:
            log.warning("delivery closed with %d request(s) not sent", len(abandoned))
        if thread is not None and thread is not threading.current_thread():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        _LIVE.discard(self)
        return done and not abandoned

    def __enter__(self) -> BackgroundDeliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BackgroundDeliverer(pending={self.pending}, dropped={self.dropped}, "
            f"running={self.running})"
        )
