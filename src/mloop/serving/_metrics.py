"""``GET /metrics``: Prometheus text format, through ``prometheus_client``.

With several workers the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before they start, and every
worker's numbers are summed on scrape (prometheus_client's multiprocess mode), so any worker
answers for all of them.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ServingMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)


class ServingMetrics:
    """The server's counters and histograms (one instance per app)."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # no *_created series: scrapes stay small

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode values live in the shared folder; each app's own registry only
        # names them, and scrapes read every worker's files.
        registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self._registry = registry
        kw: dict[str, Any] = {"registry": registry}
        self.requests = Counter(
            "mloop_requests",
            "Requests answered, by endpoint and status.",
            ["endpoint", "code"],
            **kw,
        )
        self.latency = Histogram(
            "mloop_request_duration_seconds",
            "Time from request received to response ready, by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            **kw,
        )
        self.batch_rows = Histogram(
            "mloop_predict_batch_rows",
            "Rows per model call (with micro-batching, several requests' rows).",
            buckets=_ROW_BUCKETS,
            **kw,
        )
        self.errors = Counter(
            "mloop_errors", "Error responses, by error code.", ["error_code"], **kw
        )
        self.swaps = Counter(
            "mloop_model_swaps", "Model swaps, by slot and result.", ["slot", "result"], **kw
        )
        gauge_kw = dict(kw)
        if self.multiprocess:
            gauge_kw["multiprocess_mode"] = "liveall"
        self.model_info = Gauge(
            "mloop_model_version",
            "1 for each model version serving now, by slot (0 for one swapped out, with workers).",
            ["slot", "model", "version"],
            **gauge_kw,
        )
        self.queue_rows = Gauge(
            "mloop_batch_queue_rows",
            "Rows waiting for the micro-batcher.",
            **({**gauge_kw, "multiprocess_mode": "livesum"} if self.multiprocess else gauge_kw),
        )
        self._children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        key = (endpoint, str(code))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(endpoint, str(code))
        child.inc()
        lat = self._latency_children.get(endpoint)
        if lat is None:
            lat = self._latency_children[endpoint] = self.latency.labels(endpoint)
        lat.observe(seconds)

    def set_models(
        self, served: list[tuple[str, str, int]], previous: list[tuple[str, str, int]]
    ) -> None:
        for slot, model, version in previous:
            if self.multiprocess:  # values live in shared files, which remove() cannot clear
                self.model_info.labels(slot, model, str(version)).set(0)
                continue
            try:
                self.model_info.remove(slot, model, str(version))
            except KeyError:
                pass
        for slot, model, version in served:
            self.model_info.labels(slot, model, str(version)).set(1)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        assert self._registry is not None
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
