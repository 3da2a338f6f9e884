"""Large-object transfers with S3 (s3fs's client, on its event loop): parallel ranged downloads
hashed in order, and multipart uploads with a sliding window of parts in flight.

Download: a few large byte ranges fetched at once, each streamed in 1 MiB chunks and written at
its offset in the destination file, so memory stays at a few chunks whatever the part size. The
calling thread hashes the file's contiguous written prefix as it grows, in order, reading back
what was written: every byte that will be renamed into place is the byte that was hashed. S3
charges little per request but limits each connection's throughput, so several long ranges are
faster than one stream or many short ranges; a test server that copies the whole object for every
request (moto) pays per request, so few ranges suit it too.

Upload: the object is a multipart upload whose parts are read from the file and sent with at most
``UPLOAD_PARALLEL`` in flight (a window, not waves: a slow part does not stall the others), each
carrying a CRC32 that S3 checks. The upload is completed only if the file is unchanged since it
was hashed; on any failure it is aborted, so the object appears whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from mloop._digest import digest_bytes, hasher
from mloop.errors import InvalidInputError, MloopError, StoreUnavailableError

__all__ = ["download", "download_part_size", "upload", "upload_part_size"]

# Ranges in flight per download and their size bounds: a 1 GB object is 4 ranges of 250 MB, a
# 10 GB one 40 of 256 MiB, 4 at a time (so hashing keeps up, and a retry repeats little).
DOWNLOAD_PARALLEL = 4
DOWNLOAD_PART_MIN = 64 << 20
DOWNLOAD_PART_MAX = 256 << 20
# Parts in flight per upload and their size; each is held in memory while it is sent.
UPLOAD_PARALLEL = 4
UPLOAD_PART_MIN = 8 << 20  # S3's minimum is 5 MiB (except for the last part)
_MAX_PARTS = 10_000  # S3's limit per multipart upload
_CHUNK = 1 << 20  # streamed reads and the hasher's read-back
_READ_RETRIES = 3  # a range whose body breaks off is asked for again from where it stopped

_log = logging.getLogger(__name__)


def download_part_size(size: int, parallel: int) -> int:
    """Bytes per range: the object split across ``parallel`` ranges, within
    ``[DOWNLOAD_PART_MIN, DOWNLOAD_PART_MAX]``."""
    return min(DOWNLOAD_PART_MAX, max(DOWNLOAD_PART_MIN, -(-size // max(1, parallel))))


def upload_part_size(size: int) -> int:
    """Bytes per part: ``UPLOAD_PART_MIN``, or more for a file that would need more than S3's
    10,000 parts."""
    return max(UPLOAD_PART_MIN, -(-size // _MAX_PARTS))


def _retryable() -> tuple[type[BaseException], ...]:
    from s3fs.core import S3_RETRYABLE_ERRORS

    return tuple(S3_RETRYABLE_ERRORS)


# ============================================================================================ download
class _Progress:
    """How many bytes of each range are on disk (written by the event loop, read by the hasher,
    which waits on ``changed``), and whether the caller gave up (``stop``)."""

    def __init__(self, plan: list[tuple[int, int]]) -> None:
        self.plan = plan
        self.written = [0] * len(plan)
        self.changed = threading.Event()
        self.stop = False

    def frontier(self) -> int:
        """End of the contiguous prefix of the file that is written."""
        for (start, end), done in zip(self.plan, self.written, strict=True):
            if start + done < end:
                return start + done
        return self.plan[-1][1]


async def _fetch_range(
    fs: Any, bucket: str, key: str, fd: int, index: int, progress: _Progress
) -> None:
    """Stream one range into ``fd`` at its offsets, asking again from where a broken body
    stopped (up to ``_READ_RETRIES`` times)."""
    start, end = progress.plan[index]
    retryable = _retryable()
    pos, failures = start, 0
    while pos < end:
        resp = await fs._call_s3(
            "get_object", Bucket=bucket, Key=key, Range=f"bytes={pos}-{end - 1}"
        )
        body = resp["Body"]
        try:
            while pos < end:
                chunk = await body.read(min(_CHUNK, end - pos))
                if not chunk:
                    raise MloopError(
                        f"s3://{bucket}/{key} ended at byte {pos:,} of {end:,}: the object is "
                        "shorter than expected (it was replaced during the download)."
                    )
                if progress.stop:
                    raise asyncio.CancelledError
                os.pwrite(fd, chunk, pos)
                pos += len(chunk)
                progress.written[index] = pos - start
                progress.changed.set()
        except retryable as exc:
            failures += 1
            if failures > _READ_RETRIES:
                raise StoreUnavailableError(
                    f"reading s3://{bucket}/{key} broke off {failures} times (last at byte "
                    f"{pos:,}: {exc!r}); nothing was written. Check the connection to the "
                    "artifact store and try again."
                ) from exc
        finally:
            body.close()


async def _fetch_all(
    fs: Any, bucket: str, key: str, fd: int, parallel: int, progress: _Progress
) -> None:
    limit = asyncio.Semaphore(max(1, parallel))

    async def one(index: int) -> None:
        async with limit:
            await _fetch_range(fs, bucket, key, fd, index, progress)

    tasks = [asyncio.ensure_future(one(i)) for i in range(len(progress.plan))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # no write after this returns
        raise
    finally:
        progress.changed.set()


def download(
    fs: Any,
    path: str,
    fd: int,
    size: int,
    *,
    verify: bool,
    like: str,
    part: int | None = None,
    parallel: int | None = None,
) -> str:
    """Write the ``size``-byte object at ``path`` into the open file ``fd`` (from offset 0), in
    ranges of ``part`` bytes (default: see ``download_part_size``) with ``parallel`` at once;
    returns the digest of what ``fd`` holds (with the algorithm of ``like``, the blob's name) when
    ``verify``, else ``""``."""
    parallel = DOWNLOAD_PARALLEL if parallel is None else parallel
    part = download_part_size(size, parallel) if part is None else part
    if size == 0:
        return digest_bytes(b"", like) if verify else ""
    bucket, key, _ = fs.split_path(path)
    progress = _Progress([(s, min(s + part, size)) for s in range(0, size, part)])
    future = asyncio.run_coroutine_threadsafe(
        _fetch_all(fs, bucket, key, fd, parallel, progress), fs.loop
    )
    try:
        digest = _hash_as_written(fd, future, progress, like) if verify else ""
        future.result()
    except BaseException:
        progress.stop = True  # the ranges stop at their next chunk; wait for that
        with contextlib.suppress(BaseException):
            future.result()
        raise
    return digest


def _hash_as_written(fd: int, future: Any, progress: _Progress, like: str) -> str:
    """Hash ``fd`` in order as its contiguous written prefix grows; returns the digest, or
    raises the download's error."""
    h = hasher(like)
    view = memoryview(bytearray(_CHUNK))
    hashed, total = 0, progress.plan[-1][1]
    while hashed < total:
        progress.changed.clear()
        finished = future.done()  # before the frontier: if finished, the frontier is final
        frontier = progress.frontier()
        while hashed < frontier:
            n = os.preadv(fd, [view[: min(_CHUNK, frontier - hashed)]], hashed)
            if n <= 0:
                raise MloopError(f"could not read back byte {hashed:,} of a download")
            h.update(view[:n])
            hashed += n
        if hashed < total:
            if finished:
                future.result()  # the download's error
                raise MloopError(f"a download ended at byte {hashed:,} of {total:,}")
            progress.changed.wait(0.1)
    return h.result()


# ============================================================================================ upload
def upload(
    fs: Any,
    local: str | os.PathLike[str],
    path: str,
    size: int,
    *,
    still_same: Callable[[], bool],
    part: int | None = None,
    parallel: int | None = None,
) -> None:
    """Upload the ``size``-byte local file as the object ``path``, in parts of ``part`` bytes
    (default: see ``upload_part_size``) with ``parallel`` in flight; complete the upload only if
    ``still_same()`` (the file did not change since it was hashed), else abort it and raise.
    Any failure aborts the upload: the object appears whole or not at all."""
    from fsspec.asyn import sync

    if size < 1:
        raise InvalidInputError(
            f"`size` must be at least 1 byte for a multipart upload; got {size}."
        )
    parallel = UPLOAD_PARALLEL if parallel is None else parallel
    part = upload_part_size(size) if part is None else part
    bucket, key, _ = fs.split_path(path)
    with open(local, "rb") as f:
        sync(
            fs.loop,
            _upload,
            fs,
            f.fileno(),
            os.fspath(local),
            bucket,
            key,
            size,
            part,
            parallel,
            still_same,
        )


async def _upload(
    fs: Any,
    fd: int,
    local: str,
    bucket: str,
    key: str,
    size: int,
    part: int,
    parallel: int,
    still_same: Callable[[], bool],
) -> None:
    mpu = await fs._call_s3(
        "create_multipart_upload", Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32"
    )
    upload_id = mpu["UploadId"]
    limit = asyncio.Semaphore(max(1, parallel))

    async def one(number: int, offset: int) -> dict[str, Any]:
        async with limit:
            n = min(part, size - offset)
            data = os.pread(fd, n, offset)
            if len(data) != n:
                raise MloopError(
                    f"'{local}' changed while it was being uploaded (it is shorter than "
                    f"{size:,} bytes now); nothing was stored."
                )
            out = await fs._call_s3(
                "upload_part",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            done = {"PartNumber": number, "ETag": out["ETag"]}
            if out.get("ChecksumCRC32"):
                done["ChecksumCRC32"] = out["ChecksumCRC32"]
            return done

    tasks = [asyncio.ensure_future(one(n, o)) for n, o in enumerate(range(0, size, part), 1)]
    try:
        parts = await asyncio.gather(*tasks)
        if not still_same():
            raise MloopError(
                f"'{local}' changed while it was being uploaded; nothing was stored. Upload it "
                "again once it is no longer being written."
            )
        await fs._call_s3(
            "complete_multipart_upload",
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # boundary: the upload's own error is the one to raise
            _log.warning("could not abort upload %s of s3://%s/%s: %r", upload_id, bucket, key, exc)
        raise
