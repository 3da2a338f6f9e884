"""What a Monitor produces per window (:class:`WindowResult`), what the persistence hook receives
(:class:`MonitorRecord`), and the hooks themselves (:class:`ResultSink`, :class:`StoreResultSink`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mloop.codec import WireEntity, dataclass_from_wire, dumps, to_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._alerts import Alert
from mloop.monitoring._cbpe import PerformanceEstimate
from mloop.monitoring._drift_result import DriftReport
from mloop.monitoring._performance import PerformanceReport
from mloop.monitoring._quality import QualityReport

__all__ = ["MonitorRecord", "ResultSink", "StoreResultSink", "WindowResult"]

log = logging.getLogger("mloop.monitoring")


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one completed window."""

    monitor: str
    index: int
    start: Any  # first row offset (row windows) or ISO-8601 UTC start (time windows)
    end: Any  # exclusive
    n_rows: int
    drift: Any = None  # DriftReport
    quality: QualityReport | None = None
    performance: PerformanceReport | None = None
    estimated_performance: PerformanceEstimate | None = None
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """The namespace alert rules read: drift fields at the top, then quality/performance."""
        ns: dict[str, Any] = {"n_rows": self.n_rows, "index": self.index}
        if self.drift is not None:
            ns["drifted"] = bool(self.drift.drifted)
            ns["share_drifted"] = float(self.drift.share_drifted)
            ns["n_drifted"] = int(self.drift.n_drifted)
            ns["columns"] = {
                str(name): {
                    "statistic": col.statistic,
                    "p_value": col.p_value,
                    "threshold": col.threshold,
                    "drifted": bool(col.drifted),
                    "n_current": col.n_current,
                }
                for name, col in self.drift.columns.items()
            }
        if self.quality is not None:
            per_column: dict[str, dict[str, Any]] = {}
            for c in self.quality.checks:
                if c.column is not None and isinstance(c.value, (int, float)):
                    per_column.setdefault(c.column, {})[c.check] = c.value
            ns["quality"] = {
                "passed": self.quality.passed,
                "n_failed": self.quality.n_failed,
                "n_warnings": self.quality.n_warnings,
                "columns": per_column,
            }
        if self.performance is not None:
            ns["performance"] = {**self.performance.metrics, "n": self.performance.n}
        if self.estimated_performance is not None:
            ns["estimated"] = dict(self.estimated_performance.metrics)
        return ns

    def summary(self) -> dict[str, Any]:
        """A small headline of the window in wire form (what a webhook carries)."""
        out: dict[str, Any] = {
            "monitor": self.monitor,
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "n_rows": self.n_rows,
        }
        if self.drift is not None:
            out["drifted"] = bool(self.drift.drifted)
            out["share_drifted"] = float(self.drift.share_drifted)
        if self.quality is not None:
            out["quality_failed"] = self.quality.n_failed
        if self.performance is not None:
            out["performance"] = dict(self.performance.metrics)
        if self.estimated_performance is not None:
            out["estimated_performance"] = dict(self.estimated_performance.metrics)
        return to_wire(out, what="WindowResult")

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            **self.summary(),
            "drift": self.drift,
            "quality": self.quality,
            "performance": self.performance,
            "estimated_performance": self.estimated_performance,
            "alerts": self.alerts,
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        """The full window result in wire form (histograms included, raw rows never)."""
        return to_wire(self, what="WindowResult")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        """The inverse of :meth:`to_dict`; reads results stored before the wire codec too (the
        summary's headline fields are derived, so they are not read back)."""
        return dataclass_from_wire(cls, data, decoders={"drift": _drift_from_wire})

    def to_json(self, *, indent: int | None = None) -> str:
        """The result as JSON."""
        return dumps(self, indent=indent, what=type(self).__name__)

    def to_html(self, path: str | Path | None = None) -> str:
        """One HTML page with this window's drift, quality and performance."""
        from mloop.monitoring._html import render_report

        page = render_report(
            drift=self.drift,
            quality=self.quality,
            performance=self.performance,
            estimate=self.estimated_performance,
            title=f"{self.monitor}: window {self.index}",
            subtitle=(
                f"rows {self.start:,}–{self.end:,}"
                if isinstance(self.start, int)
                else f"{self.start} → {self.end} · {self.n_rows:,} rows"
            ),
        )
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page


def _drift_from_wire(value: Any, what: str) -> DriftReport | None:
    return None if value is None else DriftReport.from_dict(value)


# ---------------------------------------------------------------- persistence seam


@dataclass(frozen=True)
class MonitorRecord(WireEntity):
    """What the persistence hook receives for each window: JSON-safe, self-describing.

    ``result`` is :meth:`WindowResult.to_dict` (per-column scores and verdicts, quality checks,
    performance metrics); ``alerts`` is its ``alerts`` list (the alerts fired on this window), both
    in wire form, so :meth:`WindowResult.from_dict` rebuilds the window from ``result``.
    """

    monitor: str
    window_index: int
    window_start: Any
    window_end: Any
    n_rows: int
    result: dict[str, Any]
    alerts: list[dict[str, Any]]


@runtime_checkable
class ResultSink(Protocol):
    """The persistence seam: one call per completed window."""

    def write_result(self, record: MonitorRecord) -> None: ...


class StoreResultSink:
    """Persist records through a store's ``log_monitor_result(record)`` method.

    The store layer owns the SQL (monitor result and alert tables); this adapter is the only place
    the monitor touches it.
    """

    def __init__(self, store: Any) -> None:
        if not callable(getattr(store, "log_monitor_result", None)):
            raise InvalidInputError(
                f"{type(store).__name__} cannot persist monitor results: it has no "
                "`log_monitor_result(record)` method. Pass `persist=` instead, or upgrade the store."
            )
        self.store = store

    def write_result(self, record: MonitorRecord) -> None:
        self.store.log_monitor_result(record)


class _CallablePersist:
    def __init__(self, fn: Callable[[MonitorRecord], Any]) -> None:
        self.fn = fn

    def write_result(self, record: MonitorRecord) -> None:
        self.fn(record)


# ---------------------------------------------------------------- monitor
