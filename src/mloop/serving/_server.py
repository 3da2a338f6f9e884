"""``mloop serve``: run the serving app under uvicorn, with one process or several workers.

Workers are separate processes (uvicorn's multiprocess manager); each loads the models, follows
the event log and swaps on its own. They find what to serve in ``MLOOP_SERVE_CONFIG`` (JSON), set
by the parent, and share Prometheus numbers through ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

from fastapi import FastAPI

from mloop.errors import InvalidInputError

from ._app import ServeOptions, create_app
from ._traffic import ServeSpec

__all__ = ["app_from_env", "resolve_target", "serve"]

CONFIG_ENV = "MLOOP_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """The app a worker process builds from ``MLOOP_SERVE_CONFIG`` (uvicorn's factory)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start workers through `mloop serve`.")
    config = json.loads(raw)
    return create_app(ServeSpec(**config["spec"]), options=ServeOptions(**config["options"]))


def resolve_target(target: str, *, registry: Any = None) -> tuple[ServeSpec, dict[str, Any]]:
    """A ``models:/`` URI or a deployment's name -> (what to serve, its serve options).

    The options are a deployment's ``config`` (the ``ServeOptions`` it sets); a deployment logs
    every request unless its ``log_sample`` says otherwise, a bare model URI logs nothing unless
    asked. Flags given to ``mloop serve`` override them.
    """
    if target.startswith("models:/"):
        return ServeSpec(model=target), {"log_sample": 0.0}
    from mloop.registry import Registry

    reg = registry or Registry()
    dep = reg.store.get_deployment(target)
    return ServeSpec.from_deployment(dep), {"log_sample": 1.0, **dict(dep.config or {})}


def serve(
    spec: ServeSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    options: ServeOptions | None = None,
    log_level: str = "info",
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM drain in-flight requests and flush the log)."""
    import uvicorn

    options = options or ServeOptions()
    if workers > 1 and options.clock is not None:
        raise InvalidInputError(
            "a virtual `clock` lives in one process; serve it with workers=1 "
            f"(got workers={workers})."
        )
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    if workers <= 1:
        uvicorn.run(create_app(spec, options=options), **common)
        return
    config = {"spec": dataclasses.asdict(spec), "options": dataclasses.asdict(options)}
    os.environ[CONFIG_ENV] = json.dumps(config)
    metrics_dir = tempfile.mkdtemp(prefix="mloop-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("mloop.serving._server:app_from_env", factory=True, workers=workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
