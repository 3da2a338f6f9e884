"""A registry for the Models and Deployments pages' tests: model ``churn`` with three versions from
three runs (v1 champion; v2 with a passing check report under the default policy; v3 with a
failing one), an alias moved twice (an audit trail to roll back), and deployment ``churn-api``
serving the champion with a 10% canary and a shadow, two revisions and an hour of logged
traffic."""

from __future__ import annotations

import time
from typing import Any

from mloop.gates import Policy, policy_hash
from mloop.store import (
    LATENCY_BOUNDS_MS,
    CheckReport,
    CheckResult,
    DatasetVersion,
    RunInput,
    ServingMinute,
    Store,
)

TRAIN, HOLDOUT = "1a" * 32, "2b" * 32
NOW_MS = int(time.time() // 60 * 60_000)  # a whole minute: buckets are minutes


def _result(name: str, status: str, summary: str, **numbers: float) -> CheckResult:
    return CheckResult(
        name=name,
        kind=name.split(":", 1)[0],
        status=status,
        summary=summary,
        compared="models:/churn/N vs models:/churn/1 on 5,000 rows",
        numbers=numbers,
        duration_ms=3.5,
    )


def check_report(version: int, *, passed: bool, report_id: str) -> CheckReport:
    checks = [
        _result("signature", "pass", "Same inputs as the champion."),
        _result(
            "non_regression:accuracy",
            "pass" if passed else "fail",
            (
                "Accuracy 0.912 vs 0.905 (+0.007): not worse."
                if passed
                else "Accuracy 0.861 vs 0.905 (-0.044, McNemar p = 2e-06): significantly worse."
            ),
            candidate=0.912 if passed else 0.861,
            baseline=0.905,
            p_value=0.21 if passed else 2e-06,
        ),
    ]
    return CheckReport(
        id=report_id,
        model="churn",
        version=version,
        kind="check",
        status="pass" if passed else "fail",
        candidate_uri=f"models:/churn/{version}",
        baseline_uri="models:/churn@champion",
        baseline_version=1,
        policy_hash=policy_hash(Policy()),
        policy={"primary_metric": "accuracy"},
        data={"uri": "holdout.parquet", "rows": 5000, "sha256": HOLDOUT, "target": "label"},
        checks=tuple(checks),
        created_ms=NOW_MS - 60_000,
        duration_ms=120.0,
        actor="ci",
    )


def model_registry(store: Store) -> dict[str, Any]:
    """Build the registry described above; returns the run ids by version and the reports."""
    p = store.get_or_create_project("churn-training")
    store.put_dataset(
        DatasetVersion(
            sha256=TRAIN,
            name="train",
            schema={"tenure": "int64", "plan": "string", "label": "int64"},
            num_rows=20_000,
            source_uri="s3://data/churn/train.parquet",
            storage_uri=f"datasets:/{TRAIN}",
            created_ms=NOW_MS - 3_600_000,
        )
    )
    runs: dict[int, str] = {}
    for version, (lr, acc) in enumerate([(0.1, 0.905), (0.05, 0.912), (0.3, 0.861)], start=1):
        run = store.create_run(p.id, name=f"train-v{version}", user="ada")
        store.log_input(run.id, RunInput(TRAIN, "train", "training"))
        runs[version] = run.id
        store.create_model_version(
            "churn",
            artifact_uri=f"runs:/{run.id}/model",
            flavor="sklearn",
            source_run_id=run.id,
            metrics={"accuracy": acc, "roc_auc": acc + 0.03},
            params={"lr": str(lr), "max_depth": "6" if version < 3 else "12"},
            datasets=[{"name": "train", "sha256": TRAIN, "role": "training"}],
            signature={"inputs": [{"name": "tenure", "type": "long"}]},
            tags=(
                {
                    "mloop.pipeline": "retrain",
                    "mloop.pipeline_run": "7",
                    "mloop.pipeline_step": "fit",
                }
                if version == 2
                else {}
            ),
            actor="ada",
        )
    store.set_alias("churn", "challenger", 3, actor="ada", reason="try the deep trees")
    store.set_alias("churn", "champion", 2, actor="ada", reason="first release")
    store.set_alias("churn", "champion", 1, actor="ada", reason="v2 was a mistake")
    reports = {
        2: store.put_check_report(check_report(2, passed=True, report_id="2a" * 16)),
        3: store.put_check_report(check_report(3, passed=False, report_id="3c" * 16)),
    }
    store.create_registered_model("empty-model", description="no versions yet", actor="ada")
    store.create_deployment(
        "churn-api",
        model="models:/churn@champion",
        canary="models:/churn@challenger",
        canary_percent=10.0,
        actor="ada",
    )
    store.update_deployment(
        "churn-api", shadow="models:/churn/2", actor="bob", reason="watch v2 on live traffic"
    )
    # an hour of traffic: 1,000 requests a minute for 50 minutes, 10% to the canary
    for minute in range(50):
        start = NOW_MS - (60 - minute) * 60_000
        store.add_inference_chunk(
            "churn-api",
            sha256=f"{minute:064x}",
            size=4096,
            n_rows=1000,
            first_ts_ms=start,
            last_ts_ms=start + 59_999,
            model_versions={"churn/1": 900, "churn/3": 100},
        )
    store.record_serving_minutes(serving_minutes())
    return {"runs": runs, "reports": reports}


def serving_minutes() -> list[ServingMinute]:
    """Two replicas over the same 50 minutes, 500 answers a minute each: replica a in 5-10 ms,
    replica b in 25-50 ms (so the merged median is 10 ms); b fails 5 a minute in the last 10."""
    out = []
    for minute in range(50):
        start = NOW_MS - (60 - minute) * 60_000
        for replica, bucket, mean in (("a:1", 3, 7.0), ("b:2", 5, 40.0)):
            counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
            counts[bucket] = 500
            errors = 5 if replica == "b:2" and minute >= 40 else 0
            out.append(
                ServingMinute(
                    "churn-api", replica, start, 500, errors, 500 * mean, mean + 2, tuple(counts)
                )
            )
    return out


def traffic_deployment(store: Store) -> None:
    """Deployment ``t``: one chunk of 600 rows spanning three whole minutes, one of 90 rows
    within a minute (to check how a chunk is spread over the buckets)."""
    store.create_registered_model("m", actor="ada")
    store.create_deployment("t", model="models:/m@champion", actor="ada")
    start = NOW_MS - 10 * 60_000
    store.add_inference_chunk(
        "t", sha256="ab" * 32, size=1, n_rows=600, first_ts_ms=start,
        last_ts_ms=start + 3 * 60_000 - 1, model_versions={"m/1": 600},
    )  # fmt: skip
    store.add_inference_chunk(
        "t", sha256="cd" * 32, size=1, n_rows=90, first_ts_ms=NOW_MS - 2 * 60_000 + 5,
        last_ts_ms=NOW_MS - 60_000 - 5, model_versions={"m/1": 90},
    )  # fmt: skip
