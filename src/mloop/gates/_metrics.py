"""Metrics a gate compares, written so the paired bootstrap can score 1,000 resamples in one call.

Every function takes ``(y, out)`` arrays whose last axis is rows, so ``y[idx]`` of shape
(resamples, rows) gives one value per resample. Class labels are encoded as integer codes
before they get here (``positive`` is the code of the positive class), which keeps the arithmetic
numeric whatever the labels were (strings, booleans, ints).

Metrics that are the mean of a per-row value (accuracy, log loss, Brier, MSE, MAE, MAPE; RMSE is
the root of one) are :class:`RowMean` objects: the bootstrap then computes the per-row values once
and gathers one array per resample instead of recomputing the metric on gathered copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError

__all__ = ["METRICS", "MetricSpec", "RowMean", "Task", "get_metric", "metric_names"]

Task = Literal["classification", "regression"]
# What a metric reads: class codes from ``predict``, the positive class's score, or a value.
Output = Literal["label", "score", "value"]

_EPS = 1e-15


@dataclass(frozen=True)
class MetricSpec:
    name: str
    task: Task
    output: Output
    greater_is_better: bool
    binary_only: bool
    fn: Callable[[np.ndarray, np.ndarray], Any]
    description: str


class RowMean:
    """A metric that is ``finish(mean(per_row(y, out)))``: a mean of per-row values, maybe
    transformed (RMSE is the root of the mean squared error).

    Called like the other metric functions (last axis = rows, one value per leading index). The
    paired bootstrap reads ``per_row`` and ``finish`` to resample the per-row values directly.
    """

    def __init__(
        self,
        per_row: Callable[[np.ndarray, np.ndarray], np.ndarray],
        finish: Callable[[Any], Any] | None = None,
        *,
        name: str,
    ) -> None:
        self.per_row = per_row
        self.finish = finish
        self.__name__ = name

    def __call__(self, y: np.ndarray, out: np.ndarray) -> Any:
        mean = np.mean(self.per_row(y, out), axis=-1)
        return mean if self.finish is None else self.finish(mean)

    def __repr__(self) -> str:
        return f"RowMean({self.__name__})"


def _right(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    return y == out


_accuracy = RowMean(_right, name="accuracy")


def _counts(y: np.ndarray, out: np.ndarray) -> tuple[Any, Any, Any]:
    # binary codes: 1 is the positive class
    tp = np.sum((y == 1) & (out == 1), axis=-1)
    fp = np.sum((y != 1) & (out == 1), axis=-1)
    fn = np.sum((y == 1) & (out != 1), axis=-1)
    return tp, fp, fn


def _ratio(num: Any, den: Any) -> Any:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _precision(y: np.ndarray, out: np.ndarray) -> Any:
    tp, fp, _ = _counts(y, out)
    return _ratio(tp, tp + fp)


def _recall(y: np.ndarray, out: np.ndarray) -> Any:
    tp, _, fn = _counts(y, out)
    return _ratio(tp, tp + fn)


def _f1(y: np.ndarray, out: np.ndarray) -> Any:
    tp, fp, fn = _counts(y, out)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return -np.where(y == 1, np.log(p), np.log1p(-p))


def _brier_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (p - (y == 1)) ** 2


_log_loss = RowMean(_log_loss_rows, name="log_loss")
_brier = RowMean(_brier_rows, name="brier")


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with midranks (1-D only: DeLong handles the paired comparison)."""
    from scipy.stats import rankdata

    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _squared_error(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v - y) ** 2


def _absolute_error(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(v - y)


def _absolute_percentage_error(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(v - y) / np.maximum(np.abs(y), np.finfo(np.float64).eps)


_mse = RowMean(_squared_error, name="mse")
_rmse = RowMean(_squared_error, np.sqrt, name="rmse")
_mae = RowMean(_absolute_error, name="mae")
_mape = RowMean(_absolute_percentage_error, name="mape")


def _r2(y: np.ndarray, v: np.ndarray) -> Any:
    sse = np.sum((v - y) ** 2, axis=-1)
    centred = y - np.mean(y, axis=-1, keepdims=True)
    sst = np.sum(centred**2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), 0.0)


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("accuracy", "classification", "label", True, False, _accuracy, "accuracy"),
        MetricSpec("precision", "classification", "label", True, True, _precision, "precision"),
        MetricSpec("recall", "classification", "label", True, True, _recall, "recall"),
        MetricSpec("f1", "classification", "label", True, True, _f1, "F1 score"),
        MetricSpec("roc_auc", "classification", "score", True, True, _roc_auc, "ROC AUC"),
        MetricSpec("log_loss", "classification", "score", False, True, _log_loss, "log loss"),
        MetricSpec("brier", "classification", "score", False, True, _brier, "Brier score"),
        MetricSpec("rmse", "regression", "value", False, False, _rmse, "RMSE"),
        MetricSpec("mse", "regression", "value", False, False, _mse, "MSE"),
        MetricSpec("mae", "regression", "value", False, False, _mae, "MAE"),
        MetricSpec("r2", "regression", "value", True, False, _r2, "R²"),
        MetricSpec("mape", "regression", "value", False, False, _mape, "MAPE"),
    )
}


def metric_names(task: Task | None = None) -> list[str]:
    return [n for n, m in METRICS.items() if task is None or m.task == task]


def get_metric(name: str, *, task: Task, binary: bool, has_scores: bool) -> MetricSpec:
    """The metric ``name``, refused with a clear reason when it does not apply to this model."""
    spec = METRICS.get(name)
    if spec is None:
        raise InvalidInputError(f"unknown metric {name!r}; known: {', '.join(METRICS)}.")
    if spec.task != task:
        raise InvalidInputError(
            f"metric {name!r} is for {spec.task}; this model is a {task} model "
            f"(its metrics: {', '.join(metric_names(task))})."
        )
    if spec.binary_only and not binary:
        raise InvalidInputError(
            f"metric {name!r} needs a binary target; this one has more than two classes."
        )
    if spec.output == "score" and not has_scores:
        raise InvalidInputError(
            f"metric {name!r} needs scores, and this model has no `predict_proba`."
        )
    return spec
