"""Root typer app and the error boundary shared by every command."""

from __future__ import annotations

import gc
import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from mloop.errors import MloopError

USER_ERROR_EXIT = 2


class _Group(TyperGroup):
    """Root group: a :class:`MloopError` (or an ``OSError`` of the environment: an unusable home,
    a full disk) from any command is one ``error: ...`` line and exit 2, never a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MloopError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(USER_ERROR_EXIT) from None
        except OSError as exc:
            # The machine, not mloop: an unusable MLOOP_HOME, a full disk, a missing permission.
            where = f" {exc.filename!r}" if exc.filename else ""
            typer.echo(
                f"error: {exc.strerror or exc}{':' if where else ''}{where}. Check MLOOP_HOME "
                "(default ./.mloop) and the paths given; they must be writable directories.",
                err=True,
            )
            raise typer.Exit(USER_ERROR_EXIT) from None


app = typer.Typer(
    name="mloop",
    cls=_Group,
    help="mloop: track experiments, version models, gate, serve, monitor and retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Feature modules that contribute commands; each exposes ``register(app: typer.Typer) -> None``.
_FEATURE_MODULES: tuple[str, ...] = (
    "_runs",
    "_admin",
    "_models",
    "_monitoring",
    "_predict",
    "_serve",
    "_deploy",
    "_check",
    "_ci",
    "_token",
    "_server",
)

_registered = False


def get_app() -> typer.Typer:
    """The fully registered app (feature commands are added on first use, not at import time)."""
    global _registered
    if not _registered:
        for name in _FEATURE_MODULES:
            importlib.import_module(f"mloop.cli.{name}").register(app)
        _registered = True
    return app


def main() -> None:
    """Console-script entry point."""
    try:
        get_app()()
    finally:
        # The process ends next. Without this, the collection at interpreter exit walks every object
        # the command loaded (libraries, models, data) only to free memory the OS takes back anyway:
        # ~0.75 s after a command that loaded scikit-learn and PyTorch. Frozen objects are skipped.
        gc.freeze()
