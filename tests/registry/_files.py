"""Changing a package's files behind the loader's back, for the load tests."""

from __future__ import annotations

import os
import time
from pathlib import Path


def after_a_clock_tick() -> None:
    # File timestamps come from a coarse kernel clock (a few ms): let it move on, so the change
    # below gets a ctime of its own.
    time.sleep(0.05)


def flip_a_byte_keeping_size_and_mtime(file: Path) -> None:
    before = file.stat()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
