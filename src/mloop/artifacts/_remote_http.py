"""The HTTP plumbing of a server's blob store: connection pools, errors, and the streams that
downloads are read through."""

from __future__ import annotations

import atexit
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mloop._digest import hasher
from mloop.artifacts._hashing import CHUNK_SIZE
from mloop.artifacts._integrity import IntegrityError
from mloop.errors import (
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StoreUnavailableError,
    UnauthenticatedError,
    error_from_code,
)

__all__ = ["API", "PAUSES_S", "UNAVAILABLE"]

API = "/api/v1"
# Pauses between attempts of a request that could not reach the server (or got 502/503/504).
PAUSES_S = (0.1, 0.3, 1.0, 2.0, 4.0)
UNAVAILABLE = frozenset({502, 503, 504})


def _base_url(uri: str) -> str:
    url = httpx.URL(uri)
    if not url.host:
        raise InvalidInputError(f"the artifact server URI {uri!r} names no host.")
    return str(url.copy_with(query=None, fragment=None)).rstrip("/").removesuffix(API)


def _dataset_digest_of(key: str) -> str | None:
    """``datasets/<digest>.parquet`` -> the digest; None for other keys."""
    if key.startswith("datasets/") and key.endswith(".parquet"):
        return key[len("datasets/") : -len(".parquet")]
    return None


def _raise_for(response: httpx.Response, what: str, base: str) -> None:
    """Raise the server's error as the class it was raised as (a non-mloop answer: MloopError)."""
    if response.status_code < 400:
        return
    response.read()
    try:
        doc = json.loads(response.content)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error_code"), str):
        details = doc.get("details") if isinstance(doc.get("details"), dict) else None
        raise error_from_code(doc["error_code"], str(doc.get("message", "")), details)
    text = response.text[:300].strip()
    status = response.status_code
    if status in UNAVAILABLE:
        raise StoreUnavailableError(
            f"the mloop server at {base} is unavailable (HTTP {status} for {what}): {text}",
            details={"status": status},
        )
    # No error document (the answer to a HEAD has no body): the status says which error it is.
    cls, why = _BY_STATUS.get(status, (MloopError, ""))
    raise cls(
        f"the server at {base} answered {what} with HTTP {status}{why}"
        + (f": {text}" if text else ""),
        details={"status": status},
    )


_BY_STATUS: dict[int, tuple[type[MloopError], str]] = {
    400: (InvalidInputError, ""),
    401: (UnauthenticatedError, " (it needs a token: set MLOOP_TOKEN, see `mloop token create`)"),
    403: (PermissionDeniedError, " (the token's role or project does not allow it)"),
    404: (NotFoundError, ""),
    409: (ConflictError, ""),
    429: (RateLimitedError, " (too many requests with this token; try again later)"),
}


_clients_lock = threading.Lock()
_CLIENTS: dict[tuple[int, str, str | None, float], tuple[httpx.Client, httpx.Client]] = {}


def _clients(base: str, token: str | None, timeout_s: float) -> tuple[httpx.Client, httpx.Client]:
    """The process's connection pools to a server (shared by every store object on it: a run
    makes its own, and new connections per run would cost a handshake each); a forked child
    makes its own, never using its parent's sockets."""
    key = (os.getpid(), base, token, timeout_s)
    with _clients_lock:
        found = _CLIENTS.get(key)
        if found is None:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
            client = httpx.Client(
                base_url=base,
                headers=headers,
                timeout=timeout,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            )
            # Presigned URLs carry their own credentials: never send them the bearer token.
            found = _CLIENTS[key] = (client, httpx.Client(timeout=timeout))
            if len(_CLIENTS) == 1:
                atexit.register(_close_clients)
        return found


def _close_clients() -> None:
    with _clients_lock:
        pools = [c for pair in _CLIENTS.values() for c in pair]
        _CLIENTS.clear()
    for client in pools:
        client.close()


def _file_slice(path: Path, offset: int, size: int) -> Iterator[bytes]:
    """The bytes of ``path`` from ``offset`` to ``size``, 1 MiB at a time."""
    with open(path, "rb") as f:
        f.seek(offset)
        left = size - offset
        while left > 0:
            data = f.read(min(CHUNK_SIZE, left))
            if not data:
                raise MloopError(f"'{path}' shrank while it was being uploaded.")
            left -= len(data)
            yield data


class _Dropped(Exception):
    """A transfer the server broke off (a 5xx mid-way): resumed like a dropped connection."""


class _Reader(io.RawIOBase):
    """A read-only binary stream over downloaded chunks; with ``expected``, the read that reaches
    the end checks the digest of everything read (with the algorithm ``expected`` names) and
    raises :class:`IntegrityError` on a mismatch."""

    def __init__(self, chunks: Iterator[bytes], *, expected: str | None, what: str = "") -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = bytearray()
        self._expected = expected
        self._hash = hasher(expected)
        self._eof = False
        self._what = what or f"blob {expected}"

    def _next(self) -> bool:
        """Append the next chunk to the buffer; False at the end (checked there)."""
        if self._eof:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
            if self._expected is not None and self._hash.result() != self._expected:
                actual = self._hash.result()
                raise IntegrityError(
                    f"{self._what} read from the server is corrupted: expected digest "
                    f"{self._expected}, got {actual}.",
                    details={"sha256": self._expected, "actual_sha256": actual},
                )
            return False
        if self._expected is not None:
            self._hash.update(chunk)
        self._buf += chunk
        return True

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while not self._buf and self._next():
            pass
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        del self._buf[:n]
        return n

    def readall(self) -> bytes:
        while self._next():
            pass
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()
