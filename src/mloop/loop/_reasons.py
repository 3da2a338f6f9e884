"""Why a trigger fired, in words and as JSON: which monitor and window, which metric and value,
which columns; which schedule time; which files."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from mloop.pipelines import OnAlert, OnNewData, OnSchedule, alert_kind
from mloop.store import Event, Store

__all__ = ["alert_details", "data_details", "schedule_details"]

_SHOWN = 10  # files or columns named in a reason; the details hold them all


def _to_ms(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value).timestamp() * 1000)
        except ValueError:
            return None
    return None


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _columns(result: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Drifted columns and columns that failed a quality check, from a stored window result."""
    drift = result.get("drift") or {}
    drifted = [
        str(name)
        for name, col in (drift.get("columns") or {}).items()
        if isinstance(col, Mapping) and col.get("drifted")
    ]
    quality = result.get("quality") or {}
    failed = [
        str(c["column"])
        for c in quality.get("checks") or ()
        if isinstance(c, Mapping) and c.get("verdict") == "fail" and c.get("column") is not None
    ]
    return drifted, list(dict.fromkeys(failed))


def alert_details(store: Store, event: Event, on: OnAlert) -> tuple[str, dict[str, Any]]:
    """The reason of an alert firing: every matching alert of the event's window (they were
    written together, one event each), the window, and the columns involved."""
    p = event.payload
    monitor, result_id = p.get("monitor"), p.get("result_id")
    same = [
        e
        for e in store.read_events(
            after_id=event.id - 1, types=["monitor_alert"], subject=event.subject, limit=100
        )
        if e.payload.get("result_id") == result_id and on.matches(e.payload)
    ] or [event]
    alerts: list[dict[str, Any]] = [
        {
            "event_id": e.id,
            "alert_id": e.payload.get("alert_id"),
            "name": e.payload.get("name"),
            "kind": alert_kind(e.payload.get("metric")),
            "metric": e.payload.get("metric"),
            "op": e.payload.get("op"),
            "threshold": e.payload.get("threshold"),
            "value": e.payload.get("value"),
            "severity": e.payload.get("severity"),
        }
        for e in same
    ]
    drifted: list[str] = []
    failed: list[str] = []
    if isinstance(monitor, str) and isinstance(result_id, int):
        found = store.list_monitor_results(monitor, after_id=result_id - 1, limit=1)
        if found and found[0].id == result_id:
            drifted, failed = _columns(found[0].result)
    kinds = list(dict.fromkeys(a["kind"] for a in alerts))
    columns = list(
        dict.fromkeys(
            (drifted if "data_drift" in kinds else []) + (failed if "data_quality" in kinds else [])
        )
    )
    parts = []
    for a in alerts:
        text = f"{(a['kind'] or 'alert').replace('_', ' ')}: {a['metric']} = {a['value']}"
        text += f" ({a['op']} {a['threshold']})"
        if a["kind"] == "data_drift" and drifted:
            text += f", drifted columns {_names(drifted)}"
        if a["kind"] == "data_quality" and failed:
            text += f", failing columns {_names(failed)}"
        parts.append(text)
    window = f"{p.get('window_start')} .. {p.get('window_end')}"
    reason = f"monitor {monitor!r} window {p.get('window_index')} ({window}): " + "; ".join(parts)
    details = {
        "kind": "alert",
        "event_id": event.id,
        "monitor": monitor,
        "result_id": result_id,
        "window_index": p.get("window_index"),
        "window_start": p.get("window_start"),
        "window_end": p.get("window_end"),
        "window_start_ms": _to_ms(p.get("window_start")),
        "window_end_ms": _to_ms(p.get("window_end")),
        "alert_kinds": kinds,
        "alerts": alerts,
        "columns": columns,
        "drifted_columns": drifted,
        "quality_columns": failed,
    }
    return reason, details


def schedule_details(on: OnSchedule, due_ms: int) -> tuple[str, dict[str, Any]]:
    due = datetime.fromtimestamp(due_ms / 1000, tz=timezone.utc).isoformat()
    zone = "" if on.timezone == "UTC" else f" ({on.timezone})"
    return f"schedule {on.cron!r}{zone} due at {due}", {
        "kind": "schedule",
        "cron": on.cron,
        "timezone": on.timezone,
        "due_ms": due_ms,
        "due": due,
    }


def data_details(
    on: OnNewData, files: Mapping[str, str], seen: Mapping[str, str]
) -> tuple[str, dict[str, Any]]:
    new = sorted(f for f in files if f not in seen)
    changed = sorted(f for f in files if f in seen and seen[f] != files[f])
    what = []
    if new:
        what.append(f"{len(new)} new ({_names(new)})")
    if changed:
        what.append(f"{len(changed)} changed ({_names(changed)})")
    reason = f"new data under {on.path}: " + "; ".join(what)
    return reason, {
        "kind": "data",
        "path": on.path,
        "pattern": on.pattern,
        "new": new,
        "changed": changed,
        "files": dict(files),
    }
