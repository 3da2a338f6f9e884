"""Verification stamps: a local folder's large blob that was hashed once is copied out without
hashing it again, yet a blob changed on disk after it was verified is still refused, locally and
when a team server over that folder serves it (its client hashes every byte it receives)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _artifact_keys import overwrite_key
from _blake3 import b3, blob_key, stamp_key
from _live_server import LiveServer
from _s3 import BUCKET
from mloop.artifacts import BlobStore, IntegrityError
from mloop.errors import InvalidInputError
from mloop.server import create_app
from mloop.store import create_store

SIZE = 9 << 20  # above the size from which blobs are stamped


def _big_file(path: Path, seed: int) -> Path:
    path.write_bytes(hashlib.sha256(str(seed).encode()).digest() * (SIZE // 32))
    return path


def _tamper_keeping_size_and_mtime(blob: Path) -> None:
    """Flip one byte in place, then set the modification time back, as a careful attacker would."""
    st = blob.stat()
    with open(blob, "r+b") as f:
        f.seek(SIZE // 2)
        byte = f.read(1)
        f.seek(SIZE // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = blob.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _blob_path(root: Path, sha: str) -> Path:
    return root / blob_key(sha)


def test_a_stored_blob_is_stamped_and_downloads_whole(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    src = _big_file(tmp_path / "a.bin", 1)
    sha, size = store.put_file(src)
    assert (tmp_path / "store" / stamp_key(sha)).is_file()
    out = store.get_to_path(sha, tmp_path / "out.bin")
    assert out.read_bytes() == src.read_bytes() and size == SIZE
    assert [s for s, _, _ in store.iter_blob_infos()] == [sha]  # stamps are not blobs
    assert store.delete(sha)
    assert not (tmp_path / "store" / stamp_key(sha)).exists()


def test_a_blob_changed_after_it_was_verified_is_refused_locally(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    sha, _ = store.put_file(_big_file(tmp_path / "a.bin", 2))
    store.get_to_path(sha, tmp_path / "first.bin")  # verified (and stamped) once more
    _tamper_keeping_size_and_mtime(_blob_path(tmp_path / "store", sha))
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, dest)
    assert dest.read_bytes() == b"previous"


def test_a_restamped_blob_is_refused_again_after_a_later_change(tmp_path: Path) -> None:
    """A blob without a valid stamp is hashed, stamped if whole, and still checked afterwards."""
    store = BlobStore(tmp_path / "store")
    sha, _ = store.put_file(_big_file(tmp_path / "a.bin", 3))
    stamp = tmp_path / "store" / stamp_key(sha)
    stamp.unlink()
    store.get_to_path(sha, tmp_path / "first.bin")
    assert stamp.is_file()
    _tamper_keeping_size_and_mtime(_blob_path(tmp_path / "store", sha))
    with pytest.raises(IntegrityError):
        store.get_to_path(sha, tmp_path / "second.bin")
    assert not (tmp_path / "second.bin").exists()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[BlobStore, BlobStore]]:
    """(the server's local folder, a client of ``mloop server``'s routes over it)."""
    backing = BlobStore(tmp_path / "server-artifacts")
    app = create_app(create_store("sqlite://"), artifacts=backing, staging_dir=tmp_path / "stage")
    with LiveServer(app) as server:
        yield backing, BlobStore(server.url)


def test_a_blob_changed_after_it_was_verified_is_refused_from_a_server(
    served: tuple[BlobStore, BlobStore], tmp_path: Path
) -> None:
    backing, client = served
    src = _big_file(tmp_path / "a.bin", 4)
    sha, _ = client.put_file(src)  # stored by the server, which stamps it
    assert (Path(backing._root) / stamp_key(sha)).is_file()
    assert client.get_to_path(sha, tmp_path / "first.bin").read_bytes() == src.read_bytes()
    _tamper_keeping_size_and_mtime(_blob_path(Path(backing._root), sha))
    dest = tmp_path / "dest.bin"
    with pytest.raises(IntegrityError, match=sha):
        client.get_to_path(sha, dest)
    assert not dest.exists()
    with client.open(sha) as f, pytest.raises(IntegrityError):
        f.read()


def test_put_file_refuses_content_that_is_not_the_expected_blob(
    served: tuple[BlobStore, BlobStore], tmp_path: Path
) -> None:
    backing, client = served
    src = _big_file(tmp_path / "a.bin", 5)
    wrong = hashlib.sha256(b"something else").hexdigest()
    for store in (backing, client):
        with pytest.raises(InvalidInputError, match="hashes to"):
            store.put_file(src, expected_sha256=wrong)
        assert list(store.iter_blobs()) == []
    with pytest.raises(InvalidInputError, match="sha256"):
        backing.put_file(src, expected_sha256="not-a-digest")


@pytest.mark.s3
def test_s3_parallel_parts_round_trip_and_a_changed_object_is_refused(
    s3_server: dict[str, Any], tmp_path: Path
) -> None:
    """A file past the parallel-upload size goes up in parts sent at once and comes back whole,
    every byte hashed; an object replaced behind the store's back is refused."""
    store = BlobStore(
        f"s3://{BUCKET}/{uuid.uuid4().hex}", storage_options=s3_server["storage_options"]
    )
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1 << 20) * 40 + b"tail")  # 40 MiB and 4 bytes: a short last part
    sha, size = store.put_file(src)
    assert (sha, size) == (b3(src.read_bytes()), src.stat().st_size)
    assert store.get_to_path(sha, tmp_path / "out.bin").read_bytes() == src.read_bytes()
    damaged = bytearray(src.read_bytes())
    damaged[-5] ^= 0xFF
    overwrite_key(store, blob_key(sha), bytes(damaged))
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, tmp_path / "again.bin")
    assert not (tmp_path / "again.bin").exists()
