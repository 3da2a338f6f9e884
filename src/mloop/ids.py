"""Identifiers and clocks shared by every layer."""

from __future__ import annotations

import os
import re
import time
import uuid

__all__ = ["RUN_ID_RE", "new_batch_id", "new_id", "now_ms"]

RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A 32-hex-char random id (uuid4), MLflow's run id format."""
    return uuid.uuid4().hex


def new_batch_id() -> str:
    """A 32-hex-char batch id that sorts by creation time: ns clock, then 64 random bits.

    Batch ids are internal (the key that makes replays idempotent), so unlike run ids, which
    people abbreviate to a prefix, they can lead with the clock: each new id lands at the end of
    the ``batches`` primary key instead of dirtying a random page of it.
    """
    return f"{time.time_ns() & (2**64 - 1):016x}{int.from_bytes(os.urandom(8), 'big'):016x}"


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
