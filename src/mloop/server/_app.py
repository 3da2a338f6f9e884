"""``create_app``: the team server's ASGI app (REST API v1 over a store)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mloop.server._v1 import HANDLERS
from mloop.server._wire import JSON, error_response, read_arguments, result_response
from mloop.store import API_PREFIX, ENDPOINTS, Endpoint, Store

__all__ = ["create_app"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mloop")
    except PackageNotFoundError:
        return "0+unknown"


def _route(endpoint: Endpoint, handler: Callable[..., Any]) -> Callable[[Request], Any]:
    async def route(request: Request) -> Response:
        store: Store = request.app.state.store
        try:
            args = await read_arguments(endpoint, request)
            result = await run_in_threadpool(handler, store, **args)
            return result_response(endpoint, result)
        except Exception as exc:  # the boundary: every failure becomes {error_code, message}
            return error_response(exc, request_id=request.headers.get("x-request-id"))

    route.__name__ = endpoint.name
    return route


def create_app(store: Store) -> FastAPI:
    """The REST API v1 over ``store`` (every backend: SQLite, PostgreSQL).

    Parameters
    ----------
    store : Store
        Where everything is kept; the app never opens or closes it.
    """
    app = FastAPI(
        title="mloop server",
        version=_version(),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.store = store
    for endpoint in ENDPOINTS.values():
        handler = HANDLERS.get(endpoint.name)
        if handler is None:
            continue
        app.add_api_route(
            endpoint.full_path,
            _route(endpoint, handler),
            methods=[endpoint.method],
            operation_id=endpoint.name,
            summary=endpoint.summary or endpoint.name,
            response_class=Response,
        )

    @app.get(f"{API_PREFIX}/health", summary="Is the server up", operation_id="health")
    async def health() -> Response:
        from mloop.codec import dumps

        return Response(dumps({"status": "ok", "version": app.version}), media_type=JSON)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return error_response(
            exc, request_id=request.headers.get("x-request-id") or uuid.uuid4().hex
        )

    return app
