"""Monitor windows and alerts, and the inference log's index and labels, over HTTP.

The inference log itself (Parquet chunks) goes to the artifact store; only each chunk's index row
(its blob's sha256, size, row count and time range) travels here. Monitor and deployment names of
these records are free text (they may hold ``/``), so they travel in the query string or the
body, never in the path. A monitor window's bounds are sent as the SQL backends keep them (an
integer offset, or text), so a window reads back the same on every backend.
"""

from __future__ import annotations

import numbers
from typing import Any

from mloop.store._http._endpoint import Endpoint
from mloop.store._inference_base import InferenceChunk, InferenceLabel
from mloop.store._monitor_base import MonitorAlert, MonitorResult

__all__ = ["MONITORING_ENDPOINTS", "HttpMonitoringMixin"]


def _bound(value: Any) -> Any:
    """A window bound as stored: an int stays an int (row offsets), anything else is its text."""
    if value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        return None if value is None else int(value)
    return str(value)


_E = Endpoint
MONITORING_ENDPOINTS: tuple[Endpoint, ...] = (
    # ------------------------------------------------------------------ monitors
    _E("log_monitor_result", "POST", "/monitor-results",
       {"monitor": str, "window_index": int, "window_start": Any, "window_end": Any,
        "n_rows": int, "result": dict[str, Any], "alerts": list[dict[str, Any]]},
       MonitorResult,
       summary="Record a monitor's window and its alerts (with their events)"),
    _E("list_monitor_results", "GET", "/monitor-results",
       {"monitor": str, "after_id": int | None, "limit": int | None}, list[MonitorResult],
       summary="A monitor's windows after a cursor, oldest first"),
    _E("list_monitor_alerts", "GET", "/monitor-alerts",
       {"monitor": str | None, "after_id": int | None, "limit": int | None},
       list[MonitorAlert], summary="Alerts in firing order after a cursor (one monitor, or all)"),
    _E("list_monitors", "GET", "/monitors", {"limit": int | None}, list[MonitorResult],
       summary="Every monitor that stored a window, by name: each one's newest window"),
    # ------------------------------------------------------------------ inference log
    _E("add_inference_chunk", "POST", "/inference-chunks",
       {"deployment": str, "sha256": str, "size": int, "n_rows": int, "first_ts_ms": int,
        "last_ts_ms": int, "model_versions": dict[str, int]},
       InferenceChunk,
       summary="Index a chunk of the inference log written to the artifact store (idempotent)"),
    _E("list_inference_chunks", "GET", "/inference-chunks",
       {"deployment": str, "after_id": int | None, "since_ms": int | None,
        "until_ms": int | None, "limit": int | None},
       list[InferenceChunk],
       summary="A deployment's chunks after a cursor, overlapping [since_ms, until_ms)"),
    _E("delete_inference_chunks", "POST", "/inference-chunks/delete",
       {"deployment": str, "ids": list[int]}, int,
       summary="Remove index rows (retention); the number that existed"),
    _E("log_labels", "POST", "/inference-labels",
       {"deployment": str, "labels": dict[str, Any], "ts_ms": int | None}, int,
       summary="Labels of served requests, by request id (one transaction)"),
    _E("get_labels", "POST", "/inference-labels/lookup",
       {"deployment": str, "request_ids": list[str]}, dict[str, Any], role="read",
       summary="The labels of those request ids that have one"),
    _E("list_labels", "GET", "/inference-labels",
       {"deployment": str, "after_id": int | None, "limit": int | None},
       list[InferenceLabel], summary="A deployment's labels after a cursor"),
)  # fmt: skip


class HttpMonitoringMixin:
    """The monitor and inference-log parts of the store contract, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    # ------------------------------------------------------------------ monitors
    def _do_log_monitor_result(
        self,
        monitor: str,
        window_index: int,
        start: Any,
        end: Any,
        n_rows: int,
        result: dict[str, Any],
        alerts: list[dict[str, Any]],
    ) -> MonitorResult:
        return self._call(
            "log_monitor_result",
            monitor=monitor,
            window_index=window_index,
            window_start=_bound(start),
            window_end=_bound(end),
            n_rows=n_rows,
            result=result,
            alerts=alerts,
        )

    def _do_list_monitor_results(
        self, monitor: str, after_id: int, limit: int
    ) -> list[MonitorResult]:
        return self._call("list_monitor_results", monitor=monitor, after_id=after_id, limit=limit)

    def _do_list_monitor_alerts(
        self, monitor: str | None, after_id: int, limit: int
    ) -> list[MonitorAlert]:
        return self._call("list_monitor_alerts", monitor=monitor, after_id=after_id, limit=limit)

    def _do_list_monitors(self, limit: int) -> list[MonitorResult]:
        return self._call("list_monitors", limit=limit)

    # ------------------------------------------------------------------ inference log
    def _do_add_inference_chunk(
        self,
        deployment: str,
        sha256: str,
        size: int,
        n_rows: int,
        first_ts_ms: int,
        last_ts_ms: int,
        model_versions: dict[str, int],
    ) -> InferenceChunk:
        return self._call(
            "add_inference_chunk",
            deployment=deployment,
            sha256=sha256,
            size=size,
            n_rows=n_rows,
            first_ts_ms=first_ts_ms,
            last_ts_ms=last_ts_ms,
            model_versions=model_versions,
        )

    def _do_list_inference_chunks(
        self,
        deployment: str,
        after_id: int,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
    ) -> list[InferenceChunk]:
        return self._call(
            "list_inference_chunks",
            deployment=deployment,
            after_id=after_id,
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
        )

    def _do_delete_inference_chunks(self, deployment: str, ids: list[int]) -> int:
        return int(self._call("delete_inference_chunks", deployment=deployment, ids=list(ids)))

    def _do_log_labels(self, deployment: str, labels: dict[str, str], ts_ms: int | None) -> int:
        import json

        # The hook holds each label as JSON text (the SQL column); the wire carries the value.
        values = {rid: json.loads(text) for rid, text in labels.items()}
        return int(self._call("log_labels", deployment=deployment, labels=values, ts_ms=ts_ms))

    def _do_get_labels(self, deployment: str, request_ids: list[str]) -> dict[str, Any]:
        return self._call("get_labels", deployment=deployment, request_ids=list(request_ids))

    def _do_list_labels(self, deployment: str, after_id: int, limit: int) -> list[InferenceLabel]:
        return self._call("list_labels", deployment=deployment, after_id=after_id, limit=limit)
