"""``mloop serve``: a registered model (or a deployment) behind HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli._common import settings
from mloop.errors import InvalidInputError


def serve(
    target: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI|DEPLOYMENT",
            help="models:/NAME@ALIAS or models:/NAME/VERSION, or the name of a deployment "
            "(mloop deploy create).",
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    max_batch_size: Annotated[
        int | None,
        typer.Option(
            help="Micro-batching: predict concurrent requests together, up to this many rows."
        ),
    ] = None,
    max_wait_ms: Annotated[
        float | None,
        typer.Option(help="Micro-batching: how long a batch waits to fill (default 5)."),
    ] = None,
    max_queue_rows: Annotated[
        int | None,
        typer.Option(help="Micro-batching: rows allowed to wait before 503 (default 64 batches)."),
    ] = None,
    log_sample: Annotated[
        float | None,
        typer.Option(
            help="Share of requests recorded in the inference log, 0 to 1 (default: 1 for a "
            "deployment, 0 for a bare model URI)."
        ),
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option(help="Per-request timeout in seconds (504 past it; default 60).")
    ] = None,
    max_body_mb: Annotated[
        float | None, typer.Option(help="Largest request body in MB (413 past it; default 16).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="The model method that answers, e.g. predict_proba: a classifier then answers "
            "and logs one score per class (what performance estimation needs). Default: predict."
        ),
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Do not hot-swap when the alias moves.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve a model: MLflow's scoring protocol at POST /invocations, Open Inference Protocol v2
    under /v2, /ping, /health, /metrics, POST /feedback.

    The server follows the event log: when the alias it serves moves (a promotion, a rollback),
    the new version is loaded, verified and swapped in without dropping a request.
    """
    from mloop.serving import ServeOptions, resolve_target
    from mloop.serving import serve as run

    if workers < 1:
        raise InvalidInputError(f"--workers must be >= 1; got {workers}.")
    from mloop.registry import Registry
    from mloop.store import open_store

    s = settings()
    registry = Registry(settings=s, store=open_store(s, create=False))  # serving creates no store
    spec, options = resolve_target(target, registry=registry)
    for uri in (spec.model, spec.canary, spec.shadow):
        if uri is not None:
            registry.resolve(uri)  # a missing model or alias is one clear error, before listening
    given = {
        "max_batch_size": max_batch_size,
        "max_wait_ms": max_wait_ms,
        "max_queue_rows": max_queue_rows,
        "log_sample": log_sample,
        "timeout_s": timeout_s,
        "max_body_bytes": None if max_body_mb is None else int(max_body_mb * 1024 * 1024),
        "method": method,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if no_follow:
        options["follow"] = False
    try:
        serve_options = ServeOptions(**options)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"bad serve option: {exc}") from None
    run(spec, host=host, port=port, workers=workers, options=serve_options, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
