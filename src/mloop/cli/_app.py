"""Root typer app and the error boundary shared by every command."""

from __future__ import annotations

import gc
import importlib
import sys
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
    "_pipelines",
    "_agent",
    "_loop",
)

# The top-level command or sub-app each feature module adds. A command line that names one of them
# registers that module alone, so the process imports, and typer builds, that module's commands only;
# anything else (no argument, ``--help``, an unknown name) registers every module.
# tests/cli/test_cli_routing.py checks this table against what the modules register.
_COMMAND_MODULES: dict[str, str] = {
    "projects": "_runs",
    "runs": "_runs",
    "db": "_admin",
    "sync": "_admin",
    "gc": "_admin",
    "models": "_models",
    "webhooks": "_models",
    "drift": "_monitoring",
    "profile": "_monitoring",
    "predict": "_predict",
    "serve": "_serve",
    "deploy": "_deploy",
    "check": "_check",
    "promote": "_check",
    "ci": "_ci",
    "token": "_token",
    "server": "_server",
    "ui": "_server",
    "pipelines": "_pipelines",
    "agent": "_agent",
    "loop": "_loop",
}

_registered: set[str] = set()


@app.callback()
def _root() -> None:
    # An explicit root callback keeps a root holding one command a group (typer would otherwise run a
    # lone command as the program itself, and `mloop serve ...` would lose its command name).
    pass


def _register(name: str) -> None:
    if name not in _registered:
        importlib.import_module(f"mloop.cli.{name}").register(app)
        _registered.add(name)


def get_app(command: str | None = None) -> typer.Typer:
    """The app with its feature commands added (on first use, not at import time).

    With ``command`` (the first word of a command line) naming a known command, only the module
    that adds it is registered; otherwise every module is.
    """
    module = _COMMAND_MODULES.get(command) if command is not None else None
    for name in (module,) if module is not None else _FEATURE_MODULES:
        _register(name)
    return app


def main() -> None:
    """Console-script entry point."""
    try:
        get_app(sys.argv[1] if len(sys.argv) > 1 else None)()
    finally:
        # The process ends next. Without this, the collection at interpreter exit walks every object
        # the command loaded (libraries, models, data) only to free memory the OS takes back anyway:
        # ~0.75 s after a command that loaded scikit-learn and PyTorch. Frozen objects are skipped.
        gc.freeze()
