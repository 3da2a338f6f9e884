"""Monitor results and alerts: the monitoring engine's persistence seam (one row per window)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._validation import validate_name

__all__ = ["MonitorAlert", "MonitorResult", "MonitorStoreMixin"]


@dataclass(frozen=True)
class MonitorResult(WireEntity):
    """One completed window of a monitor: its JSON result (drift, quality, performance)."""

    id: int
    monitor: str
    window_index: int
    window_start: Any
    window_end: Any
    n_rows: int
    result: Mapping[str, Any]
    created_ms: int


@dataclass(frozen=True)
class MonitorAlert(WireEntity):
    """An alert a monitor fired; ``id`` is a cursor the retraining trigger follows."""

    id: int
    monitor: str
    window_index: int
    name: str
    severity: str
    message: str
    created_ms: int
    payload: Mapping[str, Any]


def _get(record: Any, key: str) -> Any:
    if isinstance(record, Mapping):
        return record[key]
    return getattr(record, key)


class MonitorStoreMixin(abc.ABC):
    def log_monitor_result(self, record: Any) -> MonitorResult:
        """Persist one window (a ``MonitorRecord`` or a mapping with the same keys) and its alerts."""
        try:
            monitor = validate_name(_get(record, "monitor"), what="monitor name")
            window_index = int(_get(record, "window_index"))
            n_rows = int(_get(record, "n_rows"))
            result = dict(_get(record, "result"))
            alerts = [dict(a) for a in _get(record, "alerts")]
            start, end = _get(record, "window_start"), _get(record, "window_end")
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"monitor record is incomplete or malformed: {exc}.") from None
        return self._do_log_monitor_result(
            monitor, window_index, start, end, n_rows, result, alerts
        )

    def list_monitor_results(
        self, monitor: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[MonitorResult]:
        from mloop.store._common import validate_max_results

        validate_max_results(limit, name="limit")
        return self._do_list_monitor_results(
            validate_name(monitor, what="monitor name"), int(after_id), limit
        )

    def list_monitor_alerts(
        self, *, monitor: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[MonitorAlert]:
        """Alerts in firing order after the cursor ``after_id`` (all monitors, or one)."""
        from mloop.store._common import validate_max_results

        validate_max_results(limit, name="limit")
        if monitor is not None:
            validate_name(monitor, what="monitor name")
        return self._do_list_monitor_alerts(monitor, int(after_id), limit)

    def list_monitors(self, *, limit: int = 1000) -> list[MonitorResult]:
        """Every monitor that stored a window, by name: each one's newest window (its name, index,
        bounds and result), which is what a list of monitors shows."""
        from mloop.store._common import validate_max_results

        validate_max_results(limit, name="limit")
        return self._do_list_monitors(limit)

    @abc.abstractmethod
    def _do_log_monitor_result(
        self,
        monitor: str,
        window_index: int,
        start: Any,
        end: Any,
        n_rows: int,
        result: dict[str, Any],
        alerts: list[dict[str, Any]],
    ) -> MonitorResult: ...
    @abc.abstractmethod
    def _do_list_monitor_results(
        self, monitor: str, after_id: int, limit: int
    ) -> list[MonitorResult]: ...
    @abc.abstractmethod
    def _do_list_monitor_alerts(
        self, monitor: str | None, after_id: int, limit: int
    ) -> list[MonitorAlert]: ...
    @abc.abstractmethod
    def _do_list_monitors(self, limit: int) -> list[MonitorResult]: ...
