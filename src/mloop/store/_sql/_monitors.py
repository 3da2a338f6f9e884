"""Monitor results and alerts on SQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mloop.ids import now_ms
from mloop.store._monitor_base import MonitorAlert, MonitorResult
from mloop.store._sql import _schema as t
from mloop.store._sql._log import SqlEventLogMixin

# The facts of an alert's rule copied into its monitor_alert event (JSON values, as sent).
_RULE_FACTS = ("rule", "metric", "op", "threshold", "value", "consecutive")


def _bound(v: Any) -> str | None:
    return None if v is None else str(v)


def _unbound(v: str | None) -> Any:
    if v is not None and v.lstrip("-").isdigit():
        return int(v)  # row-count windows are integer offsets; time windows ISO strings
    return v


def _result(x: Any) -> MonitorResult:
    return MonitorResult(
        x.id,
        x.monitor,
        x.window_index,
        _unbound(x.window_start),
        _unbound(x.window_end),
        x.n_rows,
        json.loads(x.result),
        x.created_ms,
    )


class SqlMonitorsMixin(SqlEventLogMixin):
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
        ts = now_ms()
        body = json.dumps(result, default=str, allow_nan=False)
        with self._write() as conn:
            rid = conn.execute(
                t.monitor_results.insert().values(
                    monitor=monitor,
                    window_index=window_index,
                    window_start=_bound(start),
                    window_end=_bound(end),
                    n_rows=n_rows,
                    result=body,
                    created_ms=ts,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            rows = [
                {
                    "result_id": rid,
                    "monitor": monitor,
                    "window_index": window_index,
                    "name": str(a.get("name") or a.get("rule") or "alert"),
                    "severity": str(a.get("severity") or "warning"),
                    "message": str(a.get("message") or ""),
                    "created_ms": int(a.get("created_ms") or ts),
                    "payload": json.dumps(a, default=str, allow_nan=False),
                }
                for a in alerts
            ]
            # One insert per alert: the event log names each alert by its id.
            alert_ids = [
                conn.execute(t.monitor_alerts.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
                for row in rows
            ]
            subject = f"monitors/{monitor}"
            window = {
                "monitor": monitor,
                "result_id": rid,
                "window_index": window_index,
                "window_start": start,
                "window_end": end,
            }
            self._log_event(
                conn,
                "monitor_result",
                subject,
                payload={**window, "n_rows": n_rows, "n_alerts": len(rows)},
            )
            for aid, row, alert in zip(alert_ids, rows, alerts, strict=True):
                self._log_event(
                    conn,
                    "monitor_alert",
                    subject,
                    payload={
                        **window,
                        "alert_id": aid,
                        "name": row["name"],
                        "severity": row["severity"],
                        "message": row["message"],
                        # What the rule read, so a consumer (the agent's triggers) can tell a
                        # drift alert from a quality or a performance one without a read.
                        **{k: alert[k] for k in _RULE_FACTS if k in alert},
                    },
                )
        return MonitorResult(rid, monitor, window_index, start, end, n_rows, result, ts)

    def _do_list_monitor_results(
        self, monitor: str, after_id: int, limit: int
    ) -> list[MonitorResult]:
        r = t.monitor_results
        with self._read() as conn:
            rows = conn.execute(
                sa.select(r)
                .where(r.c.monitor == monitor, r.c.id > after_id)
                .order_by(r.c.id)
                .limit(limit)
            ).all()
        return [_result(x) for x in rows]

    def _do_list_monitors(self, limit: int) -> list[MonitorResult]:
        r = t.monitor_results
        newest = sa.select(sa.func.max(r.c.id)).group_by(r.c.monitor).scalar_subquery()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(r).where(r.c.id.in_(newest)).order_by(r.c.monitor).limit(limit)
            ).all()
        return [_result(x) for x in rows]

    def _do_list_monitor_alerts(
        self, monitor: str | None, after_id: int, limit: int
    ) -> list[MonitorAlert]:
        a = t.monitor_alerts
        q = sa.select(a).where(a.c.id > after_id)
        if monitor is not None:
            q = q.where(a.c.monitor == monitor)
        with self._read() as conn:
            rows = conn.execute(q.order_by(a.c.id).limit(limit)).all()
        return [
            MonitorAlert(
                x.id,
                x.monitor,
                x.window_index,
                x.name,
                x.severity,
                x.message,
                x.created_ms,
                json.loads(x.payload),
            )
            for x in rows
        ]
