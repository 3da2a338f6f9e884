"""Hashing while copying or reading: one reused 1 MiB buffer, so memory stays flat whatever the size.

A blob's name is its digest (:mod:`mloop._digest`): new content is hashed with BLAKE3, and content
checked against a name is hashed with that name's algorithm (``like``), so SHA-256 names from
mloop 0.1 are still verified byte for byte.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import IO

from mloop._digest import digest_bytes, digest_file, hasher

__all__ = ["CHUNK_SIZE"]

CHUNK_SIZE = 1 << 20


def _chunks(f: IO[bytes], buf: bytearray) -> Iterator[memoryview]:
    """Yield views of ``buf`` filled from ``f``; one buffer is reused, so memory stays flat."""
    view = memoryview(buf)
    # Without readinto the read() branch yields the same bytes (one more copy each).
    readinto = getattr(f, "readinto", None)  # pragma: no mutate - see above
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


def _hash_file(path: Path, like: str | None = None) -> tuple[str, int]:
    """``(digest, size)`` of a file: BLAKE3 on every core, or the algorithm of the digest ``like``."""
    return digest_file(path, like)


def _hash_beside_copy(path: Path, like: str | None) -> tuple[str, int]:
    """``(digest, size)`` of a file on one core, in 1 MiB reads: the other core is copying it."""
    h = hasher(like)
    size = 0
    buf = bytearray(CHUNK_SIZE)
    with open(path, "rb") as f:
        for chunk in _chunks(f, buf):
            h.update(chunk)
            size += len(chunk)
    return h.result(), size


_PARALLEL_MIN = 8 << 20
# Up to this size a copy is one read into memory, hashed, and one write: two opens instead of four,
# and no 1 MiB buffer (a model package's small files: a cold model load copies several).
_SMALL_COPY = 1 << 20


# Up to this size a private cache may hard-link a local blob instead of copying it (bigger blobs
# keep their verification stamps, which a new link would invalidate: see ``_verified.py``).
_LINK_MAX = 8 << 20


@cache
def _fallocate() -> Callable[[int, int], object] | None:
    """Linux's fallocate(2) (not glibc's posix_fallocate, which writes zeros where the file system
    cannot reserve space), or None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fn = libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return lambda fd, size: fn(fd, 0, 0, size)  # a failure (no support) only loses the speed-up


# Explicit offsets, so that no step depends on where a file's own position is. (Offsets of None,
# the files' positions, would copy the same here: both start at 0 and advance together.)
def _by_copy_file_range(fi: int, fo: int, at: int, count: int) -> int:
    return os.copy_file_range(fi, fo, count, at, at)  # pragma: no mutate - see above


def _by_sendfile(fi: int, fo: int, at: int, count: int) -> int:
    return os.sendfile(fo, fi, at, count)  # pragma: no mutate - see above (fo writes at at)


def _by_read_write(fi: int, fo: int, at: int, count: int) -> int:
    data = os.pread(fi, min(count, CHUNK_SIZE), at)
    return os.pwrite(fo, data, at) if data else 0  # pragma: no mutate - pwrite of b"" is 0


# In order of preference; the next is tried only when one refuses before copying a byte (another
# file system: EXDEV; no support: ENOSYS, EINVAL...). Every step copies at explicit offsets up to
# the size asked for, never "until the end": a file still being appended to is not chased.
_COPY_STEPS = [
    *([_by_copy_file_range] if hasattr(os, "copy_file_range") else []),
    *([_by_sendfile] if sys.platform.startswith("linux") else []),
    _by_read_write,
]


def _copy_with(
    step: Callable[[int, int, int, int], int], fi: int, fo: int, size: int, *, last: bool
) -> int | None:
    """The bytes ``step`` copied, or None if it refused before copying any (unless ``last``)."""
    copied = 0
    try:
        # At copied == size a step asked for 0 bytes copies 0; asking for more than the rest only
        # shows on a second call (past 2 GiB) of a source that grew meanwhile.
        while copied < size and (n := step(fi, fo, copied, size - copied)):  # pragma: no mutate
            copied += n
    except OSError:
        if copied or last:
            raise
        return None
    return copied


def _kernel_copy(src: Path, dst: Path, size: int) -> None:
    """Copy the first ``size`` bytes of ``src`` into the new file ``dst``, in the kernel.

    ``dst``'s blocks are reserved in one go first: on ext4 that makes the copy of a 100 MB file
    ~25% faster than letting each written page allocate its own (19 against 26 ms here). A
    ``src`` that is shorter by now is copied whole, and the reserved tail dropped.
    """
    with open(src, "rb") as fin, open(dst, "xb") as fout:  # pragma: no mutate - fds only
        fi, fo = fin.fileno(), fout.fileno()
        # Reserving is a speed-up only: with it, without it or for an empty file, the same bytes.
        reserve = _fallocate()  # pragma: no mutate - see above
        if reserve is not None and size > 0:  # pragma: no mutate - see above
            reserve(fo, size)
        for step in _COPY_STEPS:
            copied = _copy_with(step, fi, fo, size, last=step is _COPY_STEPS[-1])
            if copied is not None:
                if copied != size:  # ``src`` shrank meanwhile: drop the reserved tail
                    os.ftruncate(fo, copied)
                return


def _link_and_hash(src: Path, dst: Path, like: str) -> str | None:
    """Make ``dst`` a new hard link to the blob ``src`` and return the digest of its bytes (with
    the algorithm of ``like``, the blob's name).

    None when ``src`` is too large to link or the file system refuses (another device, no hard
    links): the caller copies instead. The blob is made read-only first, so that a write through
    the link fails instead of changing a content-addressed blob.
    """
    st = os.stat(src)
    # A blob of exactly _LINK_MAX bytes is as right linked as copied; chmod of a read-only blob
    # to its own mode changes nothing.
    if st.st_size > _LINK_MAX:  # pragma: no mutate - see above
        return None
    try:
        if st.st_mode & 0o222:  # pragma: no mutate - see above
            os.chmod(src, st.st_mode & ~0o222)
        os.link(src, dst)
    except OSError:
        return None
    with open(dst, "rb") as f:
        return digest_bytes(f.read(), like)  # the bytes now behind ``dst``


def _copy_and_hash(src: Path, dst: Path, like: str | None = None) -> tuple[str, int]:
    """Copy ``src`` to a new file ``dst`` and return ``src``'s ``(digest, size)`` (BLAKE3, or the
    algorithm of the digest ``like``).

    A small file (up to ``_SMALL_COPY``) is read once, and the bytes read are hashed and written.
    A larger one is copied in the kernel (:func:`_kernel_copy`) while this thread hashes ``src``
    from the page cache (BLAKE3 on one core keeps up with the copy), so it costs max(copy, hash),
    not their sum.
    If ``src`` changed meanwhile (size or mtime), the copy itself is hashed: the hash returned is
    always that of the bytes now in ``dst``.
    """
    before = os.stat(src)
    # At each size boundary either way is right (they differ in speed only).
    if before.st_size <= _SMALL_COPY:  # pragma: no mutate - see above
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "xb") as out:
            out.write(data)
        return digest_bytes(data, like), len(data)  # the bytes written are those hashed
    if before.st_size < _PARALLEL_MIN:  # pragma: no mutate - see above
        _kernel_copy(src, dst, before.st_size)
        return _hash_file(dst, like)
    box: list[BaseException] = []

    def copy() -> None:
        try:
            _kernel_copy(src, dst, before.st_size)
        except BaseException as exc:
            box.append(exc)

    # Its name is for debuggers; it is always joined, so daemon or not changes nothing.
    t = threading.Thread(target=copy, name="mloop-artifact-copy", daemon=True)  # pragma: no mutate
    t.start()
    try:
        sha, size = _hash_beside_copy(src, like)
    finally:
        t.join()
    if box:
        raise box[0]
    after = os.stat(src)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or size != (
        os.stat(dst).st_size
    ):
        return _hash_file(dst, like)
    return sha, size
