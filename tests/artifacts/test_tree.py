"""upload_tree / download_tree on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from _artifact_keys import overwrite_key
from _blake3 import b3, blob_key
from mloop.artifacts import BlobStore, IntegrityError, download_tree, upload_tree
from mloop.errors import InvalidInputError
from mloop.store._entities import ArtifactEntry


def _make(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


FILES = {
    "model/weights.bin": bytes(range(256)) * 4000,
    "model/config.json": b'{"layers": 3}',
    "copy_of_config.json": b'{"layers": 3}',
    "plots/loss.png": b"\x89PNG fake",
    "empty.txt": b"",
}


def test_round_trip_with_dedup(blobstore: BlobStore, tmp_path: Path) -> None:
    _make(tmp_path / "src", FILES)
    entries = upload_tree(blobstore, tmp_path / "src", artifact_path="outputs")
    assert [e.path for e in entries] == sorted(f"outputs/{k}" for k in FILES)
    for e in entries:
        data = FILES[e.path.removeprefix("outputs/")]
        assert e == ArtifactEntry(e.path, len(data), b3(data))
    # two identical files -> one blob
    assert len(set(blobstore.iter_blobs())) == len(set(FILES.values())) == len(FILES) - 1

    written = download_tree(blobstore, entries, tmp_path / "dst")
    assert written == [tmp_path / "dst" / Path(e.path) for e in entries]
    for rel, data in FILES.items():
        assert (tmp_path / "dst" / "outputs" / rel).read_bytes() == data


def test_upload_single_file(blobstore: BlobStore, tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"pickle")
    [entry] = upload_tree(blobstore, f)
    assert entry.path == "model.pkl" and entry.size == 6


def test_upload_validates_before_uploading_anything(blobstore: BlobStore, tmp_path: Path) -> None:
    _make(tmp_path / "src", FILES)
    (tmp_path / "src" / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="broken symbolic link"):
        upload_tree(blobstore, tmp_path / "src")
    assert list(blobstore.iter_blobs()) == []


def test_download_detects_corruption(blobstore: BlobStore, tmp_path: Path) -> None:
    _make(tmp_path / "src", {"a.txt": b"aaaa", "b.txt": b"bbbb"})
    entries = upload_tree(blobstore, tmp_path / "src")
    bad = next(e for e in entries if e.path == "b.txt")
    forged = ArtifactEntry("b.txt", 4, b3(b"other"))
    blobstore.put_bytes(b"other")  # a blob with that name exists...
    overwrite_key(blobstore, blob_key(forged.sha256), b"bbbb")  # damaged
    entries = [e if e is not bad else forged for e in entries]
    with pytest.raises(IntegrityError, match=forged.sha256):
        download_tree(blobstore, entries, tmp_path / "dst")
    assert not (tmp_path / "dst" / "b.txt").exists()


@pytest.mark.parametrize("path", ["../escape.txt", "/abs.txt", "a/../../x", "C:/x"])
def test_download_rejects_bad_entry_paths(blobstore: BlobStore, tmp_path: Path, path: str) -> None:
    sha, size = blobstore.put_bytes(b"x")
    with pytest.raises(InvalidInputError):
        download_tree(blobstore, [ArtifactEntry(path, size, sha)], tmp_path / "dst")
    assert not (tmp_path / "escape.txt").exists()


def test_download_rejects_file_that_is_also_a_folder(blobstore: BlobStore, tmp_path: Path) -> None:
    sha, size = blobstore.put_bytes(b"x")
    entries = [ArtifactEntry("a", size, sha), ArtifactEntry("a/b", size, sha)]
    with pytest.raises(InvalidInputError, match="both as a file and as the folder"):
        download_tree(blobstore, entries, tmp_path / "dst")


def test_download_refuses_symlink_escape(blobstore: BlobStore, tmp_path: Path) -> None:
    sha, size = blobstore.put_bytes(b"x")
    dst = tmp_path / "dst"
    dst.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInputError, match="outside"):
        download_tree(blobstore, [ArtifactEntry("sub/x", size, sha)], dst)
    assert list(outside.iterdir()) == []


def test_many_files_parallel(blobstore: BlobStore, tmp_path: Path) -> None:
    files = {f"f{i:03d}.txt": f"content {i % 10}".encode() for i in range(40)}
    _make(tmp_path / "src", files)
    entries = upload_tree(blobstore, tmp_path / "src")
    assert len(entries) == 40 and len(set(blobstore.iter_blobs())) == 10
    download_tree(blobstore, entries, tmp_path / "dst")
    assert {p.name: p.read_bytes() for p in (tmp_path / "dst").iterdir()} == files
