"""``mloop server``: the team server under uvicorn, with one process or several workers.

The parent resolves the configuration, upgrades the store's schema once and checks the artifact
store, then runs uvicorn. With ``workers > 1`` each worker is a separate process that builds its
own app (its own store and connection pool) from ``MLOOP_SERVER_CONFIG`` (JSON) through
:func:`app_from_env`, uvicorn's app factory; they share the port and the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mloop.artifacts import BlobStore
from mloop.errors import InvalidInputError
from mloop.server._app import create_app
from mloop.server._auth import DEFAULT_RATE_LIMIT, RateLimit
from mloop.store import create_store, describe_uri

__all__ = ["CONFIG_ENV", "ServerConfig", "app_from_env", "build_app", "run_server"]

CONFIG_ENV = "MLOOP_SERVER_CONFIG"


@dataclass(frozen=True)
class ServerConfig:
    """What a server (each of its workers) is built from.

    Attributes
    ----------
    store_uri : str
        The metadata store (``sqlite:///...``, ``postgresql+psycopg://...``); not a server.
    artifact_uri : str
        Where the server keeps artifacts: a local folder, ``s3://bucket/prefix``, any fsspec URL.
    presign_s : int
        Lifetime of presigned download URLs where the artifact store signs them (S3); 0 streams
        every download through the server.
    heartbeat_timeout_s : float
        A running run silent for this long reads as ``killed``.
    staging_dir : str, optional
        Where resumable uploads wait until complete (a folder every worker sees; they survive a
        restart); default ``mloop-staging`` in the system's temporary folder.
    auth : bool
        Require bearer tokens (``mloop token create``): 401 without one, 403 past its role.
    rate_limit : float or None
        With ``auth``: each token's requests per second (a token's own rate wins), in each
        worker; None limits only the tokens that have their own rate. 429 past it.
    burst : int or None
        With ``auth``: requests a token may send at once (default: two seconds' worth).
    token_cache_s : float
        With ``auth``: how long a worker reuses a verified token, hence how long a revoked token
        may still be accepted.
    """

    store_uri: str
    artifact_uri: str
    presign_s: int = 3600
    heartbeat_timeout_s: float = 90.0
    staging_dir: str | None = None
    auth: bool = False
    rate_limit: float | None = DEFAULT_RATE_LIMIT.per_second
    burst: int | None = DEFAULT_RATE_LIMIT.burst
    token_cache_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("store_uri", "artifact_uri"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"`{name}` must be a non-empty string; got {value!r}.")
            if value.lower().startswith(("http://", "https://")):
                raise InvalidInputError(
                    f"the server's {name.replace('_', ' ')} must be its own storage, not another "
                    f"server; got {value!r}. Set MLOOP_STORE_URI / MLOOP_ARTIFACT_URI (or "
                    "--store-uri / --artifact-uri) to a database and a folder or bucket."
                )
        if not isinstance(self.presign_s, int) or not 0 <= self.presign_s <= 7 * 24 * 3600:
            raise InvalidInputError(
                f"`presign_s` must be an int in [0, 604800]; got {self.presign_s!r}."
            )
        self.rate()  # validated here, in the parent, before any worker starts
        t = self.token_cache_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 3600:
            raise InvalidInputError(f"`token_cache_s` must be in [0, 3600] seconds; got {t!r}.")

    def rate(self) -> RateLimit | None:
        """The default per-token :class:`RateLimit` (None: only tokens with their own)."""
        if self.rate_limit is None:
            if self.burst is not None:
                raise InvalidInputError("`burst` needs a `rate_limit`.")
            return None
        return RateLimit(self.rate_limit, self.burst)

    def check_artifacts(self) -> None:
        """Fail before listening if a local artifact folder cannot be written (uploads would)."""
        store = BlobStore(self.artifact_uri)
        if not store.is_local:
            return
        root = Path(store.uri.removeprefix("file://"))
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".mloop-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InvalidInputError(
                f"the artifact store {str(root)!r} cannot be written: {exc.strerror or exc}. "
                "Point --artifact-uri (or MLOOP_ARTIFACT_URI) at a writable folder or a bucket.",
                details={"artifact_uri": self.artifact_uri},
            ) from None

    def describe(self) -> str:
        """Where the store and the artifacts are, for the log (no passwords)."""
        store = BlobStore(self.artifact_uri)
        where = str(store.uri) if store.is_local else self.artifact_uri.split("?", 1)[0]
        return f"store {describe_uri(self.store_uri)}, artifacts {where}"


def build_app(config: ServerConfig) -> FastAPI:
    """The server's app over its own store and artifact store; the store is closed at shutdown."""
    store = create_store(config.store_uri, heartbeat_timeout_s=config.heartbeat_timeout_s)
    app = create_app(
        store,
        artifacts=BlobStore(config.artifact_uri),
        presign_s=config.presign_s,
        staging_dir=config.staging_dir,
        auth=config.auth,
        rate_limit=config.rate(),
        token_cache_s=config.token_cache_s,
    )
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with inner(a) as state:
                # What is alive once the worker has started (the libraries, the app, the store)
                # lives as long as the worker: out of the cyclic collector's sight, a full
                # collection no longer walks it. A search of 1,000 runs allocates enough to set
                # one off, which walked the whole heap: ~70 ms added to one request in three.
                gc.collect()
                gc.freeze()
                yield state
        finally:
            store.close()

    app.router.lifespan_context = lifespan
    return app


def app_from_env() -> FastAPI:
    """The app a worker process builds from ``MLOOP_SERVER_CONFIG`` (uvicorn's factory)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start workers through `mloop server`.")
    return build_app(ServerConfig(**json.loads(raw)))


def run_server(
    config: ServerConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    forwarded_allow_ips: str | None = None,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM let requests in flight finish, up to 30 s).

    ``forwarded_allow_ips``: the proxies (comma-separated IPs or ``*``) whose
    ``X-Forwarded-For``/``X-Forwarded-Proto`` headers are trusted, so a server behind a TLS
    reverse proxy sees the client's address and builds ``https://`` URLs.
    """
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
        "proxy_headers": True,
        "server_header": False,
    }
    if forwarded_allow_ips is not None:
        common["forwarded_allow_ips"] = forwarded_allow_ips
    if workers <= 1:
        uvicorn.run(build_app(config), **common)
        return
    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    uvicorn.run("mloop.server._serve:app_from_env", factory=True, workers=workers, **common)
