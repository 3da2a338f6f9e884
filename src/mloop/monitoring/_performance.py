"""Model performance with labels: classification and regression metrics, per-segment breakdown.

Every metric is a vectorised numpy function of the label, prediction and score arrays. A metric that is
undefined for the data at hand (ROC AUC with one class, R² of a constant target, ...) is ``None`` with a
reason in ``PerformanceReport.reasons``; it is never a NaN and never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mloop.codec import dataclass_from_wire, dumps, to_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._perf_metrics import (
    binary_average_precision,
    binary_roc_auc,
    expected_calibration_error,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "PerformanceReport",
    "expected_calibration_error",
    "performance_report",
]

from mloop.monitoring._perf_inputs import (
    _as_1d,
    _as_score,
    _binary_classes,
    _class_labels,
    _missing,
    _plain,
)

Task = Literal["binary", "multiclass", "regression"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
_PROB_TOL = 1e-6


@dataclass(frozen=True)
class PerformanceReport:
    """Performance metrics of one set of predictions, optionally broken down by segment.

    Attributes
    ----------
    task : {"binary", "multiclass", "regression"}
    n : int
        Rows the metrics were computed on.
    n_dropped : int
        Rows left out because the label, prediction or score was missing.
    metrics : dict of str to float or None
        Metric name -> value; ``None`` when undefined (see ``reasons``).
    reasons : dict of str to str
        Why a metric is ``None``.
    labels : list
        Class labels (classification), in the order of ``y_score`` columns and of the confusion matrix.
    pos_label : object or None
        Positive class of a binary task.
    confusion_matrix : list of list of int or None
        Rows are true classes, columns predicted classes, both in ``labels`` order.
    segments : dict of str to PerformanceReport
        Per-segment reports (empty without ``segments``).
    notes : list of str
        Anything the reader should know (dropped rows, classes left out of an average).
    """

    task: Task
    n: int
    n_dropped: int
    metrics: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    labels: list[Any] = field(default_factory=list)
    pos_label: Any = None
    confusion_matrix: list[list[int]] | None = None
    segments: dict[str, PerformanceReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> float | None:
        return self.metrics[name]

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "task": self.task,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "metrics": self.metrics,
            "reasons": self.reasons,
            "labels": self.labels,
            "pos_label": self.pos_label,
            "confusion_matrix": self.confusion_matrix,
            "segments": self.segments,
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form of the report (:mod:`mloop.codec`; labels as plain Python values)."""
        return to_wire(self, what="PerformanceReport")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceReport:
        """The inverse of :meth:`to_dict` (labels come back as JSON gave them)."""
        return dataclass_from_wire(cls, data)

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as a JSON string."""
        return dumps(self, indent=indent, what=type(self).__name__)


def performance_report(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    *,
    task: Task = "binary",
    segments: Any = None,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    threshold: float = 0.5,
    average: Literal["macro", "weighted", "micro"] = "macro",
    n_bins: int = 10,
) -> PerformanceReport:
    """Compute model performance from labels, predictions and (optionally) scores.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels (classification) or targets (regression). Rows where it is missing are dropped
        and counted in ``n_dropped``, as labels often arrive late in production.
    y_pred : array-like of shape (n,), optional
        Predicted labels or values. For classification it may be omitted when ``y_score`` is given:
        binary predictions are ``y_score >= threshold``, multiclass the argmax.
    y_score : array-like of shape (n,) or (n, k), optional
        Classification scores. Binary: the positive-class probability (1-D, or 2-D with the positive
        class in the last column). Multiclass: one column per class in ``labels`` order. Needed for
        ROC AUC, PR AUC and, when the scores are probabilities, log loss, Brier score and ECE.
    task : {"binary", "multiclass", "regression"}, default "binary"
    segments : array-like of shape (n,), optional
        A segment label per row; the report then holds one sub-report per segment value.
    labels : sequence, optional
        The class labels; default the sorted union of the labels seen in ``y_true`` and ``y_pred``
        (or ``0..k-1`` when ``y_score`` has ``k`` columns and the labels are those integers).
    pos_label : optional
        Positive class of a binary task; default 1 (or True) when the labels are a subset of
        {0, 1}, {-1, 1} or {False, True}. Required otherwise.
    threshold : float, default 0.5
        Decision threshold that turns binary scores into predictions when ``y_pred`` is omitted.
    average : {"macro", "weighted", "micro"}, default "macro"
        Averaging of multiclass precision, recall and F1 (scikit-learn's meaning).
    n_bins : int, default 10
        Equal-width bins of the expected calibration error.

    Returns
    -------
    PerformanceReport
        Classification: accuracy, precision, recall, f1, roc_auc, pr_auc (average precision),
        log_loss, brier, ece. Regression: mae, rmse, mape, r2. Multiclass ROC AUC and PR AUC are
        one-vs-rest macro averages; the multiclass Brier score is the mean over rows of the summed
        squared error over classes (scikit-learn's); the multiclass ECE is the top-label ECE.

    Raises
    ------
    InvalidInputError
        When the inputs have different lengths, the wrong shape, an unknown task, or labels whose
        types cannot be compared.

    Examples
    --------
    >>> r = performance_report([0, 1, 1, 0], [0, 1, 0, 0], [0.2, 0.9, 0.4, 0.1])
    >>> r["accuracy"], r["roc_auc"]
    (0.75, 1.0)
    """
    if task not in ("binary", "multiclass", "regression"):
        raise InvalidInputError(
            f"`task` must be one of 'binary', 'multiclass', 'regression'; got {task!r}."
        )
    if n_bins < 1:
        raise InvalidInputError(f"`n_bins` must be an int >= 1; got {n_bins!r}.")
    yt = _as_1d(y_true, "y_true")
    yp = None if y_pred is None else _as_1d(y_pred, "y_pred")
    ys = None if y_score is None else _as_score(y_score)
    seg = None if segments is None else _as_1d(segments, "segments")
    n_total = len(yt)
    for name, arr in (("y_pred", yp), ("y_score", ys), ("segments", seg)):
        if arr is not None and len(arr) != n_total:
            raise InvalidInputError(
                f"`{name}` must have the same length as `y_true` ({n_total}); got {len(arr)}."
            )
    if task == "regression":
        if yp is None:
            raise InvalidInputError("`y_pred` is required for task='regression'.")
        return _segmented(_regression, yt, yp, None, seg)
    if yp is None and ys is None:
        raise InvalidInputError("Classification needs `y_pred`, `y_score` or both; got neither.")

    keep = ~_missing(yt)
    if yp is not None:
        keep &= ~_missing(yp)
    if ys is not None:
        keep &= ~np.isnan(ys).reshape(n_total, -1).any(axis=1)
    classes = _class_labels(yt[keep], None if yp is None else yp[keep], ys, labels, task)
    pos = None
    if task == "binary":
        classes, pos = _binary_classes(classes, pos_label)
    elif yp is None and ys is not None and ys.ndim != 2:
        raise InvalidInputError(
            f"Multiclass `y_score` must have one column per class; got shape {ys.shape}."
        )

    def compute(yt_: np.ndarray, yp_: Any, ys_: Any) -> PerformanceReport:
        return _classification(
            yt_, yp_, ys_, task, classes, pos, threshold, average, n_bins, total=len(yt_)
        )

    return _segmented(compute, yt, yp, ys, seg, keep=keep)


def _segmented(
    compute: Any,
    yt: np.ndarray,
    yp: np.ndarray | None,
    ys: np.ndarray | None,
    seg: np.ndarray | None,
    *,
    keep: np.ndarray | None = None,
) -> PerformanceReport:
    if keep is None:
        keep = ~_missing(yt)
        if yp is not None:
            keep &= ~_missing(yp)

    def take(mask: np.ndarray) -> PerformanceReport:
        m = mask & keep
        rep: PerformanceReport = compute(
            yt[m], None if yp is None else yp[m], None if ys is None else ys[m]
        )
        dropped = int(mask.sum() - m.sum())
        notes = list(rep.notes)
        if dropped:
            notes.insert(
                0, f"{dropped} rows with a missing label, prediction or score were dropped."
            )
        return PerformanceReport(
            task=rep.task,
            n=rep.n,
            n_dropped=dropped,
            metrics=rep.metrics,
            reasons=rep.reasons,
            labels=rep.labels,
            pos_label=rep.pos_label,
            confusion_matrix=rep.confusion_matrix,
            notes=notes,
        )

    full = take(np.ones(len(yt), dtype=bool))
    if seg is None:
        return full
    seg_missing = _missing(seg)
    seg_keys = np.where(seg_missing, "<missing>", seg.astype(str))
    parts = {str(k): take(seg_keys == k) for k in np.unique(seg_keys)}
    return PerformanceReport(**{**full.__dict__, "segments": parts})


# ---------------------------------------------------------------- input handling


def _classification(
    yt: np.ndarray,
    yp: np.ndarray | None,
    ys: np.ndarray | None,
    task: Task,
    classes: list[Any],
    pos: Any,
    threshold: float,
    average: str,
    n_bins: int,
    *,
    total: int,
) -> PerformanceReport:
    metrics: dict[str, float | None] = dict.fromkeys(CLASSIFICATION_METRICS)
    reasons: dict[str, str] = {}
    notes: list[str] = []
    n = len(yt)
    if n == 0:
        return PerformanceReport(
            task=task,
            n=0,
            n_dropped=0,
            metrics=metrics,
            reasons=dict.fromkeys(metrics, "no rows with a label"),
            labels=classes,
            pos_label=pos,
        )
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    t_idx = _encode(yt, index, "y_true")
    if task == "binary":
        p_pos = None
        if ys is not None:
            p_pos = ys if ys.ndim == 1 else ys[:, -1]
        if yp is None:
            assert p_pos is not None
            neg = next(c for c in classes if c != pos)
            p_idx = np.where(p_pos >= threshold, index[pos], index[neg])
        else:
            p_idx = _encode(yp, index, "y_pred")
    else:
        if yp is not None:
            p_idx = _encode(yp, index, "y_pred")
        else:
            assert ys is not None
            p_idx = np.argmax(ys, axis=1)
    cm = np.bincount(t_idx * k + p_idx, minlength=k * k).reshape(k, k)
    metrics["accuracy"] = float(np.trace(cm) / n)

    if task == "binary":
        pi = index[pos]
        tp = int(cm[pi, pi])
        fp = int(cm[:, pi].sum() - tp)
        fn = int(cm[pi, :].sum() - tp)
        metrics["precision"] = _ratio(tp, tp + fp, "precision", "no positive predictions", reasons)
        metrics["recall"] = _ratio(tp, tp + fn, "recall", "no positive labels", reasons)
        metrics["f1"] = _ratio(2 * tp, 2 * tp + fp + fn, "f1", "no positives at all", reasons)
        if p_pos is None:
            _all_none(
                metrics, reasons, ("roc_auc", "pr_auc", "log_loss", "brier", "ece"), "no y_score"
            )
        else:
            y = (t_idx == pi).astype(np.float64)
            _binary_score_metrics(y, p_pos, metrics, reasons, n_bins)
    else:
        _multiclass_prf(cm, average, metrics)
        if ys is None:
            _all_none(
                metrics, reasons, ("roc_auc", "pr_auc", "log_loss", "brier", "ece"), "no y_score"
            )
        elif ys.ndim != 2:
            _all_none(
                metrics,
                reasons,
                ("roc_auc", "pr_auc", "log_loss", "brier", "ece"),
                "multiclass y_score must have one column per class",
            )
        else:
            _multiclass_score_metrics(t_idx, p_idx, ys, classes, metrics, reasons, notes, n_bins)
    return PerformanceReport(
        task=task,
        n=n,
        n_dropped=total - n,
        metrics=metrics,
        reasons=reasons,
        labels=classes,
        pos_label=pos,
        confusion_matrix=cm.tolist(),
        notes=notes,
    )


def _encode(values: np.ndarray, index: dict[Any, int], name: str) -> np.ndarray:
    uniq, inv = np.unique(values, return_inverse=True)
    codes = np.empty(len(uniq), dtype=np.int64)
    for j, u in enumerate(uniq):
        key = _plain(u)
        if key not in index:
            raise InvalidInputError(
                f"`{name}` holds the label {key!r}, which is not among the classes {list(index)!r}."
            )
        codes[j] = index[key]
    return codes[inv.reshape(-1)]


def _ratio(num: float, den: float, name: str, why: str, reasons: dict[str, str]) -> float | None:
    if den == 0:
        reasons[name] = f"undefined: {why}"
        return None
    return float(num / den)


def _all_none(
    metrics: dict[str, float | None], reasons: dict[str, str], names: Sequence[str], why: str
) -> None:
    for name in names:
        metrics[name] = None
        reasons[name] = why


def _is_probability(p: np.ndarray) -> bool:
    return bool(np.all((p >= -_PROB_TOL) & (p <= 1 + _PROB_TOL)))


def _binary_score_metrics(
    y: np.ndarray,
    p: np.ndarray,
    metrics: dict[str, float | None],
    reasons: dict[str, str],
    n_bins: int,
) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        why = "y_true has a single class; ROC AUC and PR AUC need both classes"
        metrics["roc_auc"] = None
        reasons["roc_auc"] = why
        if n_pos == 0:
            metrics["pr_auc"] = None
            reasons["pr_auc"] = "no positive labels; average precision is undefined"
        else:
            metrics["pr_auc"] = binary_average_precision(y, p)
    else:
        metrics["roc_auc"] = binary_roc_auc(y, p)
        metrics["pr_auc"] = binary_average_precision(y, p)
    if not _is_probability(p):
        _all_none(metrics, reasons, ("log_loss", "brier", "ece"), "y_score is not in [0, 1]")
        return
    p = np.clip(p, 0.0, 1.0)
    eps = np.finfo(np.float64).eps
    pc = np.clip(p, eps, 1 - eps)
    metrics["log_loss"] = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
    metrics["brier"] = float(np.mean((p - y) ** 2))
    metrics["ece"] = expected_calibration_error(y, p, n_bins=n_bins)


def _multiclass_prf(cm: np.ndarray, average: str, metrics: dict[str, float | None]) -> None:
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    if average == "micro":
        total = cm.sum()
        value = float(tp.sum() / total) if total else None
        metrics["precision"] = metrics["recall"] = metrics["f1"] = value
        return
    # scikit-learn's zero_division=0: an undefined per-class ratio counts as 0.
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    den = pred + true
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    # scikit-learn averages over the labels present in y_true or y_pred.
    present = den > 0
    if average == "weighted":
        w = true / true.sum()
        metrics["precision"], metrics["recall"], metrics["f1"] = (
            float(np.sum(prec * w)),
            float(np.sum(rec * w)),
            float(np.sum(f1 * w)),
        )
    else:
        metrics["precision"] = float(prec[present].mean())
        metrics["recall"] = float(rec[present].mean())
        metrics["f1"] = float(f1[present].mean())


def _multiclass_score_metrics(
    t_idx: np.ndarray,
    p_idx: np.ndarray,
    ys: np.ndarray,
    classes: list[Any],
    metrics: dict[str, float | None],
    reasons: dict[str, str],
    notes: list[str],
    n_bins: int,
) -> None:
    k = len(classes)
    onehot = np.zeros((len(t_idx), k))
    onehot[np.arange(len(t_idx)), t_idx] = 1.0
    aucs, aps, skipped = [], [], []
    for j in range(k):
        y = onehot[:, j]
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            skipped.append(classes[j])
            continue
        aucs.append(binary_roc_auc(y, ys[:, j]))
        aps.append(binary_average_precision(y, ys[:, j]))
    if aucs:
        metrics["roc_auc"] = float(np.mean(aucs))
        metrics["pr_auc"] = float(np.mean(aps))
        if skipped:
            notes.append(
                f"ROC AUC and PR AUC average over {len(aucs)} of {k} classes; "
                f"left out (absent or alone in y_true): {[_plain(c) for c in skipped]!r}."
            )
    else:
        _all_none(metrics, reasons, ("roc_auc", "pr_auc"), "y_true has a single class")
    sums = ys.sum(axis=1)
    if not _is_probability(ys) or not np.allclose(sums, 1.0, atol=1e-4):
        _all_none(
            metrics,
            reasons,
            ("log_loss", "brier", "ece"),
            "y_score rows are not probabilities summing to 1",
        )
        return
    p = np.clip(ys, 0.0, 1.0)
    eps = np.finfo(np.float64).eps
    p_true = np.clip(p[np.arange(len(t_idx)), t_idx], eps, 1 - eps)
    metrics["log_loss"] = float(-np.mean(np.log(p_true)))
    metrics["brier"] = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    conf = p.max(axis=1)
    correct = (np.argmax(p, axis=1) == t_idx).astype(np.float64)
    metrics["ece"] = expected_calibration_error(correct, conf, n_bins=n_bins)


# ---------------------------------------------------------------- regression


def _regression(yt: np.ndarray, yp: np.ndarray, _ys: Any) -> PerformanceReport:
    metrics: dict[str, float | None] = dict.fromkeys(REGRESSION_METRICS)
    reasons: dict[str, str] = {}
    try:
        t = yt.astype(np.float64)
        p = yp.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Regression needs numeric `y_true` and `y_pred`; got {yt.dtype} and {yp.dtype}."
        ) from exc
    n = len(t)
    if n == 0:
        return PerformanceReport(
            task="regression",
            n=0,
            n_dropped=0,
            metrics=metrics,
            reasons=dict.fromkeys(metrics, "no rows with a label"),
        )
    finite = np.isfinite(t) & np.isfinite(p)
    if not finite.all():
        _all_none(metrics, reasons, REGRESSION_METRICS, "y_true or y_pred holds infinite values")
        return PerformanceReport(
            task="regression", n=n, n_dropped=0, metrics=metrics, reasons=reasons
        )
    err = p - t
    metrics["mae"] = float(np.mean(np.abs(err)))
    metrics["rmse"] = float(math.sqrt(np.mean(err**2)))
    if np.any(t == 0):
        metrics["mape"] = None
        reasons["mape"] = "y_true contains zeros; MAPE is undefined"
    else:
        metrics["mape"] = float(np.mean(np.abs(err) / np.abs(t)))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if n < 2 or ss_tot == 0:
        metrics["r2"] = None
        reasons["r2"] = "y_true is constant (or a single row); R² is undefined"
    else:
        metrics["r2"] = float(1 - np.sum(err**2) / ss_tot)
    return PerformanceReport(task="regression", n=n, n_dropped=0, metrics=metrics, reasons=reasons)
