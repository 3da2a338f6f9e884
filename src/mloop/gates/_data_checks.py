"""Checks on the evaluation data (against the training data, through the monitoring engine) and on
the candidate's signature (against the baseline's)."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from mloop.errors import MloopError
from mloop.gates._policy import DataPolicy, SignaturePolicy
from mloop.gates._signature import signature_problems
from mloop.registry import ModelVersion, Registry
from mloop.store import CheckResult

__all__ = ["data_checks", "reference_table", "signature_check"]

_TRAINING_CONTEXTS = ("training", "train")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def reference_table(
    policy: DataPolicy, version: ModelVersion, registry: Registry
) -> tuple[Any, str] | None:
    """The data the evaluation rows are compared with, and a phrase naming it (None: no data)."""
    from mloop.artifacts import load_dataset
    from mloop.monitoring import load_if_profile
    from mloop.tables import read_table

    ref = policy.reference
    if ref == "none":
        return None
    if ref == "training":
        for d in version.datasets:
            if d.get("context") in _TRAINING_CONTEXTS and d.get("sha256"):
                sha = str(d["sha256"])
                table = load_dataset(registry.blobstore, sha)
                return (
                    table,
                    f"the training data of {version.uri} ({d.get('name')}, datasets:/{sha[:12]})",
                )
        return None
    if ref.startswith("datasets:/"):
        sha = ref.removeprefix("datasets:/")
        return load_dataset(registry.blobstore, sha), ref
    loaded = load_if_profile(ref)
    if loaded is ref:
        loaded = read_table(ref)
    return loaded, ref


def data_checks(
    policy: DataPolicy,
    features: pa.Table,
    *,
    version: ModelVersion,
    registry: Registry,
    columns: list[str] | None,
) -> list[CheckResult]:
    """Schema, missing values and drift of the evaluation rows against the reference data."""
    from mloop.monitoring import drift_report, quality_report

    t0 = time.perf_counter()
    try:
        found = reference_table(policy, version, registry)
    except MloopError as exc:
        return [
            CheckResult(
                name="data:reference",
                kind="data",
                status="error",
                summary=f"The reference data {policy.reference!r} could not be read: {exc}",
                duration_ms=_ms(t0),
            )
        ]
    if found is None:
        why = (
            f"{version.uri} was registered without training data (log it with "
            "`run.log_dataset(train, name='train')` before `log_model`)"
            if policy.reference == "training"
            else "the policy sets `data.reference: none`"
        )
        return [
            CheckResult(
                name="data",
                kind="data",
                status="skip",
                summary=f"Data checks skipped: {why}.",
                duration_ms=_ms(t0),
            )
        ]
    reference, named = found
    ref_cols = list(reference.column_names) if hasattr(reference, "column_names") else None
    wanted = [c for c in (columns or features.column_names) if ref_cols is None or c in ref_cols]
    out: list[CheckResult] = []
    compared = f"{features.num_rows:,} evaluation rows vs {named}"
    if policy.schema_ or policy.missing:
        t1 = time.perf_counter()
        q = quality_report(
            reference,
            features,
            columns=wanted,
            thresholds={"missing_share": policy.max_missing_increase},
        )
        schema_checks = {"column_missing", "type", "extra_column"}
        for label, enabled, keep in (
            ("schema", policy.schema_, lambda c: c.check in schema_checks),
            ("missing", policy.missing, lambda c: c.check == "missing_share"),
        ):
            if not enabled:
                continue
            mine = [c for c in q.checks if keep(c)]
            failed = [c for c in mine if c.verdict == "fail"]
            warned = [c for c in mine if c.verdict == "warn"]
            if failed:
                status = "fail"
                said = "; ".join(f"{c.column}: {c.message}" for c in failed[:8])
            elif warned:
                status = "warn"
                said = "; ".join(f"{c.column}: {c.message}" for c in warned[:8])
            else:
                status = "pass"
                said = (
                    f"all {len(wanted)} columns present with the training types"
                    if label == "schema"
                    else f"no column's missing share grew by more than {policy.max_missing_increase:g}"
                )
            out.append(
                CheckResult(
                    name=f"data:{label}",
                    kind="data",
                    status=status,
                    summary=f"Data {label}: {said}.",
                    compared=compared,
                    numbers={"columns": len(wanted), "failed": len(failed), "warned": len(warned)},
                    details=tuple(
                        {
                            "column": c.column,
                            "check": c.check,
                            "verdict": c.verdict,
                            "value": c.value,
                            "reference": c.reference_value,
                            "message": c.message,
                        }
                        for c in mine
                        if c.verdict != "pass"
                    ),
                    duration_ms=_ms(t1),
                )
            )
    if policy.drift:
        t1 = time.perf_counter()
        d = drift_report(reference, features, columns=wanted, drift_share=policy.max_drift_share)
        drifted = [c for c in d.columns.values() if c.drifted]
        if d.drifted:
            status = "warn" if policy.drift_warn_only else "fail"
            said = (
                f"{d.n_drifted} of {d.n_evaluated} columns drifted ({d.share_drifted:.0%}, "
                f"limit {policy.max_drift_share:.0%}): "
                + ", ".join(f"{c.name} ({c.method} {c.statistic:.3g})" for c in drifted[:8])
            )
        else:
            status = "pass"
            said = (
                f"{d.n_drifted} of {d.n_evaluated} columns drifted ({d.share_drifted:.0%}), "
                f"under the {policy.max_drift_share:.0%} limit"
            )
            if drifted:
                said += ": " + ", ".join(c.name for c in drifted[:8])
        out.append(
            CheckResult(
                name="data:drift",
                kind="data",
                status=status,
                summary=f"Data drift: {said}.",
                compared=compared,
                numbers={
                    "drifted": d.n_drifted,
                    "evaluated": d.n_evaluated,
                    "share": d.share_drifted,
                    "max_share": policy.max_drift_share,
                },
                details=tuple(
                    {
                        "column": c.name,
                        "method": c.method,
                        "statistic": c.statistic,
                        "p_value": c.p_value,
                        "threshold": c.threshold,
                        "drifted": c.drifted,
                        "status": c.status,
                    }
                    for c in d.columns.values()
                ),
                duration_ms=_ms(t1),
            )
        )
    return out


_KIND_WORDS = {
    "added": "new required input{s} the baseline's clients do not send",
    "removed": "input{s} no longer taken (the value{s} would be ignored)",
    "retyped": "input{s} retyped unsafely",
    "nullable": "input{s} no longer accepting missing values",
    "kind": "input{s} changed between columns and tensors",
    "shape": "tensor shape{s} changed",
}


def _grouped(problems: list[Any]) -> str:
    """One clause per kind of problem, naming the columns (a few problems: each one's message)."""
    if len(problems) <= 3:
        return "; ".join(p.message for p in problems)
    parts = []
    for kind, words in _KIND_WORDS.items():
        cols = [str(p.column) for p in problems if p.kind == kind]
        if not cols:
            continue
        shown = ", ".join(cols[:6]) + (f" and {len(cols) - 6} more" if len(cols) > 6 else "")
        parts.append(f"{len(cols)} {words.format(s='' if len(cols) == 1 else 's')}: {shown}")
    return "; ".join(parts)


def signature_check(
    policy: SignaturePolicy, candidate: ModelVersion, baseline: ModelVersion | None
) -> CheckResult:
    """Would every request the baseline accepts still be accepted by the candidate?"""
    from mloop.registry import ModelSignature

    t0 = time.perf_counter()
    if baseline is None:
        return CheckResult(
            name="signature",
            kind="signature",
            status="skip",
            summary="Signature compatibility not checked: there is no baseline.",
            duration_ms=_ms(t0),
        )
    compared = f"inputs of {candidate.uri} vs {baseline.uri}"

    def sig(v: ModelVersion) -> Any:
        return None if v.signature is None else ModelSignature.from_dict(v.signature)

    problems = signature_problems(sig(baseline), sig(candidate), allow_removed=policy.allow_removed)
    if candidate.signature is None or baseline.signature is None:
        which = candidate.uri if candidate.signature is None else baseline.uri
        return CheckResult(
            name="signature",
            kind="signature",
            status="warn",
            summary=f"Signature compatibility not checked: {which} has no signature.",
            compared=compared,
            duration_ms=_ms(t0),
        )
    if problems:
        return CheckResult(
            name="signature",
            kind="signature",
            status="fail",
            summary="The candidate would refuse or ignore what the baseline accepts: "
            + _grouped(problems)
            + ".",
            compared=compared,
            numbers={"problems": len(problems)},
            details=tuple(
                {"kind": p.kind, "column": p.column, "message": p.message} for p in problems
            ),
            duration_ms=_ms(t0),
        )
    return CheckResult(
        name="signature",
        kind="signature",
        status="pass",
        summary="Every input the baseline accepts, the candidate accepts too.",
        compared=compared,
        duration_ms=_ms(t0),
    )
