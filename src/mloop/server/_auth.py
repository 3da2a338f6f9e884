"""Bearer-token auth for the team server (``create_app(store, auth=True)``, ``mloop server --auth``).

Every request but ``/api/v1/health`` must carry ``Authorization: Bearer <token>`` (HTTP Basic with
the token as the password works too, for clients that only speak Basic). The middleware

1. verifies the token (401 ``UNAUTHENTICATED`` when it is missing, malformed, unknown, expired or
   revoked). Verified tokens are cached in memory for ``token_cache_s`` seconds, keyed by the
   SHA-256 of the secret (never the secret), so a request costs a dictionary lookup, not a query;
   the price is that a revoked token keeps working for at most ``token_cache_s`` seconds on each
   server process. Expiry is checked on every request, cached or not;
2. applies the token's rate limit (a token bucket per token: 429 ``REQUEST_LIMIT_EXCEEDED`` with
   ``Retry-After``). Buckets live in the process: with N workers a token gets up to N times its
   rate;
3. checks the route's role (403 ``PERMISSION_DENIED``) before the body is read, and for routes that
   are not endpoints of the table, their project scope (see :mod:`mloop.server._scopes`);
4. runs the request with :data:`~mloop.server._context.AUTHENTICATED` set to the token's name, so
   the events it causes record that actor whatever the client claims.

Endpoints of the table check the project scope in their handler's thread, with their arguments
(:meth:`Scopes.guard`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from mloop.errors import (
    InvalidInputError,
    MloopError,
    RateLimitedError,
    UnauthenticatedError,
)
from mloop.ids import now_ms
from mloop.server._context import AUTHENTICATED, TOKEN
from mloop.server._scopes import RoutePolicy, Scopes, deny_role
from mloop.server._wire import error_response
from mloop.store import (
    API_PREFIX,
    ENDPOINTS,
    ApiToken,
    Endpoint,
    Store,
    hash_token_secret,
    is_token_secret,
)

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "Auth",
    "AuthMiddleware",
    "RateLimit",
    "TokenBuckets",
    "install_auth",
]

_log = logging.getLogger("mloop.server.auth")
# How often a token's ``last_used_ms`` is written at most (a write per request would be a write
# per request).
_RECORD_USE_EVERY_MS = 60_000
_RECORD_USE_WAIT_S = 5.0  # a busy store skips the note rather than queueing writes behind it
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_REQUEST_ID = re.compile(r"[\w.:-]{1,128}")
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class RateLimit:
    """How many requests a token may make: ``per_second`` on average, ``burst`` at once.

    Parameters
    ----------
    per_second : float
        The sustained rate (a token's own ``rate_limit`` replaces it for that token).
    burst : int, optional
        The bucket's size: requests that may arrive at once after a quiet spell. Default: two
        seconds' worth, at least 1.

    Examples
    --------
    >>> RateLimit.parse("6000/min")
    RateLimit(per_second=100.0, burst=None)
    >>> RateLimit(100).capacity
    200.0
    """

    per_second: float
    burst: int | None = None

    def __post_init__(self) -> None:
        r = self.per_second
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0:
            raise InvalidInputError(f"`per_second` must be a finite number > 0; got {r!r}.")
        b = self.burst
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise InvalidInputError(f"`burst` must be an int >= 1 or None; got {b!r}.")

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst is not None else max(1.0, 2.0 * self.per_second)

    @classmethod
    def parse(cls, text: str, *, burst: int | None = None) -> RateLimit:
        """``"100/s"``, ``"6000/min"``, ``"3600/h"`` (or ``"100"``, per second) as a
        :class:`RateLimit`."""
        m = _RATE.match(text) if isinstance(text, str) else None
        if m is None or float(m.group(1)) <= 0:
            raise InvalidInputError(
                f"a rate limit reads like '100/s', '6000/min' or '3600/h'; got {text!r}."
            )
        return cls(float(m.group(1)) / _PER[m.group(2) or "s"], burst)


DEFAULT_RATE_LIMIT = RateLimit(100.0, 200)


class TokenBuckets:
    """One token bucket per API token. Used from the event loop only (no lock)."""

    def __init__(
        self, default: RateLimit | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default = default
        self._clock = clock
        self._burst_s = default.capacity / default.per_second if default is not None else 2.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def limit(self, token: ApiToken) -> tuple[float, float] | None:
        """``(rate, capacity)`` for ``token``; None when it is not limited."""
        if token.rate_limit is not None:
            return token.rate_limit, max(1.0, token.rate_limit * self._burst_s)
        if self.default is None:
            return None
        return self.default.per_second, self.default.capacity

    def take(self, token: ApiToken) -> float:
        """Spend one request: 0.0 when allowed, else the seconds until one is available."""
        limit = self.limit(token)
        if limit is None:
            return 0.0
        rate, capacity = limit
        now = self._clock()
        level, last = self._buckets.get(token.id, (capacity, now))
        level = min(capacity, level + (now - last) * rate)
        if level >= 1.0:
            self._buckets[token.id] = (level - 1.0, now)
            return 0.0
        self._buckets[token.id] = (level, now)
        if len(self._buckets) > 10_000:
            self._forget_full(now)
        return (1.0 - level) / rate

    def _forget_full(self, now: float) -> None:
        # A bucket idle long enough to be full again is the same as no bucket.
        idle = max(self._burst_s, 1.0) * 2
        for key in [k for k, (_, last) in self._buckets.items() if now - last > idle]:
            del self._buckets[key]


class _TokenCache:
    """Verified tokens (and refusals) by the SHA-256 of their secret, for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float, *, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._size = size
        self._entries: OrderedDict[str, tuple[float, ApiToken | UnauthenticatedError]] = (
            OrderedDict()
        )

    def get(self, key: str) -> ApiToken | UnauthenticatedError | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if time.monotonic() >= hit[0]:
            del self._entries[key]
            return None
        return hit[1]

    def put(self, key: str, value: ApiToken | UnauthenticatedError) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def _secret_from(header: str | None) -> str:
    """The secret an ``Authorization`` header carries."""
    if header is None or not header.strip():
        raise UnauthenticatedError(
            "this server requires a token: send 'Authorization: Bearer <token>' (mloop's SDK and "
            "CLI send $MLOOP_TOKEN); the server's admin creates one with `mloop token create`."
        )
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise UnauthenticatedError("the Basic credentials are not base64 text.") from None
        return password or user
    raise UnauthenticatedError(
        f"the Authorization header must be 'Bearer <token>'; got the scheme {scheme[:20]!r}."
    )


class Auth:
    """One app's authentication and authorization: the store, the token cache, the buckets.

    Parameters
    ----------
    store : Store
        Where tokens are verified (the server's own store).
    endpoints : mapping
        ``(path, method) -> Endpoint`` for the routes mounted from the endpoint table.
    scopes : Scopes
        The project checks (shared with the endpoint handlers).
    rate_limit : RateLimit or None
        The default per-token rate; None: only tokens with their own rate are limited.
    token_cache_s : float
        How long a verification is reused (0: verify on every request).
    open_paths : set of str
        Paths served without a token (the health check).
    """

    def __init__(
        self,
        store: Store,
        *,
        endpoints: Mapping[tuple[str, str], Endpoint],
        scopes: Scopes,
        rate_limit: RateLimit | None,
        token_cache_s: float,
        open_paths: frozenset[str],
    ) -> None:
        if (
            isinstance(token_cache_s, bool)
            or not isinstance(token_cache_s, (int, float))
            or not 0 <= token_cache_s <= 3600
        ):
            raise InvalidInputError(
                f"`token_cache_s` must be a number in [0, 3600]; got {token_cache_s!r}."
            )
        self.store = store
        self.endpoints = endpoints
        self.scopes = scopes
        self.buckets = TokenBuckets(rate_limit)
        self.cache = _TokenCache(float(token_cache_s))
        self.open_paths = open_paths
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _verify(self, secret: str) -> ApiToken | UnauthenticatedError:
        """In a worker thread: the store's verdict, noting the use now and then."""
        try:
            token = self.store.verify_token(secret)
        except UnauthenticatedError as exc:
            return exc
        at = now_ms()
        if token.last_used_ms is None or at - token.last_used_ms >= _RECORD_USE_EVERY_MS:
            self._bookkeeper().submit(self._note_use, token.id, at)
        return token

    def _bookkeeper(self) -> ThreadPoolExecutor:
        """One thread for ``last_used_ms`` writes, so a request never waits on a write lock."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="mloop-token-use")
            return self._executor

    def close(self) -> None:
        """Finish the pending bookkeeping (each write waits at most a few seconds)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _note_use(self, token_id: str, at: int) -> None:
        try:
            with self.store.write_deadline(time.monotonic() + _RECORD_USE_WAIT_S):
                self.store.record_token_use(token_id, at_ms=at)
        except MloopError as exc:  # bookkeeping: never fail anything over it
            _log.warning("could not record the use of token %s: %s", token_id, exc)

    async def authenticate(self, header: str | None) -> ApiToken:
        secret = _secret_from(header)
        if not is_token_secret(secret):
            return self.store.verify_token(secret)  # raises, with the store's own words
        key = hash_token_secret(secret)
        verdict = self.cache.get(key)
        if verdict is None:
            verdict = await run_in_threadpool(self._verify, secret)
            self.cache.put(key, verdict)
        if isinstance(verdict, UnauthenticatedError):
            raise UnauthenticatedError(verdict.message, details=verdict.details)
        if verdict.expired():
            raise UnauthenticatedError(
                f"token {verdict.id} ({verdict.name!r}) expired; ask the server's admin for a "
                "new one.",
                details={"token_id": verdict.id, "expires_ms": verdict.expires_ms},
            )
        return verdict

    def throttle(self, token: ApiToken) -> None:
        wait = self.buckets.take(token)
        if wait > 0:
            rate, capacity = self.buckets.limit(token) or (0.0, 0.0)
            raise RateLimitedError(
                f"token {token.id} ({token.name!r}) is over its rate limit of {rate:g} "
                f"requests/s (bursts of {capacity:g}); retry in {wait:.2f} s.",
                details={"retry_after_s": round(wait, 3), "token_id": token.id},
            )

    async def authorize(self, scope: Scope, token: ApiToken) -> None:
        """The role a route needs, and the project scope of routes outside the endpoint table."""
        route, child = _match(scope)
        if route is None:
            return  # the router answers 404 or 405
        method = scope.get("method", "GET")
        endpoint = self.endpoints.get((getattr(route, "path", ""), method))
        if endpoint is not None:  # its handler checks the scope, with its arguments
            denied = deny_role(token, endpoint.required_role, endpoint.name)
            if denied is not None:
                raise denied
            return
        target = getattr(route, "endpoint", None) or getattr(route, "app", None)
        policy: RoutePolicy | None = getattr(target, "__mloop_auth__", None)
        if policy is None:
            policy = RoutePolicy("read" if method in _READ_METHODS else "write")
        what = f"{method} {getattr(route, 'path', scope.get('path', ''))}"
        denied = deny_role(token, policy.role, what)
        if denied is not None:
            raise denied
        if token.project_id is not None and policy.scoped != "any":
            params = child.get("path_params", {})
            await run_in_threadpool(self.scopes.check_route, token, policy, params, what)


def _match(scope: Scope) -> tuple[Any, dict[str, Any]]:
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None, {}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class AuthMiddleware:
    """The ASGI side of :class:`Auth` (pure ASGI, so the context it sets reaches the handler)."""

    def __init__(self, app: ASGIApp, *, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.auth.open_paths:
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"authorization")
        try:
            token = await self.auth.authenticate(given)
            self.auth.throttle(token)
            await self.auth.authorize(scope, token)
        except MloopError as exc:
            await self._refuse(scope, receive, send, exc, given is not None)
            return
        principal, current = AUTHENTICATED.set(token.name), TOKEN.set(token)
        try:
            await self.app(scope, receive, send)
        finally:
            AUTHENTICATED.reset(principal)
            TOKEN.reset(current)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, exc: MloopError, had_token: bool
    ) -> None:
        client = scope.get("client") or ("-", 0)
        _log.info(
            "%s %s from %s: %s %s",
            scope.get("method", "WS"),
            scope.get("path"),
            client[0],
            exc.http_status,
            exc.message,
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        given_id = _header(scope, b"x-request-id")
        request_id = given_id if given_id and _REQUEST_ID.fullmatch(given_id) else uuid.uuid4().hex
        response = error_response(exc, request_id=request_id)
        if isinstance(exc, UnauthenticatedError):
            challenge = 'Bearer realm="mloop"' + (', error="invalid_token"' if had_token else "")
            response.headers["WWW-Authenticate"] = challenge
        elif isinstance(exc, RateLimitedError):
            wait = float(exc.details.get("retry_after_s", 1.0))
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        await response(scope, receive, send)


def install_auth(
    app: Any,
    store: Store,
    *,
    scopes: Scopes,
    rate_limit: RateLimit | None,
    token_cache_s: float,
    open_paths: frozenset[str] = frozenset(),
) -> Auth:
    """Put :class:`AuthMiddleware` in front of ``app`` (a FastAPI app whose routes are mounted).

    The endpoints of the table are found by their operation ids; the health check stays open; the
    OpenAPI document and its docs page need a token, of any role and scope. ``open_paths`` are
    served without one too (the web UI's static files: they hold no data).
    """
    mounted: dict[tuple[str, str], Endpoint] = {}
    for route in app.routes:
        endpoint = ENDPOINTS.get(getattr(route, "operation_id", None) or "")
        if endpoint is not None and getattr(route, "path", None) == endpoint.full_path:
            mounted[(endpoint.full_path, endpoint.method)] = endpoint
        elif getattr(route, "path", None) in (app.openapi_url, app.docs_url):
            route.endpoint.__mloop_auth__ = RoutePolicy("read", "any")
    auth = Auth(
        store,
        endpoints=mounted,
        scopes=scopes,
        rate_limit=rate_limit,
        token_cache_s=token_cache_s,
        open_paths=frozenset({f"{API_PREFIX}/health"}) | open_paths,
    )
    app.add_middleware(AuthMiddleware, auth=auth)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with inner(a) as state:
                yield state
        finally:
            await run_in_threadpool(auth.close)

    app.router.lifespan_context = lifespan
    app.state.auth = auth
    return auth
