"""One sha256 validator: exactly 64 lowercase hex characters, refused identically (a trailing newline
included) by every entry point that takes a digest: the blob store, datasets, garbage collection and
the metadata store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import BlobStore, delete_blobs, load_dataset
from mloop.errors import InvalidInputError
from mloop.store import ArtifactEntry, DatasetVersion, RunInput, SqlStore
from mloop.store._validation import is_sha256, validate_run_id, validate_sha256

GOOD = "ab" * 32
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


def test_a_run_id_with_a_trailing_newline_is_refused_too() -> None:
    with pytest.raises(InvalidInputError, match="run id must be 32 lowercase hex"):
        validate_run_id("a" * 32 + "\n")
    assert validate_run_id("a" * 32) == "a" * 32


def _blob_entry_points(tmp_path: Path) -> dict[str, Callable[[str], Any]]:
    blobs = BlobStore(str(tmp_path / "artifacts"))
    return {
        "BlobStore.exists": blobs.exists,
        "BlobStore.size": blobs.size,
        "BlobStore.open": blobs.open,
        "BlobStore.get_to_path": lambda s: blobs.get_to_path(s, tmp_path / "out"),
        "BlobStore.delete": blobs.delete,
        "BlobStore.uri_for": blobs.uri_for,
        "load_dataset": lambda s: load_dataset(blobs, s),
        "delete_blobs": lambda s: delete_blobs(blobs, [s]),
    }


def _store_entry_points(store: SqlStore) -> dict[str, Callable[[str], Any]]:
    run = store.create_run(store.create_project("p").id)
    return {
        "Store.add_artifacts": lambda s: store.add_artifacts(
            run.id, [ArtifactEntry("a.txt", 1, s)]
        ),
        "Store.put_dataset": lambda s: store.put_dataset(
            DatasetVersion(s, "d", {"x": "int64"}, 1, None, "file:///d", 0)
        ),
        "Store.get_dataset": store.get_dataset,
        "Store.log_input": lambda s: store.log_input(run.id, RunInput(s, "train")),
    }


@pytest.mark.parametrize("bad", [GOOD + "\n", GOOD.upper(), GOOD[:-1]], ids=repr)
def test_every_entry_point_refuses_a_malformed_sha256(tmp_path: Path, bad: str) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        entry_points = {**_blob_entry_points(tmp_path), **_store_entry_points(store)}
        for name, call in entry_points.items():
            with pytest.raises(
                InvalidInputError, match="`sha256` must be 64 lowercase hex"
            ) as info:
                call(bad)
            assert repr(bad) in info.value.message, name
    finally:
        store.close()
    assert not list((tmp_path / "artifacts").rglob("*\n*"))  # no file named after a bad digest


def test_the_blob_listing_skips_names_that_are_not_digests(tmp_path: Path) -> None:
    blobs = BlobStore(str(tmp_path / "artifacts"))
    sha, _ = blobs.put_bytes(b"hello")
    stray = tmp_path / "artifacts" / "blobs" / sha[:2] / (sha + "\n")
    stray.write_bytes(b"not a blob")
    from mloop.artifacts import find_unreferenced

    found = find_unreferenced(blobs, referenced=set(), min_age_s=0)
    assert [s for s, *_ in found] == [sha]
