"""Confidence-based performance estimation (CBPE): model performance without labels.

On a reference set with labels, the model's scores are (optionally) calibrated with isotonic
regression; on a current set without labels, each row's calibrated probability says how likely each
outcome is, so the expected confusion matrix — and every metric derived from it — can be computed.
The estimate is unbiased under covariate shift (the inputs move, P(y | x) does not), which is the
drift that monitoring sees most; it cannot see concept drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import isotonic_regression

from mloop.codec import dataclass_from_wire, dumps, to_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._columns import unknown_columns_error
from mloop.monitoring._data import read
from mloop.monitoring._perf_inputs import _missing, _plain, _to_numpy
from mloop.monitoring._perf_metrics import binary_roc_auc
from mloop.monitoring._performance import _encode, performance_report
from mloop.tables import column_names

__all__ = ["CBPE", "ESTIMATED_METRICS", "PerformanceEstimate", "estimate_performance"]

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
Calibration = Literal["auto", "isotonic", "none"]


@dataclass(frozen=True)
class PerformanceEstimate:
    """Estimated performance of a model on data without labels.

    Attributes
    ----------
    task : {"binary", "multiclass"}
    n : int
        Rows the estimate covers.
    metrics : dict of str to float or None
        Estimated accuracy, precision, recall, f1 (macro-averaged for multiclass) and ROC AUC
        (one-vs-rest macro for multiclass); ``None`` when undefined (see ``reasons``).
    reasons : dict of str to str
    labels : list
        Class labels, in the order of the confusion matrix.
    expected_confusion_matrix : list of list of float
        Rows are (expected) true classes, columns predicted classes.
    calibrated : list of bool
        Per calibrated score column (one for binary), whether isotonic calibration was applied.
    reference_metrics : dict of str to float or None
        Realised metrics on the reference set, for comparison.
    """

    task: Literal["binary", "multiclass"]
    n: int
    metrics: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    labels: list[Any] = field(default_factory=list)
    expected_confusion_matrix: list[list[float]] = field(default_factory=list)
    calibrated: list[bool] = field(default_factory=list)
    reference_metrics: dict[str, float | None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float | None:
        return self.metrics[name]

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "task": self.task,
            "n": self.n,
            "metrics": self.metrics,
            "reasons": self.reasons,
            "labels": self.labels,
            "expected_confusion_matrix": self.expected_confusion_matrix,
            "calibrated": self.calibrated,
            "reference_metrics": self.reference_metrics,
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form of the estimate (:mod:`mloop.codec`)."""
        return to_wire(self, what="PerformanceEstimate")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceEstimate:
        """The inverse of :meth:`to_dict` (labels come back as JSON gave them)."""
        return dataclass_from_wire(cls, data)

    def to_json(self, *, indent: int | None = None) -> str:
        """The estimate as a JSON string."""
        return dumps(self, indent=indent, what=type(self).__name__)


class _Isotonic:
    """Increasing isotonic regression of y on x, predicting by linear interpolation (as sklearn)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        ux, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        ymean = np.bincount(inv, weights=y) / counts
        fit = isotonic_regression(ymean, weights=counts.astype(np.float64), increasing=True).x
        self.x, self.y = ux, np.clip(fit, 0.0, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.x) == 1:
            return np.full(len(x), self.y[0])
        return np.interp(x, self.x, self.y)


class CBPE:
    """Confidence-based performance estimation for binary and multiclass classifiers.

    Follows scikit-learn's contract: ``__init__`` stores the options, :meth:`fit` validates and
    learns from a labelled reference set (fitted attributes end in ``_``), :meth:`estimate` is
    called once per unlabelled window.

    Parameters
    ----------
    y_true : str, default "label"
        Label column of the reference.
    y_score : str or sequence of str or mapping of class to str, default "proba"
        Binary: the positive-class probability column. Multiclass: one column per class, either a
        list in ``labels`` order or a mapping class -> column.
    y_pred : str or None, default "pred"
        Predicted-label column. When it is absent from a frame, predictions are derived from the
        scores (``>= threshold`` for binary, argmax for multiclass).
    task : {"auto", "binary", "multiclass"}, default "auto"
        "auto" is multiclass when ``y_score`` names several columns, binary otherwise.
    labels : sequence, optional
        Class labels. Binary default: ``[0, 1]``-like labels seen in the reference, positive last.
    pos_label : optional
        Positive class of a binary task (default: the last of the sorted labels).
    calibration : {"auto", "isotonic", "none"}, default "auto"
        "auto" calibrates a score column with isotonic regression when that lowers the Brier score
        in ``n_folds``-fold cross-validation on the reference (always when the scores are not in
        [0, 1]).
    threshold : float, default 0.5
    n_folds : int, default 5
    random_state : int, default 0
        Seed of the cross-validation fold assignment.
    """

    def __init__(
        self,
        *,
        y_true: str = "label",
        y_score: str | Sequence[str] | Mapping[Any, str] = "proba",
        y_pred: str | None = "pred",
        task: Literal["auto", "binary", "multiclass"] = "auto",
        labels: Sequence[Any] | None = None,
        pos_label: Any = None,
        calibration: Calibration = "auto",
        threshold: float = 0.5,
        n_folds: int = 5,
        random_state: int = 0,
    ) -> None:
        self.y_true = y_true
        self.y_score = y_score
        self.y_pred = y_pred
        self.task = task
        self.labels = labels
        self.pos_label = pos_label
        self.calibration = calibration
        self.threshold = threshold
        self.n_folds = n_folds
        self.random_state = random_state

    # ------------------------------------------------------------------ fit

    def fit(self, reference: Any) -> CBPE:
        """Learn the calibration from a labelled reference frame.

        Parameters
        ----------
        reference : any table :func:`mloop.tables.read_table` accepts
            Must hold the ``y_true`` and ``y_score`` columns.

        Returns
        -------
        CBPE
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            Missing columns, too few labelled rows, or scores that do not match the classes.
        """
        if self.calibration not in ("auto", "isotonic", "none"):
            raise InvalidInputError(
                f"`calibration` must be 'auto', 'isotonic' or 'none'; got {self.calibration!r}."
            )
        if self.task not in ("auto", "binary", "multiclass"):
            raise InvalidInputError(
                f"`task` must be 'auto', 'binary' or 'multiclass'; got {self.task!r}."
            )
        if not isinstance(self.n_folds, int) or self.n_folds < 2:
            raise InvalidInputError(f"`n_folds` must be an int >= 2; got {self.n_folds!r}.")
        if isinstance(self.y_score, Mapping):
            score_cols = [str(c) for c in self.y_score.values()]
            class_hint: list[Any] | None = list(self.y_score.keys())
        elif isinstance(self.y_score, str):
            score_cols, class_hint = [self.y_score], None
        else:
            score_cols, class_hint = [str(c) for c in self.y_score], None
        task = self.task
        if task == "auto":
            task = "multiclass" if len(score_cols) > 1 else "binary"
        if task == "binary" and len(score_cols) != 1:
            raise InvalidInputError(
                f"A binary CBPE needs one score column (the positive class); got {score_cols!r}."
            )
        cols = _columns_of(reference, [self.y_true, *score_cols], self.y_pred, "reference")
        y = cols[self.y_true]
        scores = np.column_stack([_scores(cols, c, "reference") for c in score_cols])
        keep = ~_missing(y) & ~np.isnan(scores).any(axis=1)
        y, scores = y[keep], scores[keep]
        if len(y) < 2 * self.n_folds:
            raise InvalidInputError(
                f"The reference has {len(y)} labelled rows with scores; CBPE needs at least "
                f"{2 * self.n_folds}."
            )
        seen = [_plain(v) for v in np.unique(y)]
        if task == "binary":
            classes = list(self.labels) if self.labels is not None else seen
            if len(classes) == 1 and set(classes) <= {0, 1}:
                classes = [0, 1]
            if len(classes) != 2:
                raise InvalidInputError(
                    f"A binary CBPE needs two classes in the reference labels; got {classes!r}."
                )
            pos = self.pos_label if self.pos_label is not None else classes[-1]
            if pos not in classes:
                raise InvalidInputError(f"`pos_label` {pos!r} is not among the labels {classes!r}.")
            classes = [c for c in classes if c != pos] + [pos]
        else:
            classes = list(self.labels) if self.labels is not None else (class_hint or seen)
            if len(classes) != len(score_cols):
                raise InvalidInputError(
                    f"{len(score_cols)} score columns but {len(classes)} classes ({classes!r}); "
                    "pass `labels=` in the order of the score columns, or `y_score` as a mapping "
                    "class -> column."
                )
        index = {c: i for i, c in enumerate(classes)}
        unknown = [v for v in seen if v not in index]
        if unknown:
            raise InvalidInputError(
                f"Reference labels {unknown[:5]!r} are not among the classes {classes!r}."
            )
        y_idx = _encode(y, index, self.y_true)

        self.task_: Literal["binary", "multiclass"] = task
        self.classes_ = classes
        self.score_columns_ = score_cols
        self.calibrators_: list[_Isotonic | None] = []
        self.calibration_brier_: list[tuple[float, float]] = []
        rng = np.random.default_rng(self.random_state)
        folds = rng.permutation(len(y_idx)) % self.n_folds
        targets = [y_idx == 1] if task == "binary" else [y_idx == j for j in range(len(classes))]
        for j, target in enumerate(targets):
            s, t = scores[:, j], target.astype(np.float64)
            raw, iso = _cv_brier(s, t, folds, self.n_folds)
            self.calibration_brier_.append((raw, iso))
            use = self.calibration == "isotonic" or (
                self.calibration == "auto" and (iso < raw or not _in_unit(s))
            )
            self.calibrators_.append(_Isotonic(s, t) if use else None)
        pred_ref = self._predictions(cols, scores, keep)
        ref = performance_report(
            y_idx,
            pred_ref,
            scores[:, 0] if task == "binary" else scores,
            task=task,
            labels=list(range(len(classes))),
            pos_label=1 if task == "binary" else None,
        )
        self.reference_metrics_ = {k: ref.metrics[k] for k in ESTIMATED_METRICS}
        return self

    # ------------------------------------------------------------------ estimate

    def estimate(self, current: Any) -> PerformanceEstimate:
        """Estimate performance on an unlabelled frame.

        Parameters
        ----------
        current : any table :func:`mloop.tables.read_table` accepts
            Must hold the score columns (and ``y_pred`` if the reference had it).

        Returns
        -------
        PerformanceEstimate
        """
        if not hasattr(self, "calibrators_"):
            raise InvalidInputError("This CBPE is not fitted yet; call `fit(reference)` first.")
        cols = _columns_of(current, self.score_columns_, self.y_pred, "current")
        scores = np.column_stack([_scores(cols, c, "current") for c in self.score_columns_])
        keep = ~np.isnan(scores).any(axis=1)
        scores = scores[keep]
        pred = self._predictions(cols, scores, keep)
        k = len(self.classes_)
        metrics: dict[str, float | None] = dict.fromkeys(ESTIMATED_METRICS)
        reasons: dict[str, str] = {}
        n = len(scores)
        if n == 0:
            return PerformanceEstimate(
                task=self.task_,
                n=0,
                metrics=metrics,
                reasons=dict.fromkeys(metrics, "no rows with scores"),
                labels=self.classes_,
                calibrated=[c is not None for c in self.calibrators_],
                reference_metrics=self.reference_metrics_,
            )
        proba = self._calibrated(scores)
        # expected confusion matrix: row t, column j = sum over rows predicted j of P(true = t)
        cm = np.zeros((k, k))
        for t in range(k):
            cm[t] = np.bincount(pred, weights=proba[:, t], minlength=k)
        metrics["accuracy"] = float(np.trace(cm) / n)
        if self.task_ == "binary":
            tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
            metrics["precision"] = _ratio(tp, tp + fp, "precision", reasons)
            metrics["recall"] = _ratio(tp, tp + fn, "recall", reasons)
            metrics["f1"] = _ratio(2 * tp, 2 * tp + fp + fn, "f1", reasons)
            auc = binary_roc_auc(np.zeros(n), scores[:, 0], weight=proba[:, 1])
            _set_auc(metrics, reasons, [auc])
        else:
            tp = np.diag(cm)
            pred_n, true_n = cm.sum(axis=0), cm.sum(axis=1)
            prec = np.divide(tp, pred_n, out=np.zeros(k), where=pred_n > 0)
            rec = np.divide(tp, true_n, out=np.zeros(k), where=true_n > 0)
            den = pred_n + true_n
            f1 = np.divide(2 * tp, den, out=np.zeros(k), where=den > 0)
            metrics["precision"] = float(prec.mean())
            metrics["recall"] = float(rec.mean())
            metrics["f1"] = float(f1.mean())
            aucs = [binary_roc_auc(np.zeros(n), scores[:, j], weight=proba[:, j]) for j in range(k)]
            _set_auc(metrics, reasons, aucs)
        return PerformanceEstimate(
            task=self.task_,
            n=n,
            metrics=metrics,
            reasons=reasons,
            labels=self.classes_,
            expected_confusion_matrix=cm.tolist(),
            calibrated=[c is not None for c in self.calibrators_],
            reference_metrics=self.reference_metrics_,
        )

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Per-row class probabilities (columns in ``classes_`` order) after calibration."""
        cal = np.column_stack(
            [
                c(scores[:, j]) if c is not None else np.clip(scores[:, j], 0.0, 1.0)
                for j, c in enumerate(self.calibrators_)
            ]
        )
        if self.task_ == "binary":
            return np.column_stack([1 - cal[:, 0], cal[:, 0]])
        sums = cal.sum(axis=1, keepdims=True)
        uniform = np.full_like(cal, 1.0 / cal.shape[1])
        return np.divide(cal, sums, out=uniform, where=sums > 0)

    def _predictions(
        self, cols: dict[str, np.ndarray], scores: np.ndarray, keep: np.ndarray
    ) -> np.ndarray:
        if self.y_pred is not None and self.y_pred in cols:
            raw = cols[self.y_pred][keep]
            index = {c: i for i, c in enumerate(self.classes_)}
            return _encode(raw, index, self.y_pred)
        if self.task_ == "binary":
            return (scores[:, 0] >= self.threshold).astype(np.int64)
        return np.argmax(scores, axis=1).astype(np.int64)


def estimate_performance(
    reference: Any,
    current: Any,
    *,
    y_true: str = "label",
    y_score: str | Sequence[str] | Mapping[Any, str] = "proba",
    y_pred: str | None = "pred",
    task: Literal["auto", "binary", "multiclass"] = "auto",
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    calibration: Calibration = "auto",
    threshold: float = 0.5,
) -> PerformanceEstimate:
    """Estimate classification performance on ``current`` without its labels (CBPE).

    Calibrates the scores on the labelled ``reference`` (isotonic regression, when that improves
    the cross-validated Brier score), then computes the expected confusion matrix of ``current``
    from the calibrated probabilities, and from it accuracy, precision, recall and F1. ROC AUC is
    the area under the expected ROC curve (NannyML's CBPE): rows sorted by score, each counting its
    calibrated probability as a positive and the rest as a negative.

    Parameters
    ----------
    reference, current : any table :func:`mloop.tables.read_table` accepts
        ``reference`` needs labels; ``current`` does not.
    y_true, y_score, y_pred, task, labels, pos_label, calibration, threshold
        See :class:`CBPE`.

    Returns
    -------
    PerformanceEstimate

    Raises
    ------
    InvalidInputError
        Missing columns, too few labelled reference rows, or scores that do not match the classes.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(5000)
    >>> ref = {"proba": p, "label": (rng.random(5000) < p).astype(int)}
    >>> est = estimate_performance(ref, {"proba": rng.random(5000) ** 2}, y_pred=None)
    >>> round(est["accuracy"], 1)
    0.8
    """
    model = CBPE(
        y_true=y_true,
        y_score=y_score,
        y_pred=y_pred,
        task=task,
        labels=labels,
        pos_label=pos_label,
        calibration=calibration,
        threshold=threshold,
    )
    return model.fit(reference).estimate(current)


# ---------------------------------------------------------------- helpers


def _in_unit(s: np.ndarray) -> bool:
    return bool(np.all((s >= 0) & (s <= 1)))


def _cv_brier(s: np.ndarray, t: np.ndarray, folds: np.ndarray, n_folds: int) -> tuple[float, float]:
    """Out-of-fold Brier score of the raw (clipped) scores and of isotonic-calibrated ones."""
    raw = float(np.mean((np.clip(s, 0.0, 1.0) - t) ** 2))
    sq = 0.0
    for f in range(n_folds):
        test = folds == f
        iso = _Isotonic(s[~test], t[~test])
        sq += float(np.sum((iso(s[test]) - t[test]) ** 2))
    return raw, sq / len(s)


def _ratio(num: float, den: float, name: str, reasons: dict[str, str]) -> float | None:
    if den <= 0:
        reasons[name] = "undefined: no expected positives"
        return None
    return float(num / den)


def _set_auc(metrics: dict[str, float | None], reasons: dict[str, str], aucs: list[float]) -> None:
    finite = [a for a in aucs if np.isfinite(a)]
    if not finite:
        metrics["roc_auc"] = None
        reasons["roc_auc"] = "undefined: the calibrated probabilities expect a single class"
    else:
        metrics["roc_auc"] = float(np.mean(finite))


def _columns_of(
    frame: Any, required: Sequence[str], optional: str | None, what: str
) -> dict[str, np.ndarray]:
    """The ``required`` columns (and ``optional`` when present) of any table, read once."""
    names = column_names(frame, what=what)
    present = set(names)
    missing = [c for c in required if c not in present]
    if missing:
        raise unknown_columns_error(
            missing, names, what="CBPE (y_true, y_score or y_pred)", where=f"in the {what} data"
        )
    wanted = list(dict.fromkeys([*required, *([optional] if optional in present else [])]))
    table = read(frame, columns=wanted, what=what)
    return {
        name: _to_numpy(col.to_numpy(zero_copy_only=False)).reshape(-1)
        for name, col in zip(table.column_names, table.columns, strict=True)
    }


def _scores(cols: dict[str, np.ndarray], name: str, what: str) -> np.ndarray:
    col = cols[name]
    try:
        return col.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Score column {name!r} of the {what} data must be numeric; got {col.dtype}."
        ) from exc
