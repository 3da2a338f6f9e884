"""S3 transfers of large blobs (``mloop.artifacts._s3``) against moto's S3 server: downloads in
parallel ranges come back byte-exact and hashed in order, a damaged range is refused and leaves
nothing behind; uploads in parts appear whole or not at all. Part sizes are made small here so
that a few MiB make many parts."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from _artifact_keys import overwrite_key
from _blake3 import b3, blob_key
from _s3 import BUCKET
from mloop.artifacts import BlobStore, IntegrityError, _blobstore, _s3
from mloop.errors import InvalidInputError, MloopError

pytestmark = pytest.mark.s3

MiB = 1 << 20


@pytest.fixture
def store(s3_server: dict[str, Any]) -> BlobStore:
    return BlobStore(
        f"s3://{BUCKET}/{uuid.uuid4().hex}", storage_options=s3_server["storage_options"]
    )


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of at least 1 MiB, 3 at once, streamed in 64 KiB chunks; uploads in parts from
    12 MiB on, 5 MiB each (S3's smallest), 2 at once."""
    monkeypatch.setattr(_s3, "DOWNLOAD_PART_MIN", MiB)
    monkeypatch.setattr(_s3, "DOWNLOAD_PARALLEL", 3)
    monkeypatch.setattr(_s3, "_CHUNK", 64 << 10)
    monkeypatch.setattr(_s3, "UPLOAD_PART_MIN", 5 * MiB)
    monkeypatch.setattr(_s3, "UPLOAD_PARALLEL", 2)
    monkeypatch.setattr(_blobstore, "_PARALLEL_FROM", 12 * MiB)


def _data(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() + os.urandom(32)
    return (block * (size // len(block) + 1))[:size]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _pending_uploads(store: BlobStore) -> list[Any]:
    bucket = store._root.split("/", 1)[0]
    listing = store._fs.call_s3("list_multipart_uploads", Bucket=bucket)
    return [
        u for u in listing.get("Uploads", []) if u["Key"].startswith(store._root.split("/", 1)[1])
    ]


@pytest.mark.parametrize(
    ("size", "part", "parallel"),
    [
        (7 * MiB + 12_345, 1_000_003, 3),  # 8 ranges, the last a short one, 3 in flight
        (3 * MiB, MiB, 4),  # an exact multiple: 3 ranges, all in flight at once
        (5, MiB, 3),  # smaller than a range
    ],
)
def test_download_in_ranges_is_byte_exact_and_hashed(
    store: BlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    part: int,
    parallel: int,
) -> None:
    monkeypatch.setattr(_s3, "_CHUNK", 64 << 10)
    data = _data(size)
    sha, _ = store.put_bytes(data)
    out = tmp_path / "out.bin"
    with open(out, "x+b") as f:
        digest = _s3.download(
            store._fs,
            store._full(blob_key(sha)),
            f.fileno(),
            size,
            verify=True,
            like=sha,
            part=part,
            parallel=parallel,
        )
    assert digest == sha == b3(out.read_bytes())
    assert out.read_bytes() == data


def test_get_to_path_splits_a_large_blob_into_parallel_ranges(
    store: BlobStore, tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5 MiB + 1 byte blob is 3 ranges of 1,747,627 bytes (the last shorter), fetched at once."""
    data = _data(5 * MiB + 1, seed=1)
    sha, _ = store.put_bytes(data)
    ranges: list[str] = []
    real_call = store._fs._call_s3

    async def recording(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "get_object":
            ranges.append(kwargs["Range"])
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(store._fs, "_call_s3", recording)
    assert store.get_to_path(sha, tmp_path / "out.bin").read_bytes() == data
    assert sorted(ranges) == [
        "bytes=0-1747626",
        "bytes=1747627-3495253",
        "bytes=3495254-5242880",
    ]
    assert _leftovers(tmp_path) == ["out.bin"]


def test_a_damaged_range_is_refused_and_leaves_no_file(
    store: BlobStore, tmp_path: Path, small_parts: None
) -> None:
    """One byte changed in the third of four ranges, size unchanged: the download is refused, the
    destination keeps its old content and no temporary file stays behind."""
    data = _data(4 * MiB, seed=2)
    sha, _ = store.put_bytes(data)
    damaged = bytearray(data)
    damaged[2 * MiB + 77] ^= 0x01
    overwrite_key(store, blob_key(sha), bytes(damaged))
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, dest)
    assert dest.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == ["model.bin"]
    fresh = tmp_path / "fresh.bin"
    with pytest.raises(IntegrityError):
        store.get_to_path(sha, fresh)
    assert _leftovers(tmp_path) == ["model.bin"]


def test_a_blob_shorter_than_it_should_be_is_refused(
    store: BlobStore, tmp_path: Path, small_parts: None
) -> None:
    data = _data(3 * MiB, seed=3)
    sha, _ = store.put_bytes(data)
    overwrite_key(store, blob_key(sha), data[: -MiB // 2])
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, tmp_path / "out.bin")
    assert _leftovers(tmp_path) == []


def test_download_without_verify_skips_the_hash(store: BlobStore, tmp_path: Path) -> None:
    data = _data(2 * MiB + 3, seed=4)
    sha, _ = store.put_bytes(data)
    out = tmp_path / "out.bin"
    with open(out, "x+b") as f:
        digest = _s3.download(
            store._fs,
            store._full(blob_key(sha)),
            f.fileno(),
            len(data),
            verify=False,
            like=sha,
            part=MiB,
            parallel=2,
        )
    assert digest == "" and out.read_bytes() == data


def test_put_file_uploads_parts_and_round_trips(
    store: BlobStore, tmp_path: Path, small_parts: None
) -> None:
    """A 17 MiB + 5 byte file is 4 parts of 5 MiB (the last 2 MiB + 5), 2 in flight; the object
    is the file, and it downloads in ranges byte-exact."""
    src = tmp_path / "big.bin"
    src.write_bytes(_data(17 * MiB + 5, seed=5))
    sha, size = store.put_file(src)
    assert (sha, size) == (b3(src.read_bytes()), 17 * MiB + 5)
    info = store._fs.call_s3(
        "head_object", Bucket=BUCKET, Key=store._full(blob_key(sha)).split("/", 1)[1]
    )
    assert info["ETag"].endswith('-4"')  # a multipart upload of 4 parts
    assert store.get_to_path(sha, tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert store.put_file(src) == (sha, size)  # stored once: the second put finds it
    assert _pending_uploads(store) == []


def test_a_failed_part_aborts_the_upload(store: BlobStore, tmp_path: Path) -> None:
    """The file is shorter than announced, so its last part cannot be read: the upload is aborted,
    no object appears and no multipart upload is left open."""
    src = tmp_path / "short.bin"
    src.write_bytes(_data(11 * MiB, seed=6))
    path = store._full("blobs/00/short")
    with pytest.raises(MloopError, match="changed while it was being uploaded"):
        _s3.upload(
            store._fs, src, path, 12 * MiB, still_same=lambda: True, part=5 * MiB, parallel=2
        )
    assert not store._fs.exists(path)
    assert _pending_uploads(store) == []


def test_a_file_changed_during_the_upload_is_not_completed(
    store: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "changing.bin"
    src.write_bytes(_data(11 * MiB, seed=7))
    path = store._full("blobs/00/changing")
    with pytest.raises(MloopError, match="nothing was stored"):
        _s3.upload(store._fs, src, path, 11 * MiB, still_same=lambda: False, part=5 * MiB)
    assert not store._fs.exists(path)
    assert _pending_uploads(store) == []


def test_put_file_refuses_a_file_that_changes_while_it_uploads(
    store: BlobStore, tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is appended to after it was hashed (while its parts go up): nothing is stored."""
    src = tmp_path / "growing.bin"
    src.write_bytes(_data(13 * MiB, seed=8))
    real_call = store._fs._call_s3

    async def append_on_first_part(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] == 1:
            with open(src, "ab") as f:
                f.write(b"more")
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(store._fs, "_call_s3", append_on_first_part)
    with pytest.raises(MloopError, match="changed while it was being uploaded"):
        store.put_file(src)
    assert list(store.iter_blobs()) == []
    assert _pending_uploads(store) == []


def test_upload_refuses_an_empty_file(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "empty.bin"
    src.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="`size` must be at least 1 byte"):
        _s3.upload(store._fs, src, store._full("blobs/00/empty"), 0, still_same=lambda: True)


def test_part_sizes() -> None:
    assert _s3.download_part_size(1_000_000_000, 4) == 250_000_000
    assert _s3.download_part_size(10, 4) == _s3.DOWNLOAD_PART_MIN
    assert _s3.download_part_size(10 << 30, 4) == _s3.DOWNLOAD_PART_MAX
    assert _s3.upload_part_size(1_000_000_000) == _s3.UPLOAD_PART_MIN
    assert _s3.upload_part_size(200 << 30) == -(-(200 << 30) // 10_000)  # 10,000 parts at most


class _BreakingBody:
    """A response body whose connection drops after ``after`` bytes (as a real network can)."""

    def __init__(self, body: Any, after: int) -> None:
        self._body, self._left = body, after

    async def read(self, n: int) -> bytes:
        from aiohttp import ClientPayloadError

        if self._left <= 0:
            raise ClientPayloadError("Response payload is not completed")
        chunk: bytes = await self._body.read(min(n, self._left))
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._body.close()


def _break_bodies(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, *, after: int, times: int
) -> list[str]:
    """Make the first ``times`` responses of each range drop after ``after`` bytes; returns the
    ranges asked for, in order."""
    ranges: list[str] = []
    broken: dict[str, int] = {}
    real_call = store._fs._call_s3

    async def flaky(method: str, *args: Any, **kwargs: Any) -> Any:
        resp = await real_call(method, *args, **kwargs)
        if method == "get_object":
            ranges.append(kwargs["Range"])
            end = kwargs["Range"].rsplit("-", 1)[1]
            if broken.get(end, 0) < times:
                broken[end] = broken.get(end, 0) + 1
                resp["Body"] = _BreakingBody(resp["Body"], after)
        return resp

    monkeypatch.setattr(store._fs, "_call_s3", flaky)
    return ranges


def test_a_range_whose_connection_drops_resumes_where_it_stopped(
    store: BlobStore, tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data(3 * MiB, seed=9)
    sha, _ = store.put_bytes(data)
    ranges = _break_bodies(store, monkeypatch, after=300_000, times=2)
    assert store.get_to_path(sha, tmp_path / "out.bin").read_bytes() == data
    # Each of the 3 ranges of 1 MiB: asked for, dropped at +300,000 twice, asked for the rest.
    assert sorted(ranges) == sorted(
        f"bytes={s + k * 300_000}-{s + MiB - 1}" for s in (0, MiB, 2 * MiB) for k in range(3)
    )


def test_a_range_that_keeps_dropping_fails_cleanly(
    store: BlobStore, tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.errors import StoreUnavailableError

    data = _data(3 * MiB, seed=10)
    sha, _ = store.put_bytes(data)
    _break_bodies(store, monkeypatch, after=1000, times=_s3._READ_RETRIES + 1)
    with pytest.raises(StoreUnavailableError, match="broke off 4 times"):
        store.get_to_path(sha, tmp_path / "out.bin")
    assert _leftovers(tmp_path) == []


def test_a_blob_deleted_during_the_download_is_not_found(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.errors import NotFoundError

    sha, _ = store.put_bytes(_data(MiB, seed=11))
    real_call = store._fs._call_s3

    async def delete_first(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "get_object":
            await real_call("delete_object", Bucket=kwargs["Bucket"], Key=kwargs["Key"])
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(store._fs, "_call_s3", delete_first)
    with pytest.raises(NotFoundError, match=sha):
        store.get_to_path(sha, tmp_path / "out.bin")
    assert _leftovers(tmp_path) == []
