"""The copy under every large local upload and download: byte-exact whatever the size, the space it
reserves never shows as data, and a plain copy takes over where the kernel cannot copy; and the
hashing beside it, with the algorithm a blob's name asks for."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from _blake3 import b3
from mloop.artifacts import BlobStore, _hashing
from mloop.artifacts._hashing import _copy_and_hash, _kernel_copy


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (8 << 20) + 5])
def test_the_copy_is_byte_exact(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    _kernel_copy(tmp_path / "src", tmp_path / "dst", size)
    assert (tmp_path / "dst").read_bytes() == data


def test_a_source_shorter_than_announced_leaves_no_reserved_tail(tmp_path: Path) -> None:
    """``src`` shrank between its ``stat`` and the copy: ``dst`` holds what was there, no zeros."""
    data = os.urandom(3 << 20)
    (tmp_path / "src").write_bytes(data)
    _kernel_copy(tmp_path / "src", tmp_path / "dst", 5 << 20)
    assert (tmp_path / "dst").read_bytes() == data


def test_a_source_that_grew_is_copied_up_to_the_size_asked_for(tmp_path: Path) -> None:
    """A file still being appended to is not chased: the copy stops at the size it was given."""
    data = os.urandom((2 << 20) + 3)
    (tmp_path / "src").write_bytes(data)
    _kernel_copy(tmp_path / "src", tmp_path / "dst", 1 << 20)
    assert (tmp_path / "dst").read_bytes() == data[: 1 << 20]


def _refuse(code: int) -> Callable[..., int]:
    def refuse(*args: object) -> int:
        raise OSError(code, os.strerror(code))

    return refuse


@pytest.mark.parametrize(
    "refused", [["copy_file_range"], ["copy_file_range", "sendfile"]], ids=["sendfile", "plain"]
)
def test_where_the_kernel_cannot_copy_the_next_way_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: list[str]
) -> None:
    for name in refused:  # e.g. another file system: EXDEV
        monkeypatch.setattr(_hashing.os, name, _refuse(errno.EXDEV))
    data = os.urandom((9 << 20) + 1)
    (tmp_path / "src").write_bytes(data)
    _kernel_copy(tmp_path / "src", tmp_path / "dst", 12 << 20)
    assert (tmp_path / "dst").read_bytes() == data
    # ... and through the whole upload: hashed beside the copy, stored, read back.
    store = BlobStore(tmp_path / "store")
    sha, size = store.put_file(tmp_path / "src")
    assert (sha, size) == (b3(data), len(data))
    assert store.get_to_path(sha, tmp_path / "back").read_bytes() == data


def test_without_fallocate_the_copy_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hashing, "_fallocate", lambda: None)
    data = os.urandom((8 << 20) + 7)
    (tmp_path / "src").write_bytes(data)
    assert _copy_and_hash(tmp_path / "src", tmp_path / "dst") == (b3(data), len(data))
    assert (tmp_path / "dst").read_bytes() == data


def test_an_error_after_some_bytes_is_raised_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.copy_file_range
    calls = []

    def once_then_fail(src: int, out: int, count: int, at: int, at_out: int) -> int:
        calls.append(at)
        if len(calls) > 1:
            raise OSError(errno.EIO, "disk error")
        return real(src, out, min(count, 1 << 20), at, at_out)

    monkeypatch.setattr(_hashing.os, "copy_file_range", once_then_fail)
    (tmp_path / "src").write_bytes(os.urandom(3 << 20))
    with pytest.raises(OSError, match="disk error"):
        _kernel_copy(tmp_path / "src", tmp_path / "dst", 3 << 20)


# ------------------------------------------------------------------ copy while hashing (put_file)
SIZES = {"small": 1000, "medium": (2 << 20) + 1, "large": (8 << 20) + 9}


@pytest.mark.parametrize("kind", list(SIZES))
def test_a_copy_checked_against_a_sha256_name_is_hashed_with_sha256(
    tmp_path: Path, kind: str
) -> None:
    data = os.urandom(SIZES[kind])
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "src").write_bytes(data)
    assert _copy_and_hash(tmp_path / "src", tmp_path / "dst", sha) == (sha, len(data))
    assert _copy_and_hash(tmp_path / "src", tmp_path / "dst2") == (b3(data), len(data))
    assert _hashing._hash_file(tmp_path / "src", sha) == (sha, len(data))


def test_an_unchanged_source_is_hashed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash taken beside the copy is the answer: the copy is not read again."""
    again: list[Path] = []
    real = _hashing._hash_file
    monkeypatch.setattr(
        _hashing, "_hash_file", lambda p, like=None: again.append(p) or real(p, like)
    )
    data = os.urandom(SIZES["large"])
    (tmp_path / "src").write_bytes(data)
    assert _copy_and_hash(tmp_path / "src", tmp_path / "dst") == (b3(data), len(data))
    assert again == []


@pytest.mark.parametrize("how", ["modified", "size differs"])
def test_a_source_that_changed_during_the_copy_is_named_by_what_was_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """What the hashing thread saw is not trusted once the source's status moved (or the sizes
    differ): the answer is the hash of the bytes in ``dst``, with the algorithm asked for."""
    data = os.urandom(SIZES["large"])
    src = tmp_path / "src"
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()

    def stale(path: Path, like: str | None) -> tuple[str, int]:
        if how == "modified":
            st = os.stat(path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
            return "blake3-" + "0" * 64, len(data)
        return sha, len(data) + 1

    monkeypatch.setattr(_hashing, "_hash_beside_copy", stale)
    assert _copy_and_hash(src, tmp_path / "dst", sha) == (sha, len(data))
    assert _copy_and_hash(src, tmp_path / "dst2") == (b3(data), len(data))


def test_a_failed_copy_raises_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: Path, dst: Path, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_hashing, "_kernel_copy", full)
    (tmp_path / "src").write_bytes(os.urandom(SIZES["large"]))
    with pytest.raises(OSError, match="No space left"):
        _copy_and_hash(tmp_path / "src", tmp_path / "dst")


def test_a_linked_sha256_blob_is_hashed_with_sha256_and_loses_every_write_bit(
    tmp_path: Path,
) -> None:
    data = b"weights from 0.1" * 64
    sha = hashlib.sha256(data).hexdigest()
    blob = tmp_path / sha
    blob.write_bytes(data)
    blob.chmod(0o775)
    assert _hashing._link_and_hash(blob, tmp_path / "linked", sha) == sha
    assert blob.stat().st_mode & 0o777 == 0o555


def test_when_every_way_refuses_the_last_error_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No silent empty copy: the plain read/write copy's own error comes out."""
    monkeypatch.setattr(_hashing.os, "copy_file_range", _refuse(errno.EXDEV))
    monkeypatch.setattr(_hashing.os, "sendfile", _refuse(errno.EINVAL))
    monkeypatch.setattr(_hashing.os, "pwrite", _refuse(errno.EIO))
    (tmp_path / "src").write_bytes(os.urandom(1 << 20))
    with pytest.raises(OSError) as info:
        _kernel_copy(tmp_path / "src", tmp_path / "dst", 1 << 20)
    assert info.value.errno == errno.EIO
