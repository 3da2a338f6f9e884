"""The copy under every large local upload and download: byte-exact whatever the size, the space it
reserves never shows as data, and a plain copy takes over where the kernel cannot copy."""

from __future__ import annotations

import errno
import os
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


def test_a_source_longer_than_announced_is_copied_whole(tmp_path: Path) -> None:
    data = os.urandom((2 << 20) + 3)
    (tmp_path / "src").write_bytes(data)
    _kernel_copy(tmp_path / "src", tmp_path / "dst", 1 << 20)
    assert (tmp_path / "dst").read_bytes() == data


def test_where_sendfile_cannot_copy_a_plain_copy_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EINVAL, "sendfile cannot copy between these files")

    monkeypatch.setattr(_hashing.os, "sendfile", refuse)
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


def test_a_sendfile_error_after_some_bytes_is_raised_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.sendfile
    calls = []

    def once_then_fail(out: int, src: int, offset: int, count: int) -> int:
        calls.append(offset)
        if len(calls) > 1:
            raise OSError(errno.EIO, "disk error")
        return real(out, src, offset, min(count, 1 << 20))

    monkeypatch.setattr(_hashing.os, "sendfile", once_then_fail)
    (tmp_path / "src").write_bytes(os.urandom(3 << 20))
    with pytest.raises(OSError, match="disk error"):
        _kernel_copy(tmp_path / "src", tmp_path / "dst", 3 << 20)
