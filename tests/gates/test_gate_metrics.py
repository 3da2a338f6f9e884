"""Gate metrics against scikit-learn, vectorised over resamples, and MLflow's MetricThreshold
semantics worked by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from mloop.errors import InvalidInputError
from mloop.gates._compare import threshold_check
from mloop.gates._evaluate import Holdout, Scored, encode_labels
from mloop.gates._metrics import METRICS, get_metric
from mloop.gates._policy import ThresholdPolicy


@pytest.fixture(params=[0, 1, 2])
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def _binary(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.25, n), 0.001, 0.999)
    return y, (p > 0.5).astype(int), p


def test_classification_metrics_equal_sklearn(seed: int) -> None:
    y, label, p = _binary(seed)
    ref = {
        "accuracy": skm.accuracy_score(y, label),
        "precision": skm.precision_score(y, label),
        "recall": skm.recall_score(y, label),
        "f1": skm.f1_score(y, label),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p),
        "roc_auc": skm.roc_auc_score(y, p),
    }
    for name, want in ref.items():
        out = p if METRICS[name].output == "score" else label
        assert float(METRICS[name].fn(y, out)) == pytest.approx(want, rel=1e-12, abs=1e-12), name


def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 300)
    v = y + rng.normal(0, 1, 300)
    ref = {
        "mse": skm.mean_squared_error(y, v),
        "rmse": np.sqrt(skm.mean_squared_error(y, v)),
        "mae": skm.mean_absolute_error(y, v),
        "r2": skm.r2_score(y, v),
        "mape": skm.mean_absolute_percentage_error(y, v),
    }
    for name, want in ref.items():
        assert float(METRICS[name].fn(y, v)) == pytest.approx(want, rel=1e-12), name


def test_vectorised_over_resamples_equals_one_at_a_time(seed: int) -> None:
    y, label, p = _binary(seed)
    rng = np.random.default_rng(seed + 10)
    idx = rng.integers(0, len(y), size=(7, len(y)))
    for name, spec in METRICS.items():
        if name == "roc_auc":
            continue  # compared by DeLong, never resampled
        if spec.task == "regression":
            yy, out = y.astype(float) * 3.0 + 1.0, p * 4.0
        else:
            yy, out = y, (p if spec.output == "score" else label)
        many = np.asarray(spec.fn(yy[idx], out[idx]))
        one = [float(spec.fn(yy[r], out[r])) for r in idx]
        np.testing.assert_allclose(many, one, rtol=1e-12, err_msg=name)


def test_precision_of_no_positive_predictions_is_zero_not_nan() -> None:
    y = np.array([1, 0, 1])
    assert float(METRICS["precision"].fn(y, np.zeros(3, int))) == 0.0
    assert skm.precision_score(y, np.zeros(3, int), zero_division=0) == 0.0


def test_metric_that_does_not_apply_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidInputError, match="unknown metric 'auc'; known: accuracy"):
        get_metric("auc", task="classification", binary=True, has_scores=True)
    with pytest.raises(InvalidInputError, match="'rmse' is for regression"):
        get_metric("rmse", task="classification", binary=True, has_scores=True)
    with pytest.raises(InvalidInputError, match="needs a binary target"):
        get_metric("f1", task="classification", binary=False, has_scores=True)
    with pytest.raises(InvalidInputError, match="no `predict_proba`"):
        get_metric("roc_auc", task="classification", binary=True, has_scores=False)


def test_labels_are_encoded_across_types() -> None:
    classes = np.array([0, 1])
    got = encode_labels(np.array([1.0, 0.0, True, 2, "1"], dtype=object), classes)
    assert got.tolist() == [1, 0, 1, -1, -1]
    assert encode_labels(np.array(["no", "yes", "maybe"]), np.array(["no", "yes"])).tolist() == [
        0,
        1,
        -1,
    ]


def _one_by_one(values: np.ndarray, classes: np.ndarray) -> list[int]:
    """The definition: each value's index among the classes (1 == 1.0 == True), else -1."""

    def same(v: object, c: object) -> bool:
        return (type(v) is not str and type(c) is not str and v == c) or v is c

    out = []
    for v in values.tolist():
        hits = [i for i, c in enumerate(classes.tolist()) if same(v, c)]
        out.append(hits[0] if hits else -1)
    return out


@pytest.mark.parametrize(
    ("values", "classes"),
    [
        (np.arange(500) % 3, np.array([0, 1])),
        ((np.arange(500) % 3).astype(np.uint8), np.array([1, 2])),
        (np.where(np.arange(500) % 4 == 0, np.nan, (np.arange(500) % 3) * 1.0), np.array([0, 2])),
        (np.arange(500) % 5 * 0.5, np.array([0.0, 1.0, 1.5])),
        (np.arange(500) % 2 == 0, np.array([0, 1])),
        (np.arange(500) % 3, np.array([False, True])),
    ],
    ids=["int", "uint8", "float-nan", "float", "bool", "int-vs-bool-classes"],
)
def test_many_numeric_labels_are_encoded_as_one_by_one(
    values: np.ndarray, classes: np.ndarray
) -> None:
    """Numeric labels on many rows take a faster path (each distinct value looked up once)."""
    assert encode_labels(values, classes).tolist() == _one_by_one(values, classes)


# ------------------------------------------------------------------------ MetricThreshold


class _Fake:
    raw = None


def _holdout_and_models(
    cand_acc: float, base_acc: float | None
) -> tuple[Holdout, Scored, Scored | None]:
    """100 rows; each model right on the first ``acc * 100`` of them."""
    n = 100
    y = np.ones(n, dtype=np.int64)
    t = pa.table({"x": np.zeros(n)})
    h = Holdout(t, t, "label", y, "classification", classes=np.array([0, 1]), y=y)

    def scored(acc: float, uri: str) -> Scored:
        out = np.where(np.arange(n) < round(acc * n), 1, 0)
        return Scored(uri, None, _Fake(), predictions=out, out=out)  # type: ignore[arg-type]

    return (
        h,
        scored(cand_acc, "models:/m/2"),
        None if base_acc is None else scored(base_acc, "models:/m/1"),
    )


@pytest.mark.parametrize(
    ("rule", "cand", "base", "status"),
    [
        # threshold: >= when higher is better (equality passes, as in MLflow)
        ({"threshold": 0.8}, 0.8, None, "pass"),
        ({"threshold": 0.8}, 0.79, None, "fail"),
        # lower is better flips the comparison
        ({"threshold": 0.8, "greater_is_better": False}, 0.79, None, "pass"),
        ({"threshold": 0.8, "greater_is_better": False}, 0.81, None, "fail"),
        # min_absolute_change: candidate >= baseline + change
        ({"min_absolute_change": 0.05}, 0.85, 0.80, "pass"),
        ({"min_absolute_change": 0.05}, 0.84, 0.80, "fail"),
        ({"min_absolute_change": 0.05, "greater_is_better": False}, 0.75, 0.80, "pass"),
        ({"min_absolute_change": 0.05, "greater_is_better": False}, 0.76, 0.80, "fail"),
        # min_relative_change: candidate >= baseline * (1 + change)
        ({"min_relative_change": 0.25}, 0.50, 0.40, "pass"),
        ({"min_relative_change": 0.25}, 0.49, 0.40, "fail"),
        # a zero baseline: any strict improvement passes
        ({"min_relative_change": 0.5}, 0.01, 0.0, "pass"),
        ({"min_relative_change": 0.5}, 0.0, 0.0, "fail"),
        # both parts must hold
        ({"threshold": 0.9, "min_absolute_change": 0.01}, 0.95, 0.80, "pass"),
        ({"threshold": 0.9, "min_absolute_change": 0.2}, 0.95, 0.80, "fail"),
        # no baseline: change parts are not checked (and said so)
        ({"min_absolute_change": 0.05}, 0.5, None, "pass"),
    ],
)
def test_metric_threshold_semantics(
    rule: dict, cand: float, base: float | None, status: str
) -> None:
    h, c, b = _holdout_and_models(cand, base)
    got = threshold_check(ThresholdPolicy(metric="accuracy", **rule), h, c, b)
    assert got.status == status, got.summary
    assert got.numbers["candidate"] == pytest.approx(cand)
    if base is not None:
        assert got.numbers["baseline"] == pytest.approx(base)
    if base is None and "min_absolute_change" in rule:
        assert "no baseline" in got.summary


def test_threshold_summary_says_why() -> None:
    h, c, b = _holdout_and_models(0.84, 0.80)
    got = threshold_check(ThresholdPolicy(metric="accuracy", min_absolute_change=0.05), h, c, b)
    assert got.summary == (
        "accuracy 0.84: 0.84 does not reach 0.85 (the baseline's 0.8 + 0.05) (min_absolute_change=0.05)."
    )
