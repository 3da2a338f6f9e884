"""Self-contained offline HTML reports: drift, data quality, performance, or all of them on one page.

One file, no CDN and no external request: styles, a ~40-line script (filter, sort) and inline SVG
charts drawn from the reports' histograms. Raw rows never reach the page. The markup lives in Jinja2
templates (``templates/*.html.j2``) rendered with autoescaping, so every user-provided string (column
names, categories, messages, titles) is escaped by construction; this module only computes what the
templates show: order, verdicts, formatted numbers and the charts.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from mloop.monitoring._html_charts import fmt, fmt_count, histogram_chart
from mloop.monitoring._templates import render

__all__ = ["render_drift_report", "render_quality_report", "render_report"]

_STATUS_LABEL = {
    "ok": "OK",
    "drift": "Drift",
    "insufficient_data": "Insufficient data",
    "missing_column": "Missing column",
    "error": "Error",
}


def render_drift_report(report: Any, *, title: str = "Data drift report") -> str:
    """Render a ``DriftReport`` as one self-contained HTML page.

    Parameters
    ----------
    report : DriftReport
        Reads ``columns`` (name -> ``ColumnDrift``), ``drifted``, ``share_drifted``,
        ``n_drifted`` and each column's histogram.
    title : str, default "Data drift report"

    Returns
    -------
    str
        The HTML document.
    """
    return render_report(drift=report, title=title)


def render_quality_report(report: Any, *, title: str = "Data quality report") -> str:
    """Render a ``QualityReport`` as one self-contained HTML page.

    Parameters
    ----------
    report : QualityReport
    title : str, default "Data quality report"

    Returns
    -------
    str
        The HTML document.
    """
    return render_report(quality=report, title=title)


def render_report(
    *,
    drift: Any = None,
    quality: Any = None,
    performance: Any = None,
    estimate: Any = None,
    title: str = "Monitoring report",
    subtitle: str | None = None,
) -> str:
    """Render any of a drift, quality and performance report (and a CBPE estimate) on one page.

    Parameters
    ----------
    drift : DriftReport, optional
    quality : QualityReport, optional
    performance : PerformanceReport, optional
    estimate : PerformanceEstimate, optional
    title : str, default "Monitoring report"
    subtitle : str, optional
        A line under the title (e.g. the window a monitor result covers).

    Returns
    -------
    str
        The HTML document.
    """
    cards: list[dict[str, Any]] = []
    if drift is not None:
        cards += _drift_cards(drift)
    if quality is not None:
        cards += _quality_cards(quality)
    sections = []
    if performance is not None:
        sections.append(_metrics_section("Model performance", performance, estimated=False))
    if estimate is not None:
        sections.append(
            _metrics_section("Estimated performance (CBPE, no labels)", estimate, estimated=True)
        )
    return render(
        "report.html.j2",
        title=title,
        subtitle=subtitle,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cards=cards,
        drift=None if drift is None else _drift_section(drift),
        quality=None if quality is None else _quality_section(quality),
        metric_sections=sections,
    )


# ---------------------------------------------------------------- drift


def _card(
    label: str, value: str, *, small: str = "", tone: str = "", note: str = ""
) -> dict[str, Any]:
    return {"label": label, "value": value, "small": small, "tone": tone, "note": note}


def _drift_cards(report: Any) -> list[dict[str, Any]]:
    cols = list(report.columns.values())
    statuses = [getattr(c, "status", "ok") for c in cols]
    drifted = bool(report.drifted)
    share = float(report.share_drifted or 0.0)
    share_threshold = getattr(report, "share_threshold", None) or getattr(
        report, "drift_share", None
    )
    other = sum(s not in ("ok", "drift") for s in statuses)
    bad = f"{other} without a verdict" if other else "every column has a verdict"
    threshold_note = (
        f"dataset drifts at ≥ {fmt(float(share_threshold) * 100, digits=3)}%"
        if share_threshold is not None
        else ""
    )
    return [
        _card(
            "Dataset drift",
            "Drift detected" if drifted else "No drift",
            tone="bad" if drifted else "good",
            note=threshold_note,
        ),
        _card(
            "Drifted columns",
            str(int(report.n_drifted)),
            small=f"of {len(cols)}",
            tone="bad" if report.n_drifted else "",
            note=f"{fmt(share * 100, digits=3)}% of columns",
        ),
        _card("Columns checked", str(len(cols)), tone="warn" if other else "", note=bad),
    ]


def _severity(col: Any) -> float:
    """≥ 1 means drift: statistic / threshold for distances, log p / log threshold for tests."""
    stat, p, thr = col.statistic, col.p_value, col.threshold
    try:
        if p is not None and thr:
            if p <= 0:
                return 99.0
            return min(math.log(p) / math.log(thr), 99.0) if 0 < thr < 1 else 0.0
        if stat is not None and thr:
            value = float(stat) / float(thr)
            return value if math.isfinite(value) else 99.0
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0
    return 0.0


def _status_rank(status: str) -> int:
    return {"drift": 0, "error": 1, "missing_column": 2, "insufficient_data": 3}.get(status, 4)


def _drift_section(report: Any) -> dict[str, Any]:
    cols = sorted(
        report.columns.values(),
        key=lambda c: (_status_rank(getattr(c, "status", "ok")), -_severity(c), str(c.name)),
    )
    statuses = sorted({getattr(c, "status", "ok") for c in cols}, key=_status_rank)
    return {
        "rows": [_drift_row(c) for c in cols],
        "options": [(s, _STATUS_LABEL.get(s, s)) for s in statuses],
    }


def _drift_row(col: Any) -> dict[str, Any]:
    status = str(getattr(col, "status", "drift" if col.drifted else "ok"))
    sev = _severity(col)
    gauge = None
    if col.statistic is not None or col.p_value is not None:
        gauge = {
            "title": f"{sev:.2f}× the drift threshold",
            "width": f"{max(0.0, min(sev, 2.0)) / 2 * 100:.0f}",
        }
    hist = getattr(col, "histogram", None)
    message = getattr(col, "message", None)
    return {
        "name": col.name,
        "kind": col.kind,
        "status": status,
        "label": _STATUS_LABEL.get(status, status),
        "rank": _status_rank(status),
        "severity": f"{sev:.6g}",
        "method": col.method,
        "statistic": fmt(col.statistic),
        "p_value": None if col.p_value is None else fmt(col.p_value),
        "threshold": fmt(col.threshold),
        "gauge": gauge,
        "n_reference": fmt_count(col.n_reference),
        "n_current": fmt_count(col.n_current),
        "chart": None if hist is None else histogram_chart(hist),
        "nochart": message or "no distribution available",
        "message": message if hist is not None else None,
        "bound": _bound_text(col),
        "borderline": bool(getattr(col, "borderline", False)),
    }


def _bound_text(col: Any) -> str | None:
    """How far the statistic may be from the exact one, when the reference is a sketch."""
    bound = getattr(col, "error_bound", None)
    if getattr(col, "borderline", False) and bound is None:
        return "no error bound for this method on a sketched reference"
    if not bound:
        return None
    return f"statistic ± {fmt(bound)} (sketched reference)"


# ---------------------------------------------------------------- quality


def _quality_cards(report: Any) -> list[dict[str, Any]]:
    checks = list(report.checks)
    failed = [c for c in checks if c.verdict == "fail"]
    warned = [c for c in checks if c.verdict == "warn"]
    return [
        _card(
            "Data quality",
            "Issues found" if failed else ("Warnings" if warned else "All checks pass"),
            tone="bad" if failed else ("warn" if warned else "good"),
            note=f"{len(failed)} failed · {len(warned)} warnings · {len(checks)} checks",
        )
    ]


_CHECKS = (
    ("schema", "Schema"),
    ("type", "Type"),
    ("empty", "Empty"),
    ("constant", "Constant"),
    ("missing_share", "Missing"),
    ("non_finite", "±inf"),
    ("out_of_range", "Out of range"),
    ("unseen_categories", "New categories"),
)
_VERDICT_RANK = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}


def _quality_section(report: Any) -> dict[str, Any]:
    """One row per column, one cell per check: the failures stand out, passes stay quiet."""
    by_column: dict[str, dict[str, Any]] = {}
    dataset: list[Any] = []
    for c in report.checks:
        if c.column is None:
            dataset.append(c)
            continue
        key = "schema" if c.check in ("column_missing", "extra_column") else c.check
        by_column.setdefault(str(c.column), {})[key] = c
    rows = []
    for name, checks in by_column.items():
        verdicts = [c.verdict for c in checks.values()]
        worst = str(min(verdicts, key=lambda v: _VERDICT_RANK.get(v, 9)))
        rows.append(
            {
                "name": name,
                "worst": worst,
                "rank": _VERDICT_RANK.get(worst, 9),
                "n_failed": sum(v == "fail" for v in verdicts),
                "cells": [_quality_cell(checks.get(key)) for key, _ in _CHECKS],
                "details": "; ".join(
                    c.message
                    for c in checks.values()
                    if c.verdict in ("fail", "warn") and c.message
                ),
            }
        )
    rows.sort(key=lambda r: (r["rank"], r["name"]))
    return {
        "n_current": fmt_count(getattr(report, "n_current", None)),
        "n_reference": fmt_count(getattr(report, "n_reference", None)),
        "banners": [
            {"verdict": c.verdict, "text": c.message or c.check}
            for c in dataset
            if c.verdict != "pass"
        ],
        "headings": [label for _, label in _CHECKS],
        "options": [(v, v) for v in sorted({r["worst"] for r in rows})],
        "rows": rows,
    }


def _quality_cell(check: Any) -> dict[str, str] | None:
    if check is None:
        return None
    verdict = str(check.verdict)
    if check.check == "column_missing":
        text = "missing"
    elif check.check == "extra_column":
        text = "extra"
    elif isinstance(check.value, float) and check.check not in ("type",):
        text = f"{check.value * 100:.1f}%"
    elif check.check in ("type", "empty", "constant"):
        text = {"pass": "ok", "fail": "✗", "warn": "!", "skip": "–"}.get(verdict, verdict)
    else:
        text = fmt(check.value)
    tip = [f"{check.check.replace('_', ' ')}: {verdict}"]
    if check.value is not None:
        tip.append(f"current {fmt(check.value)}")
    if check.reference_value is not None:
        tip.append(f"reference {fmt(check.reference_value)}")
    if check.threshold is not None:
        tip.append(f"threshold {fmt(check.threshold)}")
    if check.message:
        tip.append(check.message)
    return {"verdict": verdict, "text": text, "tip": "\n".join(tip)}


# ---------------------------------------------------------------- performance


def _metrics_section(heading: str, report: Any, *, estimated: bool) -> dict[str, Any]:
    metrics: dict[str, Any] = dict(report.metrics)
    reasons: dict[str, str] = dict(getattr(report, "reasons", {}) or {})
    reference: dict[str, Any] = dict(getattr(report, "reference_metrics", {}) or {})
    segments = getattr(report, "segments", None) or {}
    return {
        "heading": heading,
        "estimated": estimated,
        "n": fmt_count(getattr(report, "n", None)),
        "tiles": [
            {
                "label": name.replace("_", " "),
                "value": fmt(value),
                "reference": None if reference.get(name) is None else fmt(reference[name]),
                "why": reasons.get(name) if value is None else None,
            }
            for name, value in metrics.items()
        ],
        "metric_names": list(metrics),
        "segments": [
            {
                "name": seg,
                "n": fmt_count(sub.n),
                "cells": [fmt(sub.metrics.get(k)) for k in metrics],
            }
            for seg, sub in segments.items()
        ],
    }
