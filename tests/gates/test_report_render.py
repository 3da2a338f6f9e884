"""Check reports as a PR comment (Markdown, read back through a GFM table parser), as JUnit XML
(parsed back, in the shape GitLab and Jenkins read) and as JSON (the codec's wire form)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from _sample_reports import failing_report, report, result
from markdown_it import MarkdownIt

from mloop.codec import loads
from mloop.gates import (
    GITHUB_COMMENT_LIMIT,
    comment_marker,
    render_json,
    render_junit,
    render_markdown,
)
from mloop.store import CheckReport


class _Tables(HTMLParser):
    """The cells' text of every table row, and the open/close balance of <details>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.details = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "details":
            self.details += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "details":
            self.details -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def _rows(markdown: str) -> list[list[str]]:
    parser = _Tables()
    parser.feed(_html(markdown))
    return parser.rows


def test_a_passing_report_reads_as_one() -> None:
    md = render_markdown(report(), marker=comment_marker("churn"))
    lines = md.splitlines()
    assert lines[0] == "<!-- mloop-check-report:churn -->"
    assert lines[2].startswith("### ✅ mloop check passed: `churn` v7 vs v6")
    assert "Candidate `models:/churn/7` against baseline `models:/churn@champion` (v6)" in md
    assert "on 5,000 rows of `holdout.parquet`" in md
    assert "3 checks: 2 passed, 1 warning." in md
    rows = _rows(md)
    assert rows[0] == ["Status", "Check", "Result"]
    # Warnings before passes; each row is status, check, sentence.
    assert [r[1] for r in rows[1:4]] == ["data:drift", "non_regression:roc_auc", "signature"]
    assert rows[1][0] == "⚠️ warn" and rows[2][0] == "✅ pass"
    assert rows[2][2].startswith("ROC AUC 0.912 vs 0.905 (+0.007, 95% CI")
    # The warning's numbers and its detail rows are in a collapsed section; a passing check's
    # numbers are not repeated there.
    assert "<details><summary>Numbers of 1 failing or warning check</summary>" in md
    assert ["tenure", "0.31"] in rows and ["drifted", "2"] in rows
    assert ["p_value", "0.21"] not in rows
    # The policy hash, the data's rows and sha256, and how to get the full report.
    assert f"Policy hash: `{'f' * 64}`" in md
    assert f"sha256 `{'0' * 64}`" in md and "5,000 rows" in md
    assert f"mloop ci report --report {'a' * 32} --format json" in md
    assert md.endswith("\n") and md == render_markdown(report(), marker=comment_marker("churn"))


def test_a_failing_report_leads_with_its_failures() -> None:
    md = render_markdown(failing_report())
    assert md.startswith("### ❌ mloop check failed: `churn` v8 vs v6\n")
    assert "4 checks: 1 passed, 1 failed, 1 error, 1 skipped." in md
    rows = _rows(md)
    assert [r[0] for r in rows[1:5]] == ["💥 error", "❌ fail", "⏭️ skip", "✅ pass"]
    assert "Numbers of 2 failing or warning checks" in md
    assert ["p_value", "2e-06"] in rows and ["delta", "-0.023"] in rows
    assert "Compared: models:/churn/8 vs models:/churn/6 on 5,000 rows" in md


def test_no_baseline_and_post_deploy_headlines() -> None:
    md = render_markdown(report(baseline_uri=None, baseline_version=None))
    assert "### ✅ mloop check passed: `churn` v7\n" in md and "against no baseline" in md
    md = render_markdown(report(kind="post_deploy"))
    assert "mloop post-deploy check passed" in md


def test_cells_are_escaped_for_github_markdown() -> None:
    nasty = "a | b\nsecond line <details>*not bold* `tick` [link](http://x) & #1 \\ end"
    r = report(
        [
            result(
                "weird|name`x", "fail", kind="behaviour", summary=nasty, numbers={"k|ey": "v|al"}
            ),
            result("ok", "pass", summary="fine"),
        ]
    )
    md = render_markdown(r)
    rows = _rows(md)
    # The table keeps three cells per row, and each cell reads back as the original text.
    assert all(len(row) == 3 for row in rows[:3])
    assert rows[1][1] == "weird|name`x"
    assert rows[1][2] == nasty.replace("\n", "\n")
    assert ["k|ey", "v|al"] in rows
    html = _html(md)
    assert "<em>" not in html and "<a href" not in html
    parser = _Tables()
    parser.feed(html)
    assert parser.details == 0  # the user's "<details>" opened nothing


def test_the_comment_stays_within_githubs_limit() -> None:
    # Many failing checks with long detail tables: sections are dropped from the end, with a note.
    big = [
        result(
            f"slice:segment={i}:accuracy",
            "fail",
            kind="slice",
            summary=f"Segment {i} is worse by 0.{i:03d}.",
            numbers={f"n{j}": j / 7 for j in range(30)},
            details=tuple({"row": k, "value": k / 3, "text": "x" * 40} for k in range(200)),
        )
        for i in range(300)
    ]
    md = render_markdown(report(big), marker=comment_marker("churn"))
    assert len(md) <= GITHUB_COMMENT_LIMIT and md.endswith("\n")
    assert re.search(r"_\d+ more check section\(s\) left out", md)
    assert "_Not shown: 180 more rows (see the JSON report)._" in md
    assert md.count("<details>") == md.count("</details>") == 2
    assert len([r for r in _rows(md) if r and r[1].startswith("slice:")]) >= 300  # full table

    # So many checks that the table itself must be cut: the note says how many are left out.
    huge = [result(f"c{i}", "fail", summary="y" * 500) for i in range(400)]
    md = render_markdown(report(huge), max_chars=20_000)
    assert len(md) <= 20_000
    m = re.search(r"_(\d+) more checks left out of the table", md)
    assert m is not None
    shown = len(_rows(md)) - 1
    assert shown + int(m.group(1)) == 400
    assert "Policy hash" in md  # the footer survives

    tiny = render_markdown(report(), max_chars=100)
    assert len(tiny) <= 100 and tiny.endswith("_(truncated)_\n")


def _parse_junit(xml: str) -> ET.Element:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(xml.encode("utf-8"))


def test_junit_has_the_shape_gitlab_and_jenkins_read() -> None:
    root = _parse_junit(render_junit(failing_report()))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "mloop check churn v8"
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")}
    assert counts == {"tests": "4", "failures": "1", "errors": "1", "skipped": "1", "time": "1.234"}
    assert root.get("tests") == "4" and root.get("failures") == "1"
    props = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert props["candidate"] == "models:/churn/8" and props["policy_hash"] == "f" * 64
    assert props["data.rows"] == "5000" and props["baseline_version"] == "6"

    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {
        "signature",
        "non_regression:accuracy",
        "behaviour:test_invariance",
        "budget:latency",
    }
    for case in cases.values():
        assert float(case.get("time", "x")) >= 0
        assert case.get("classname") in ("signature", "non_regression", "behaviour", "budget")
    fail = cases["non_regression:accuracy"].find("failure")
    assert fail is not None and fail.get("message", "").startswith("Accuracy 0.861 vs 0.884")
    assert "p_value = 2e-06" in (fail.text or "") and "compared: models:/churn/8" in (
        fail.text or ""
    )
    err = cases["behaviour:test_invariance"].find("error")
    assert err is not None and err.get("message") == "The test raised KeyError: 'age'."
    assert cases["budget:latency"].find("skipped") is not None
    passed = cases["signature"]
    assert [child.tag for child in passed] == ["system-out"]


def test_junit_escapes_and_strips_what_xml_cannot_hold() -> None:
    text = 'quote " amp & lt < gt > ]]> bell \x07 nul \x00 ok'
    r = report([result("odd<&>", "fail", summary=text, numbers={"x": float("nan")})])
    root = _parse_junit(render_junit(r))
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "odd<&>"
    fail = case.find("failure")
    assert fail is not None
    assert fail.get("message") == text.replace("\x07", "\ufffd").replace("\x00", "\ufffd")
    assert "x = NaN" in (fail.text or "")


def test_junit_time_is_in_seconds_and_warnings_are_marked() -> None:
    root = _parse_junit(render_junit(report()))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["non_regression:roc_auc"].get("time") == "0.013"
    out = cases["data:drift"].find("system-out")
    assert out is not None and (out.text or "").startswith("WARNING: 2 of 30 columns drifted")
    assert "column=tenure, psi=0.31" in (out.text or "")


def test_json_is_the_wire_form() -> None:
    r = report([result("x", "pass", numbers={"ci_low": float("-inf"), "p": float("nan")})])
    text = render_json(r)
    data = loads(text)
    assert data["checks"][0]["numbers"] == {"ci_low": "-Infinity", "p": "NaN"}
    back = CheckReport.from_dict(data)
    assert back.id == r.id and back.checks[0].name == "x"
    assert render_json(back) == text
