"""MLflow's REST dialect, so the unmodified ``mlflow`` client works against ``mloop server``.

``mlflow.set_tracking_uri("http://<server>")`` and the client's tracking, artifact and registry
APIs talk to the same store (and artifact store) the native API v1 serves:

- ``/api/2.0/mlflow/...`` and ``/ajax-api/2.0/mlflow/...``: experiments, runs, metrics, params,
  tags, batches, inputs and outputs, search, metric history, the artifact listing, the model
  registry (models, versions, tags, aliases) and MLflow 3's logged models;
- ``/api/2.0/mlflow-artifacts/...``: artifact upload, download and listing through the server.

Handlers are thin: each calls the store's public methods (which validate as they do in-process)
and writes MLflow's JSON. Under ``--auth`` the client's token (``MLFLOW_TRACKING_TOKEN``) needs
``read`` for what only reads (searches sent as POST included) and ``write`` for the rest;
project-scoped tokens are refused here (an MLflow call may touch any experiment). Nothing here
imports the ``mlflow`` package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mloop.server._context import actor_for
from mloop.server._mlflow._artifacts import PROXY_ROUTES, download, upload
from mloop.server._mlflow._artifacts import ROUTES as _ARTIFACTS
from mloop.server._mlflow._experiments import ROUTES as _EXPERIMENTS
from mloop.server._mlflow._models import ROUTES as _MODELS
from mloop.server._mlflow._registry import ROUTES as _REGISTRY
from mloop.server._mlflow._runs import ROUTES as _RUNS
from mloop.server._mlflow._wire import Context, MlflowRoute, endpoint, error_response, mlflow_error
from mloop.server._scopes import route_policy

__all__ = ["ROUTES", "mount_mlflow"]

ROUTES: tuple[MlflowRoute, ...] = (*_EXPERIMENTS, *_RUNS, *_ARTIFACTS, *_REGISTRY, *_MODELS)
_PREFIXES = ("/api", "/ajax-api")


def _context(request: Request) -> Context:
    return Context(
        store=request.app.state.store,
        blobs=getattr(request.app.state, "artifacts", None),
        user=actor_for(None),
    )


def _with_context(
    fn: Callable[[Request, Context], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        return await fn(request, _context(request))

    call.__name__ = f"mlflow_artifacts_{fn.__name__}"
    return call


async def _not_found(request: Request) -> Response:
    return error_response(
        mlflow_error(
            f"API endpoint {request.method} {request.url.path} is not served by this server.",
            "ENDPOINT_NOT_FOUND",
            404,
        )
    )


def mount_mlflow(app: Any, *, artifacts: Any = None) -> None:
    """Add MLflow's REST dialect to ``app`` (whose ``state.store`` is the store to serve).

    Parameters
    ----------
    app : starlette.applications.Starlette
        The server's app (see :func:`mloop.server.create_app`).
    artifacts : mloop.artifacts.BlobStore, optional
        Where run files are kept (default: the app's ``state.artifacts``, the store the native
        artifact routes serve); without one the artifact routes answer ``NOT_IMPLEMENTED``.
    """
    if artifacts is not None:
        app.state.artifacts = artifacts
    for r in ROUTES:
        for prefix in _PREFIXES:
            app.add_route(
                f"{prefix}/{r.version}/mlflow{r.path}",
                route_policy(r.role)(endpoint(r, _context)),
                methods=[r.method],
                include_in_schema=False,
            )
    for r in PROXY_ROUTES:
        app.add_route(
            f"/api/2.0/mlflow-artifacts{r.path}",
            route_policy(r.role)(endpoint(r, _context)),
            methods=[r.method],
            include_in_schema=False,
        )
    files = "/api/2.0/mlflow-artifacts/artifacts/{location:path}"
    put = route_policy("write")(_with_context(upload))
    get = route_policy("read")(_with_context(download))
    app.add_route(files, put, methods=["PUT"], include_in_schema=False)
    app.add_route(files, get, methods=["GET"], include_in_schema=False)
    # Anything else under MLflow's prefixes answers as MLflow's server does for an unknown
    # endpoint, which the client reads as ENDPOINT_NOT_FOUND (and falls back where it can).
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    unknown = route_policy("read", scoped="any")(_not_found)
    for prefix in (*(f"{p}/{v}/mlflow" for p in _PREFIXES for v in ("2.0", "3.0")),):
        app.add_route(
            f"{prefix}/{{rest:path}}", _not_found, methods=methods, include_in_schema=False
        )
    app.add_route(
        "/api/2.0/mlflow-artifacts/{rest:path}",
        unknown,
        methods=methods,
        include_in_schema=False,
    )
