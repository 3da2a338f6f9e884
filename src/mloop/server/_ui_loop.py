"""The web UI's reads for monitoring and the loop timeline, where the REST API's store operations
would make a page fetch too much: a monitor's windows reduced to what its heatmap and charts draw
(no histograms), one window's HTML report, and one page of a model's history from the event log.

Pipelines need no route of their own: their pages read ``/pipelines``, ``/pipeline-runs`` and
``/trigger-firings`` of the REST API.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from mloop.errors import NotFoundError
from mloop.server._openapi import error_responses
from mloop.server._scopes import route_policy
from mloop.server._ui_common import handler, int_arg, required
from mloop.server._wire import JSON
from mloop.store import API_PREFIX, MAX_RESULTS_LIMIT, Event, Store

__all__ = [
    "TIMELINE_TYPES",
    "model_timeline",
    "monitor_report",
    "monitor_summary",
    "related_subjects",
]

# What the timeline draws (a step's own event is the pipeline run page's business).
TIMELINE_TYPES: tuple[str, ...] = (
    "monitor_result",
    "monitor_alert",
    "trigger_fired",
    "pipeline_run_started",
    "pipeline_run_finished",
    "model_created",
    "version_registered",
    "report_attached",
    "alias_set",
    "alias_deleted",
    "alias_rollback",
    "promotion_refused",
    "training_blocked",
    "deployment_created",
    "deployment_updated",
    "deployment_rollback",
    "deployment_deleted",
    "serving_swapped",
    "serving_swap_failed",
)
MAX_WINDOWS = 5000
MAX_TIMELINE = 2000
_PAGE = 1000


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def severity(col: Mapping[str, Any]) -> float | None:
    """>= 1 means drift: statistic / threshold for distances, log p / log threshold for tests
    (what the HTML report's gauges show); None when the column was not scored."""
    stat, p, thr = _finite(col.get("statistic")), _finite(col.get("p_value")), col.get("threshold")
    thr = _finite(thr)
    if p is not None and thr:
        if p <= 0:
            return 99.0
        return min(math.log(p) / math.log(thr), 99.0) if 0 < thr < 1 else None
    if stat is not None and thr:
        return min(stat / thr, 99.0)
    return None


def _metrics(doc: Any) -> dict[str, float | None]:
    if not isinstance(doc, Mapping):
        return {}
    return {k: _finite(v) for k, v in (doc.get("metrics") or {}).items()}


def monitor_summary(store: Store, monitor: str, *, max_windows: int) -> dict[str, Any]:
    """A monitor's newest ``max_windows`` windows as columns: per window its bounds, rows and
    drift verdict; per feature its score, severity and verdict in each window; the realized and
    the estimated (CBPE) metrics per window; and the monitor's alerts."""
    # The log names each window's result id: the newest windows are found there (small rows)
    # and only their results are read, however long the monitor has run.
    marks, older = newest_events(
        store, [f"monitors/{monitor}"], ["monitor_result"], before_id=None, limit=max_windows
    )
    ids = [i for e in marks if isinstance(i := e.payload.get("result_id"), int)]
    after = 0
    if len(ids) == len(marks) == max_windows:
        after = min(ids) - 1
    else:
        older = False  # every window (also any stored before the log named them) is read
    windows: deque[Any] = deque(maxlen=max_windows)
    total = 0
    while True:
        page = store.list_monitor_results(monitor, after_id=after, limit=_PAGE)
        windows.extend(page)
        total += len(page)
        if len(page) < _PAGE:
            break
        after = page[-1].id
    if not total:
        raise NotFoundError(f"monitor {monitor!r} has stored no window.")
    older = older or total > max_windows
    n = len(windows)
    columns: dict[str, dict[str, Any]] = {}
    realized: dict[str, list[float | None]] = {}
    estimated: dict[str, list[float | None]] = {}

    def put(table: dict[str, list[Any]], key: str, i: int, value: Any) -> None:
        col = table.get(key)
        if col is None:
            col = table[key] = [None] * n
        col[i] = value

    out_windows = []
    for i, w in enumerate(windows):
        res = w.result if isinstance(w.result, Mapping) else {}
        drift = res.get("drift") if isinstance(res.get("drift"), Mapping) else None
        out_windows.append(
            {
                "result_id": w.id,
                "index": w.window_index,
                "start": w.window_start,
                "end": w.window_end,
                "n_rows": w.n_rows,
                "created_ms": w.created_ms,
                "drifted": None if drift is None else bool(drift.get("drifted")),
                "share_drifted": None if drift is None else _finite(drift.get("share_drifted")),
            }
        )
        for name, col in ((drift or {}).get("columns") or {}).items():
            c = columns.get(name)
            if c is None:
                c = columns[name] = {
                    "name": name,
                    "method": None,
                    "threshold": None,
                    "statistic": [None] * n,
                    "p_value": [None] * n,
                    "severity": [None] * n,
                    "status": [None] * n,
                    "drifted": [None] * n,
                }
            c["method"], c["threshold"] = col.get("method"), _finite(col.get("threshold"))
            c["statistic"][i] = _finite(col.get("statistic"))
            c["p_value"][i] = _finite(col.get("p_value"))
            c["severity"][i] = severity(col)
            c["status"][i] = col.get("status")
            c["drifted"][i] = bool(col.get("drifted"))
        for k, v in _metrics(res.get("performance")).items():
            put(realized, k, i, v)
        for k, v in _metrics(res.get("estimated_performance")).items():
            put(estimated, k, i, v)
    alerts = []
    after = 0
    while True:
        page_a = store.list_monitor_alerts(monitor=monitor, after_id=after, limit=_PAGE)
        alerts.extend(page_a)
        if len(page_a) < _PAGE:
            break
        after = page_a[-1].id
    return {
        "monitor": monitor,
        "older": older,
        "windows": out_windows,
        "columns": list(columns.values()),
        "performance": realized,
        "estimated": estimated,
        "alerts": [
            {
                "id": a.id,
                "window_index": a.window_index,
                "name": a.name,
                "severity": a.severity,
                "message": a.message,
                "created_ms": a.created_ms,
                "rule": a.payload.get("rule"),
                "metric": a.payload.get("metric"),
                "value": _finite(a.payload.get("value")),
                "threshold": _finite(a.payload.get("threshold")),
            }
            for a in alerts
        ],
    }


def monitor_report(store: Store, monitor: str, result_id: int) -> dict[str, Any]:
    """One stored window rendered as the monitoring HTML report (self-contained, no script that
    fetches anything), for the page to show in a sandboxed frame."""
    from mloop.monitoring import WindowResult

    found = store.list_monitor_results(monitor, after_id=result_id - 1, limit=1)
    if not found or found[0].id != result_id:
        raise NotFoundError(f"monitor {monitor!r} has no stored window with id {result_id}.")
    window = WindowResult.from_dict(found[0].result)
    return {"result_id": result_id, "window_index": found[0].window_index, "html": window.to_html()}


def _model_of(uri: str | None) -> str | None:
    """``churn`` of ``models:/churn@champion`` or ``models:/churn/3``."""
    if not uri or not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/") :]
    return rest.split("@", 1)[0].split("/", 1)[0] or None


def related_subjects(store: Store, model: str) -> list[str]:
    """The event subjects that make up a model's history.

    The model itself; the deployments that serve it (live, canary or shadow); the pipelines whose
    recent runs take it as their ``model`` (or one of its deployments as ``deployment``)
    parameter, as the loop's retraining pipeline does; and the monitors those runs were triggered
    by, with the monitors named after the model or a deployment (``<name>`` or ``<name>-...``).
    """
    store.get_registered_model(model)  # NotFoundError for an unknown model
    deployments = [
        d.name
        for d in store.list_deployments()
        if model in {_model_of(d.model), _model_of(d.canary), _model_of(d.shadow)}
    ]
    owners = {model, *deployments}
    pipelines, monitors = [], set()
    for p in store.list_pipelines(limit=MAX_RESULTS_LIMIT):
        runs = store.list_pipeline_runs(p.name, limit=20)
        mine = [
            r
            for r in runs
            if r.params.get("model") == model or r.params.get("deployment") in owners
        ]
        if mine:
            pipelines.append(p.name)
            for r in mine:
                trig = r.params.get("trigger")
                if isinstance(trig, Mapping) and isinstance(trig.get("monitor"), str):
                    monitors.add(trig["monitor"])
    for m in store.list_monitors(limit=MAX_RESULTS_LIMIT):
        if any(m.monitor == o or m.monitor.startswith(f"{o}-") for o in owners):
            monitors.add(m.monitor)
    return (
        [f"models/{model}"]
        + [f"deployments/{d}" for d in deployments]
        + [f"pipelines/{p}" for p in pipelines]
        + [f"monitors/{m}" for m in sorted(monitors)]
    )


def _window(
    store: Store, subjects: Iterable[str], types: list[str], lo: int, hi: int, cap: int
) -> list[Event] | None:
    """The events with ``lo < id <= hi``; None when a subject has more than ``cap`` there."""
    out: list[Event] = []
    for s in subjects:
        got = store.read_events(after_id=lo, until_id=hi, subject=s, types=types, limit=cap + 1)
        if len(got) > cap:
            return None
        out.extend(got)
    return out


def newest_events(
    store: Store, subjects: list[str], types: Iterable[str], *, before_id: int | None, limit: int
) -> tuple[list[Event], bool]:
    """The newest ``limit`` events of ``subjects`` with ``id < before_id``, newest first, and
    whether older ones may exist.

    The log is read backwards in id ranges that widen while they are sparse and narrow when one
    subject fills a read, so a page costs a few indexed reads however long the history is.
    """
    wanted = list(types)
    hi = store.last_event_id() if before_id is None else before_id - 1
    found: list[Event] = []
    span = max(4 * limit, 64)
    while hi > 0 and len(found) < limit:
        lo = max(0, hi - span)
        got = _window(store, subjects, wanted, lo, hi, limit)
        if got is None:  # too dense: a narrower range keeps each read within the page
            span = max(1, span // 4)
            continue
        found.extend(sorted(got, key=lambda e: e.id, reverse=True))
        hi = lo
        if len(got) < limit // 4:
            span *= 4
    return found[:limit], hi > 0 or len(found) > limit


def model_timeline(
    store: Store, model: str, *, before_id: int | None, limit: int
) -> dict[str, Any]:
    """The newest ``limit`` events of a model's history with ``id < before_id``, newest first
    (see :func:`newest_events`); ``next_before_id`` continues with older events (None at the
    start of the log)."""
    subjects = related_subjects(store, model)
    page, more = newest_events(store, subjects, TIMELINE_TYPES, before_id=before_id, limit=limit)
    return {
        "model": model,
        "subjects": subjects,
        "events": [e.to_dict() for e in page],
        "next_before_id": page[-1].id if page and more else None,
    }


def _p(name: str, schema: dict[str, Any], *, where: str = "query", req: bool = False) -> Any:
    return {"name": name, "in": where, "required": req, "schema": schema}


_S, _I = {"type": "string"}, {"type": "integer", "format": "int64"}
_PARAMS: dict[str, list[dict[str, Any]]] = {
    "ui_monitor_summary": [
        _p("monitor", _S, req=True),
        _p("max_windows", {**_I, "minimum": 1, "maximum": MAX_WINDOWS}),
    ],
    "ui_monitor_report": [
        _p("monitor", _S, req=True),
        _p("result_id", {**_I, "minimum": 1}, req=True),
    ],
    "ui_model_timeline": [
        _p("model", _S, where="path", req=True),
        _p("before_id", {**_I, "minimum": 1}),
        _p("limit", {**_I, "minimum": 1, "maximum": MAX_TIMELINE}),
    ],
}
LOOP_OPERATIONS = frozenset(_PARAMS)


def mount_loop_routes(app: FastAPI, store: Store) -> None:
    """Add the Monitoring and Loop timeline pages' routes (see the module's docstring); each
    needs a read token that is not scoped to a project under ``--auth``."""

    def summary(request: Request) -> Any:
        q = request.query_params
        n = int_arg(q.get("max_windows"), "max_windows", lo=1, hi=MAX_WINDOWS, default=500)
        return monitor_summary(store, required(q, "monitor"), max_windows=n or 500)

    def report(request: Request) -> Any:
        q = request.query_params
        rid = int_arg(required(q, "result_id"), "result_id", lo=1, hi=2**62, default=None)
        return monitor_report(store, required(q, "monitor"), rid or 1)

    def timeline(request: Request) -> Any:
        q = request.query_params
        before = int_arg(q.get("before_id"), "before_id", lo=1, hi=2**62, default=None)
        limit = int_arg(q.get("limit"), "limit", lo=1, hi=MAX_TIMELINE, default=500) or 500
        return model_timeline(store, request.path_params["model"], before_id=before, limit=limit)

    routes = [
        ("/monitor-summary", summary, "ui_monitor_summary",
         "A monitor's windows: per-feature drift, realized and estimated metrics, alerts"),
        ("/monitor-report", report, "ui_monitor_report",
         "One stored window rendered as the monitoring HTML report"),
        ("/models/{model}/timeline", timeline, "ui_model_timeline",
         "One page of a model's history from the event log, newest first"),
    ]  # fmt: skip
    for path, work, op, summary_text in routes:
        app.add_api_route(
            f"{API_PREFIX}/ui{path}",
            route_policy("read")(handler(work)),
            methods=["GET"],
            operation_id=op,
            name=op,
            summary=summary_text,
            response_class=Response,
            tags=["ui"],
            openapi_extra={
                "parameters": _PARAMS[op],
                "responses": {
                    "200": {
                        "description": "The answer (a JSON object; NaN and infinities are null).",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    **error_responses(with_body=False),
                },
            },
        )
