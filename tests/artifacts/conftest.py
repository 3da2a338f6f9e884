"""Fixtures: a BlobStore on a local folder, on S3 (moto's server on loopback) and on a team server
(``mloop server``'s artifact routes over a real socket, keeping the blobs in a local folder or on
S3, where downloads are presigned redirects): the same tests for all four."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _s3 import BUCKET, s3_server
from mloop.artifacts import BlobStore

__all__ = ["s3_server"]  # a fixture the tests here take


def _server_over(backing: BlobStore) -> Iterator[str]:
    """A team server's artifact routes over ``backing``, on a free loopback port; yields its URL."""
    from fastapi import FastAPI

    from _artifact_keys import BACKING
    from _live_server import LiveServer
    from mloop.server._blobs import mount_artifacts

    app = FastAPI()
    mount_artifacts(app, backing)
    with LiveServer(app) as server:
        BACKING[server.url] = backing
        try:
            yield server.url
        finally:
            BACKING.pop(server.url, None)


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.s3),
        "server",
        pytest.param("server-s3", marks=pytest.mark.s3),
    ]
)
def store_spec(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """``(uri, storage_options)`` of an empty store: a local folder, S3, and a team server over
    either."""
    if request.param == "local":
        yield str(tmp_path / "artifacts"), None
        return
    if request.param == "server":
        yield from ((url, None) for url in _server_over(BlobStore(tmp_path / "server-artifacts")))
        return
    server = request.getfixturevalue("s3_server")
    uri, options = f"s3://{BUCKET}/{uuid.uuid4().hex}", dict(server["storage_options"])
    if request.param == "s3":
        yield uri, options
        return
    yield from ((url, None) for url in _server_over(BlobStore(uri, storage_options=options)))


@pytest.fixture
def blobstore(store_spec: tuple[str, dict[str, Any] | None]) -> BlobStore:
    uri, options = store_spec
    return BlobStore(uri, storage_options=options)
