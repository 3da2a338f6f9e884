"""Serving: registered models behind an HTTP endpoint (MLflow scoring protocol, Open Inference
Protocol v2), hot-swapped when their alias moves; deployments with canary and shadow; batch scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop.serving._batch import BatchPredictionStats, predict_file
from mloop.serving._deployments import Deployments, DeploymentStatus, ResolvedModel, parse_canary
from mloop.serving._traffic import ServeSpec, Traffic

if TYPE_CHECKING:
    from mloop.serving._app import ServeOptions, create_app
    from mloop.serving._server import resolve_target, serve

__all__: list[str] = [
    "BatchPredictionStats",
    "DeploymentStatus",
    "Deployments",
    "ResolvedModel",
    "ServeOptions",
    "ServeSpec",
    "Traffic",
    "create_app",
    "parse_canary",
    "predict_file",
    "resolve_target",
    "serve",
]


def __getattr__(name: str) -> object:
    # The HTTP side needs the `serve` extra (FastAPI, uvicorn); batch scoring does not.
    if name in ("ServeOptions", "create_app"):
        from mloop.serving import _app

        return getattr(_app, name)
    if name in ("serve", "resolve_target", "app_from_env"):
        from mloop.serving import _server

        return getattr(_server, name)
    raise AttributeError(f"module 'mloop.serving' has no attribute {name!r}")
