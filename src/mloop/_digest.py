"""Content digests: how mloop names a blob (and a model package's files) by its bytes.

A digest's spelling says its algorithm, so a store can hold both and check each against its own::

    blake3-<64 hex>   BLAKE3, 256 bits: what every new blob is named by
    <64 hex>          SHA-256: what blobs written by mloop 0.1 are named by; still read and verified

BLAKE3 is a cryptographic hash like SHA-256 (no known way to make two contents with one digest), at
3-4x its speed on one core here (AVX-512: ~7 GB/s against ~2 GB/s with SHA-NI), so the hash fits
under the copy that storing a file needs anyway. Nothing is ever renamed:
an old blob keeps its SHA-256 name, and content stored again gets a BLAKE3 name beside it.

Bottom layer: the store's validators and the artifact, registry and inference code all hash and check
through here, so there is one spelling and one choice of algorithm.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "BLAKE3_PREFIX",
    "Hasher",
    "algorithm",
    "digest_bytes",
    "digest_file",
    "fanout",
    "hasher",
    "is_digest",
    "short",
]

BLAKE3_PREFIX = "blake3-"
_DIGEST_RE = re.compile("(?:blake3-)?[0-9a-f]{64}")
# Files are read in 1 MiB chunks, so memory stays flat.
_FILE_CHUNK = 1 << 20


def is_digest(value: object) -> bool:
    """Whether ``value`` is a digest in mloop's spelling: ``blake3-`` and 64 lowercase hex
    characters, or 64 lowercase hex characters (SHA-256)."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def algorithm(digest: str) -> str:
    """``"blake3"`` or ``"sha256"``: the algorithm a digest's spelling names (not validated)."""
    return "blake3" if digest.startswith(BLAKE3_PREFIX) else "sha256"


def short(digest: str, n: int = 12) -> str:
    """The first ``n`` hex characters of the hash itself (for names and display)."""
    return digest[-64:][:n]


def fanout(digest: str) -> str:
    """Two hex characters of the hash itself, to spread blobs over 256 folders whatever the
    algorithm."""
    return digest[-64:-62]


def _blake3() -> Any:
    """A BLAKE3 hasher on the calling thread only.

    Never ``max_threads``: BLAKE3's threads are a process-wide Rayon pool, and a process forked
    after it started (multiprocessing's default on Linux, pre-forking servers) hangs for ever in
    its first threaded hash, as the pool's threads do not exist in the child. One core is fast
    enough: 14 ms per 100 MB here, which the copy beside it takes longer than.
    """
    from blake3 import blake3  # ~1 ms; only paths that hash pay it

    return blake3()


class Hasher:
    """An incremental hash that answers with a spelled digest (``update`` then ``result``)."""

    __slots__ = ("_h", "_prefix", "update")

    def __init__(self, h: Any, prefix: str) -> None:
        self._h = h
        self._prefix = prefix
        self.update: Callable[[Any], object] = h.update

    def result(self) -> str:
        return self._prefix + self._h.hexdigest()


def hasher(like: str | None = None) -> Hasher:
    """A new hasher: BLAKE3 (what new blobs are named by), or the algorithm of the digest ``like``
    (to check content against it)."""
    if like is not None and not like.startswith(BLAKE3_PREFIX):
        return Hasher(hashlib.sha256(), "")
    return Hasher(_blake3(), BLAKE3_PREFIX)


def digest_bytes(data: bytes | bytearray | memoryview, like: str | None = None) -> str:
    """The digest of ``data`` (BLAKE3, or ``like``'s algorithm)."""
    h = hasher(like)
    h.update(data)
    return h.result()


def digest_file(path: str | Path, like: str | None = None) -> tuple[str, int]:
    """``(digest, size)`` of a file, read in 1 MiB chunks.

    Read, not memory-mapped: a mapped file that someone truncates meanwhile kills the process."""
    h = hasher(like)
    size = 0
    # Unbuffered and sized to the file only to spare a copy and memory: the same bytes either way.
    with open(path, "rb", buffering=0) as f:  # pragma: no mutate - see above
        room = os.fstat(f.fileno()).st_size + 1  # pragma: no mutate - see above
        view = memoryview(bytearray(min(_FILE_CHUNK, room)))
        while n := f.readinto(view):
            h.update(view[:n])
            size += n
    return h.result(), size
