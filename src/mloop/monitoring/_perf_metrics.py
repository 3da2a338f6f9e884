"""Pure metric functions shared by the performance report and CBPE: ROC AUC (hard or soft labels),
average precision and the expected calibration error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "binary_average_precision",
    "binary_roc_auc",
    "expected_calibration_error",
]


def binary_roc_auc(y: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """ROC AUC of binary labels ``y`` (0/1) and scores; ties count one half (Mann-Whitney U).

    With ``weight`` (a probability of being positive per row, as in CBPE) the positives and
    negatives are soft: row i counts ``weight[i]`` as a positive and ``1 - weight[i]`` as a negative,
    and the area is that of the expected ROC curve.
    """
    if weight is None:
        ranks = rankdata(score)
        n_pos = float(y.sum())
        n_neg = len(y) - n_pos
        return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    tps, fps = _curve_counts(weight, score)
    tps = np.concatenate([[0.0], tps])
    fps = np.concatenate([[0.0], fps])
    if tps[-1] <= 0 or fps[-1] <= 0:
        return float("nan")
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def binary_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (area under the step precision-recall curve), as scikit-learn's."""
    tps, fps = _curve_counts(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def _curve_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (soft) true and false positives at each distinct score threshold, high to low."""
    order = np.argsort(-score, kind="mergesort")
    s, w = score[order], y[order].astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(w)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps


def expected_calibration_error(y: Any, p: Any, *, n_bins: int = 10) -> float | None:
    """Expected calibration error with equal-width bins on [0, 1].

    ``ECE = sum_b (n_b / n) * |mean(y in b) - mean(p in b)|``, where bin ``b`` holds the rows whose
    ``p`` falls in ``[b / n_bins, (b + 1) / n_bins)`` (the last bin includes 1).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes in {0, 1} (for top-label ECE: whether the top prediction was right).
    p : array-like of shape (n,)
        Predicted probability of the outcome.
    n_bins : int, default 10

    Returns
    -------
    float or None
        ``None`` for no rows.

    Examples
    --------
    >>> round(expected_calibration_error([0, 1, 1, 1], [0.1, 0.9, 0.9, 0.6]), 6)
    0.175
    """
    ya = np.asarray(y, dtype=np.float64)
    pa = np.asarray(p, dtype=np.float64)
    if len(pa) == 0:
        return None
    b = np.minimum((pa * n_bins).astype(np.int64), n_bins - 1)
    # sum_b (n_b/n) |sum_y/n_b - sum_p/n_b| = sum_b |sum_y - sum_p| / n
    gap = np.abs(np.bincount(b, ya, n_bins) - np.bincount(b, pa, n_bins))
    return float(gap.sum() / len(pa))
