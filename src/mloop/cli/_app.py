"""Root typer app and the error boundary shared by every command."""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

from mloop.errors import MloopError


class UserError(click.ClickException):
    """A user mistake: printed as one ``error: ...`` line, exit code 2, never a traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(TyperGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MloopError as exc:
            raise UserError(exc.message) from exc


app = typer.Typer(
    name="mloop",
    cls=_Group,
    help="mloop: track experiments, version models, gate, serve, monitor and retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Feature modules that contribute commands; each exposes ``register(app: typer.Typer) -> None``.
_FEATURE_MODULES: tuple[str, ...] = ()

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
    get_app()()
