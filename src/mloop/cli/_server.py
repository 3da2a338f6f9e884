"""``mloop server``: the team server (REST API v1 over a store, artifacts through it)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Annotated, Any

import typer

from mloop.config import Settings
from mloop.errors import InvalidInputError

# A client's settings that must not leak into the server's own: it is the store, not a client.
_CLIENT_ONLY = ("MLOOP_SERVER_URL", "MLOOP_TOKEN")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``127.0.0.0/8``, ``::1``,
    ``localhost``); ``0.0.0.0`` and ``::`` listen everywhere."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:  # a name: loopback only if every address it resolves to is
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def server(
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on. Anything but loopback needs --insecure (the API has "
            "no access control without tokens)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    store_uri: Annotated[
        str | None,
        typer.Option(
            help="The metadata store (default: MLOOP_STORE_URI, else SQLite in MLOOP_HOME); "
            "postgresql+psycopg://... for several workers or machines."
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            help="Where the server keeps artifacts (default: MLOOP_ARTIFACT_URI, else "
            "MLOOP_HOME/artifacts): a folder or s3://bucket/prefix."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (they share the port).")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated IPs, "
            "or '*'), for a server behind a TLS reverse proxy."
        ),
    ] = None,
    presign_s: Annotated[
        int,
        typer.Option(
            help="Lifetime of presigned download URLs when artifacts are on S3; 0 streams every "
            "download through the server."
        ),
    ] = 3600,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Require a bearer token (mloop token create) on every request: 401 without one, "
            "403 when its role or project does not allow the call.",
        ),
    ] = False,
    rate_limit: Annotated[
        str,
        typer.Option(
            "--rate-limit",
            help="With --auth: each token's rate, e.g. 100/s or 6000/min (a token's own rate "
            "wins), per worker; 'off' limits only tokens that have their own. 429 past it.",
        ),
    ] = "100/s",
    burst: Annotated[
        int | None,
        typer.Option(
            "--burst", help="With --auth: requests a token may send at once (default: 2 s' worth)."
        ),
    ] = None,
    token_cache_s: Annotated[
        float,
        typer.Option(
            "--token-cache-s",
            help="With --auth: how long a verified token is reused without a lookup; a revoked "
            "token is refused within this many seconds.",
        ),
    ] = 5.0,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Listen on a non-loopback interface without --auth: anyone who can reach the "
            "port can read and change everything.",
        ),
    ] = False,
    webhooks: Annotated[
        bool,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Deliver webhooks from this server (the only place that holds their secrets). "
            "With several servers on one database, leave it on for one of them.",
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (uvicorn's access log).")
    ] = False,
) -> None:
    """Run the team server: the REST API v1 (OpenAPI at /api/v1/docs) over the store, with
    artifacts uploaded and downloaded through it. Point clients at it with
    MLOOP_SERVER_URL=http://HOST:PORT."""
    from mloop.server import ServerConfig, run_server
    from mloop.store import upgrade_store

    if workers < 1:
        raise InvalidInputError(f"--workers must be >= 1; got {workers}.")
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port must be in [0, 65535]; got {port}.")
    if not is_loopback(host) and not auth and not insecure:
        raise InvalidInputError(
            f"refusing to listen on {host!r} without access control: anyone who can reach it "
            "could read and change every run and model. Pass --auth (clients then need a token "
            "from `mloop token create`), or --insecure on a network you trust."
        )
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ONLY}
    s = Settings.from_env(env, store_uri=store_uri, artifact_uri=artifact_uri)
    config = ServerConfig(
        store_uri=s.store_uri,
        artifact_uri=s.artifact_uri,
        presign_s=presign_s,
        heartbeat_timeout_s=3 * s.heartbeat_s,
        staging_dir=str(s.home.absolute() / "staging"),
        auth=auth,
        **_limits(rate_limit, burst),
        token_cache_s=token_cache_s,
    )
    upgrade_store(config.store_uri)  # once, before workers open it
    config.check_artifacts()
    if auth:
        _warn_without_tokens(config.store_uri)
    guard = "tokens required" if auth else "no access control"
    typer.echo(
        f"mloop server: {config.describe()}; {guard}; listening on http://{host}:{port}", err=True
    )
    dispatcher = _start_webhooks(config.store_uri, s) if webhooks else None
    try:
        run_server(
            config,
            host=host,
            port=port,
            workers=workers,
            forwarded_allow_ips=forwarded_allow_ips,
            log_level=log_level,
            access_log=access_log,
        )
    finally:
        if dispatcher is not None:
            dispatcher.stop()


def _start_webhooks(store_uri: str, settings: Settings) -> Any:
    """One webhook dispatcher for the server, in this process (the workers only answer requests):
    it follows the event log from each hook's durable cursor and signs with the hook's secret."""
    from mloop.registry import WebhookDispatcher
    from mloop.store import create_store

    store = create_store(store_uri, heartbeat_timeout_s=3 * settings.heartbeat_s)
    return WebhookDispatcher(store).start()


def _limits(text: str, burst: int | None) -> dict[str, Any]:
    """``--rate-limit`` and ``--burst`` as ``ServerConfig`` fields."""
    from mloop.server import RateLimit

    if text.strip().lower() in ("off", "none", "0"):
        if burst is not None:
            raise InvalidInputError("--burst needs a --rate-limit (it is 'off').")
        return {"rate_limit": None, "burst": None}
    limit = RateLimit.parse(text, burst=burst)
    return {"rate_limit": limit.per_second, "burst": limit.burst}


def _warn_without_tokens(store_uri: str) -> None:
    """Say so when no token can call the server yet (every request would be a 401)."""
    from mloop.store import create_store

    store = create_store(store_uri)
    try:
        usable = [t for t in store.list_tokens(include_revoked=False) if t.status() == "active"]
    finally:
        store.close()
    if not usable:
        typer.echo(
            "mloop server: no active token: every request will be refused (401) until one is "
            "created on this host: mloop token create --name NAME --role read|write|admin",
            err=True,
        )
    elif not any(t.role == "admin" for t in usable):
        typer.echo(
            "mloop server: no active admin token: webhooks and maintenance need one "
            "(mloop token create --name NAME --role admin)",
            err=True,
        )


def ui(
    port: Annotated[
        int, typer.Option(help="Port to listen on (on loopback only); 0 picks a free one.")
    ] = 5050,
    open_browser: Annotated[
        bool,
        typer.Option("--open/--no-open", help="Open the UI in the default web browser."),
    ] = True,
    store_uri: Annotated[
        str | None,
        typer.Option(help="The metadata store (default: MLOOP_STORE_URI, else MLOOP_HOME)."),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(help="The artifacts (default: MLOOP_ARTIFACT_URI, else MLOOP_HOME)."),
    ] = None,
) -> None:
    """Open the web UI over the local store (runs, charts, artifacts, comparisons), served on
    127.0.0.1 only. A team server shows the same pages at http://HOST:PORT/ui/."""
    import threading
    import webbrowser

    from mloop.server import ServerConfig, run_server
    from mloop.store import upgrade_store

    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port must be in [0, 65535]; got {port}.")
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ONLY}
    s = Settings.from_env(env, store_uri=store_uri, artifact_uri=artifact_uri)
    config = ServerConfig(
        store_uri=s.store_uri,
        artifact_uri=s.artifact_uri,
        presign_s=0,
        heartbeat_timeout_s=3 * s.heartbeat_s,
        staging_dir=str(s.home.absolute() / "staging"),
    )
    upgrade_store(config.store_uri)
    config.check_artifacts()  # a broken artifact location is one clear error, before listening
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}/ui/"
    typer.echo(f"mloop ui: {config.describe()}; open {url} (Ctrl+C stops it)", err=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    run_server(config, host="127.0.0.1", port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("server")(server)
    app.command("ui")(ui)
