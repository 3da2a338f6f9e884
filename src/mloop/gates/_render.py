"""A check report as text for the places CI shows it: a PR comment (Markdown), a test report that
GitLab and Jenkins read (JUnit XML) and the wire form (JSON).

The renderers are pure functions of a :class:`~mloop.store.CheckReport`: the same report always
gives the same text (no clock, no environment), so an updated comment only changes when the report
does.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.codec import dumps

if TYPE_CHECKING:
    from mloop.store import CheckReport, CheckResult

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "comment_marker",
    "render_json",
    "render_junit",
    "render_markdown",
]

# GitHub refuses an issue comment whose body is longer than this ("Body is too long (maximum is
# 65536 characters)"); GitLab's note limit (1,000,000) is far above it.
GITHUB_COMMENT_LIMIT = 65_536

_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥"}
_WORD = {"pass": "passed", "fail": "failed", "warn": "warning", "skip": "skipped", "error": "error"}
# Reviewers read failures first: the table lists checks in this order (stable within a status).
_ORDER = {"error": 0, "fail": 1, "warn": 2, "skip": 3, "pass": 4}
_DETAIL_ROWS = 20  # detail rows shown per check; the rest are counted
_DETAIL_COLUMNS = 8


def comment_marker(model: str) -> str:
    """The hidden line that identifies a model's report comment on a pull request.

    One comment per model per PR: posting again finds the comment holding this marker and
    updates it in place instead of adding another.

    Examples
    --------
    >>> comment_marker("churn")
    '<!-- mloop-check-report:churn -->'
    """
    # Model names are letters, digits, '_', '-' and '.', so they cannot close the comment; the
    # replace keeps any other text from doing so.
    return f"<!-- mloop-check-report:{model.replace('-->', '-- >')} -->"


# ---------------------------------------------------------------------------------------------
# Markdown


_MD_ESCAPE = re.compile(r"([\\`*_\[\]~|#])")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def md_text(value: object) -> str:
    """``value`` as Markdown text that renders as itself, fit for a table cell.

    Markdown punctuation is backslash-escaped, ``<``, ``>`` and ``&`` become entities (so text
    cannot open an HTML tag or a ``<details>``), pipes cannot split a cell and newlines become
    ``<br>``.
    """
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_ESCAPE.sub(r"\\\1", text)
    return _NEWLINES.sub("<br>", text)


def md_code(value: object) -> str:
    """``value`` as an inline code span, fit for a table cell (pipes escaped, one line)."""
    text = _NEWLINES.sub(" ", str(value))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    # GFM splits table cells on unescaped pipes before it parses code spans.
    return f"{fence}{text.replace('|', chr(92) + '|')}{fence}"


def fmt_number(value: Any) -> str:
    """A number as a reviewer reads it: floats to 4 significant digits (small p-values in
    scientific notation), ints with thousands separators, non-finite values spelled out."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return dumps(value, what="number")


def _counts(checks: Sequence[CheckResult]) -> str:
    n: dict[str, int] = {}
    for c in checks:
        n[c.status] = n.get(c.status, 0) + 1
    parts = [f"{n[s]} {_WORD[s]}" for s in ("pass", "fail", "error", "warn", "skip") if s in n]
    other = len(checks) - sum(n.get(s, 0) for s in _WORD)
    if other:
        parts.append(f"{other} other")
    total = len(checks)
    return (
        f"{total} check{'s' if total != 1 else ''}: " + ", ".join(parts) if total else "no checks"
    )


def _headline(report: CheckReport) -> list[str]:
    icon = _ICON["pass" if report.passed else "fail"]
    what = "mloop post-deploy check" if report.kind == "post_deploy" else "mloop check"
    vs = f" vs v{report.baseline_version}" if report.baseline_version is not None else ""
    verdict = "passed" if report.passed else "failed"
    lines = [f"### {icon} {what} {verdict}: {md_code(report.model)} v{report.version}{vs}", ""]
    baseline = (
        f"baseline {md_code(report.baseline_uri)}"
        + (f" (v{report.baseline_version})" if report.baseline_version is not None else "")
        if report.baseline_uri
        else "no baseline"
    )
    rows = report.data.get("rows")
    on = f" on {fmt_number(rows)} rows" if isinstance(rows, int) else ""
    if report.data.get("uri"):
        on += f" of {md_code(report.data['uri'])}"
    lines.append(
        f"Candidate {md_code(report.candidate_uri)} against {baseline}{on}. "
        f"{md_text(_counts(report.checks))}."
    )
    return lines


def _table(checks: Sequence[CheckResult]) -> list[str]:
    lines = ["| Status | Check | Result |", "|:--|:--|:--|"]
    for c in checks:
        status = f"{_ICON.get(c.status, '❔')} {md_text(c.status)}"
        lines.append(f"| {status} | {md_code(c.name)} | {md_text(c.summary)} |")
    return lines


def _rows_table(rows: Sequence[Mapping[str, Any]], *, limit: int = _DETAIL_ROWS) -> list[str]:
    columns: list[str] = []
    for row in rows[:limit]:
        columns.extend(k for k in row if k not in columns)
    shown_cols = columns[:_DETAIL_COLUMNS]
    if not shown_cols:
        return []
    lines = [
        "| " + " | ".join(md_text(k) for k in shown_cols) + " |",
        "|" + "|".join(":--" for _ in shown_cols) + "|",
    ]
    for row in rows[:limit]:
        lines.append("| " + " | ".join(md_text(fmt_number(row.get(k))) for k in shown_cols) + " |")
    notes = []
    if len(rows) > limit:
        notes.append(f"{len(rows) - limit:,} more rows")
    if len(columns) > len(shown_cols):
        notes.append("columns " + ", ".join(md_text(k) for k in columns[len(shown_cols) :]))
    if notes:
        lines += ["", f"_Not shown: {'; '.join(notes)} (see the JSON report)._"]
    return lines


def _check_details(c: CheckResult) -> list[str]:
    lines = [f"#### {_ICON.get(c.status, '❔')} {md_code(c.name)}", ""]
    if c.compared:
        lines += [f"Compared: {md_text(c.compared)}", ""]
    if c.numbers:
        lines += ["| Number | Value |", "|:--|--:|"]
        lines += [f"| {md_text(k)} | {md_text(fmt_number(v))} |" for k, v in c.numbers.items()]
        lines.append("")
    if c.details:
        lines += [*_rows_table(c.details), ""]
    return lines


def _footer(report: CheckReport) -> list[str]:
    data = report.data
    facts = [
        f"- Report: {md_code(report.id)} ({report.kind}, {fmt_number(report.duration_ms / 1000)} s)",
        f"- Policy hash: {md_code(report.policy_hash)}",
    ]
    if data:
        parts = [
            f"{md_text(k)} {md_code(fmt_number(data[k]))}" for k in ("uri", "target") if k in data
        ]
        if "rows" in data:
            parts.append(f"{md_text(fmt_number(data['rows']))} rows")
        if data.get("sha256"):
            parts.append(f"sha256 {md_code(data['sha256'])}")
        facts.append("- Data: " + ", ".join(parts))
    facts.append(f"- Full report: {md_code(f'mloop ci report --report {report.id} --format json')}")
    return ["<details><summary>Policy and data</summary>", "", *facts, "", "</details>"]


def _sorted(checks: Iterable[CheckResult]) -> list[CheckResult]:
    return sorted(checks, key=lambda c: _ORDER.get(c.status, 0))


def render_markdown(
    report: CheckReport, *, marker: str | None = None, max_chars: int = GITHUB_COMMENT_LIMIT
) -> str:
    """The report as a pull-request comment.

    A headline (✅ or ❌, the candidate and its baseline), a table of every check (status, name,
    the result in a sentence; failures first), then collapsed sections with the numbers and
    detail rows of each failing, erroring and warning check, and the policy hash and the data
    (rows, sha256).

    Parameters
    ----------
    report : CheckReport
    marker : str, optional
        A hidden line to put first (:func:`comment_marker`), by which the comment is found and
        updated in place.
    max_chars : int, default 65536
        Upper bound on the length. GitHub refuses longer comments; the per-check sections are
        dropped from the end (with a note saying how many) before the table is shortened.

    Returns
    -------
    str
        Markdown ending in a newline, at most ``max_chars`` characters.
    """
    checks = _sorted(report.checks)
    head = [*([marker, ""] if marker else []), *_headline(report), ""]
    table = _table(checks)
    footer = ["", *_footer(report)]
    noisy = [c for c in checks if c.status in ("fail", "error", "warn")]
    sections = [_check_details(c) for c in noisy]

    def build(table_rows: list[str], kept: int, note: str | None) -> str:
        parts = [*head, *table_rows]
        if sections:
            parts += [
                "",
                f"<details><summary>Numbers of {len(noisy)} failing or warning "
                f"check{'s' if len(noisy) != 1 else ''}</summary>",
                "",
            ]
            for section in sections[:kept]:
                parts += section
            if kept < len(sections):
                parts += [
                    f"_{len(sections) - kept} more check section(s) left out to keep this "
                    "comment within GitHub's size limit; see the full report below._",
                    "",
                ]
            parts.append("</details>")
        if note:
            parts += ["", note]
        parts += footer
        return "\n".join(parts) + "\n"

    text = build(table, len(sections), None)
    if len(text) <= max_chars:
        return text
    # Drop whole check sections from the end until it fits (never cut a table or tag in half).
    for kept in range(len(sections) - 1, -1, -1):
        text = build(table, kept, None)
        if len(text) <= max_chars:
            return text
    # Still too long: the table itself is shortened, keeping the first rows (failures first).
    header, rows = table[:2], table[2:]
    lo, hi = 0, len(rows)
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        note = f"_{len(rows) - mid:,} more checks left out of the table (size limit)._"
        candidate = build(header + rows[:mid], 0, note)
        if len(candidate) <= max_chars:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return best
    # A bound too small for even the headline: a hard cut (still valid, if unhelpful, Markdown).
    cut = "\n\n_(truncated)_\n"
    return text[: max(0, max_chars - len(cut))] + cut


# ---------------------------------------------------------------------------------------------
# JUnit XML

# Characters XML 1.0 cannot hold at all (not even escaped): most C0 controls, lone surrogates,
# U+FFFE and U+FFFF. ElementTree writes them as they are, which no parser reads back.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _case_body(c: CheckResult) -> str:
    lines = [c.summary]
    if c.compared:
        lines.append(f"compared: {c.compared}")
    for k, v in c.numbers.items():
        lines.append(f"{k} = {fmt_number(v)}")
    for row in c.details[: _DETAIL_ROWS * 5]:
        lines.append("  " + ", ".join(f"{k}={fmt_number(v)}" for k, v in row.items()))
    if len(c.details) > _DETAIL_ROWS * 5:
        lines.append(f"  ... {len(c.details) - _DETAIL_ROWS * 5} more rows")
    return _xml("\n".join(lines))


def _seconds(ms: float) -> str:
    return f"{max(ms, 0.0) / 1000:.3f}"


def render_junit(report: CheckReport) -> str:
    """The report as JUnit XML, the test-report format GitLab, Jenkins and most CI systems show.

    One ``<testsuite>`` (inside ``<testsuites>``) per report, one ``<testcase>`` per check with
    ``classname`` the check's kind and ``time`` in seconds. A failing check has a ``<failure>``
    (its ``message`` the summary), a broken one an ``<error>``, a skipped one ``<skipped>``; the
    summary, what was compared and the numbers are the element's text (for passing and warning
    checks, ``<system-out>``). The suite's ``<properties>`` carry the candidate, the baseline, the
    policy hash and the data's rows and sha256.

    Returns
    -------
    str
        UTF-8 XML text with its declaration.
    """
    checks = report.checks
    counts = {s: sum(c.status == s for c in checks) for s in ("fail", "error", "skip")}
    name = f"mloop {report.kind.replace('_', '-')} {report.model} v{report.version}"
    totals = {
        "tests": str(len(checks)),
        "failures": str(counts["fail"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skip"]),
        "time": _seconds(report.duration_ms),
    }
    root = ET.Element("testsuites", {"name": _xml(name), **totals})
    suite = ET.SubElement(root, "testsuite", {"name": _xml(name), **totals, "id": report.id})
    props = ET.SubElement(suite, "properties")
    facts: dict[str, Any] = {
        "report_id": report.id,
        "status": report.status,
        "candidate": report.candidate_uri,
        "baseline": report.baseline_uri or "",
        "baseline_version": report.baseline_version,
        "policy_hash": report.policy_hash,
    }
    facts.update({f"data.{k}": v for k, v in report.data.items()})
    for key, value in facts.items():
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else dumps(value, what=key)
        ET.SubElement(props, "property", {"name": _xml(key), "value": _xml(text)})
    for c in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"name": _xml(c.name), "classname": _xml(c.kind), "time": _seconds(c.duration_ms)},
        )
        body = _case_body(c)
        if c.status == "fail":
            ET.SubElement(case, "failure", {"message": _xml(c.summary), "type": "fail"}).text = body
        elif c.status == "error":
            ET.SubElement(case, "error", {"message": _xml(c.summary), "type": "error"}).text = body
        elif c.status == "skip":
            ET.SubElement(case, "skipped", {"message": _xml(c.summary)})
            ET.SubElement(case, "system-out").text = body
        else:
            prefix = "WARNING: " if c.status == "warn" else ""
            ET.SubElement(case, "system-out").text = prefix + body
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------
# JSON


def render_json(report: CheckReport) -> str:
    """The report's wire form (the codec's strict JSON, as ``CheckReport.from_dict`` reads it)."""
    return dumps(report, indent=2, what="report") + "\n"
