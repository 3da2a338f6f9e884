"""The media index of runs: through the store's public methods, which validate again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[..., Any]] = {
    "add_media": lambda s, run_id, items: s.add_media(run_id, items),
    "list_media": lambda s, run_id, key=None, kind=None: s.list_media(run_id, key=key, kind=kind),
}
