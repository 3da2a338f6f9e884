"""A synchronous httpx transport into an ASGI app, in-process: ``httpx.ASGITransport`` driven from
a private event loop thread, so the sync HTTP store talks to the real server app without a socket."""

from __future__ import annotations

from typing import Any

import anyio.from_thread
import httpx


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._cm.__enter__()
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self._portal.call(call)

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def in_process_client(app: Any) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://mloop.test")
