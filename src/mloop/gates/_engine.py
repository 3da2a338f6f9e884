"""``check_model``: run a policy's checks on a candidate against its baseline and write the report."""

from __future__ import annotations

import dataclasses
import math
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError, MloopError, NotFoundError
from mloop.gates._compare import non_regression_check, slice_checks, threshold_check
from mloop.gates._data_checks import data_checks, signature_check
from mloop.gates._evaluate import (
    Holdout,
    Scored,
    class_values,
    detect_task,
    encode_labels,
    primary_metric,
    score_model,
    split_holdout,
)
from mloop.gates._policy import Policy, load_policy, policy_hash
from mloop.registry import ModelVersion, Registry
from mloop.store import CheckReport, CheckResult

__all__ = ["DEFAULT_BASELINE_ALIAS", "check_model"]

DEFAULT_BASELINE_ALIAS = "champion"
_PREDICTION_SAMPLE = 2000


class _Default:
    def __repr__(self) -> str:
        return "<the champion>"


_CHAMPION: Any = _Default()


def check_model(
    candidate: str,
    *,
    data: Any,
    baseline: str | None = _CHAMPION,
    target: str | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    store: bool = True,
) -> CheckReport:
    """Check ``candidate`` against ``baseline`` on the holdout ``data`` under ``policy``.

    Parameters
    ----------
    candidate : str
        A registered version: ``models:/churn/7`` or ``models:/churn@challenger``.
    data : table or path
        The holdout with the label column; anything :func:`mloop.tables.read_table` reads
        (Parquet, CSV, a DataFrame, an Arrow table, ...).
    baseline : str or None
        The version to beat. Default: the model's ``champion`` alias when it exists (else no
        baseline, as for a first version). None: no baseline.
    target : str, optional
        The label column (default: the policy's ``target``, ``label``).
    policy : Policy, path, or None
        Default: ``./mloop.yaml`` when it exists, else the default policy.
    registry : Registry, optional
    store : bool, default True
        Store the report (linked to the candidate version, announced as ``report_attached``).

    Returns
    -------
    CheckReport
        ``.passed`` is True when no check failed or errored.

    Raises
    ------
    InvalidInputError
        Bad input that is the caller's, not the candidate's: an unknown target column, a policy
        error, a URI that is not a registered version, a metric that does not apply.
    NotFoundError
        The candidate or the baseline does not exist.
    """
    t_start = time.perf_counter()
    registry = registry or Registry()
    pol, _source = (policy, None) if isinstance(policy, Policy) else load_policy(policy)
    cand_version = _resolve(registry, candidate, what="candidate")
    base_uri = _baseline_uri(registry, cand_version, baseline)
    base_version = None if base_uri is None else _resolve(registry, base_uri, what="baseline")
    table, data_uri = _read(data)
    target = target or pol.target
    features, y_raw = split_holdout(table, target)

    cand = Scored(candidate, cand_version, registry.load(candidate))
    base = None if base_uri is None else Scored(base_uri, base_version, registry.load(base_uri))  # type: ignore[arg-type]
    task = detect_task(y_raw, cand.model, "auto")
    holdout = Holdout(table=table, features=features, target=target, y_raw=y_raw, task=task)
    if task == "classification":
        holdout.classes = class_values(y_raw, [cand.model] + ([base.model] if base else []))
        holdout.y = encode_labels(y_raw, holdout.classes)
    else:
        try:
            holdout.y = y_raw.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"the target column {target!r} is not numeric; a regression model needs numbers."
            ) from None
    score_model(cand, holdout, want_scores=True)
    if base is not None:
        score_model(base, holdout, want_scores=True)

    checks: list[CheckResult] = []
    checks.append(signature_check(pol.signature, cand_version, base_version))
    metric = primary_metric(holdout, cand, pol.primary_metric)
    if cand.error is not None:
        checks.append(
            CheckResult(
                name="predict",
                kind="signature",
                status="fail",
                summary=f"The candidate cannot score the holdout: {cand.error}",
                compared=f"{candidate} on {holdout.rows:,} rows",
            )
        )
    else:
        checks.extend(_quality_checks(pol, metric, holdout, cand, base))
    if pol.data.enabled:
        columns = _input_columns(cand_version, features)
        checks.extend(
            data_checks(
                pol.data, features, version=cand_version, registry=registry, columns=columns
            )
        )
    if cand.error is None:
        checks.extend(_budget_checks(pol, cand, features))
        checks.extend(_behaviour_checks(pol, cand, base, holdout))

    checks = _unique_names([_finite(c) for c in checks])
    failed = any(c.blocking for c in checks)
    report = CheckReport(
        id=uuid.uuid4().hex,
        model=cand_version.name,
        version=cand_version.version,
        kind="check",
        status="fail" if failed else "pass",
        candidate_uri=candidate,
        baseline_uri=base_uri,
        baseline_version=None if base_version is None else base_version.version,
        policy_hash=policy_hash(pol),
        policy=pol.model_dump(mode="json", by_alias=True),
        data={
            "uri": data_uri,
            "rows": holdout.rows,
            "sha256": _digest(table),
            "target": target,
            "task": task,
            "primary_metric": metric,
        },
        checks=tuple(checks),
        created_ms=int(time.time() * 1000),
        duration_ms=(time.perf_counter() - t_start) * 1e3,
        actor=registry.actor,
        extra=_extra(holdout, cand, base, metric),
    )
    if store:
        registry.store.put_check_report(report)
    return report


# ------------------------------------------------------------------------------------ helpers


def _resolve(registry: Registry, uri: str, *, what: str) -> ModelVersion:
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidInputError(
            f"the {what} must be a registered version, models:/NAME/VERSION or "
            f"models:/NAME@ALIAS; got {uri!r}."
        )
    return registry.resolve(uri)


def _baseline_uri(registry: Registry, candidate: ModelVersion, baseline: Any) -> str | None:
    if baseline is not _CHAMPION:
        return baseline
    try:
        registry.store.get_alias(candidate.name, DEFAULT_BASELINE_ALIAS)
    except NotFoundError:
        return None
    return f"models:/{candidate.name}@{DEFAULT_BASELINE_ALIAS}"


def _read(data: Any) -> tuple[pa.Table, str]:
    from mloop.tables import read_table

    uri = str(data) if isinstance(data, (str, os.PathLike)) else f"<{type(data).__name__}>"
    return read_table(data), uri


def _digest(table: pa.Table) -> str:
    from mloop.artifacts import dataset_digest

    return dataset_digest(table)


def _input_columns(version: ModelVersion, features: pa.Table) -> list[str] | None:
    sig = version.signature or {}
    inputs = sig.get("inputs") if isinstance(sig, dict) else None
    names = [str(c["name"]) for c in inputs or [] if isinstance(c, dict) and c.get("name")]
    return [n for n in names if n in features.column_names] or None


def _metrics_to_compare(pol: Policy, metric: str) -> list[str]:
    return list(pol.non_regression.metrics or [metric])


def _guarded(name: str, kind: str, fn: Any, *args: Any) -> CheckResult:
    """A check whose own failure (a metric that does not apply, ...) becomes an ``error`` result."""
    try:
        return fn(*args)
    except MloopError as exc:
        return CheckResult(name=name, kind=kind, status="error", summary=f"{name}: {exc}")


def _quality_checks(
    pol: Policy, metric: str, holdout: Holdout, cand: Scored, base: Scored | None
) -> list[CheckResult]:
    out = [
        _guarded(
            f"threshold:{rule.metric}", "threshold", threshold_check, rule, holdout, cand, base
        )
        for rule in pol.thresholds
    ]
    comparable = base is not None and base.error is None
    if comparable and base is not None and base.version.version == cand.version.version:
        # the champion checked against itself: nothing to compare (the data checks still run)
        same = f"Not compared: the candidate is the baseline ({base.uri} is {cand.version.uri})."
        names = [f"non_regression:{m}" for m in _metrics_to_compare(pol, metric)]
        names += [f"slice:{r.column}:{r.metric or metric}" for r in pol.slices]
        kinds = ["non_regression"] * (len(names) - len(pol.slices)) + ["slice"] * len(pol.slices)
        return out + [
            CheckResult(name=n, kind=k, status="skip", summary=same)
            for n, k in zip(names, kinds, strict=True)
        ]
    if pol.non_regression.enabled:
        for m in _metrics_to_compare(pol, metric):
            if not comparable:
                out.append(_no_baseline(f"non_regression:{m}", "non_regression", base))
                continue
            out.append(
                _guarded(
                    f"non_regression:{m}",
                    "non_regression",
                    non_regression_check,
                    m,
                    pol.non_regression,
                    holdout,
                    cand,
                    base,
                )
            )
    for rule in pol.slices:
        name = f"slice:{rule.column}:{rule.metric or metric}"
        if not comparable:
            out.append(_no_baseline(name, "slice", base))
            continue
        out.append(_guarded(name, "slice", slice_checks, rule, metric, holdout, cand, base))
    return out


def _no_baseline(name: str, kind: str, base: Scored | None) -> CheckResult:
    if base is None:
        return CheckResult(
            name=name,
            kind=kind,
            status="skip",
            summary="Not compared: there is no baseline (no champion yet).",
        )
    return CheckResult(
        name=name,
        kind=kind,
        status="error",
        summary=f"Not compared: the baseline {base.uri} cannot score the holdout: {base.error}",
    )


def _budget_checks(pol: Policy, cand: Scored, features: pa.Table) -> list[CheckResult]:
    b = pol.budgets
    if b.p95_latency_ms is None and b.package_size_mb is None and b.peak_memory_mb is None:
        return []
    from mloop.gates._budgets import budget_checks

    return budget_checks(
        cand.model,
        uri=cand.uri,
        rows=features,
        p95_latency_ms=b.p95_latency_ms,
        package_size_mb=b.package_size_mb,
        peak_memory_mb=b.peak_memory_mb,
        requests=b.requests,
    )


def _behaviour_checks(
    pol: Policy, cand: Scored, base: Scored | None, holdout: Holdout
) -> list[CheckResult]:
    if not pol.behaviour.paths:
        return []
    import pandas as pd

    from mloop.gates._behaviour import discover_behaviour_tests, run_behaviour_tests
    from mloop.gates._model_under_test import ModelUnderTest

    tests = discover_behaviour_tests(pol.behaviour.paths)
    champion = None
    if base is not None and base.error is None:
        champion = ModelUnderTest(base.model, uri=base.uri, version=base.version.version)
    return run_behaviour_tests(
        tests,
        model=ModelUnderTest(cand.model, uri=cand.uri, version=cand.version.version),
        data=holdout.features,
        target=pd.Series(holdout.y_raw, name=holdout.target),
        baseline=champion,
    )


def _extra(holdout: Holdout, cand: Scored, base: Scored | None, metric: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if cand.predictions is not None:
        rng = np.random.default_rng(0)
        n = len(cand.predictions)
        idx = np.sort(rng.choice(n, size=min(n, _PREDICTION_SAMPLE), replace=False))
        extra["predictions"] = {"rows": n, "sample": _plain(cand.predictions[idx])}
        if cand.scores is not None:
            extra["scores"] = {"rows": n, "sample": _plain(cand.scores[idx])}
    timings = {"candidate_predict_ms": cand.predict_ms}
    if base is not None:
        timings["baseline_predict_ms"] = base.predict_ms
    extra["timings"] = timings
    extra["primary_metric"] = metric
    return extra


def _finite(check: CheckResult) -> CheckResult:
    """Non-finite numbers as None: a report's numbers read back the same from every store."""
    bad = [k for k, v in check.numbers.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return check
    numbers = {k: (None if k in bad else v) for k, v in check.numbers.items()}
    return dataclasses.replace(check, numbers=numbers)


def _unique_names(checks: list[CheckResult]) -> list[CheckResult]:
    """Two rules on the same metric (or slice) get ``#2``, ``#3``... so each name is a key."""
    seen: dict[str, int] = {}
    out = []
    for c in checks:
        n = seen[c.name] = seen.get(c.name, 0) + 1
        out.append(c if n == 1 else dataclasses.replace(c, name=f"{c.name}#{n}"))
    return out


def _plain(values: np.ndarray) -> Sequence[Any]:
    if values.dtype.kind == "f":
        return [float(v) for v in values]
    return [v.item() if hasattr(v, "item") else v for v in values.tolist()]
