"""What a delivery is: the retry policy, the request (and its signature), attempts and results."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mloop.errors import InvalidInputError, MloopError

__all__ = [
    "SIGNATURE_HEADER",
    "Attempt",
    "DeliveryError",
    "DeliveryRequest",
    "DeliveryResult",
    "RetryPolicy",
    "parse_retry_after",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Mloop-Signature"


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


def _safe_url(url: str) -> str:
    """The URL without credentials or query string (which may carry tokens), for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
