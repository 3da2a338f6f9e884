"""The ``mloop`` command line (typer + rich). Thin: parse, call a service, render.

Each feature module defines ``register(app)`` that adds its commands or sub-apps; user mistakes are
raised as :class:`mloop.errors.MloopError` and printed here as one line with exit code 2.
"""

from __future__ import annotations

__all__ = ["USER_ERROR_EXIT", "app", "get_app", "main"]

from mloop.cli._app import USER_ERROR_EXIT, app, get_app, main
