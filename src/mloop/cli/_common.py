"""Shared CLI plumbing: settings resolution, JSON output, value formatting."""

from __future__ import annotations

import math
from typing import Any

import typer
from rich.console import Console

from mloop.config import Settings

console = Console(highlight=False, soft_wrap=False)
if not console.is_terminal and "COLUMNS" not in __import__("os").environ:
    # Piped or logged output: don't squeeze tables into 80 columns.
    console = Console(highlight=False, soft_wrap=False, width=200)


def settings() -> Settings:
    """Settings from the environment, resolved once per command."""
    return Settings.from_env()


def print_json(obj: Any) -> None:
    """Strict JSON on stdout, in the wire codec's form (NaN -> "NaN", inf -> "Infinity")."""
    from mloop.codec import dumps  # the codec loads numpy: only commands that print JSON need it

    typer.echo(dumps(obj, indent=2, what="output"))


def fmt_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.6g}"
    return str(v)


def fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000).strftime("%m-%d %H:%M:%S")


def fmt_duration(start: int, end: int | None) -> str:
    if end is None:
        return "-"
    s = (end - start) / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"
