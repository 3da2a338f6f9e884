"""Fixtures of the agent tests: a fresh SQLite store and blob store, and the recording pipeline's
calls cleared before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _recording import CALLS

from mloop.artifacts import BlobStore
from mloop.store import SqlStore


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "artifacts")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    s = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    yield s
    s.close()
