"""Verification stamps of a local folder's large blobs, so a download need not hash them again.

A blob whose bytes were hashed when they were written (``put_file``, ``put_stream``) or read back
(``get_to_path``) gets a stamp beside the store's blobs::

    verified/<fan-out>/<digest>    "<digest> <inode> <size> <mtime ns> <ctime ns>"

A later local download copies the blob without hashing it while the blob's ``stat`` still shows the
stamp's inode, size, modification time and change time. Any write to the blob, a ``touch``, a
restored modification time (``os.utime``) or a replaced file changes its change time, which no user
can set back, so such a blob is hashed again in full before it is handed out. Stamps are only a
shortcut for reads of a local folder: a remote store, and a team server's client, hash every byte
they receive. A stamp that is missing, unreadable or stale only costs a full hash.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from mloop._digest import fanout
from mloop.artifacts._hashing import _copy_and_hash, _hash_file, _kernel_copy

__all__ = [
    "STAMP_MIN_SIZE",
    "copy_verified",
    "drop_stamp",
    "stamp_matches",
    "unchanged",
    "write_stamp",
]

# Below this, hashing costs less than reading a stamp is worth (a few ms at ~2 GB/s).
STAMP_MIN_SIZE = 8 << 20


def _stamp_path(root: str, sha: str) -> str:
    return os.path.join(root, "verified", fanout(sha), sha)


def _fingerprint(sha: str, st: os.stat_result) -> str:
    return f"{sha} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}\n"


def unchanged(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two ``stat`` results of one path show the same, unwritten file."""
    return _fingerprint("", a) == _fingerprint("", b)


def write_stamp(root: str, sha: str, st: os.stat_result) -> None:
    """Record that the blob ``sha`` with the status ``st`` (taken before it was hashed, or once
    the verified file was in place) holds the bytes its name says."""
    if st.st_size < STAMP_MIN_SIZE:
        return
    path = _stamp_path(root, sha)
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "x") as f:
            f.write(_fingerprint(sha, st))
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk: the blob is verified next time instead
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def stamp_matches(root: str, sha: str, st: os.stat_result) -> bool:
    """Whether the blob ``sha``, now with the status ``st``, is unchanged since it was verified."""
    if st.st_size < STAMP_MIN_SIZE:
        return False
    try:
        with open(_stamp_path(root, sha)) as f:
            return f.read(256) == _fingerprint(sha, st)
    except OSError:
        return False


def drop_stamp(root: str, sha: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(_stamp_path(root, sha))


def copy_verified(root: str, sha: str, blob: Path, tmp: Path) -> str:
    """Copy the local blob ``sha`` to ``tmp``; the digest of what ``tmp`` holds (with ``sha``'s
    algorithm). A blob unchanged since it was last hashed is copied without hashing it again."""
    before = os.stat(blob)
    if stamp_matches(root, sha, before):
        _kernel_copy(blob, tmp, before.st_size)
        if stamp_matches(root, sha, os.stat(blob)):
            return sha
        return _hash_file(tmp, sha)[0]  # the blob changed during the copy: check the copy
    actual = _copy_and_hash(blob, tmp, sha)[0]
    if actual == sha and unchanged(before, os.stat(blob)):
        write_stamp(root, sha, before)
    return actual
