"""``GET /metrics``: Prometheus text format, through ``prometheus_client``.

With several workers the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before they start, and every
worker's numbers are summed on scrape (prometheus_client's multiprocess mode), so any worker
answers for all of them.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

__all__ = ["ServingMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)


class _Histogram:
    """Bucket counts and a sum, kept in plain Python numbers (one bisect per observation)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        from prometheus_client.utils import floatToGoString

        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), running))
        return out


class _Collector:
    """Exports the per-request numbers at scrape time (prometheus_client's collector protocol)."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Any:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.metrics
        requests = CounterMetricFamily("mloop_requests", _REQUESTS_DOC, labels=["endpoint", "code"])
        for (endpoint, code), n in sorted(m._requests.items()):
            requests.add_metric([endpoint, code], n)
        yield requests
        latency = HistogramMetricFamily(
            "mloop_request_duration_seconds", _LATENCY_DOC, labels=["endpoint"]
        )
        for endpoint, h in sorted(m._latency.items()):
            latency.add_metric([endpoint], h.buckets(), h.total)
        yield latency
        rows = HistogramMetricFamily("mloop_predict_batch_rows", _ROWS_DOC)
        rows.add_metric([], m._rows.buckets(), m._rows.total)
        yield rows
        if m.queue_rows is not None:
            yield GaugeMetricFamily(
                "mloop_batch_queue_rows", "Rows waiting for the micro-batcher.", m.queue_rows()
            )


_REQUESTS_DOC = "Requests answered, by endpoint and status."
_LATENCY_DOC = "Time from request received to response ready, by endpoint."
_ROWS_DOC = "Rows per model call (with micro-batching, several requests' rows)."


class ServingMetrics:
    """The server's counters and histograms (one instance per app).

    Requests, their latency and the rows per model call are counted on every request: with one
    process they are plain Python numbers exported when scraped (a dict update and a bisect per
    request instead of prometheus_client's locked values: a few microseconds of a ~170 us
    request); with several workers they go through prometheus_client's multiprocess files. All of
    them are observed on the event loop's thread.
    """

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
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._rows = _Histogram(_ROW_BUCKETS)
        self.queue_rows: Callable[[], int] | None = None  # set when micro-batching
        if self.multiprocess:
            self._mp_requests = Counter("mloop_requests", _REQUESTS_DOC, ["endpoint", "code"], **kw)
            self._mp_latency = Histogram(
                "mloop_request_duration_seconds",
                _LATENCY_DOC,
                ["endpoint"],
                buckets=_LATENCY_BUCKETS,
                **kw,
            )
            self._mp_rows = Histogram(
                "mloop_predict_batch_rows", _ROWS_DOC, buckets=_ROW_BUCKETS, **kw
            )
        else:
            assert registry is not None
            registry.register(_Collector(self))
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

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        """One request answered."""
        if self.multiprocess:
            self._mp_requests.labels(endpoint, str(code)).inc()
            self._mp_latency.labels(endpoint).observe(seconds)
            return
        key = (endpoint, str(code))
        self._requests[key] = self._requests.get(key, 0) + 1
        h = self._latency.get(endpoint)
        if h is None:
            h = self._latency[endpoint] = _Histogram(_LATENCY_BUCKETS)
        h.observe(seconds)

    def observe_batch(self, rows: int) -> None:
        """One model call on ``rows`` rows."""
        if self.multiprocess:
            self._mp_rows.observe(rows)
        else:
            self._rows.observe(rows)

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
