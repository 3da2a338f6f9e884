"""What a serving app holds: its options, the controller of what serves, the batcher, the
inference log and the shadow; and how one request is predicted."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mloop.errors import MloopError
from mloop.registry import Registry, validate_input

from ._batcher import Batcher
from ._metrics import ServingMetrics
from ._model import ServedModel, as_serving_error
from ._payload import Block, row_count
from ._traffic import Controller, ServeSpec

__all__ = ["ServeOptions", "ServingState", "predict_one"]

log = logging.getLogger("mloop.serving")


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
    # The inference log's clock: ms since the epoch for each logged request (default the real
    # one). A replay of recorded traffic sets it to place each request in the monitor window it
    # belongs to, without waiting for wall time.
    clock: Callable[[], int] | None = None
    # The model method that answers (default ``predict``), e.g. ``predict_proba``: a classifier
    # then answers (and logs) one score per class, which performance estimation (CBPE) needs.
    method: str | None = None

    def __post_init__(self) -> None:
        if self.method is not None and (
            not isinstance(self.method, str)
            or not self.method.isidentifier()
            or self.method.startswith("_")
        ):
            raise ValueError(
                f"method must name a public model method such as 'predict_proba'; "
                f"got {self.method!r}"
            )
        if self.clock is not None and not callable(self.clock):
            raise ValueError(f"clock must be a callable returning ms; got {self.clock!r}")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if not 0.0 <= self.log_sample <= 1.0:
            raise ValueError(f"log_sample must be in [0, 1]; got {self.log_sample!r}")
        if self.max_batch_size is not None and self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")


class ServingState:
    """What the routes share: the controller, the predict runner, metrics, the inference log."""

    def __init__(self, registry: Registry, spec: ServeSpec, options: ServeOptions) -> None:
        self.registry = registry
        self.spec = spec
        self.options = options
        self.metrics = ServingMetrics()
        self.controller: Controller | None = None
        self.batcher: Batcher | None = None
        self.logger: Any = None
        self.minutes: Any = None  # a MinuteRecorder when serving a deployment
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
            method=self.options.method,
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
        if self.spec.deployment:
            from mloop.serving._minutes import MinuteRecorder

            self.minutes = MinuteRecorder(reg.store, self.spec.deployment)
            self.minutes.start()
        self.ready = True

    async def start_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        # Everything alive now (the imported libraries, the loaded models) lives as long as the
        # server: out of the cyclic collector's sight, a full collection no longer walks it. That
        # is what kept the slowest 1% of requests at ~170 ms under micro-batched load (9 ms now).
        gc.collect()
        gc.freeze()
        if self.options.max_batch_size:
            self.batcher = Batcher(
                max_batch_size=self.options.max_batch_size,
                max_wait_ms=self.options.max_wait_ms,
                max_queue_rows=self.options.max_queue_rows,
                on_batch=self.metrics.observe_batch,
                inline_below_s=self.options.inline_below_s,
            )
            self.batcher.start()
            batcher = self.batcher
            self.metrics.queue_rows = lambda: batcher.queued_rows

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
        if self.minutes is not None:
            self.minutes.close()

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
        payload = {**payload, "deployment": self.spec.deployment, "pid": os.getpid()}
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
        self.metrics.observe_batch(row_count(data) or 1)
        if isinstance(data, Block) and model.cost_s[0] < self.options.inline_below_s:
            # A fast-path call (a float64 array into a scikit-learn model) this short runs in the
            # event loop: a hand-off to a thread would cost more than the call and queue behind
            # the GIL. Everything else runs in the predict thread, where the timeout holds.
            return predict_one(model, data, params)
        fut = loop.run_in_executor(self.executor, predict_one, model, data, params)
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
        ts_ms = int(time.time() * 1000) if self.options.clock is None else int(self.options.clock())
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


def predict_one(model: ServedModel, data: Any, params: dict[str, Any] | None) -> Any:
    t0 = time.perf_counter()
    out = model.predict(data, params=params)
    cost = model.cost_s
    cost[0] += 0.1 * ((time.perf_counter() - t0) - cost[0])  # moving average of a call
    return out
