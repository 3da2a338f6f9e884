"""find_unreferenced / delete_blobs on both stores."""

from __future__ import annotations

import os
import time

import pytest

from _blake3 import blob_key
from mloop.artifacts import BlobStore, delete_blobs, find_unreferenced
from mloop.errors import InvalidInputError


def test_find_and_delete_unreferenced(blobstore: BlobStore) -> None:
    keep = {blobstore.put_bytes(b"keep-%d" % i)[0] for i in range(3)}
    drop = {blobstore.put_bytes(b"drop-%d!" % i)[0] for i in range(2)}
    found = find_unreferenced(blobstore, keep)
    assert found == sorted((sha, 7) for sha in drop)
    assert sorted(delete_blobs(blobstore, [sha for sha, _ in found])) == sorted(drop)
    assert set(blobstore.iter_blobs()) == keep
    assert find_unreferenced(blobstore, keep) == []
    assert delete_blobs(blobstore, sorted(drop)) == []  # idempotent


def test_empty_store(blobstore: BlobStore) -> None:
    assert find_unreferenced(blobstore, set()) == []


def test_grace_period_protects_fresh_blobs(tmp_path: os.PathLike[str]) -> None:
    store = BlobStore(tmp_path)
    old, _ = store.put_bytes(b"old")
    store.put_bytes(b"new")
    past = time.time() - 7200
    os.utime(store._full(blob_key(old)), (past, past))
    assert find_unreferenced(store, set(), min_age_s=3600) == [(old, 3)]
    # re-storing an existing blob makes it fresh again (it may be about to be referenced)
    store.put_bytes(b"old")
    assert find_unreferenced(store, set(), min_age_s=3600) == []


def test_bad_input(blobstore: BlobStore) -> None:
    with pytest.raises(InvalidInputError, match="min_age_s"):
        find_unreferenced(blobstore, set(), min_age_s=-1)
    with pytest.raises(InvalidInputError, match="sha256"):
        delete_blobs(blobstore, ["../../etc"])
