"""Settings: declared once (name, type, default, doc), resolved once, passed inward.

Only :func:`Settings.from_env` reads the environment; the CLI and the SDK's entry points call it, every
layer below receives a :class:`Settings` (or the pieces it needs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from mloop.errors import InvalidInputError

__all__ = ["Settings"]

Mode = Literal["online", "offline"]


@dataclass(frozen=True)
class Settings:
    """Resolved configuration.

    Attributes
    ----------
    home : Path
        ``MLOOP_HOME`` (default ``./.mloop``): the SQLite file, local artifacts and the spool live here.
    store_uri : str
        ``MLOOP_STORE_URI``; default ``sqlite:///$MLOOP_HOME/mloop.db``. ``postgresql+psycopg://...``
        selects PostgreSQL.
    artifact_uri : str
        ``MLOOP_ARTIFACT_URI``; default ``$MLOOP_HOME/artifacts``, or the team server itself when the
        store is one (``MLOOP_SERVER_URL``, or an ``http(s)://`` store URI): artifacts then go
        through the server, which keeps them in its own artifact store. Any fsspec URL
        (``s3://bucket/prefix``), a local folder, or an ``http(s)://`` server URL.
    mode : {"online", "offline"}
        ``MLOOP_MODE``. Offline writes every batch to the spool; ``mloop sync`` replays it.
    heartbeat_s : float
        ``MLOOP_HEARTBEAT_S`` (default 30): how often a live run says it is alive. A run whose heartbeat
        is older than ``3 * heartbeat_s`` is reported as ``killed``.
    flush_interval_s : float
        ``MLOOP_FLUSH_INTERVAL_S`` (default 1): the background writer's maximum batching delay.
    flush_timeout_s : float
        ``MLOOP_FLUSH_TIMEOUT_S`` (default 60): how long ``finish()`` and interpreter exit wait for the
        buffer to drain before spooling the rest and warning.
    server_url, token : str or None
        ``MLOOP_SERVER_URL`` / ``MLOOP_TOKEN`` for a team server: with no ``MLOOP_STORE_URI``, the
        server is the store (``HttpStore``); the token is sent with every request.
    pipeline_cache : bool
        ``MLOOP_PIPELINE_CACHE`` (default on; ``0``/``false``/``off`` turns it off): whether pipeline
        steps reuse the outputs of an earlier step run with the same inputs, parameters and code.
    """

    home: Path = field(default_factory=lambda: Path(".mloop"))
    store_uri: str = ""
    artifact_uri: str = ""
    mode: Mode = "online"
    heartbeat_s: float = 30.0
    flush_interval_s: float = 1.0
    flush_timeout_s: float = 60.0
    server_url: str | None = None
    token: str | None = None
    pipeline_cache: bool = True

    def __post_init__(self) -> None:
        home = Path(self.home)
        object.__setattr__(self, "home", home)
        if not self.store_uri and self.server_url:
            # MLOOP_SERVER_URL alone: the team server is the store
            object.__setattr__(self, "store_uri", self.server_url)
        if not self.store_uri:
            object.__setattr__(self, "store_uri", f"sqlite:///{(home / 'mloop.db').absolute()}")
        if not self.artifact_uri:
            # A team server keeps the artifacts of the runs it stores: without an artifact URI of
            # its own, a client sends them there, not to a folder no one else can read.
            artifacts = (
                self.store_uri if self.store_is_server else str((home / "artifacts").absolute())
            )
            object.__setattr__(self, "artifact_uri", artifacts)
        if self.mode not in ("online", "offline"):
            raise InvalidInputError(
                f"`MLOOP_MODE` must be 'online' or 'offline'; got {self.mode!r}."
            )

    @property
    def store_is_server(self) -> bool:
        """True when the store is a team server (``http(s)://``), not a database."""
        return self.store_uri.lower().startswith(("http://", "https://"))

    @property
    def spool_dir(self) -> Path:
        return self.home.absolute() / "spool"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Resolve settings from ``env`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if env is None else env

        def _float(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInputError(f"`{name}` must be a number; got {raw!r}.") from None
            if value <= 0:
                raise InvalidInputError(f"`{name}` must be > 0; got {raw!r}.")
            return value

        def _switch(name: str, default: bool) -> bool:
            raw = (env.get(name) or "").strip().lower()
            if not raw:
                return default
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise InvalidInputError(f"`{name}` must be 1/true/on or 0/false/off; got {raw!r}.")

        settings = cls(
            home=Path(env.get("MLOOP_HOME") or ".mloop"),
            store_uri=env.get("MLOOP_STORE_URI", ""),
            artifact_uri=env.get("MLOOP_ARTIFACT_URI", ""),
            mode=env.get("MLOOP_MODE", "online") or "online",  # type: ignore[arg-type]
            heartbeat_s=_float("MLOOP_HEARTBEAT_S", 30.0),
            flush_interval_s=_float("MLOOP_FLUSH_INTERVAL_S", 1.0),
            flush_timeout_s=_float("MLOOP_FLUSH_TIMEOUT_S", 60.0),
            server_url=env.get("MLOOP_SERVER_URL") or None,
            token=env.get("MLOOP_TOKEN") or None,
            pipeline_cache=_switch("MLOOP_PIPELINE_CACHE", True),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "home" in clean:
            # A different home moves the defaults that derive from it (not a team server's URL).
            base = cls(
                home=Path(str(clean["home"])),
                store_uri=str(clean.get("store_uri") or env.get("MLOOP_STORE_URI", "")),
                artifact_uri=str(clean.get("artifact_uri") or env.get("MLOOP_ARTIFACT_URI", "")),
                server_url=str(clean.get("server_url") or settings.server_url or "") or None,
            )
            clean.setdefault("store_uri", base.store_uri)
            clean.setdefault("artifact_uri", base.artifact_uri)
        return replace(settings, **clean) if clean else settings  # type: ignore[arg-type]
