"""Monitor windows and alerts, and the inference log's index and labels: each route calls the
store's public method, which validates exactly as it does in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mloop.store import Store

__all__ = ["HANDLERS"]


def _log_monitor_result(s: Store, **record: Any) -> Any:
    return s.log_monitor_result(record)


def _page(limit: int | None) -> int:
    return 1000 if limit is None else limit


def _after(after_id: int | None) -> int:
    return 0 if after_id is None else after_id


HANDLERS: dict[str, Callable[..., Any]] = {
    "log_monitor_result": _log_monitor_result,
    "list_monitor_results": lambda s, monitor, after_id, limit: s.list_monitor_results(
        monitor, after_id=_after(after_id), limit=_page(limit)
    ),
    "list_monitor_alerts": lambda s, monitor, after_id, limit: s.list_monitor_alerts(
        monitor=monitor, after_id=_after(after_id), limit=_page(limit)
    ),
    "list_monitors": lambda s, limit: s.list_monitors(limit=_page(limit)),
    "add_inference_chunk": lambda s, deployment, **chunk: s.add_inference_chunk(
        deployment, **chunk
    ),
    "list_inference_chunks": lambda s, deployment, after_id, limit, **kw: s.list_inference_chunks(
        deployment, after_id=_after(after_id), limit=_page(limit), **kw
    ),
    "delete_inference_chunks": lambda s, deployment, ids: s.delete_inference_chunks(
        deployment, ids
    ),
    "log_labels": lambda s, deployment, labels, ts_ms: s.log_labels(
        deployment, labels, ts_ms=ts_ms
    ),
    "get_labels": lambda s, deployment, request_ids: s.get_labels(deployment, request_ids),
    "list_labels": lambda s, deployment, after_id, limit: s.list_labels(
        deployment, after_id=_after(after_id), limit=_page(limit)
    ),
}
