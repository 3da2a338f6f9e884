"""A synchronous httpx transport into an ASGI app, in-process: ``httpx.ASGITransport`` driven from
a private event loop thread, so the sync HTTP store talks to the real server app without a socket.

The ``asgi+<store URI>`` backend (an HttpStore in front of the app over that store) is registered
by :func:`register_asgi_backend`: the test session does it, and so does a child process a test
starts with such a URI (``sys.path`` to this folder, then the call)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import anyio.from_thread
import httpx

# As HttpStore's own client: a request unanswered this long is a timeout.
DEFAULT_TIMEOUT_S = 30.0


class SyncASGITransport(httpx.BaseTransport):
    """Each request runs as a task on the app's loop. Like a server, the app finishes a request
    whose client has stopped waiting: a read timeout ends the wait, not the request."""

    def __init__(self, app: Any) -> None:
        self._cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._cm.__enter__()
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        timeout = (request.extensions.get("timeout") or {}).get("read")

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        future = self._portal.start_task_soon(call)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise httpx.ReadTimeout(
                f"the app did not answer within {timeout} s", request=request
            ) from None

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def in_process_client(app: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> httpx.Client:
    return httpx.Client(
        transport=SyncASGITransport(app), base_url="http://mloop.test", timeout=timeout_s
    )


def http_store_over(backing: Any) -> Any:
    """An HttpStore whose requests go through the server app over ``backing`` without a socket;
    closing it closes ``backing`` too. ``.backing`` is the server's own store."""
    from mloop.server import create_app
    from mloop.store._http import HttpStore

    client = in_process_client(create_app(backing))

    class InProcessHttpStore(HttpStore):
        def close(self) -> None:
            super().close()
            client.close()
            backing.close()

    made = InProcessHttpStore("http://mloop.test", client=client)
    made.backing = backing  # type: ignore[attr-defined]  # the server's own store (see data_store)
    return made


def in_process_http_store(uri: str, **options: Any) -> Any:
    """The ``asgi+<store URI>`` backend: an HttpStore in front of the app over that store."""
    from mloop.store import create_store

    return http_store_over(create_store(uri.removeprefix("asgi+"), **options))


def register_asgi_backend() -> None:
    """``asgi+<uri>`` (the app in this process) and ``socket+<uri>`` (the app behind a real socket,
    see ``_socket_backend.py``): the HTTP store over the real server app, both ways."""
    from _socket_backend import register_socket_backend
    from mloop.store import register_backend

    register_backend(["asgi"], in_process_http_store)
    register_socket_backend()
