"""Score a candidate and its baseline on one holdout: predictions, scores, and the label encoding
both share, so every metric compares the two on exactly the same rows."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError, MloopError
from mloop.gates._metrics import MetricSpec, Task, get_metric
from mloop.registry import ExtraColumnsWarning, ModelVersion

__all__ = ["Holdout", "Scored", "encode_labels", "score_model", "split_holdout"]


@dataclass
class Holdout:
    """The evaluation rows: features (what the models get) and the target column."""

    table: pa.Table
    features: pa.Table
    target: str
    y_raw: np.ndarray
    task: Task
    classes: np.ndarray | None = None  # classification: the class values, positive last of two
    y: np.ndarray | None = None  # class codes, or float values for regression

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def binary(self) -> bool:
        return self.classes is not None and len(self.classes) == 2


@dataclass
class Scored:
    """One model's outputs on the holdout (``error`` set when it could not predict)."""

    uri: str
    version: ModelVersion
    model: Any  # PackagedModel
    predictions: np.ndarray | None = None  # raw predict() output, 1-D
    out: np.ndarray | None = None  # class codes (classification) or float values (regression)
    scores: np.ndarray | None = None  # binary: the positive class's probability
    error: str | None = None
    predict_ms: float = 0.0

    def output(self, spec: MetricSpec) -> np.ndarray:
        got = self.scores if spec.output == "score" else self.out
        if got is None:
            raise InvalidInputError(f"{self.uri} has no output for metric {spec.name!r}.")
        return got


def split_holdout(table: pa.Table, target: str) -> tuple[pa.Table, np.ndarray]:
    if target not in table.column_names:
        raise InvalidInputError(
            f"the holdout has no target column {target!r}; its columns: "
            f"{', '.join(table.column_names[:30])}. Name the label column with --target "
            "(or `target:` in the policy)."
        )
    y = table.column(target).to_numpy(zero_copy_only=False)
    if len(y) == 0:
        raise InvalidInputError("the holdout has no rows.")
    mask = _missing(y)
    if mask.any():
        raise InvalidInputError(
            f"the target column {target!r} has {int(mask.sum())} missing values of {len(y)}; "
            "a holdout needs a label on every row."
        )
    return table.drop_columns([target]), y


def _missing(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and v != v) for v in y], dtype=bool)
    return np.zeros(len(y), dtype=bool)


def detect_task(y: np.ndarray, model: Any, declared: str) -> Task:
    """classification when the model has classes or the target looks categorical."""
    if declared in ("classification", "regression"):
        return declared  # type: ignore[return-value]
    if getattr(model.raw, "classes_", None) is not None:
        return "classification"
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
        return "regression"
    return "classification" if len(np.unique(y)) <= 20 else "regression"


def encode_labels(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class codes: the index of each value in ``classes``; -1 for a value not among them."""
    lookup = {_key(c): i for i, c in enumerate(classes.tolist())}
    values = np.asarray(values)
    if values.dtype.kind in "biuf" and len(values) > 64:
        # a few distinct numbers on many rows: look up each distinct value once
        distinct, inverse = np.unique(values, return_inverse=True)
        codes = np.fromiter((lookup.get(_key(v), -1) for v in distinct.tolist()), np.int64)
        return codes[inverse.reshape(-1)]
    return np.fromiter((lookup.get(_key(v), -1) for v in values.tolist()), np.int64, len(values))


def _key(v: Any) -> Any:
    # 1 and 1.0 and True name the same class across models; strings stay strings
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def class_values(y: np.ndarray, models: Sequence[Any]) -> np.ndarray:
    """The classes: the candidate's ``classes_`` when it has them, else the sorted labels seen."""
    for m in models:
        classes = getattr(m.raw, "classes_", None)
        if classes is not None:
            return np.asarray(classes)
    return np.unique(y)


def score_model(scored: Scored, holdout: Holdout, *, want_scores: bool) -> Scored:
    """Predict the holdout with ``scored.model`` (errors kept on ``scored.error``, not raised)."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # a holdout carries columns (the target's neighbours, ids) a model does not take
            warnings.simplefilter("ignore", ExtraColumnsWarning)
            pred = _one_d(scored.model.predict(holdout.features, strict=False), "predict")
            if (
                want_scores
                and holdout.task == "classification"
                and holdout.binary
                and callable(getattr(scored.model.raw, "predict_proba", None))
            ):
                scored.scores = _positive_scores(scored.model, holdout)
        if len(pred) != holdout.rows:
            raise InvalidInputError(
                f"predict returned {len(pred)} rows for {holdout.rows} holdout rows."
            )
        scored.predictions = pred
        if holdout.task == "regression":
            scored.out = pred.astype(np.float64)
        else:
            assert holdout.classes is not None
            scored.out = encode_labels(pred, holdout.classes)
    except MloopError as exc:
        scored.error = str(exc)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        scored.error = f"{type(exc).__name__}: {exc}"
    scored.predict_ms = (time.perf_counter() - t0) * 1e3
    return scored


def _positive_scores(model: Any, holdout: Holdout) -> np.ndarray:
    assert holdout.classes is not None
    proba = np.asarray(
        model.predict(holdout.features, method="predict_proba", strict=False), dtype=np.float64
    )
    if proba.ndim != 2 or proba.shape[0] != holdout.rows:
        raise InvalidInputError(f"predict_proba returned shape {proba.shape}.")
    own = getattr(model.raw, "classes_", None)
    positive = holdout.classes[1]
    if own is None:
        return proba[:, -1]
    codes = encode_labels(np.asarray(own), np.asarray([positive]))
    where = np.flatnonzero(codes == 0)
    if len(where) != 1:
        raise InvalidInputError(f"the model has no class {positive!r} among {list(own)}.")
    return proba[:, int(where[0])]


def _one_d(pred: Any, what: str) -> np.ndarray:
    if hasattr(pred, "to_numpy"):
        pred = pred.to_numpy()
    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(
            f"{what} returned an array of shape {arr.shape}; a gate compares one prediction per row."
        )
    return arr


def primary_metric(holdout: Holdout, candidate: Scored, declared: str | None) -> str:
    if declared is not None:
        return declared
    if holdout.task == "regression":
        return "rmse"
    return "roc_auc" if holdout.binary and candidate.scores is not None else "accuracy"


def resolve_metric(name: str, holdout: Holdout, candidate: Scored) -> MetricSpec:
    return get_metric(
        name,
        task=holdout.task,
        binary=holdout.binary,
        has_scores=candidate.scores is not None,
    )
