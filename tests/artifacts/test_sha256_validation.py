"""Two validators, each refusing identically (a trailing newline included) at every entry point:

* a blob's digest (blob store, garbage collection, the artifact index): ``blake3-`` and 64 lowercase
  hex characters, or 64 lowercase hex characters (a sha256, the name of blobs from mloop 0.1);
* a dataset version's sha256 (datasets, run inputs): exactly 64 lowercase hex characters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _blake3 import blob_key
from mloop.artifacts import BlobStore, delete_blobs, load_dataset
from mloop.errors import InvalidInputError
from mloop.store import ArtifactEntry, DatasetVersion, RunInput, SqlStore
from mloop.store._validation import (
    is_digest,
    is_sha256,
    validate_digest,
    validate_run_id,
    validate_sha256,
)

GOOD = "ab" * 32
GOOD_B3 = "blake3-" + GOOD
BAD = [
    GOOD + "\n",  # what `re.match` with "$" let through
    "\n" + GOOD,
    GOOD + " ",
    GOOD.upper(),
    GOOD[:-1],
    GOOD + "a",
    "g" * 64,
    "",
    None,
    64,
    b"ab" * 32,
]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_the_validator_takes_exactly_64_lowercase_hex_characters(bad: Any) -> None:
    assert not is_sha256(bad)
    with pytest.raises(InvalidInputError, match="`sha256` must be 64 lowercase hex characters"):
        validate_sha256(bad)
    assert validate_sha256(GOOD) == GOOD and is_sha256(GOOD)
    assert not is_sha256(GOOD_B3)  # a dataset's digest is a sha256


BAD_DIGESTS = [
    *BAD,
    GOOD_B3 + "\n",
    "\n" + GOOD_B3,
    GOOD_B3.upper(),
    "Blake3-" + GOOD,
    "blake3:" + GOOD,
    "blake3_" + GOOD,
    "blake3-" + GOOD[:-1],
    "blake3-" + GOOD + "a",
    "blake3-",
    "b3-" + GOOD,
    "sha256-" + GOOD,
    "blake3-blake3-" + GOOD[14:],
]


@pytest.mark.parametrize("bad", BAD_DIGESTS, ids=repr)
def test_a_blob_digest_is_blake3_or_sha256_spelled_exactly(bad: Any) -> None:
    assert not is_digest(bad)
    with pytest.raises(InvalidInputError, match="`sha256` must be a content digest"):
        validate_digest(bad)
    assert validate_digest(GOOD) == GOOD and validate_digest(GOOD_B3) == GOOD_B3
    assert is_digest(GOOD) and is_digest(GOOD_B3)


def test_a_run_id_with_a_trailing_newline_is_refused_too() -> None:
    with pytest.raises(InvalidInputError, match="run id must be 32 lowercase hex"):
        validate_run_id("a" * 32 + "\n")
    assert validate_run_id("a" * 32) == "a" * 32


def _blob_entry_points(tmp_path: Path, store: SqlStore) -> dict[str, Callable[[str], Any]]:
    blobs = BlobStore(str(tmp_path / "artifacts"))
    run = store.create_run(store.create_project("p").id)
    return {
        "BlobStore.exists": blobs.exists,
        "BlobStore.size": blobs.size,
        "BlobStore.open": blobs.open,
        "BlobStore.get_to_path": lambda s: blobs.get_to_path(s, tmp_path / "out"),
        "BlobStore.delete": blobs.delete,
        "BlobStore.uri_for": blobs.uri_for,
        "delete_blobs": lambda s: delete_blobs(blobs, [s]),
        "Store.add_artifacts": lambda s: store.add_artifacts(
            run.id, [ArtifactEntry("a.txt", 1, s)]
        ),
    }


def _dataset_entry_points(tmp_path: Path, store: SqlStore) -> dict[str, Callable[[str], Any]]:
    blobs = BlobStore(str(tmp_path / "artifacts"))
    run = store.create_run(store.create_project("d").id)
    return {
        "load_dataset": lambda s: load_dataset(blobs, s),
        "Store.put_dataset": lambda s: store.put_dataset(
            DatasetVersion(s, "d", {"x": "int64"}, 1, None, "file:///d", 0)
        ),
        "Store.get_dataset": store.get_dataset,
        "Store.log_input": lambda s: store.log_input(run.id, RunInput(s, "train")),
    }


@pytest.mark.parametrize(
    "bad", [GOOD + "\n", GOOD.upper(), GOOD[:-1], GOOD_B3 + "\n", "blake3:" + GOOD], ids=repr
)
def test_every_entry_point_refuses_a_malformed_digest(tmp_path: Path, bad: str) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        for points, message in [
            (_blob_entry_points(tmp_path, store), "`sha256` must be a content digest"),
            (_dataset_entry_points(tmp_path, store), "`sha256` must be 64 lowercase hex"),
        ]:
            for name, call in points.items():
                with pytest.raises(InvalidInputError, match=message) as info:
                    call(bad)
                assert repr(bad) in info.value.message, name
    finally:
        store.close()
    assert not list((tmp_path / "artifacts").rglob("*\n*"))  # no file named after a bad digest


def test_a_dataset_digest_is_a_sha256_not_a_blob_name(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        for name, call in _dataset_entry_points(tmp_path, store).items():
            with pytest.raises(InvalidInputError, match="64 lowercase hex") as info:
                call(GOOD_B3)
            assert repr(GOOD_B3) in info.value.message, name
    finally:
        store.close()


def test_the_blob_listing_skips_names_that_are_not_digests(tmp_path: Path) -> None:
    blobs = BlobStore(str(tmp_path / "artifacts"))
    sha, _ = blobs.put_bytes(b"hello")
    stray = tmp_path / "artifacts" / (blob_key(sha) + "\n")
    stray.write_bytes(b"not a blob")
    from mloop.artifacts import find_unreferenced

    found = find_unreferenced(blobs, referenced=set(), min_age_s=0)
    assert [s for s, *_ in found] == [sha]
