"""Hashing while copying or reading: one reused 1 MiB buffer, so memory stays flat whatever the size."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["CHUNK_SIZE"]

CHUNK_SIZE = 1 << 20


def _chunks(f: IO[bytes], buf: bytearray) -> Iterator[memoryview]:
    """Yield views of ``buf`` filled from ``f``; one buffer is reused, so memory stays flat."""
    view = memoryview(buf)
    readinto = getattr(f, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                return
            yield view[:n]
        else:
            data = f.read(len(buf))
            if not data:
                return
            yield memoryview(data)


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK_SIZE)
    with open(path, "rb") as f:
        for chunk in _chunks(f, buf):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


_PARALLEL_MIN = 8 << 20
# Up to this size a copy is one read into memory, hashed, and one write: two opens instead of four,
# and no 1 MiB buffer (a model package's small files: a cold model load copies several).
_SMALL_COPY = 1 << 20


# Up to this size a private cache may hard-link a local blob instead of copying it (bigger blobs
# keep their verification stamps, which a new link would invalidate: see ``_verified.py``).
_LINK_MAX = 8 << 20


def _link_and_hash(src: Path, dst: Path) -> str | None:
    """Make ``dst`` a new hard link to the blob ``src`` and return the sha256 of its bytes.

    None when ``src`` is too large to link or the file system refuses (another device, no hard
    links): the caller copies instead. The blob is made read-only first, so that a write through
    the link fails instead of changing a content-addressed blob.
    """
    st = os.stat(src)
    if st.st_size > _LINK_MAX:
        return None
    try:
        if st.st_mode & 0o222:
            os.chmod(src, st.st_mode & ~0o222)
        os.link(src, dst)
    except OSError:
        return None
    with open(dst, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()  # the bytes now behind ``dst``


def _copy_and_hash(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to a new file ``dst`` and return ``src``'s ``(sha256, size)``.

    A small file (up to ``_SMALL_COPY``) is read once, and the bytes read are hashed and written.
    A larger one is copied in the kernel (``shutil.copyfile``: sendfile / copy_file_range) while
    this thread hashes ``src`` from the page cache, so it costs max(copy, hash), not their sum.
    If ``src`` changed meanwhile (size or mtime), the copy itself is hashed: the hash returned is
    always that of the bytes now in ``dst``.
    """
    before = os.stat(src)
    if before.st_size <= _SMALL_COPY:
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "xb") as out:
            out.write(data)
        return hashlib.sha256(data).hexdigest(), len(data)  # the bytes written are those hashed
    if before.st_size < _PARALLEL_MIN:
        shutil.copyfile(src, dst)
        return _hash_file(dst)
    box: list[BaseException] = []

    def copy() -> None:
        try:
            shutil.copyfile(src, dst)
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=copy, name="mloop-artifact-copy", daemon=True)
    t.start()
    try:
        sha, size = _hash_file(src)
    finally:
        t.join()
    if box:
        raise box[0]
    after = os.stat(src)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or size != (
        os.stat(dst).st_size
    ):
        return _hash_file(dst)
    return sha, size
