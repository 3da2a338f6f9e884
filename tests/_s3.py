"""moto's S3 server on loopback for the tests that need S3 (marker ``s3``): import the fixture
(``from _s3 import s3_server``) where it is used."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from _services import service_missing

BUCKET = "mloop-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """moto's S3 server in a thread; yields ``{"uri", "storage_options"}`` for a fresh bucket.

    A missing moto is skipped locally and fails under CI=true (see tests/_services.py).
    """
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing(f"moto[server] / boto3 not importable: {exc}")
        raise AssertionError("unreachable") from exc
    with pytest.MonkeyPatch.context() as mp:
        # Credentials only for this fixture's lifetime, so nothing can reach a real AWS account.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        try:
            server.start()
            endpoint = f"http://127.0.0.1:{port}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket=BUCKET)
        except Exception as exc:  # boundary: any failure to start means "service missing"
            server.stop()
            service_missing(f"moto S3 server could not start on 127.0.0.1:{port}: {exc!r}")
            raise
        try:
            yield {
                "endpoint": endpoint,
                "storage_options": {
                    "endpoint_url": endpoint,
                    "key": "testing",
                    "secret": "testing",
                },
            }
        finally:
            server.stop()
