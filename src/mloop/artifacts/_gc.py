"""Garbage collection of blobs no run references (the engine behind ``mloop gc``).

The metadata store knows which blobs are referenced; this module only lists and deletes. A blob
written for a run whose index entry is not committed yet looks unreferenced, so callers should pass
a grace period (``min_age_s``): locally, storing an already-present blob refreshes its mtime.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Set

from mloop.artifacts._blobstore import BlobStore
from mloop.artifacts._integrity import check_sha
from mloop.errors import InvalidInputError

__all__ = ["delete_blobs", "find_unreferenced"]


def find_unreferenced(
    blobstore: BlobStore, referenced: Set[str], *, min_age_s: float = 0.0
) -> list[tuple[str, int]]:
    """List stored blobs that are not in ``referenced``.

    Parameters
    ----------
    blobstore : BlobStore
        The store to scan (one listing, no request per blob).
    referenced : set of str
        sha256 of every blob some artifact index entry points to.
    min_age_s : float, default 0.0
        Only report blobs last written at least this many seconds ago.

    Returns
    -------
    list of (str, int)
        ``(sha256, size)`` sorted by sha256.

    Examples
    --------
    >>> import tempfile
    >>> store = BlobStore(tempfile.mkdtemp())
    >>> keep, _ = store.put_bytes(b"keep")
    >>> drop, _ = store.put_bytes(b"drop")
    >>> find_unreferenced(store, {keep}) == [(drop, 4)]
    True
    """
    if not isinstance(min_age_s, (int, float)) or min_age_s < 0:
        raise InvalidInputError(f"`min_age_s` must be a number >= 0; got {min_age_s!r}.")
    cutoff = time.time() - min_age_s
    out = [
        (sha, size)
        for sha, size, mtime in blobstore._iter_blob_infos()
        if sha not in referenced and (min_age_s == 0 or mtime <= cutoff)
    ]
    out.sort()
    return out


def delete_blobs(blobstore: BlobStore, sha256s: Iterable[str]) -> list[str]:
    """Delete blobs; returns the sha256 of those that existed and were deleted.

    Parameters
    ----------
    blobstore : BlobStore
        The store.
    sha256s : iterable of str
        Typically the first items of :func:`find_unreferenced`'s result. All are validated
        before anything is deleted.

    Returns
    -------
    list of str
    """
    shas = [check_sha(s) for s in sha256s]
    return [s for s in shas if blobstore.delete(s)]
