"""Self-contained offline HTML reports: drift, data quality, performance, or all of them on one page.

One file, no CDN and no external request: styles, a ~40-line script (filter, sort) and inline SVG
charts drawn from the reports' histograms. Raw rows never reach the page. Every user-provided string
(column names, categories, messages) is escaped.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from mloop.monitoring._html_charts import esc, fmt, fmt_count, histogram_chart
from mloop.monitoring._html_style import CSS, SCRIPT

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
    cards: list[str] = []
    sections: list[str] = []
    if drift is not None:
        cards += _drift_cards(drift)
        sections.append(_drift_section(drift))
    if quality is not None:
        cards += _quality_cards(quality)
        sections.append(_quality_section(quality))
    if performance is not None:
        sections.append(_metrics_section("Model performance", performance, estimated=False))
    if estimate is not None:
        sections.append(
            _metrics_section("Estimated performance (CBPE, no labels)", estimate, estimated=True)
        )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"<p class='sub'>{esc(subtitle)}</p>" if subtitle else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><div class='brand'>mloop<span>monitoring</span></div>"
        f"<h1>{esc(title)}</h1>{sub}<p class='meta'>Generated {stamp}</p></header>"
        f"<section class='cards'>{''.join(cards)}</section>"
        f"{''.join(sections)}"
        "<footer>Distributions are drawn from binned profiles; no raw rows are stored in this "
        f"file.</footer><script>{SCRIPT}</script></body></html>"
    )


# ---------------------------------------------------------------- drift


def _card(label: str, value: str, *, tone: str = "", note: str = "") -> str:
    note_html = f"<div class='note'>{note}</div>" if note else ""
    return (
        f"<div class='card {tone}'><div class='label'>{esc(label)}</div>"
        f"<div class='value'>{value}</div>{note_html}</div>"
    )


def _drift_cards(report: Any) -> list[str]:
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
            note=esc(threshold_note),
        ),
        _card(
            "Drifted columns",
            f"{int(report.n_drifted)} <small>of {len(cols)}</small>",
            tone="bad" if report.n_drifted else "",
            note=f"{fmt(share * 100, digits=3)}% of columns",
        ),
        _card("Columns checked", str(len(cols)), tone="warn" if other else "", note=esc(bad)),
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


def _drift_section(report: Any) -> str:
    cols = sorted(
        report.columns.values(),
        key=lambda c: (_status_rank(getattr(c, "status", "ok")), -_severity(c), str(c.name)),
    )
    rows = [_drift_row(c) for c in cols]
    statuses = sorted({getattr(c, "status", "ok") for c in cols}, key=_status_rank)
    options = "".join(
        f"<option value='{esc(s)}'>{esc(_STATUS_LABEL.get(s, s))}</option>" for s in statuses
    )
    return (
        "<section class='panel' id='drift'><div class='panel-head'><h2>Column drift</h2>"
        "<div class='legend'><span class='sw ref'></span>reference"
        "<span class='sw cur'></span>current</div></div>"
        "<div class='toolbar' data-table='drift-table'>"
        "<input type='search' class='q' placeholder='Filter columns…' aria-label='Filter columns'>"
        f"<select class='status' aria-label='Status'><option value='all'>All statuses</option>"
        f"{options}</select><span class='count'><b class='shown'>{len(rows)}</b> of "
        f"{len(rows)} columns</span></div>"
        "<table id='drift-table' class='sortable'><thead><tr>"
        "<th data-sort='name' data-type='text'>Column</th>"
        "<th data-sort='status-rank' data-type='num'>Verdict</th>"
        "<th data-sort='severity' data-type='num' class='num'>Statistic</th>"
        "<th class='num'>n ref / cur</th><th>Reference vs current</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _drift_row(col: Any) -> str:
    status = str(getattr(col, "status", "drift" if col.drifted else "ok"))
    label = _STATUS_LABEL.get(status, status)
    sev = _severity(col)
    if col.p_value is not None:
        stat = (
            f"<div class='stat'>p = {fmt(col.p_value)}</div>"
            f"<div class='thr'>{esc(col.method)} {fmt(col.statistic)} · drift if p &lt; "
            f"{fmt(col.threshold)}</div>"
        )
    else:
        stat = (
            f"<div class='stat'>{fmt(col.statistic)}</div>"
            f"<div class='thr'>{esc(col.method)} · drift if ≥ {fmt(col.threshold)}</div>"
        )
    if col.statistic is not None or col.p_value is not None:
        width = max(0.0, min(sev, 2.0)) / 2 * 100
        stat += (
            f"<div class='gauge' title='{esc(f'{sev:.2f}× the drift threshold')}'>"
            f"<i style='width:{width:.0f}%'></i><b></b></div>"
        )
    hist = getattr(col, "histogram", None)
    message = getattr(col, "message", None)
    if hist is not None:
        chart = histogram_chart(hist)
    else:
        chart = f"<div class='nochart'>{esc(message or 'no distribution available')}</div>"
    msg = f"<div class='msg'>{esc(message)}</div>" if message and hist is not None else ""
    return (
        f"<tr class='st-{esc(status)}' data-name='{esc(col.name)}' data-status='{esc(status)}' "
        f"data-status-rank='{_status_rank(status)}' data-severity='{sev:.6g}'>"
        f"<td class='name'><div>{esc(col.name)}</div><span class='kind'>{esc(col.kind)}</span>"
        f"{msg}</td><td><span class='badge {esc(status)}'>{esc(label)}</span></td>"
        f"<td class='num'>{stat}</td>"
        f"<td class='num'>{fmt_count(col.n_reference)}<br><span class='muted'>"
        f"{fmt_count(col.n_current)}</span></td><td class='chartcell'>{chart}</td></tr>"
    )


# ---------------------------------------------------------------- quality


def _quality_cards(report: Any) -> list[str]:
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


def _quality_section(report: Any) -> str:
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
        worst = min(verdicts, key=lambda v: _VERDICT_RANK.get(v, 9))
        n_bad = sum(v == "fail" for v in verdicts)
        cells = "".join(_quality_cell(checks.get(key)) for key, _ in _CHECKS)
        details = "; ".join(
            c.message for c in checks.values() if c.verdict in ("fail", "warn") and c.message
        )
        rows.append(
            (
                _VERDICT_RANK.get(worst, 9),
                name,
                f"<tr class='v-{esc(worst)}' data-name='{esc(name)}' data-status='{esc(worst)}' "
                f"data-status-rank='{_VERDICT_RANK.get(worst, 9)}' data-failed='{n_bad}'>"
                f"<td class='name'>{esc(name)}</td>{cells}"
                f"<td class='msg'>{esc(details)}</td></tr>",
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    heads = "".join(f"<th class='chk'>{esc(label)}</th>" for _, label in _CHECKS)
    verdicts = sorted({r[2].split("data-status='")[1].split("'")[0] for r in rows})
    options = "".join(f"<option value='{esc(v)}'>{esc(v)}</option>" for v in verdicts)
    banner = "".join(
        f"<div class='banner {esc(c.verdict)}'>{esc(c.message or c.check)}</div>"
        for c in dataset
        if c.verdict != "pass"
    )
    return (
        "<section class='panel' id='quality'><div class='panel-head'><h2>Data quality</h2>"
        f"<span class='muted'>{fmt_count(getattr(report, 'n_current', None))} current rows · "
        f"{fmt_count(getattr(report, 'n_reference', None))} reference rows</span></div>{banner}"
        "<div class='toolbar' data-table='quality-table'>"
        "<input type='search' class='q' placeholder='Filter columns…' aria-label='Filter columns'>"
        f"<select class='status' aria-label='Verdict'><option value='all'>All verdicts</option>"
        f"{options}</select><span class='count'><b class='shown'>{len(rows)}</b> of "
        f"{len(rows)} columns</span></div>"
        "<table id='quality-table' class='sortable'><thead><tr>"
        "<th data-sort='name' data-type='text'>Column</th>"
        f"{heads}<th data-sort='failed' data-type='num'>Details</th></tr></thead>"
        f"<tbody>{''.join(r[2] for r in rows)}</tbody></table></section>"
    )


def _quality_cell(check: Any) -> str:
    if check is None:
        return "<td class='chk'><span class='dot na' title='not applicable'>·</span></td>"
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
    return (
        f"<td class='chk'><span class='dot {esc(verdict)}' title='{esc(chr(10).join(tip))}'>"
        f"{esc(text)}</span></td>"
    )


# ---------------------------------------------------------------- performance


def _metrics_section(heading: str, report: Any, *, estimated: bool) -> str:
    metrics: dict[str, Any] = dict(report.metrics)
    reasons: dict[str, str] = dict(getattr(report, "reasons", {}) or {})
    reference: dict[str, Any] = dict(getattr(report, "reference_metrics", {}) or {})
    tiles = "".join(
        _metric_tile(k, v, reasons.get(k), reference.get(k)) for k, v in metrics.items()
    )
    n = getattr(report, "n", None)
    extra = ""
    segments = getattr(report, "segments", None) or {}
    if segments:
        names = list(metrics)
        head = "".join(f"<th class='num'>{esc(k)}</th>" for k in names)
        body = "".join(
            f"<tr><td class='name'>{esc(seg)}</td><td class='num'>{fmt_count(sub.n)}</td>"
            + "".join(f"<td class='num'>{fmt(sub.metrics.get(k))}</td>" for k in names)
            + "</tr>"
            for seg, sub in segments.items()
        )
        extra = (
            "<h3>By segment</h3><table class='seg'><thead><tr><th>Segment</th>"
            f"<th class='num'>n</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    tag = "<span class='badge est'>estimated</span>" if estimated else ""
    return (
        f"<section class='panel'><div class='panel-head'><h2>{esc(heading)} {tag}</h2>"
        f"<span class='muted'>{fmt_count(n)} rows</span></div>"
        f"<div class='tiles'>{tiles}</div>{extra}</section>"
    )


def _metric_tile(name: str, value: Any, reason: str | None, reference: Any) -> str:
    ref = f"<div class='note'>reference {fmt(reference)}</div>" if reference is not None else ""
    why = f" title='{esc(reason)}'" if value is None and reason else ""
    return (
        f"<div class='tile'{why}><div class='label'>{esc(name.replace('_', ' '))}</div>"
        f"<div class='value'>{fmt(value)}</div>{ref}</div>"
    )
