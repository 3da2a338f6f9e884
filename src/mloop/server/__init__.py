"""The team server: a REST API over the store (``mloop server``), which ``HttpStore`` speaks so the
SDK, the CLI, the registry and monitoring work remotely, and which keeps the artifacts."""

from __future__ import annotations

from mloop.server._app import create_app
from mloop.server._auth import RateLimit
from mloop.server._serve import ServerConfig, build_app, run_server

__all__ = ["RateLimit", "ServerConfig", "build_app", "create_app", "run_server"]
