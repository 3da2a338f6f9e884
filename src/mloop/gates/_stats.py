"""Paired comparisons of two models on the same holdout: DeLong for ROC AUC, McNemar for accuracy,
and a seeded, vectorised paired bootstrap for any metric.

Each returns the candidate-minus-baseline difference, a two-sided confidence interval for it and a
p-value for "no difference", so a gate can say "worse" only when the difference is significant.

References
----------
- DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated receiver
  operating characteristic curves: a nonparametric approach", Biometrics 44(3).
- Sun & Xu (2014), "Fast implementation of DeLong's algorithm for comparing the areas under
  correlated receiver operating characteristic curves", IEEE Signal Processing Letters 21(11): the
  midrank computation used here (O(n log n) instead of O(m n)).
- McNemar (1947); the exact test is the binomial test on the discordant pairs (Fagerland, Lydersen
  & Laake 2013 recommend the mid-p variant for small counts; the exact and the continuity-corrected
  chi-square are given here, as statsmodels does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mloop.errors import InvalidInputError
from mloop.gates._metrics import RowMean

__all__ = ["PairedComparison", "delong_test", "mcnemar_test", "paired_bootstrap"]


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus baseline on the same rows.

    ``low``/``high`` bound the difference at ``confidence``; ``p_value`` tests "no difference"
    (two-sided). ``details`` holds what the method computed along the way.
    """

    method: str
    metric: str
    baseline: float
    candidate: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    n: int
    details: dict[str, Any]


def _check_level(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    return float(confidence)


def _as_labels(y_true: Any, n: int | None = None) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InvalidInputError(f"labels must be 1-D; got shape {y.shape}.")
    if n is not None and len(y) != n:
        raise InvalidInputError(f"labels have {len(y)} rows; the predictions have {n}.")
    return y


# ------------------------------------------------------------------------------------------ DeLong


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = len(x)
    ranks_sorted = np.empty(n, dtype=np.float64)
    # runs of equal values share the mean of their positions
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [n]))
    mean_rank = (starts + ends + 1) / 2.0  # positions are 1-based: (start+1 + end) / 2
    ranks_sorted[:] = np.repeat(mean_rank, ends - starts)
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks_sorted
    return out


def _delong_components(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, ...]:
    """AUCs and the structural components V10 (per positive) and V01 (per negative), per model.

    ``scores`` is (k models, n rows); Sun & Xu's midrank formulation.
    """
    pos, neg = scores[:, positive], scores[:, ~positive]
    m, n = pos.shape[1], neg.shape[1]
    k = scores.shape[0]
    tx = np.empty((k, m))
    ty = np.empty((k, n))
    tz = np.empty((k, m + n))
    for r in range(k):
        tx[r] = _midranks(pos[r])
        ty[r] = _midranks(neg[r])
        tz[r] = _midranks(np.concatenate([pos[r], neg[r]]))
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n  # for each positive: share of negatives it outranks
    v01 = 1.0 - (tz[:, m:] - ty) / m  # for each negative: share of positives that outrank it
    return aucs, v10, v01


def delong_test(
    y_true: Any,
    baseline_scores: Any,
    candidate_scores: Any,
    *,
    positive_label: Any = 1,
    confidence: float = 0.95,
) -> PairedComparison:
    """DeLong's test for the difference of two correlated ROC AUCs (same rows, same labels).

    The interval is the normal one, ``diff +- z * se``, with DeLong's variance of the difference;
    the p-value is two-sided, ``2 * P(Z > |diff / se|)``. Higher scores mean the positive class.

    These are the conventions of R's pROC (Robin et al. 2011), against which the numbers are
    tested to 1e-6: the difference, its Z statistic (``details["z"]``), p-value and interval are
    ``roc.test(candidate_roc, baseline_roc, method="delong", paired=TRUE)``'s; the variances
    and covariance (``details["covariance"]``, baseline first) are ``var``/``cov`` with
    ``method="delong"`` (sample covariances of the placements, ``m - 1`` and ``n - 1``
    denominators); each AUC's own interval (``details["baseline_interval"]`` and
    ``details["candidate_interval"]``) is ``ci.auc(roc, method="delong")``'s: normal, then
    clipped to [0, 1]. The interval of the difference is not clipped.
    """
    level = _check_level(confidence)
    a = np.asarray(baseline_scores, dtype=np.float64)
    b = np.asarray(candidate_scores, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInputError(
            f"the two models' scores must be 1-D and of one length; got {a.shape} and {b.shape}."
        )
    y = _as_labels(y_true, len(a))
    positive = y == positive_label
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise InvalidInputError(
            f"ROC AUC needs both classes in the labels; got {m} positive and {n} negative rows."
        )
    if m < 2 or n < 2:  # the placements' sample variances need two of each
        raise InvalidInputError(
            "DeLong's variance needs at least 2 positive and 2 negative rows; got "
            f"{m} positive and {n} negative rows."
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("scores must be finite numbers (no NaN or inf).")
    aucs, v10, v01 = _delong_components(np.vstack([a, b]), positive)
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    cov = s10 / m + s01 / n
    diff = float(aucs[1] - aucs[0])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    z_level = float(stats.norm.ppf(0.5 + level / 2))
    # no variance: identical rankings (a zero difference), or placements constant in both
    # models (pROC then has Z = +-Inf and p = 0 too)
    if var <= 0.0:
        se = 0.0
        z, p = (0.0, 1.0) if diff == 0.0 else (math.copysign(math.inf, diff), 0.0)
    else:
        se = var**0.5
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    auc_se = np.sqrt(np.diag(cov))
    intervals = [
        (float(max(auc - z_level * sd, 0.0)), float(min(auc + z_level * sd, 1.0)))
        for auc, sd in zip(aucs, auc_se, strict=True)
    ]
    return PairedComparison(
        method="delong",
        metric="roc_auc",
        baseline=float(aucs[0]),
        candidate=float(aucs[1]),
        difference=diff,
        low=diff - z_level * se,
        high=diff + z_level * se,
        p_value=p,
        confidence=level,
        n=m + n,
        details={
            "se": se,
            "z": z,
            "covariance": cov.tolist(),
            "baseline_interval": intervals[0],
            "candidate_interval": intervals[1],
            "positives": m,
            "negatives": n,
        },
    )


# ----------------------------------------------------------------------------------------- McNemar


def mcnemar_test(
    y_true: Any,
    baseline_pred: Any,
    candidate_pred: Any,
    *,
    exact: bool | None = None,
    confidence: float = 0.95,
) -> PairedComparison:
    """McNemar's test for the difference of two paired accuracies.

    ``b`` rows only the baseline gets right, ``c`` only the candidate. The p-value is the exact
    binomial test on ``b + c`` discordant pairs (default when ``b + c < 25``) or the
    continuity-corrected chi-square. The interval for the accuracy difference ``(c - b) / n`` is
    the Wald interval for paired proportions.
    """
    level = _check_level(confidence)
    p0 = np.asarray(baseline_pred)
    p1 = np.asarray(candidate_pred)
    if p0.ndim != 1 or p0.shape != p1.shape:
        raise InvalidInputError(
            f"the two models' predictions must be 1-D and of one length; got {p0.shape} and "
            f"{p1.shape}."
        )
    y = _as_labels(y_true, len(p0))
    n = len(y)
    if n == 0:
        raise InvalidInputError("McNemar's test needs at least one row.")
    ok0, ok1 = p0 == y, p1 == y
    b = int(np.sum(ok0 & ~ok1))
    c = int(np.sum(~ok0 & ok1))
    use_exact = (b + c) < 25 if exact is None else exact
    if b + c == 0:
        p = 1.0
    elif use_exact:
        p = float(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    else:
        chi2 = (abs(b - c) - 1.0) ** 2 / (b + c)
        p = float(stats.chi2.sf(chi2, 1))
    acc0, acc1 = float(ok0.mean()), float(ok1.mean())
    diff = (c - b) / n
    var = ((b + c) / n - diff**2) / n
    z = float(stats.norm.ppf(0.5 + level / 2))
    se = max(var, 0.0) ** 0.5
    return PairedComparison(
        method="mcnemar-exact" if use_exact else "mcnemar-chi2",
        metric="accuracy",
        baseline=acc0,
        candidate=acc1,
        difference=diff,
        low=diff - z * se,
        high=diff + z * se,
        p_value=min(p, 1.0),
        confidence=level,
        n=n,
        details={"only_baseline_right": b, "only_candidate_right": c},
    )


# --------------------------------------------------------------------------------------- bootstrap


_BATCH_INDICES = 1_000_000  # row indices per batch of resamples: 8 MB of int64, cache-sized


def paired_bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], Any],
    y_true: Any,
    baseline_out: Any,
    candidate_out: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    metric_name: str | None = None,
    batch: int | None = None,
) -> PairedComparison:
    """Percentile interval of ``metric(candidate) - metric(baseline)`` over paired resamples.

    Both models are scored on the same resampled rows, so their correlation is kept. ``metric``
    takes ``(y_true, output)`` arrays; when it accepts 2-D inputs of shape (resamples, rows) and
    returns one value per resample it is called once per ``batch`` resamples, otherwise once per
    resample. The p-value is the two-sided bootstrap p-value: twice the smaller share of resampled
    differences on either side of zero (at least ``1 / (n_resamples + 1)``).

    ``batch`` (default: as many resamples as keep a batch under a million row indices) changes
    memory and speed only: the resampled rows, so the results, depend on ``seed`` alone. The
    gate's own mean-of-rows metrics (accuracy, log loss, Brier, MSE, MAE, MAPE, RMSE) take a
    faster path with the same resamples: the per-row values are computed once and each resample
    gathers their paired differences (one gather instead of four, no metric recomputed), which
    equals the general path up to floating-point rounding (~1e-16).
    """
    level = _check_level(confidence)
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or n_resamples < 10:
        raise InvalidInputError(f"`n_resamples` must be an int >= 10; got {n_resamples!r}.")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise InvalidInputError(f"`batch` must be an int >= 1 or None; got {batch!r}.")
    y = np.asarray(y_true)
    o0, o1 = np.asarray(baseline_out), np.asarray(candidate_out)
    n = len(y)
    if n == 0 or len(o0) != n or len(o1) != n:
        raise InvalidInputError(
            f"labels and both models' outputs need the same, non-zero number of rows; got {n}, "
            f"{len(o0)} and {len(o1)}."
        )
    base = float(metric(y, o0))
    cand = float(metric(y, o1))
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    if isinstance(metric, RowMean):
        path = "row-mean"
        gather = _row_mean_gather(metric, y, o0, o1)
    elif _vectorises(metric, y, o0):
        path = "vectorised"

        def gather(idx: np.ndarray) -> np.ndarray:
            return np.asarray(metric(y[idx], o1[idx])) - np.asarray(metric(y[idx], o0[idx]))
    else:
        path = "loop"

        def gather(idx: np.ndarray) -> np.ndarray:
            return np.array([float(metric(y[r], o1[r])) - float(metric(y[r], o0[r])) for r in idx])

    # one stream of row indices, cut into batches: the resamples do not depend on the batch size
    k_max = batch if batch is not None else max(1, _BATCH_INDICES // n)
    done = 0
    while done < n_resamples:
        k = min(k_max, n_resamples - done)
        diffs[done : done + k] = gather(rng.integers(0, n, size=(k, n)))
        done += k
    alpha = 1.0 - level
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    below, above = float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))
    p = min(1.0, max(2 * min(below, above), 1.0 / (n_resamples + 1)))
    return PairedComparison(
        method="paired-bootstrap",
        metric=str(metric_name or getattr(metric, "__name__", None) or "metric"),
        baseline=base,
        candidate=cand,
        difference=cand - base,
        low=float(low),
        high=float(high),
        p_value=p,
        confidence=level,
        n=n,
        details={
            "n_resamples": n_resamples,
            "seed": seed,
            "vectorised": path != "loop",
            "path": path,
        },
    )


def _row_mean_gather(
    metric: RowMean, y: np.ndarray, o0: np.ndarray, o1: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Resampled differences of a mean-of-rows metric from its per-row values."""
    r0 = np.asarray(metric.per_row(y, o0), dtype=np.float64)
    r1 = np.asarray(metric.per_row(y, o1), dtype=np.float64)
    finish = metric.finish
    if finish is None:
        # mean(r1[idx]) - mean(r0[idx]) is mean((r1 - r0)[idx]): one gather
        d = r1 - r0
        return lambda idx: np.mean(d[idx], axis=-1)
    return lambda idx: (
        np.asarray(finish(np.mean(r1[idx], axis=-1)))
        - np.asarray(finish(np.mean(r0[idx], axis=-1)))
    )


def _vectorises(metric: Callable[..., Any], y: np.ndarray, out: np.ndarray) -> bool:
    """Whether ``metric`` takes (resamples, rows) arrays and returns one value per resample."""
    probe = np.stack([np.arange(min(len(y), 8))] * 2)
    try:
        got = np.asarray(metric(y[probe], out[probe]))
        single = float(metric(y[probe[0]], out[probe[0]]))
    except Exception:  # a metric written for 1-D inputs only
        return False
    return got.shape == (2,) and bool(np.isclose(got[0], single, equal_nan=True))
