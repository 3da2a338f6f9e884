"""The serving app: MLflow's scoring protocol, the Open Inference Protocol v2, health, metrics,
feedback. Routes are thin: read the request, call the served model, answer.

Every response carries ``X-Request-Id`` (the caller's, or a new one) and, for predictions,
``X-Mloop-Model-Version`` (``churn/3``): the version that answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mloop.errors import MloopError
from mloop.registry import Registry

from ._http import (
    JSON,
    Answer,
    ServingApp,
    as_failure,
    error_answer,
    error_response,
    read_labels,
    read_request_body,
    receive_body,
    request_id,
    rid_of,
)
from ._model import ServedModel, as_serving_error
from ._oip import infer_request, infer_response, model_metadata
from ._payload import ServingError, encode_predictions, load_json, parse_invocation
from ._state import ServeOptions, ServingState
from ._traffic import ServeSpec

__all__ = ["ServeOptions", "create_app"]


def create_app(
    spec: ServeSpec | str,
    *,
    registry: Registry | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """The ASGI app serving ``spec`` (a :class:`ServeSpec` or a ``models:/`` URI)."""
    if isinstance(spec, str):
        spec = ServeSpec(model=spec)
    state = ServingState(registry or Registry(), spec, options or ServeOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start_async()
        try:
            yield
        finally:
            await state.stop_async()

    app = ServingApp(
        title="mloop serve",
        summary=f"Serving {spec.name}",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.mloop = state
    _routes(app, state)
    return app


def _routes(app: ServingApp, state: ServingState) -> None:
    metrics = state.metrics
    opts = state.options

    async def scored(
        header: Callable[[str], str | None],
        read_body: Callable[[], Awaitable[bytes]],
        endpoint: str,
        read: Callable[[bytes, ServedModel], tuple[Any, dict[str, Any] | None, Any]],
        answer: Callable[[ServedModel, Any, Any], bytes],
    ) -> Answer:
        t0 = time.perf_counter()
        rid = request_id(header("x-request-id"))
        model: ServedModel | None = None
        batcher = state.batcher
        token = batcher.arrive() if batcher is not None else None
        try:
            if not state.ready or state.controller is None:
                raise ServingError(503, "TEMPORARILY_UNAVAILABLE", "The model is not loaded yet.")
            body = await read_body()
            traffic = state.controller.traffic
            sticky = traffic.spec.sticky_key
            model = traffic.pick(header(sticky.lower()) if sticky else None)
            data, params, extra = read(body, model)
            data = model.prepare(data)
            predictions = await state.predict(model, data, params, token)
            content = answer(model, predictions, extra)
            if state.logger is not None or traffic.shadow is not None:
                state.record(rid, model, data, predictions, traffic.shadow)
            result = Answer(200, content, JSON, {}, rid, model.label_header)
        except Exception as exc:
            failure = as_failure(exc, rid, opts.timeout_s)
            result = error_answer(failure, rid)
            metrics.errors.labels(failure.error_code).inc()
            if model is not None:
                result.version = model.label_header
        if token is not None and token[0]:
            batcher.depart(token)  # type: ignore[union-attr]  # it never reached the queue
        elapsed = time.perf_counter() - t0
        metrics.observe(endpoint, result.status, elapsed)
        if state.minutes is not None:
            state.minutes.observe(result.status, elapsed)
        return result

    @app.post("/invocations", summary="Score rows (MLflow scoring protocol)")
    async def invocations(request: Request) -> Response:
        """Declared for the OpenAPI document; requests are answered by :func:`hot_invocations`."""
        return await hot_invocations(request.scope, request.receive, None)  # type: ignore[return-value]

    async def hot_invocations(scope: Any, receive: Any, send: Any) -> Response | None:
        raw = dict(scope["headers"])  # lower-case names (ASGI); decoded only when asked for

        def header(name: str) -> str | None:
            value = raw.get(name.encode("latin-1"))
            return None if value is None else value.decode("latin-1")

        content_type = header("content-type")

        async def read_body() -> bytes:
            return await receive_body(receive, header("content-length"), opts.max_body_bytes)

        def read(body: bytes, model: ServedModel) -> tuple[Any, Any, Any]:
            parsed = parse_invocation(body, content_type)
            return parsed.data, parsed.params, None

        result = await scored(
            header, read_body, "invocations", read, lambda m, p, e: encode_predictions(p)
        )
        if send is None:
            return result.response()
        await result.send(send)
        return None

    app.hot_routes = {("POST", "/invocations"): hot_invocations}

    async def infer(request: Request, name: str, version: str | None) -> Response:
        def read(body: bytes, model: ServedModel) -> tuple[Any, Any, Any]:
            _check_model(name, version, model)
            data, oip_id, params = infer_request(body, model.signature)
            return data, params, (oip_id, params)

        def answer(model: ServedModel, predictions: Any, extra: Any) -> bytes:
            oip_id, _ = extra
            doc = infer_response(model.name, str(model.version.version), oip_id, predictions)
            return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=str)

        async def read_body() -> bytes:
            return await read_request_body(request, opts.max_body_bytes)

        result = await scored(request.headers.get, read_body, "infer", read, answer)
        return result.response()

    def _check_model(name: str, version: str | None, model: ServedModel) -> None:
        assert state.controller is not None
        known = {m.name for _, m in state.controller.traffic.served()}
        if name not in known:
            err = ServingError(
                404, "NOT_FOUND", f"Model {name!r} is not served here; serving {sorted(known)}."
            )
            err.details["oip"] = True
            raise err
        if version is not None and version != str(model.version.version):
            served = sorted(
                {
                    str(m.version.version)
                    for _, m in state.controller.traffic.served()
                    if m.name == name
                }
            )
            if version not in served:
                err = ServingError(
                    404,
                    "NOT_FOUND",
                    f"Model {name!r} version {version} is not served here; serving {served}.",
                )
                err.details["oip"] = True
                raise err

    @app.post("/v2/models/{name}/infer", summary="Infer (Open Inference Protocol v2)")
    async def oip_infer(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", summary="Infer a version (OIP v2)")
    async def oip_infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    # ------------------------------------------------------------------ health and metadata
    def ping_response() -> Response:
        ok = state.ready
        return Response("\n", 200 if ok else 503, media_type=JSON)

    @app.get("/ping", summary="Health (MLflow)")
    async def ping() -> Response:
        return ping_response()

    @app.get("/health", summary="Health (MLflow)")
    async def health() -> Response:
        return ping_response()

    @app.get("/version", summary="The mloop version")
    async def version() -> Response:
        from importlib.metadata import version as dist_version

        return Response(dist_version("mloop"), 200, media_type=JSON)

    @app.get("/v2/health/live")
    async def live() -> Response:
        return Response(orjson.dumps({"live": True}), 200, media_type=JSON)

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return Response(
            orjson.dumps({"ready": state.ready}), 200 if state.ready else 503, media_type=JSON
        )

    @app.get("/v2")
    async def server_metadata() -> Response:
        from importlib.metadata import version as dist_version

        doc = {
            "name": "mloop",
            "version": dist_version("mloop"),
            "extensions": ["metrics", "feedback"],
        }
        return Response(orjson.dumps(doc), 200, media_type=JSON)

    def metadata(name: str, version: str | None) -> Response:
        if state.controller is None:
            return Response(orjson.dumps({"error": "not loaded"}), 503, media_type=JSON)
        traffic = state.controller.traffic
        models = [m for _, m in traffic.served() if m.name == name]
        if version is not None:
            models = [m for m in models if str(m.version.version) == version]
        if not models:
            return Response(
                orjson.dumps({"error": f"Model {name!r} (version {version}) is not served here."}),
                404,
                media_type=JSON,
            )
        m = models[0]
        versions = sorted({str(x.version.version) for _, x in traffic.served() if x.name == name})
        doc = model_metadata(name, versions, f"mloop_{m.model.flavor}", m.signature)
        return Response(orjson.dumps(doc), 200, media_type=JSON)

    @app.get("/v2/models/{name}")
    async def oip_model(name: str) -> Response:
        return metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    async def oip_model_version(name: str, version: str) -> Response:
        return metadata(name, version)

    def model_ready(name: str, version: str | None) -> Response:
        r = metadata(name, version)
        if r.status_code != 200:
            return r
        return Response(orjson.dumps({"name": name, "ready": state.ready}), 200, media_type=JSON)

    @app.get("/v2/models/{name}/ready")
    async def oip_model_ready(name: str) -> Response:
        return model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def oip_model_version_ready(name: str, version: str) -> Response:
        return model_ready(name, version)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        content, ctype = state.metrics.render()
        return Response(content, 200, media_type=ctype)

    @app.get("/serving", summary="What serves now: versions per slot, swaps, the spec")
    async def serving() -> Response:
        if state.controller is None:
            return Response(orjson.dumps({"ready": False}), 503, media_type=JSON)
        c = state.controller
        t = c.traffic
        doc = {
            "ready": state.ready,
            "name": t.spec.name,
            "deployment": t.spec.deployment,
            "spec": {
                k: getattr(t.spec, k)
                for k in ("model", "canary", "canary_percent", "shadow", "sticky_key", "revision")
            },
            "models": {
                slot: {"uri": m.uri, "version": m.label, "loaded_ms": m.loaded_ms}
                for slot, m in t.served()
            },
            "swaps": c.swaps,
            "failed_swaps": c.failed_swaps,
            "logging": None
            if state.logger is None
            else dict(getattr(state.logger, "stats", {}) or {}),
        }
        return Response(orjson.dumps(doc, default=str), 200, media_type=JSON)

    @app.post("/feedback", summary="Labels for earlier requests, joined in the inference log")
    async def feedback(request: Request) -> Response:
        rid = rid_of(request)
        try:
            body = await read_request_body(request, opts.max_body_bytes)
            labels = read_labels(load_json(body))
            n = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: state.registry.store.log_labels(state.spec.name, labels),
            )
        except ServingError as err:
            return error_response(err, rid)
        except MloopError as exc:
            return error_response(as_serving_error(exc), rid)
        return Response(
            orjson.dumps({"stored": n}), 200, media_type=JSON, headers={"X-Request-Id": rid}
        )
