"""``create_app``: the team server's ASGI app (REST API v1 over a store)."""

from __future__ import annotations

import inspect
import os
import re
import uuid
from collections.abc import Callable
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from mloop.artifacts import BlobStore
from mloop.errors import MloopError
from mloop.server._auth import DEFAULT_RATE_LIMIT, RateLimit, install_auth
from mloop.server._blobs import mount_artifacts
from mloop.server._mlflow import mount_mlflow
from mloop.server._openapi import ERROR_SCHEMA, OperationSchemas, operation_schemas
from mloop.server._schema import SchemaBuilder
from mloop.server._scopes import Scopes
from mloop.server._ui import mount_ui
from mloop.server._v1 import HANDLERS
from mloop.server._wire import (
    JSON,
    MAX_BODY_BYTES,
    decode_arguments,
    error_response,
    read_body,
    result_response,
)
from mloop.store import API_PREFIX, ENDPOINTS, Endpoint, Store

__all__ = ["create_app"]

_REQUEST_ID = re.compile(r"[\w.:-]{1,128}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mloop")
    except PackageNotFoundError:
        return "0+unknown"


def _request_id(request: Request) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token (it is logged), else a new one."""
    given = request.headers.get("x-request-id")
    return given if given is not None and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _route(
    endpoint: Endpoint,
    handler: Callable[..., Any],
    schemas: OperationSchemas,
    components: dict[str, Any],
    max_body_bytes: int,
) -> Callable[[Request], Any]:
    def call(store: Store, path: dict[str, str], query: list[tuple[str, str]], body: bytes) -> Any:
        args = decode_arguments(
            endpoint,
            path=path,
            query=query,
            body=body,
            body_schemas=schemas.body,
            components=components,
        )
        result = handler(store, **args)
        if inspect.isawaitable(result):
            return result
        # encoded here too: a large answer (a long history, a page of runs) never stalls the loop
        return result_response(endpoint, result)

    async def route(request: Request) -> Response:
        store: Store = request.app.state.store
        try:
            body = await read_body(request, limit=max_body_bytes) if endpoint.has_body else b""
            path = {k: str(v) for k, v in request.path_params.items()}
            query = request.query_params.multi_items()
            answer = await run_in_threadpool(call, store, path, query, body)
            if inspect.isawaitable(answer):  # a long-poll: held on the loop, not in a thread
                return result_response(endpoint, await answer)
            return cast(Response, answer)
        except Exception as exc:  # the boundary: every failure becomes {error_code, message}
            return error_response(exc, request_id=_request_id(request))

    route.__name__ = endpoint.name
    return route


class EndpointNotFoundError(MloopError):
    """No operation at this path."""

    error_code = "ENDPOINT_NOT_FOUND"
    http_status = 404


class MethodNotAllowedError(MloopError):
    """An operation exists at this path, but not with this method."""

    error_code = "METHOD_NOT_ALLOWED"
    http_status = 405


def _routing_error(exc: StarletteHTTPException, request: Request) -> Response:
    err: MloopError
    if exc.status_code == 404:
        err = EndpointNotFoundError(
            f"no API endpoint {request.method} {request.url.path}; the operations are listed in "
            f"{API_PREFIX}/openapi.json."
        )
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        err = MethodNotAllowedError(
            f"{request.url.path} does not take {request.method}; it takes {', '.join(allowed)}.",
            details={"allowed": allowed},
        )
        response = error_response(err, request_id=_request_id(request))
        response.headers["Allow"] = ", ".join(allowed)
        return response
    else:  # Starlette raises no other status today; keep its own, in our shape
        from mloop.codec import dumps

        doc = {"error_code": "BAD_REQUEST", "message": str(exc.detail), "details": {}}
        return Response(dumps(doc), status_code=exc.status_code, media_type=JSON)
    response = error_response(err, request_id=_request_id(request))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette's 405 names only the first route's:
    one path is often two operations, e.g. GET and POST /projects)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


_HEALTH_OPENAPI = {
    "responses": {
        "200": {
            "description": "The server is up.",
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                        "required": ["status", "version"],
                        "additionalProperties": False,
                    }
                }
            },
        }
    }
}


def create_app(
    store: Store,
    *,
    artifacts: BlobStore | None = None,
    presign_s: int = 3600,
    staging_dir: str | os.PathLike[str] | None = None,
    mlflow: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    auth: bool = False,
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    token_cache_s: float = 5.0,
    ui: bool = True,
) -> FastAPI:
    """The REST API v1 over ``store`` (every backend: SQLite, PostgreSQL).

    Its OpenAPI document (``/api/v1/openapi.json``) is generated from the endpoint table: every
    operation's parameters, body and answers have their JSON schemas.

    Parameters
    ----------
    store : Store
        Where everything is kept; the app never opens or closes it.
    artifacts : BlobStore, optional
        The server's own artifact store (a folder, ``s3://...``): blobs, dataset files and
        resumable uploads are served from it under ``/api/v1/blobs``, ``/api/v1/datasets/{sha256}
        /parquet`` and ``/api/v1/uploads`` (see :mod:`mloop.server._blobs`), and MLflow's artifact
        routes keep run files in it. Without one those routes are absent.
    presign_s : int, default 3600
        With ``artifacts`` on S3 (or GCS): downloads are redirects to URLs presigned for this long;
        0 streams them through the server.
    staging_dir : path, optional
        Where resumable uploads wait until complete (default: ``mloop-staging`` in the system's
        temporary folder).
    mlflow : bool, default True
        Also speak MLflow's REST dialect (``/api/2.0/mlflow/...``), so the unmodified ``mlflow``
        client works against the server.
    max_body_bytes : int, default 64 MiB
        A request body over this is refused with 413 before it is read whole.
    auth : bool, default False
        Require a bearer token (``mloop token create``) on every request but the health check:
        401 without a valid one, 403 when its role or project scope does not allow the call; the
        token's name is the actor of what it does. See :mod:`mloop.server._auth`.
    rate_limit : RateLimit or None, default 100 requests/s (bursts of 200) per token
        With ``auth``: each token's rate (a token's own ``rate_limit`` wins); 429 past it.
    token_cache_s : float, default 5
        With ``auth``: how long a verified token is reused without asking the store, hence how
        long a revoked token may still be accepted (0 asks on every request).
    ui : bool, default True
        Serve the web UI at ``/ui/`` (``/`` redirects there) with its data routes under
        ``/api/v1/ui`` (see :mod:`mloop.server._ui`).
    """
    app = FastAPI(
        title="mloop server",
        version=_version(),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.store = store
    builder = SchemaBuilder()
    scopes = Scopes(store)
    for endpoint in ENDPOINTS.values():
        handler = HANDLERS.get(endpoint.name)
        if handler is None:
            continue
        if auth:  # a project-scoped token reaches its project only
            handler = scopes.guard(endpoint, handler)
        schemas = operation_schemas(endpoint, builder)
        app.add_api_route(
            endpoint.full_path,
            _route(endpoint, handler, schemas, builder.components, max_body_bytes),
            methods=[endpoint.method],
            operation_id=endpoint.name,
            summary=endpoint.summary or endpoint.name,
            response_class=Response,
            status_code=204 if endpoint.result is None else 200,
            openapi_extra=schemas.openapi,
        )
    components = {**builder.components, "Error": ERROR_SCHEMA}

    @app.get(
        f"{API_PREFIX}/health",
        summary="Is the server up",
        operation_id="health",
        tags=["server"],
        openapi_extra=_HEALTH_OPENAPI,
    )
    async def health() -> Response:
        from mloop.codec import dumps

        return Response(dumps({"status": "ok", "version": app.version}), media_type=JSON)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description="The REST API v1 of the mloop team server. Errors are "
                "`{error_code, message, details}`; floats may be 'NaN', 'Infinity', "
                "'-Infinity'; integers are int64.",
                routes=app.routes,
            )
            doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _routing_error(exc, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return error_response(exc, request_id=_request_id(request))

    if artifacts is not None:
        mount_artifacts(app, artifacts, presign_s=presign_s, staging_dir=staging_dir)
    if mlflow:
        mount_mlflow(app, artifacts=artifacts)
    static = mount_ui(app, store, artifacts=artifacts) if ui else frozenset()
    if auth:  # last: it guards every route mounted above
        install_auth(
            app,
            store,
            scopes=scopes,
            rate_limit=rate_limit,
            token_cache_s=token_cache_s,
            open_paths=static,
        )
    return app
