"""Identifiers and clocks shared by every layer."""

from __future__ import annotations

import re
import time
import uuid

__all__ = ["RUN_ID_RE", "new_id", "now_ms"]

RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A 32-hex-char random id (uuid4), MLflow's run id format."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
