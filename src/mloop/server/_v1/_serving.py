"""Serving's per-minute aggregates: through the store's public methods, which validate again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[..., Any]] = {
    "record_serving_minutes": lambda s, minutes: s.record_serving_minutes(minutes),
    "list_serving_minutes": lambda s, deployment, since_ms, until_ms, limit: s.list_serving_minutes(
        deployment, since_ms=since_ms, until_ms=until_ms, limit=10_000 if limit is None else limit
    ),
}
