"""Model-quality checks: thresholds (MLflow ``MetricThreshold`` semantics), paired non-regression
against the baseline, and per-slice comparisons.

"Worse" needs evidence: the candidate is behind by more than the practical margin *and* the
one-sided test at the policy's level says so. The interval reported is the two-sided interval at
confidence ``1 - 2 * level`` (90% at level 0.05), whose upper end is the one-sided bound the
decision uses.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mloop.gates._evaluate import Holdout, Scored, resolve_metric
from mloop.gates._metrics import MetricSpec
from mloop.gates._policy import NonRegressionPolicy, SlicePolicy, ThresholdPolicy
from mloop.gates._stats import PairedComparison, delong_test, mcnemar_test, paired_bootstrap
from mloop.store import CheckResult

__all__ = ["non_regression_check", "slice_checks", "threshold_check"]

_TOL = 1e-9  # comparisons of metric values that are equal in decimal but not in binary


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return str(x)
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _value(spec: MetricSpec, holdout: Holdout, scored: Scored, rows: Any = None) -> float:
    y, out = holdout.y, scored.output(spec)
    assert y is not None
    if rows is not None:
        y, out = y[rows], out[rows]
    return float(spec.fn(y, out))


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


# --------------------------------------------------------------------------------- thresholds


def threshold_check(
    rule: ThresholdPolicy, holdout: Holdout, candidate: Scored, baseline: Scored | None
) -> CheckResult:
    """One ``MetricThreshold``: an absolute bound, and/or a minimum gain over the baseline.

    ``threshold``: candidate >= threshold (<= when lower is better). ``min_absolute_change``:
    candidate >= baseline + change (<= baseline - change). ``min_relative_change``: the same with
    ``change * |baseline|``; a zero baseline has no relative scale, so any strict improvement
    passes. Without a baseline the change parts are skipped (and said so).
    """
    t0 = time.perf_counter()
    spec = resolve_metric(rule.metric, holdout, candidate)
    gib = spec.greater_is_better if rule.greater_is_better is None else rule.greater_is_better
    sign = 1.0 if gib else -1.0
    cand = _value(spec, holdout, candidate)
    base = None if baseline is None or baseline.error else _value(spec, holdout, baseline)
    numbers: dict[str, Any] = {"candidate": cand, "greater_is_better": gib}
    failures, notes = [], []
    better, op = ("higher", ">=") if gib else ("lower", "<=")
    if rule.threshold is not None:
        numbers["threshold"] = rule.threshold
        if sign * (cand - rule.threshold) < -_TOL * max(1.0, abs(rule.threshold)):
            failures.append(f"{_fmt(cand)} is not {op} the threshold {_fmt(rule.threshold)}")
        else:
            notes.append(f"{_fmt(cand)} {op} {_fmt(rule.threshold)}")
    if base is not None:
        numbers["baseline"] = base
        numbers["change"] = cand - base
    for part, amount in (
        ("min_absolute_change", rule.min_absolute_change),
        ("min_relative_change", rule.min_relative_change),
    ):
        if amount is None:
            continue
        numbers[part] = amount
        if base is None:
            notes.append(f"{part} not checked: there is no baseline")
            continue
        need = amount if part == "min_absolute_change" else amount * abs(base)
        if part == "min_relative_change" and base == 0:
            ok = sign * cand > 0
            want = f"better than the baseline's 0 ({better} is better)"
        else:
            # 0.85 - 0.80 is 0.04999...: a gain equal to the requirement in decimal passes
            ok = sign * (cand - base) >= need - _TOL * max(1.0, abs(base), abs(cand))
            want = f"{_fmt(base + sign * need)} (the baseline's {_fmt(base)} {'+' if gib else '-'} {_fmt(need)})"
        if ok:
            notes.append(f"gain over the baseline meets {part}={amount:g}")
        else:
            failures.append(f"{_fmt(cand)} does not reach {want} ({part}={amount:g})")
    status = "fail" if failures else "pass"
    said = "; ".join(failures or notes)
    return CheckResult(
        name=f"threshold:{spec.name}",
        kind="threshold",
        status=status,
        summary=f"{spec.description} {_fmt(cand)}: {said}.",
        compared=f"{candidate.uri} on {holdout.rows:,} holdout rows",
        numbers=numbers,
        duration_ms=_ms(t0),
    )


# ----------------------------------------------------------------------------- non-regression


def _paired(
    spec: MetricSpec,
    holdout: Holdout,
    baseline: Scored,
    candidate: Scored,
    rule: NonRegressionPolicy,
) -> PairedComparison:
    confidence = 1.0 - 2.0 * rule.level
    y = holdout.y
    assert y is not None
    if rule.method == "auto" and spec.name == "roc_auc":
        return delong_test(
            y == 1, baseline.output(spec), candidate.output(spec), confidence=confidence
        )
    if rule.method == "auto" and spec.name == "accuracy":
        return mcnemar_test(y, baseline.output(spec), candidate.output(spec), confidence=confidence)
    return paired_bootstrap(
        spec.fn,
        y,
        baseline.output(spec),
        candidate.output(spec),
        n_resamples=rule.resamples,
        confidence=confidence,
        seed=rule.seed,
        metric_name=spec.name,
    )


def non_regression_check(
    metric: str,
    rule: NonRegressionPolicy,
    holdout: Holdout,
    candidate: Scored,
    baseline: Scored,
) -> CheckResult:
    """Candidate vs baseline on the same rows: fail only on a significant loss beyond the margin."""
    t0 = time.perf_counter()
    spec = resolve_metric(metric, holdout, candidate)
    cmp = _paired(spec, holdout, baseline, candidate, rule)
    sign = 1.0 if spec.greater_is_better else -1.0
    # gain > 0 means the candidate is better, whichever way the metric points
    gain, lo, hi = sign * cmp.difference, *sorted((sign * cmp.low, sign * cmp.high))
    worse = hi < -rule.margin
    better = lo > rule.margin
    level_pct = f"{100 * (1 - 2 * rule.level):g}%"
    direction = "higher" if spec.greater_is_better else "lower"
    margin = f" by more than the margin {rule.margin:g}" if rule.margin else ""
    interval = f"{level_pct} interval of the gain [{_fmt(lo)}, {_fmt(hi)}]"
    head = (
        f"{spec.description}: candidate {_fmt(cmp.candidate)} vs baseline {_fmt(cmp.baseline)} "
        f"({direction} is better), gain {_fmt(gain)}, {interval}, p={cmp.p_value:.3g} ({cmp.method})"
    )
    if worse:
        status, verdict = "fail", f"significantly worse{margin} at level {rule.level:g}"
    elif rule.require_better and not better:
        status, verdict = (
            "fail",
            f"not significantly better{margin} at level {rule.level:g}, which the policy requires",
        )
    elif better:
        status, verdict = "pass", f"significantly better{margin}"
    else:
        status, verdict = (
            "pass",
            "no significant loss" + (f" beyond the margin {rule.margin:g}" if rule.margin else ""),
        )
    return CheckResult(
        name=f"non_regression:{spec.name}",
        kind="non_regression",
        status=status,
        summary=f"{head}: {verdict}.",
        compared=f"{candidate.uri} vs {baseline.uri} on the same {holdout.rows:,} rows",
        numbers={
            "candidate": cmp.candidate,
            "baseline": cmp.baseline,
            "difference": cmp.difference,
            "gain": gain,
            "ci_low": lo,
            "ci_high": hi,
            "confidence": 1 - 2 * rule.level,
            "p_value": cmp.p_value,
            "level": rule.level,
            "margin": rule.margin,
            "method": cmp.method,
            "verdict": "worse" if worse else ("better" if better else "no significant difference"),
            "rows": cmp.n,
        },
        duration_ms=_ms(t0),
    )


# ------------------------------------------------------------------------------------ slices


def _segments(holdout: Holdout, rule: SlicePolicy) -> list[tuple[str, np.ndarray]]:
    from mloop.errors import InvalidInputError

    if rule.column not in holdout.table.column_names:
        raise InvalidInputError(
            f"slice column {rule.column!r} is not in the holdout; its columns: "
            f"{', '.join(holdout.table.column_names[:30])}."
        )
    values = holdout.table.column(rule.column).to_numpy(zero_copy_only=False)
    numeric = (
        values.dtype.kind in "iuf" and (rule.values is None) and len(np.unique(values)) > rule.bins
    )
    if numeric:
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, rule.bins + 1)))
        out = []
        for i in range(len(edges) - 1):
            lo, hi = edges[i], edges[i + 1]
            last = i == len(edges) - 2
            mask = (values >= lo) & ((values <= hi) if last else (values < hi))
            out.append((f"{rule.column} in [{_fmt(lo)}, {_fmt(hi)}{']' if last else ')'}", mask))
        return out
    wanted = (
        rule.values if rule.values is not None else sorted({v for v in values.tolist()}, key=str)
    )
    return [(f"{rule.column}={v}", values == v) for v in wanted]


def slice_checks(
    rule: SlicePolicy, metric: str, holdout: Holdout, candidate: Scored, baseline: Scored
) -> CheckResult:
    """Per segment of ``rule.column``: the candidate may trail the baseline by at most ``max_drop``."""
    t0 = time.perf_counter()
    spec = resolve_metric(rule.metric or metric, holdout, candidate)
    sign = 1.0 if spec.greater_is_better else -1.0
    rows, failed, small = [], [], []
    for label, mask in _segments(holdout, rule):
        n = int(mask.sum())
        if n < rule.min_rows:
            small.append(f"{label} ({n} rows)")
            rows.append({"segment": label, "rows": n, "status": "skip"})
            continue
        idx = np.flatnonzero(mask)
        cand, base = _value(spec, holdout, candidate, idx), _value(spec, holdout, baseline, idx)
        drop = sign * (base - cand)
        bad = bool(np.isfinite(drop) and drop > rule.max_drop)
        rows.append(
            {
                "segment": label,
                "rows": n,
                "candidate": cand,
                "baseline": base,
                "drop": drop,
                "status": "fail" if bad else "pass",
            }
        )
        if bad:
            failed.append(f"{label}: {_fmt(cand)} vs {_fmt(base)} (drop {_fmt(drop)}, {n} rows)")
    checked = sum(1 for r in rows if r["status"] != "skip")
    if failed:
        status = "fail"
        said = (
            f"{len(failed)} of {checked} segments trail the baseline by more than {rule.max_drop:g}: "
            + "; ".join(failed[:5])
        )
    elif checked == 0:
        status = "skip"
        said = f"no segment has the {rule.min_rows} rows a comparison needs"
    else:
        status = "pass"
        said = f"every one of {checked} segments is within {rule.max_drop:g} of the baseline"
    if small and status != "skip":
        said += f" ({len(small)} segments under {rule.min_rows} rows not compared)"
    return CheckResult(
        name=f"slice:{rule.column}:{spec.name}",
        kind="slice",
        status=status,
        summary=f"{spec.description} by {rule.column}: {said}.",
        compared=f"{candidate.uri} vs {baseline.uri} per segment of {rule.column}",
        numbers={"max_drop": rule.max_drop, "segments": checked, "failed": len(failed)},
        details=tuple(rows),
        duration_ms=_ms(t0),
    )
