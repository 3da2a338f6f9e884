"""``Range`` requests (RFC 9110 §14) for the server's file downloads: one byte range per request.

A client resuming a download asks for ``bytes=N-``; a reader of a Parquet footer for ``bytes=-N``.
Several ranges in one request are answered with the whole file (200), as the RFC allows; a range
that cannot be satisfied, or one that is not well formed, is a 416 that names the file's size.
"""

from __future__ import annotations

import re
from typing import ClassVar

from mloop.errors import MloopError

__all__ = ["RangeNotSatisfiableError", "byte_range"]

_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


class RangeNotSatisfiableError(MloopError):
    """The ``Range`` asked for bytes the file does not have (or was not well formed)."""

    error_code: ClassVar[str] = "RANGE_NOT_SATISFIABLE"
    http_status: ClassVar[int] = 416


def _refuse(header: str, size: int, why: str) -> RangeNotSatisfiableError:
    return RangeNotSatisfiableError(
        f"`Range: {header[:80]}` {why}; the file has {size:,} bytes (ask for e.g. "
        f"'bytes=0-{max(size - 1, 0)}' or 'bytes=-1000').",
        details={"size": size},
    )


def byte_range(
    header: str | None, size: int, *, if_range: str | None = None, etag: str = ""
) -> tuple[int, int] | None:
    """The ``(first, last)`` byte (inclusive) a request's ``Range`` asks for; None for the whole
    file (no ``Range``, another unit, several ranges, or an ``If-Range`` that is not ``etag``).

    Raises
    ------
    RangeNotSatisfiableError
        For a range past the end of the file, an empty suffix, first > last, or bad syntax.
    """
    if header is None:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's copy is another version: send the whole file
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None  # a unit we do not know is ignored (RFC 9110 §14.2)
    parts = specs.split(",")
    if len(parts) > 1:
        return None
    m = _SPEC.fullmatch(parts[0])
    if m is None or (not m.group(1) and not m.group(2)):
        raise _refuse(header, size, "is not a byte range")
    first_text, last_text = m.group(1), m.group(2)
    if not first_text:  # a suffix: the last N bytes
        n = int(last_text)
        if n == 0 or size == 0:
            raise _refuse(header, size, "asks for no bytes")
        return max(size - n, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        raise _refuse(header, size, "ends before it starts")
    if first >= size:
        raise _refuse(header, size, "starts past the end of the file")
    return first, min(last, size - 1)
