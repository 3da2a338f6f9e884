"""Check reports built by hand for the renderer and PR tests."""

from __future__ import annotations

from typing import Any

from mloop.store import CheckReport, CheckResult


def result(name: str, status: str = "pass", **kw: Any) -> CheckResult:
    kind = kw.pop("kind", name.split(":", 1)[0])
    return CheckResult(
        name=name,
        kind=kind,
        status=status,
        summary=kw.pop("summary", f"{name} {status}ed."),
        **kw,
    )


def report(checks: list[CheckResult] | None = None, **kw: Any) -> CheckReport:
    checks = (
        checks
        if checks is not None
        else [
            result(
                "non_regression:roc_auc",
                "pass",
                summary="ROC AUC 0.912 vs 0.905 (+0.007, 95% CI -0.002 to +0.016): not worse.",
                compared="models:/churn/7 vs models:/churn/6 on 5,000 rows",
                numbers={"candidate": 0.912, "baseline": 0.905, "p_value": 0.21},
                duration_ms=12.5,
            ),
            result(
                "signature",
                "pass",
                summary="Same inputs as the champion.",
                duration_ms=0.4,
            ),
            result(
                "data:drift",
                "warn",
                summary="2 of 30 columns drifted (PSI > 0.2): tenure, plan.",
                numbers={"drifted": 2, "columns": 30},
                details=({"column": "tenure", "psi": 0.31}, {"column": "plan", "psi": 0.22}),
                duration_ms=40.0,
            ),
        ]
    )
    status = "fail" if any(c.status in ("fail", "error") for c in checks) else "pass"
    fields: dict[str, Any] = {
        "id": "a" * 32,
        "model": "churn",
        "version": 7,
        "kind": "check",
        "status": status,
        "candidate_uri": "models:/churn/7",
        "baseline_uri": "models:/churn@champion",
        "baseline_version": 6,
        "policy_hash": "f" * 64,
        "policy": {"primary_metric": "roc_auc", "level": 0.05},
        "data": {"uri": "holdout.parquet", "rows": 5000, "sha256": "0" * 64, "target": "label"},
        "checks": tuple(checks),
        "created_ms": 1_700_000_000_000,
        "duration_ms": 1234.5,
        "actor": "ci",
    }
    fields.update(kw)
    return CheckReport(**fields)


def failing_report(**kw: Any) -> CheckReport:
    checks = [
        result("signature", "pass", summary="Same inputs as the champion."),
        result(
            "non_regression:accuracy",
            "fail",
            summary="Accuracy 0.861 vs 0.884 (-0.023, 95% CI -0.031 to -0.015, McNemar p = 2e-06): "
            "significantly worse.",
            compared="models:/churn/8 vs models:/churn/6 on 5,000 rows",
            numbers={"candidate": 0.861, "baseline": 0.884, "delta": -0.023, "p_value": 2e-06},
        ),
        result(
            "behaviour:test_invariance",
            "error",
            kind="behaviour",
            summary="The test raised KeyError: 'age'.",
        ),
        result("budget:latency", "skip", kind="budget", summary="No latency budget in the policy."),
    ]
    return report(checks, **{"version": 8, "candidate_uri": "models:/churn/8", **kw})
