"""The reference for blob digests in tests: the ``blake3`` package itself (not mloop's wrapper
around it), and where a blob lives under a store's root."""

from __future__ import annotations

import blake3


def b3(data: bytes) -> str:
    """The digest mloop names new content by: ``blake3-`` and BLAKE3's 64 hex characters."""
    return "blake3-" + blake3.blake3(data).hexdigest()


def blob_key(digest: str) -> str:
    """A blob's key under the store's root: ``blobs/<first 2 hex of the hash>/<digest>``."""
    return f"blobs/{digest[-64:][:2]}/{digest}"


def stamp_key(digest: str) -> str:
    """Where a local store keeps the verification stamp of a large blob."""
    return f"verified/{digest[-64:][:2]}/{digest}"
