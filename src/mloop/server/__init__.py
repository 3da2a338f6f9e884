"""The team server: a REST API over the store (``mloop server``), which ``HttpStore`` speaks so the
SDK, the CLI, the registry and monitoring work remotely."""

from __future__ import annotations

from mloop.server._app import create_app

__all__ = ["create_app"]
