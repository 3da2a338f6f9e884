"""The serving app: MLflow's scoring protocol, the Open Inference Protocol v2, health, metrics,
feedback. Routes are thin: read the request, call the served model, answer.

Every response carries ``X-Request-Id`` (the caller's, or a new one) and, for predictions,
``X-Mloop-Model-Version`` (``churn/3``): the version that answered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mloop.errors import MloopError
from mloop.registry import Registry, validate_input

from ._batcher import Batcher
from ._metrics import ServingMetrics
from ._model import ServedModel, as_serving_error
from ._oip import infer_request, infer_response, model_metadata
from ._payload import (
    Block,
    ServingError,
    bad_request,
    encode_predictions,
    load_json,
    parse_invocation,
)
from ._traffic import Controller, ServeSpec

__all__ = ["ServeOptions", "create_app"]

log = logging.getLogger("mloop.serving")

JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ServeOptions:
    """How the server behaves (the ``mloop serve`` flags)."""

    max_body_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 60.0
    max_batch_size: int | None = None
    max_wait_ms: float = 5.0
    max_queue_rows: int | None = None
    log_sample: float = 0.0
    log_flush_rows: int = 10_000
    log_flush_interval_s: float = 1.0
    verify: bool = True
    follow: bool = True
    shadow_queue: int = 1000
    inline_below_s: float = 0.002

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if not 0.0 <= self.log_sample <= 1.0:
            raise ValueError(f"log_sample must be in [0, 1]; got {self.log_sample!r}")
        if self.max_batch_size is not None and self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")


class _State:
    """What the routes share: the controller, the predict runner, metrics, the inference log."""

    def __init__(self, registry: Registry, spec: ServeSpec, options: ServeOptions) -> None:
        self.registry = registry
        self.spec = spec
        self.options = options
        self.metrics = ServingMetrics()
        self.controller: Controller | None = None
        self.batcher: Batcher | None = None
        self.logger: Any = None
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mloop-predict")
        self.shadow_executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="mloop-shadow"
        )
        self.shadow_pending = 0
        self.shadow_lock = threading.Lock()
        self.ready = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        reg = self.registry
        self.controller = Controller(
            reg,
            self.spec,
            on_swap=self._swapped,
            on_swap_failed=self._swap_failed,
            follow=self.options.follow,
        )
        self._publish_models([])
        if self.options.follow:
            self.controller.start()
        if self.options.log_sample > 0:
            from mloop.inference import InferenceLogger

            self.logger = InferenceLogger(
                self.spec.name,
                store=reg.store,
                blobstore=reg.blobstore,
                sample=self.options.log_sample,
                flush_rows=self.options.log_flush_rows,
                flush_interval_s=self.options.log_flush_interval_s,
            )
        self.ready = True

    async def start_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        if self.options.max_batch_size:
            self.batcher = Batcher(
                max_batch_size=self.options.max_batch_size,
                max_wait_ms=self.options.max_wait_ms,
                max_queue_rows=self.options.max_queue_rows,
                on_batch=self.metrics.batch_rows.observe,
                inline_below_s=self.options.inline_below_s,
            )
            self.batcher.start()

    async def stop_async(self) -> None:
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()
        if self.controller is not None:
            self.controller.stop()
        self.executor.shutdown(wait=True)
        self.shadow_executor.shutdown(wait=True)
        if self.logger is not None:
            self.logger.close()

    # ------------------------------------------------------------------ swaps
    def _served(self) -> list[tuple[str, str, int]]:
        assert self.controller is not None
        return [(s, m.name, m.version.version) for s, m in self.controller.traffic.served()]

    def _publish_models(self, previous: list[tuple[str, str, int]]) -> None:
        self.metrics.set_models(self._served(), previous)
        self._last_served = self._served()

    def _swapped(self, slot: str, new: ServedModel, old: ServedModel | None) -> None:
        self.metrics.swaps.labels(slot, "ok").inc()
        self._publish_models(getattr(self, "_last_served", []))
        log.info(
            "mloop serve: %s now serves %s (was %s; loaded in %.0f ms)",
            slot,
            new.label,
            old.label if old else None,
            new.load_s * 1000,
        )
        self._event(
            "serving_swapped",
            {
                "slot": slot,
                "uri": new.uri,
                "to": new.label,
                "from": old.label if old else None,
                "load_ms": round(new.load_s * 1000, 1),
            },
        )

    def _swap_failed(self, uri: str, kept: str, exc: BaseException) -> None:
        self.metrics.swaps.labels("main", "failed").inc()
        self._event(
            "serving_swap_failed",
            {"uri": uri, "kept": kept, "error": f"{type(exc).__name__}: {exc}"},
        )

    def _event(self, type: str, payload: dict[str, Any]) -> None:
        subject = (
            f"deployments/{self.spec.deployment}"
            if self.spec.deployment
            else f"models/{self.spec.name}"
        )
        payload = {**payload, "deployment": self.spec.deployment, "pid": _pid()}
        try:
            self.registry.store.append_event(type, subject, payload=payload)
        except MloopError as exc:
            log.warning("mloop serve: could not record %s: %s", type, exc)

    # ------------------------------------------------------------------ predicting
    async def predict(
        self,
        model: ServedModel,
        data: Any,
        params: dict[str, Any] | None,
        token: list[bool] | None = None,
    ) -> Any:
        """Validate and predict (in the batcher or the predict thread), within the timeout."""
        loop = asyncio.get_running_loop()
        timeout = self.options.timeout_s
        if self.batcher is not None and isinstance(data, pa.Table | Block):
            if isinstance(data, pa.Table) and model.signature is not None:
                try:  # each request's own errors are its own 400, before it joins a batch
                    data = validate_input(data, model.signature, to="arrow")
                except MloopError as exc:
                    raise as_serving_error(exc) from None
            return await asyncio.wait_for(self.batcher.predict(model, data, params, token), timeout)
        if isinstance(data, Block) and model.cost_s[0] < self.options.inline_below_s:
            # A fast-path call (a float64 array into a scikit-learn model) this short runs in the
            # event loop: a hand-off to a thread would cost more than the call and queue behind
            # the GIL. Everything else runs in the predict thread, where the timeout holds.
            return _predict_one(model, data, params, self.metrics)
        fut = loop.run_in_executor(self.executor, _predict_one, model, data, params, self.metrics)
        return await asyncio.wait_for(fut, timeout)

    def record(
        self,
        rid: str,
        model: ServedModel,
        features: Any,
        predictions: Any,
        shadow: ServedModel | None,
    ) -> None:
        """Log the request (and the shadow's answer) off the request path."""
        if self.logger is None and shadow is None:
            return
        if not isinstance(features, pa.Table | Block):
            features = None  # tensors are not logged
        ts_ms = int(time.time() * 1000)
        if shadow is None:
            self._log(rid, ts_ms, model, features, predictions, None, None)
            return
        with self.shadow_lock:
            if self.shadow_pending >= self.options.shadow_queue:
                shadow = None  # overloaded: the main answer is still logged, without the shadow
            else:
                self.shadow_pending += 1
        if shadow is None:
            self._log(rid, ts_ms, model, features, predictions, None, None)
            return
        self.shadow_executor.submit(
            self._run_shadow, rid, ts_ms, model, features, predictions, shadow
        )

    def _run_shadow(
        self,
        rid: str,
        ts_ms: int,
        model: ServedModel,
        features: Any,
        predictions: Any,
        shadow: ServedModel,
    ) -> None:
        try:
            try:
                shadow_out = shadow.predict(shadow.prepare(features))
            except Exception as exc:  # the shadow's failure never reaches the caller
                log.warning("mloop serve: shadow %s failed on %s: %s", shadow.label, rid, exc)
                self.metrics.errors.labels("SHADOW_ERROR").inc()
                shadow_out = None
            self._log(
                rid,
                ts_ms,
                model,
                features,
                predictions,
                shadow.label if shadow_out is not None else None,
                shadow_out,
            )
        finally:
            with self.shadow_lock:
                self.shadow_pending -= 1

    def _log(
        self,
        rid: str,
        ts_ms: int,
        model: ServedModel,
        features: Any,
        predictions: Any,
        shadow_version: str | None,
        shadow_predictions: Any,
    ) -> None:
        if self.logger is None or features is None:
            return
        try:
            self.logger.log(
                request_ids=rid,
                ts_ms=ts_ms,
                model_version=model.label,
                features=features,
                predictions=predictions,
                shadow_version=shadow_version,
                shadow_predictions=shadow_predictions,
            )
        except Exception:  # logging must never fail a request
            log.exception("mloop serve: could not log request %s", rid)


def _pid() -> int:
    return os.getpid()


def _predict_one(
    model: ServedModel, data: Any, params: dict[str, Any] | None, metrics: ServingMetrics
) -> Any:
    t0 = time.perf_counter()
    out = model.predict(data, params=params)
    cost = model.cost_s
    cost[0] += 0.1 * ((time.perf_counter() - t0) - cost[0])  # moving average of a call
    rows = getattr(data, "num_rows", None) or getattr(data, "shape", (1,))[0]
    metrics.batch_rows.observe(rows)
    return out


# ---------------------------------------------------------------------------------- the app


def create_app(
    spec: ServeSpec | str,
    *,
    registry: Registry | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """The ASGI app serving ``spec`` (a :class:`ServeSpec` or a ``models:/`` URI)."""
    if isinstance(spec, str):
        spec = ServeSpec(model=spec)
    state = _State(registry or Registry(), spec, options or ServeOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start_async()
        try:
            yield
        finally:
            await state.stop_async()

    app = _ServingApp(
        title="mloop serve",
        summary=f"Serving {spec.name}",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.mloop = state
    _routes(app, state)
    return app


Handler = Callable[[Any, Any, Any], Awaitable[Any]]


class _ServingApp(FastAPI):
    """FastAPI, with ``POST /invocations`` answered ahead of its middleware stack.

    The scoring route is the hot path: its handler catches every error itself, so FastAPI's
    exception middlewares, router and dependency solving add nothing to it but time (about a third
    of a request's). It is still declared as a FastAPI route, for the OpenAPI document.
    """

    hot_routes: dict[tuple[str, str], Handler]

    def build_middleware_stack(self) -> Any:
        return _HotPath(super().build_middleware_stack(), self.hot_routes)


class _HotPath:
    def __init__(self, app: Any, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _request_id(given: str | None) -> str:
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()  # as random as uuid4, in a third of the time


def _rid(request: Request) -> str:
    return _request_id(request.headers.get("x-request-id"))


def _too_large(limit: int, length: str | None = None) -> ServingError:
    what = f"The body is {length} bytes" if length else "The body is over the limit"
    return ServingError(413, "RESOURCE_LIMIT_EXCEEDED", f"{what}; the limit is {limit} bytes.")


async def _receive_body(receive: Any, length: str | None, limit: int) -> bytes:
    """The request body from ASGI messages, refused (413) past ``limit`` bytes."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit, length)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ServingError(400, "BAD_REQUEST", "The client disconnected.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass
class _Answer:
    """A response, sent as two raw ASGI messages on the hot path or as a Starlette Response."""

    status: int
    content: bytes
    media_type: str
    headers: dict[str, str]

    def response(self) -> Response:
        return Response(self.content, self.status, media_type=self.media_type, headers=self.headers)

    async def send(self, send: Any) -> None:
        raw = [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.content)).encode()),
        ]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.content})


async def _body(request: Request, limit: int) -> bytes:
    return await _receive_body(request.receive, request.headers.get("content-length"), limit)


def _error_answer(err: ServingError, rid: str) -> _Answer:
    headers = {"x-request-id": rid, **{k.lower(): v for k, v in err.headers.items()}}
    if err.plain:
        return _Answer(err.status, err.message.encode(), "text/plain; charset=utf-8", headers)
    if err.details.pop("oip", False):
        body: dict[str, Any] = {"error": err.message}
    else:
        body = err.body(rid if err.status >= 500 else None)
    return _Answer(err.status, orjson.dumps(body, default=str), JSON, headers)


def _error_response(err: ServingError, rid: str) -> Response:
    return _error_answer(err, rid).response()


def _as_failure(exc: Exception, rid: str, timeout_s: float) -> ServingError:
    """The answer to a failed request: MLflow's codes for input errors, 504, or a logged 500."""
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ServingError(
            504, "DEADLINE_EXCEEDED", f"Request processing time exceeded {timeout_s:g} s."
        )
    if isinstance(exc, MloopError):
        return as_serving_error(exc)
    log.error("mloop serve: predict failed for request %s", rid, exc_info=exc)
    return ServingError(
        500, "INTERNAL_ERROR", f"The model failed on request {rid}: {type(exc).__name__}: {exc}"
    )


def _routes(app: _ServingApp, state: _State) -> None:
    metrics = state.metrics
    opts = state.options

    async def scored(
        header: Callable[[str], str | None],
        read_body: Callable[[], Awaitable[bytes]],
        endpoint: str,
        read: Callable[[bytes, ServedModel], tuple[Any, dict[str, Any] | None, Any]],
        answer: Callable[[ServedModel, Any, Any], bytes],
    ) -> _Answer:
        t0 = time.perf_counter()
        rid = _request_id(header("x-request-id"))
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
            result = _Answer(
                200, content, JSON, {"x-request-id": rid, "x-mloop-model-version": model.label}
            )
        except Exception as exc:
            failure = _as_failure(exc, rid, opts.timeout_s)
            result = _error_answer(failure, rid)
            metrics.errors.labels(failure.error_code).inc()
            if model is not None:
                result.headers["x-mloop-model-version"] = model.label
        if token is not None and token[0]:
            batcher.depart(token)  # type: ignore[union-attr]  # it never reached the queue
        metrics.observe(endpoint, result.status, time.perf_counter() - t0)
        return result

    @app.post("/invocations", summary="Score rows (MLflow scoring protocol)")
    async def invocations(request: Request) -> Response:
        """Declared for the OpenAPI document; requests are answered by :func:`hot_invocations`."""
        return await hot_invocations(request.scope, request.receive, None)  # type: ignore[return-value]

    async def hot_invocations(scope: Any, receive: Any, send: Any) -> Response | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type")

        async def read_body() -> bytes:
            return await _receive_body(receive, headers.get("content-length"), opts.max_body_bytes)

        def read(body: bytes, model: ServedModel) -> tuple[Any, Any, Any]:
            parsed = parse_invocation(body, content_type)
            return parsed.data, parsed.params, None

        result = await scored(
            headers.get, read_body, "invocations", read, lambda m, p, e: encode_predictions(p)
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
            return await _body(request, opts.max_body_bytes)

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
        rid = _rid(request)
        try:
            body = await _body(request, opts.max_body_bytes)
            labels = _read_labels(load_json(body))
            n = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: state.registry.store.log_labels(state.spec.name, labels),
            )
        except ServingError as err:
            return _error_response(err, rid)
        except MloopError as exc:
            return _error_response(as_serving_error(exc), rid)
        return Response(
            orjson.dumps({"stored": n}), 200, media_type=JSON, headers={"X-Request-Id": rid}
        )


def _read_labels(doc: Any) -> list[tuple[str, Any]]:
    items = doc.get("labels") if isinstance(doc, dict) and "labels" in doc else [doc]
    if isinstance(doc, list):
        items = doc
    if not isinstance(items, list) or not items:
        raise bad_request('Send {"request_id": ..., "label": ...} or {"labels": [...]}.')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise bad_request(f"labels[{i}] needs `request_id` and `label`.")
        out.append((str(item["request_id"]), item["label"]))
    return out
