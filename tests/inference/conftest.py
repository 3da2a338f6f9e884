from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import BlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "artifacts")


@pytest.fixture
def make_logger(store: Any, blobs: BlobStore) -> Any:
    """InferenceLoggers on the test's store and blob store, closed at the end of the test."""
    from mloop.inference import InferenceLogger

    made: list[InferenceLogger] = []

    def make(deployment: str = "churn-api", **options: Any) -> InferenceLogger:
        options.setdefault("flush_interval_s", 0.05)
        logger = InferenceLogger(deployment, store=store, blobstore=blobs, **options)
        made.append(logger)
        return logger

    yield make
    for logger in made:
        logger.close(timeout_s=5)
