"""A real ``mloop`` server on a free loopback port (uvicorn in a thread) with MLflow's REST dialect,
for tests that drive it with the unmodified ``mlflow`` client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _live_server import LiveServer


@dataclass
class MlflowServer:
    url: str
    store: Any
    blobs: Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mlflow_server(root: Path, *, auth: bool = False) -> Iterator[MlflowServer]:
    from mloop.artifacts import BlobStore
    from mloop.server import create_app
    from mloop.server._mlflow import mount_mlflow
    from mloop.store import create_store

    store = create_store(f"sqlite:///{root / 'mloop.db'}")
    blobs = BlobStore(root / "artifacts")
    app = create_app(store)
    if not any(getattr(r, "path", "").startswith("/api/2.0/mlflow/") for r in app.routes):
        mount_mlflow(app, artifacts=blobs)
    app.state.artifacts = blobs
    if auth:
        from mloop.server._auth import install_auth
        from mloop.server._scopes import Scopes

        install_auth(app, store, scopes=Scopes(store), rate_limit=None, token_cache_s=0.0)
    try:
        with LiveServer(app) as live:
            yield MlflowServer(live.url, store, blobs)
    finally:
        store.close()


def server_fixture(name: str, *, auth: bool = False) -> Any:
    """A module's ``server`` fixture: one dialect server for the module's tests."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
        with mlflow_server(tmp_path_factory.mktemp(name), auth=auth) as s:
            yield s

    return server


def error_code(exc: BaseException) -> str:
    """The MLflow error code an ``MlflowException`` carries."""
    return str(getattr(exc, "error_code", ""))


# The client's own notices (dataset source guessing, deprecations of its APIs).
CLIENT_WARNINGS = pytest.mark.filterwarnings(
    "ignore::UserWarning:mlflow.*",
    "ignore::FutureWarning",  # get_latest_versions: MLflow deprecates stages
    "ignore::DeprecationWarning",
)


# The client must never phone home from a test (its telemetry and usage tracking).
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@contextmanager
def mlflow_client_on(url: str) -> Iterator[Any]:
    """The ``mlflow`` module pointed at ``url`` (the previous tracking URI restored after)."""
    import os

    saved = {
        k: os.environ.get(k) for k in (*QUIET_ENV, "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN")
    }
    os.environ.update(QUIET_ENV)
    os.environ["MLFLOW_TRACKING_URI"] = url
    import mlflow

    mlflow.set_tracking_uri(url)
    try:
        yield mlflow
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None) if hasattr(mlflow, "set_tracking_uri") else None
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
