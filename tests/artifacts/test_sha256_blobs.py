"""Blobs named by SHA-256 (every blob mloop 0.1 stored) stay readable and verified byte for byte
beside the BLAKE3 names new content gets: on a local folder, S3 and a team server over either."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from _artifact_keys import all_keys, backing, overwrite_key
from _blake3 import b3, blob_key
from mloop.artifacts import (
    BlobStore,
    IntegrityError,
    delete_blobs,
    download_tree,
    find_unreferenced,
    upload_tree,
)
from mloop.errors import InvalidInputError
from mloop.store import ArtifactEntry

DATA = b"weights written by mloop 0.1\n" * 1000


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plant_old_blob(store: BlobStore, data: bytes) -> str:
    """Store ``data`` the way mloop 0.1 did: named by its SHA-256, where 0.1 kept it."""
    sha = _sha256(data)
    assert blob_key(sha) == f"blobs/{sha[:2]}/{sha}"  # 0.1's layout, unchanged
    s = backing(store)
    if s.is_local:
        Path(s._full(blob_key(sha))).parent.mkdir(parents=True, exist_ok=True)
    overwrite_key(store, blob_key(sha), data)
    return sha


def test_an_old_blob_is_found_read_and_verified_with_sha256(
    blobstore: BlobStore, tmp_path: Path
) -> None:
    sha = _plant_old_blob(blobstore, DATA)
    assert blobstore.exists(sha) and blobstore.size(sha) == len(DATA)
    assert sha in set(blobstore.iter_blobs())
    with blobstore.open(sha) as f:
        assert f.read() == DATA
    out = blobstore.get_to_path(sha, tmp_path / "w.bin")
    assert out.read_bytes() == DATA
    got = download_tree(blobstore, [ArtifactEntry("model/w.bin", len(DATA), sha)], tmp_path / "t")
    assert [p.read_bytes() for p in got] == [DATA]


def test_a_damaged_old_blob_is_refused_and_nothing_is_written(
    blobstore: BlobStore, tmp_path: Path
) -> None:
    sha = _plant_old_blob(blobstore, DATA)
    damaged = bytearray(DATA)
    damaged[100] ^= 1
    overwrite_key(blobstore, blob_key(sha), bytes(damaged))
    with pytest.raises(IntegrityError, match=sha) as info:
        blobstore.get_to_path(sha, tmp_path / "w.bin")
    assert info.value.details["actual_sha256"] == _sha256(bytes(damaged))  # hashed with SHA-256
    assert not (tmp_path / "w.bin").exists()


def test_the_same_content_stored_again_gets_a_blake3_name_beside_the_old_one(
    blobstore: BlobStore,
) -> None:
    old = _plant_old_blob(blobstore, DATA)
    new, size = blobstore.put_stream(io.BytesIO(DATA))
    assert (new, size) == (b3(DATA), len(DATA)) and new != old
    assert {old, new} <= set(blobstore.iter_blobs())
    assert sorted(k for k in all_keys(blobstore) if k.startswith("blobs/")) == sorted(
        [blob_key(old), blob_key(new)]
    )


def test_content_announced_by_its_sha256_is_checked_and_stored_under_it(
    blobstore: BlobStore, tmp_path: Path
) -> None:
    """A client that names a blob by SHA-256 (copying from a 0.1 store) gets it checked with
    SHA-256 and stored under that name; a body that hashes otherwise is refused."""
    src = tmp_path / "w.bin"
    src.write_bytes(DATA)
    sha = _sha256(DATA)
    assert blobstore.put_file(src, expected_sha256=sha) == (sha, len(DATA))
    assert blobstore.put_stream(io.BytesIO(DATA), expected_sha256=sha) == (sha, len(DATA))
    assert blobstore.exists(sha) and not blobstore.exists(b3(DATA))
    other = _sha256(b"something else")
    with pytest.raises(InvalidInputError, match=other):
        blobstore.put_file(src, expected_sha256=other)
    assert not blobstore.exists(other)


def test_gc_keeps_a_referenced_old_blob_and_collects_an_unreferenced_one(
    blobstore: BlobStore,
) -> None:
    kept = _plant_old_blob(blobstore, DATA)
    dropped = _plant_old_blob(blobstore, b"an orphan from 0.1")
    new, _ = blobstore.put_bytes(b"a blob from now")
    found = {sha for sha, *_ in find_unreferenced(blobstore, referenced={kept, new}, min_age_s=0)}
    assert found == {dropped}
    assert delete_blobs(blobstore, sorted(found)) == [dropped]
    assert set(blobstore.iter_blobs()) == {kept, new}


def test_a_local_old_blob_changed_after_it_was_verified_is_still_caught(tmp_path: Path) -> None:
    """The verification stamp of a large blob (which lets a later download skip the hash) works
    for old names too, and any change to the blob afterwards sends it through SHA-256 again."""
    store = BlobStore(tmp_path / "store")
    data = os.urandom(9 << 20)  # above the stamp's minimum size
    sha = _plant_old_blob(store, data)
    assert store.get_to_path(sha, tmp_path / "a.bin").read_bytes() == data  # hashed, stamped
    assert (tmp_path / "store" / "verified" / sha[:2] / sha).is_file()
    assert store.get_to_path(sha, tmp_path / "b.bin").read_bytes() == data  # by the stamp
    with open(store.local_path(sha), "r+b") as f:  # type: ignore[arg-type]
        f.seek(5 << 20)
        f.write(b"\0")
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, tmp_path / "c.bin")
    assert not (tmp_path / "c.bin").exists()


def test_a_tree_of_old_and_new_blobs_downloads_together(
    blobstore: BlobStore, tmp_path: Path
) -> None:
    old = _plant_old_blob(blobstore, DATA)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "new.txt").write_bytes(b"logged today")
    entries = [ArtifactEntry("old.bin", len(DATA), old), *upload_tree(blobstore, tmp_path / "src")]
    assert entries[1].sha256 == b3(b"logged today")
    got = download_tree(blobstore, entries, tmp_path / "dst")
    assert {p.name: p.read_bytes() for p in got} == {"old.bin": DATA, "new.txt": b"logged today"}
