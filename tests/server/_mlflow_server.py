"""A real ``mloop`` server on a free loopback port (uvicorn in a thread) with MLflow's REST dialect,
for tests that drive it with the unmodified ``mlflow`` client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    import uvicorn

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
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mlflow-dialect-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield MlflowServer(f"http://127.0.0.1:{port}", store, blobs)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


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
