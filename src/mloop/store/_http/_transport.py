"""The HTTP side of the HTTP store: one ``httpx`` client, the token, and answers turned back into
results or into the same exception classes the server raised."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import orjson

from mloop.codec import from_wire, loads
from mloop.errors import (
    InvalidInputError,
    MloopError,
    StoreUnavailableError,
    error_from_code,
)
from mloop.store._http._endpoint import Endpoint

# The server's mark on an answer its codec wrote (mloop.server's CODEC_JSON_HEADER).
_CODEC = "x-mloop-json"

__all__ = ["HttpTransport", "normalise_base_url"]

# A GET that could not reach the server is tried again this often, after these pauses; writes are
# never retried here (the tracking writer spools them and replays them idempotently).
_READ_RETRY_PAUSES_S = (0.05, 0.2, 0.5)
_UNAVAILABLE = {502, 503, 504}
# A 429 means the request was not applied, so reads and writes alike are sent again after the
# server's Retry-After, this many times, when it asks for no longer than this.
_RATE_LIMITED_RETRIES = 3
_MAX_RETRY_AFTER_S = 10.0


def normalise_base_url(uri: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash (a given ``/api/v1`` is dropped)."""
    if not isinstance(uri, str) or not uri.lower().startswith(("http://", "https://")):
        raise InvalidInputError(
            f"a server URI looks like 'http://127.0.0.1:5000' or 'https://mloop.example.com'; "
            f"got {uri!r}."
        )
    url = httpx.URL(uri)
    if not url.host:
        raise InvalidInputError(f"the server URI {uri!r} names no host.")
    base = str(url.copy_with(query=None, fragment=None)).rstrip("/")
    return base.removesuffix("/api/v1")


class HttpTransport:
    """Calls :class:`Endpoint` s on a server.

    Parameters
    ----------
    uri : str
        The server's base URL.
    token : str, optional
        A bearer token (``mloop token create``); sent with every request.
    client : httpx.Client, optional
        Send through this client instead (tests pass one bound to the app in-process).
    timeout_s : float
        Per request.
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = normalise_base_url(uri)
        self._token = token
        self._own_client = client is None
        self._client = client or httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._lock = threading.Lock()
        self._closed = False
        self._deadlines = threading.local()  # each thread's write deadline (``deadline``)

    @contextlib.contextmanager
    def deadline(self, deadline: float | None) -> Iterator[None]:
        """Within the block, this thread's requests end no later than ``deadline`` (a
        :func:`time.monotonic` time; ``Store.write_deadline``): each is given what is left, and
        past it a request raises :class:`StoreUnavailableError` at once, unsent."""
        before = getattr(self._deadlines, "value", None)
        self._deadlines.value = deadline
        try:
            yield
        finally:
            self._deadlines.value = before

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def call(self, endpoint: Endpoint, /, **values: Any) -> Any:
        """Send ``values`` to ``endpoint``; the decoded result (or the server's error, raised)."""
        return self._call(endpoint, values, hold_s=0.0)

    def long_poll(self, endpoint: Endpoint, /, **values: Any) -> Any:
        """:meth:`call` an endpoint that the server may hold for ``values["wait_s"]`` seconds
        before it answers: the read timeout is extended by that."""
        return self._call(endpoint, values, hold_s=float(values.get("wait_s") or 0.0))

    def _call(self, endpoint: Endpoint, values: Mapping[str, Any], *, hold_s: float) -> Any:
        path, query, body = endpoint.request(values)
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(endpoint, path, query, body, headers, hold_s=hold_s)
        if response.status_code >= 400:
            raise self._error(endpoint, response)
        if endpoint.result is None or response.status_code == 204:
            return None
        data = self._decode(endpoint, response.content, exact=bool(response.headers.get(_CODEC)))
        if endpoint.decode is not None:
            return endpoint.decode(data)
        return from_wire(endpoint.result, data, what=endpoint.name)

    @staticmethod
    def _decode(endpoint: Endpoint, content: bytes, *, exact: bool = False) -> Any:
        # orjson reads a long history or a page of runs 1.5-2.5x faster than ``json``, but reads
        # an int outside [-2**63, 2**64) as a float: the server writes such an answer with the
        # codec and says so (``exact``), and it is read with the codec's reader, as is what
        # orjson refuses (a bare NaN, bad JSON: the codec's reader names the problem).
        if not exact:
            try:
                return orjson.loads(content)
            except orjson.JSONDecodeError:
                pass
        try:
            return loads(content, what=f"the answer to {endpoint.name}")
        except InvalidInputError as exc:
            raise MloopError(f"the server's answer to {endpoint.name} is not JSON: {exc}") from None

    def _send(
        self,
        endpoint: Endpoint,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        hold_s: float = 0.0,
    ) -> httpx.Response:
        pauses = _READ_RETRY_PAUSES_S if endpoint.method == "GET" else ()
        attempt = throttled = 0
        deadline = getattr(self._deadlines, "value", None)
        while True:
            timeout = self._timeout(endpoint, hold_s, deadline)
            try:
                response = self._client.request(
                    endpoint.method,
                    path,
                    params=query,
                    content=body,
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.TransportError as exc:
                # A request that timed out waiting for its answer may still be running on the
                # server: it is not sent again (a write's caller spools it under its batch id).
                answered_late = isinstance(exc, httpx.TimeoutException) and not isinstance(
                    exc, httpx.ConnectTimeout
                )
                if (
                    attempt < len(pauses)
                    and not answered_late
                    and (deadline is None or time.monotonic() + pauses[attempt] < deadline)
                ):
                    time.sleep(pauses[attempt])
                    attempt += 1
                    continue
                if answered_late:
                    raise StoreUnavailableError(
                        f"the mloop server at {self.base_url} did not answer {endpoint.name} in "
                        f"time ({type(exc).__name__}); it may be overloaded or waiting for its "
                        "database.",
                        details={"url": self.base_url, "operation": endpoint.name},
                    ) from None
                raise StoreUnavailableError(
                    f"the mloop server at {self.base_url} cannot be reached "
                    f"({type(exc).__name__}: {exc}); is `mloop server` running there?",
                    details={"url": self.base_url, "operation": endpoint.name},
                ) from None
            if response.status_code in _UNAVAILABLE and attempt < len(pauses):
                time.sleep(pauses[attempt])
                attempt += 1
                continue
            if response.status_code == 429 and throttled < _RATE_LIMITED_RETRIES:
                wait = _retry_after(response)
                if wait is not None and wait <= _MAX_RETRY_AFTER_S:
                    time.sleep(wait)
                    throttled += 1
                    continue
            return response

    def _timeout(self, endpoint: Endpoint, hold_s: float, deadline: float | None) -> Any:
        """The client's timeouts (``httpx.USE_CLIENT_DEFAULT`` when they stand as they are), the read one extended by ``hold_s``, all cut to the deadline."""
        if not hold_s and deadline is None:
            return httpx.USE_CLIENT_DEFAULT
        base = self._client.timeout
        read = base.read if base.read is None or not hold_s else base.read + hold_s
        parts = {"connect": base.connect, "read": read, "write": base.write, "pool": base.pool}
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreUnavailableError(
                    f"no time left to wait for the mloop server at {self.base_url} "
                    f"({endpoint.name}): the flush timeout has passed.",
                    details={"url": self.base_url, "operation": endpoint.name},
                )
            parts = {k: left if v is None else min(v, left) for k, v in parts.items()}
        return httpx.Timeout(**parts)

    def _error(self, endpoint: Endpoint, response: httpx.Response) -> MloopError:
        try:
            doc = loads(response.content)
        except InvalidInputError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("error_code"), str):
            details = doc.get("details") if isinstance(doc.get("details"), dict) else None
            return error_from_code(doc["error_code"], str(doc.get("message", "")), details)
        text = response.text[:300].strip()
        if response.status_code in _UNAVAILABLE:
            return StoreUnavailableError(
                f"the mloop server at {self.base_url} is unavailable "
                f"(HTTP {response.status_code} for {endpoint.name}): {text}",
                details={"status": response.status_code},
            )
        return MloopError(
            f"the server answered {endpoint.name} with HTTP {response.status_code}: {text}",
            details={"status": response.status_code},
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._own_client:
            self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds a 429's ``Retry-After`` asks for (None when it names none or a date)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        wait = float(value)
    except ValueError:
        return None
    return wait if 0 <= wait < float("inf") else None
