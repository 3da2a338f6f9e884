"""What a check report must be to be stored: each rule refused with a message naming the field.

``put_check_report`` runs this validation before any backend sees the report (one case per
backend is in test_check_reports_contract); the rules themselves are checked here, once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from mloop.errors import InvalidInputError
from mloop.store import CheckReport, CheckResult, validate_check_report

OK = CheckResult("threshold:accuracy", "threshold", "pass", "accuracy 0.91 >= 0.9.")
FAIL = CheckResult("threshold:auc", "threshold", "fail", "auc 0.7 < 0.8.")
ERROR = CheckResult("behaviour:invariance", "behaviour", "error", "the check raised.")


def report(**changes: Any) -> CheckReport:
    base = CheckReport(
        id="0123456789abcdef0123456789abcdef",
        model="churn",
        version=2,
        kind="check",
        status="pass",
        candidate_uri="models:/churn/2",
        baseline_uri=None,
        baseline_version=None,
        policy_hash="a" * 64,
        policy={},
        data={},
        checks=(OK,),
        created_ms=1_700_000_000_000,
        duration_ms=1.5,
    )
    return dataclasses.replace(base, **changes)


def check(**changes: Any) -> CheckResult:
    return dataclasses.replace(OK, **changes)


def test_a_complete_report_is_returned_as_is() -> None:
    r = report()
    assert validate_check_report(r) is r
    assert validate_check_report(report(status="fail", checks=(OK, FAIL))).status == "fail"
    assert validate_check_report(report(status="fail", checks=(ERROR,))).status == "fail"
    warn_skip = (check(status="warn"), check(name="s", status="skip"))
    assert validate_check_report(report(checks=warn_skip)).passed
    assert validate_check_report(report(checks=())).passed  # a policy with no checks passes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "0123456789ABCDEF0123456789ABCDEF"}, "`report.id` must be 32 lowercase hex"),
        ({"id": "abc"}, r"`report.id` must be 32 lowercase hex characters; got 'abc'\."),
        ({"id": "0" * 32 + "\n"}, "`report.id` must be 32 lowercase hex"),
        ({"model": "bad name!"}, "model name must be 1 to 256 characters"),
        ({"version": 0}, r"model version must be an int >= 1; got 0\."),
        ({"version": True}, "model version must be an int >= 1; got True"),
        ({"kind": "nightly"}, r"`report.kind` must be one of \['check', 'post_deploy'\]"),
        ({"status": "warn"}, r"`report.status` must be one of \['pass', 'fail'\]; got 'warn'"),
        (
            {"status": "pass", "checks": (OK, FAIL)},
            r"`report.status` must be 'fail' when a check fails or errors \(\['threshold:auc'\]\); "
            r"got 'pass'\.",
        ),
        ({"status": "pass", "checks": (ERROR,)}, "`report.status` must be 'fail' when a check"),
        (
            {"status": "fail", "checks": (OK, check(name="w", status="warn"))},
            "`report.status` must be 'pass' when no check has status 'fail' or 'error'; "
            "got 'fail'.",
        ),
        ({"status": "fail", "checks": ()}, "`report.status` must be 'pass' when no check"),
        ({"candidate_uri": ""}, "`report.candidate_uri` must be a non-empty str"),
        ({"candidate_uri": None}, "`report.candidate_uri` must be a str of at most 1000"),
        ({"baseline_uri": 7}, "`report.baseline_uri` must be a str of at most 1000 characters or"),
        ({"baseline_version": 0}, r"`report.baseline_version` must be an int >= 1; got 0\."),
        ({"policy_hash": "A" * 64}, "`report.policy_hash` must be 64 lowercase hex characters"),
        ({"policy_hash": "a" * 63}, "`report.policy_hash` must be 64 lowercase hex characters"),
        ({"policy": None}, "`report.policy` must be a mapping; got NoneType"),
        ({"data": [1]}, "`report.data` must be a mapping; got list"),
        ({"extra": "x"}, "`report.extra` must be a mapping; got str"),
        ({"checks": OK}, "`report.checks` must be a tuple of CheckResult; got CheckResult"),
        ({"checks": ({"name": "x"},)}, r"`report.checks\[0\]` must be a CheckResult; got dict"),
        ({"checks": (OK, OK)}, r"`report.checks\[1\].name` must be unique in the report"),
        ({"created_ms": -1}, r"`report.created_ms` must be an int >= 0; got -1\."),
        ({"created_ms": 1.5}, "`report.created_ms` must be an int >= 0; got 1.5"),
        ({"duration_ms": math.nan}, r"`report.duration_ms` must be a finite number >= 0 \(ms\)"),
        ({"duration_ms": -1.0}, "`report.duration_ms` must be a finite number >= 0"),
        ({"actor": "a" * 256}, "`report.actor` must be a str of at most 255 characters or None"),
        ({"actor": 7}, "`report.actor` must be a str of at most 255 characters or None; got 7"),
        ({"actor": "ci\x00"}, "`report.actor` must not contain NUL characters"),
        ({"actor": "ci\ud800"}, "`report.actor` must be valid Unicode text"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_check_report(report(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, r"`report.checks\[0\].name` must be a non-empty str"),
        ({"name": "x" * 251}, r"`report.checks\[0\].name` must be a str of at most 250"),
        ({"kind": "vibes"}, r"`report.checks\[0\].kind` must be one of \['threshold', "),
        ({"status": "ok"}, r"`report.checks\[0\].status` must be one of \['pass', 'fail', "),
        ({"summary": None}, r"`report.checks\[0\].summary` must be a str of at most 8000"),
        ({"compared": "x" * 8001}, r"`report.checks\[0\].compared` must be a str of at most"),
        ({"summary": "a\x00b"}, r"`report.checks\[0\].summary` must not contain NUL"),
        ({"numbers": [1.0]}, r"`report.checks\[0\].numbers` must be a mapping; got list"),
        ({"details": {"a": 1}}, r"`report.checks\[0\].details` must be a tuple of mappings"),
        ({"details": ({"a": 1}, 2)}, r"`report.checks\[0\].details\[1\]` must be a mapping"),
        ({"duration_ms": math.inf}, r"`report.checks\[0\].duration_ms` must be a finite number"),
        ({"duration_ms": "1"}, r"`report.checks\[0\].duration_ms` must be a finite number"),
    ],
)
def test_a_bad_check_is_refused_naming_it(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_check_report(report(checks=(check(**changes),)))


def test_what_is_not_a_report_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="`report` must be a CheckReport; got dict"):
        validate_check_report(report().to_dict())


def test_the_body_must_be_json_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.store import _checks_base

    with pytest.raises(InvalidInputError, match=r"`report.checks\[0\].numbers\['s'\]` cannot be"):
        _checks_base.encode_report(report(checks=(check(numbers={"s": {1, 2}}),)))
    r = report(extra={"blob": "x" * 2000})
    assert _checks_base.decode_report(_checks_base.encode_report(r)) == r
    monkeypatch.setattr(_checks_base, "MAX_REPORT_BYTES", 1000)
    with pytest.raises(InvalidInputError, match="`report` must be at most 1000 bytes as JSON"):
        _checks_base.encode_report(r)
