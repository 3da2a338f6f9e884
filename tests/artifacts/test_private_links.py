"""A private cache may hard-link small local blobs; a user's download is always a copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mloop.artifacts import BlobStore, IntegrityError, _hashing, download_tree, upload_tree


def _stored(tmp_path: Path, data: bytes) -> tuple[BlobStore, str, Path]:
    store = BlobStore(str(tmp_path / "store"))
    sha, _ = store.put_bytes(data)
    blob = next((tmp_path / "store").rglob(sha))
    return store, sha, blob


def test_a_linked_blob_is_the_same_file_made_read_only(tmp_path: Path) -> None:
    store, sha, blob = _stored(tmp_path, b"weights" * 100)
    dest = store.get_to_path(sha, tmp_path / "cached", link=True)
    assert os.path.samefile(dest, blob)
    assert blob.stat().st_mode & 0o222 == 0
    assert dest.read_bytes() == b"weights" * 100
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_large_blobs_and_plain_downloads_are_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sha, blob = _stored(tmp_path, b"x" * 64)
    plain = store.get_to_path(sha, tmp_path / "plain")  # what a user edits: never the blob
    assert not os.path.samefile(plain, blob)
    monkeypatch.setattr(_hashing, "_LINK_MAX", 63)
    big = store.get_to_path(sha, tmp_path / "big", link=True)
    assert not os.path.samefile(big, blob)
    assert big.read_bytes() == b"x" * 64


def test_a_corrupted_blob_is_not_linked(tmp_path: Path) -> None:
    store, sha, blob = _stored(tmp_path, b"abc" * 50)
    blob.write_bytes(b"abd" * 50)
    with pytest.raises(IntegrityError, match=sha):
        store.get_to_path(sha, tmp_path / "cached", link=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no dest, no temp file
    assert blob.stat().st_nlink == 1


def test_download_tree_links_only_when_asked(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    store = BlobStore(str(tmp_path / "store"))
    entries = upload_tree(store, src, artifact_path="m")
    copied = download_tree(store, entries, tmp_path / "copy")
    linked = download_tree(store, entries, tmp_path / "link", link=True)
    blob = next((tmp_path / "store").rglob(entries[0].sha256))
    assert not os.path.samefile(copied[0], blob)
    assert os.path.samefile(linked[0], blob)
    assert linked[0].read_text() == copied[0].read_text() == "alpha"
