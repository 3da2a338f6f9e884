"""Content digests (mloop._digest) against independent references: the ``blake3`` package and
hashlib's SHA-256, including BLAKE3's official test vector."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import blake3
import pytest

from mloop._digest import (
    algorithm,
    digest_bytes,
    digest_file,
    fanout,
    hasher,
    is_digest,
    short,
)

SHA = hashlib.sha256(b"abc").hexdigest()


def test_blake3_of_the_empty_input_is_the_published_value() -> None:
    # BLAKE3's specification, test vector for the empty input (32-byte output).
    expected = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert digest_bytes(b"") == "blake3-" + expected


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, (1 << 20) + 7, (9 << 20) + 3])
def test_new_content_is_named_by_blake3_in_memory_and_from_a_file(
    size: int, tmp_path: Path
) -> None:
    """Sizes around BLAKE3's 1 KiB chunks, the 1 MiB file reads and the multi-core threshold."""
    data = os.urandom(size)
    expected = "blake3-" + blake3.blake3(data).hexdigest()
    assert digest_bytes(data) == expected
    assert digest_bytes(memoryview(data)) == expected
    (tmp_path / "f").write_bytes(data)
    assert digest_file(tmp_path / "f") == (expected, size)
    h = hasher()
    for i in range(0, size, 4093):
        h.update(data[i : i + 4093])
    assert h.result() == expected


def test_content_checked_against_a_sha256_name_is_hashed_with_sha256(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) + 11)
    sha = hashlib.sha256(data).hexdigest()
    assert digest_bytes(data, like=sha) == sha
    (tmp_path / "f").write_bytes(data)
    assert digest_file(tmp_path / "f", like=sha) == (sha, len(data))
    assert digest_bytes(data, like="blake3-" + "0" * 64) == digest_bytes(data)
    h = hasher(SHA)
    h.update(b"abc")
    assert h.result() == SHA


def test_spellings() -> None:
    b3 = digest_bytes(b"abc")
    assert is_digest(b3) and is_digest(SHA)
    assert algorithm(b3) == "blake3" and algorithm(SHA) == "sha256"
    assert short(b3) == b3[7:19] and short(SHA) == SHA[:12] and short(b3, 4) == b3[7:11]
    assert fanout(b3) == b3[7:9] and fanout(SHA) == SHA[:2]
    for bad in [SHA.upper(), SHA[:-1], "blake3:" + SHA, "blake3-" + SHA + "\n", "", None, 5]:
        assert not is_digest(bad)


def test_a_child_forked_after_its_parent_hashed_can_hash_too() -> None:
    """With BLAKE3's own threads (a process-wide pool that fork does not copy), the child's first
    hash of a large input would wait for ever."""
    data = os.urandom(16 << 20)
    parent = digest_bytes(data)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(digest_bytes, (data,)).get(timeout=60) == parent
