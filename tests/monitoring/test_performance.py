"""performance_report against scikit-learn's metric functions and hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mloop.errors import InvalidInputError
from mloop.monitoring import expected_calibration_error, performance_report

SEEDS = [0, 1, 2, 12345]


def _binary_data(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p_true = 1 / (1 + np.exp(-1.5 * x))
    y = (rng.random(n) < p_true).astype(int)
    # a slightly miscalibrated, rounded score so that ties occur
    score = np.round(1 / (1 + np.exp(-2.0 * x + 0.3)), 2)
    pred = (score >= 0.5).astype(int)
    return y, pred, score


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_matches_sklearn(seed: int) -> None:
    y, pred, score = _binary_data(seed)
    r = performance_report(y, pred, score, task="binary")
    m = r.metrics
    assert r.n == len(y) and r.n_dropped == 0
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, score), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score), abs=1e-10)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)
    assert r.confusion_matrix == skm.confusion_matrix(y, pred).tolist()
    json.loads(r.to_json())


def test_binary_string_labels_and_pos_label() -> None:
    y, pred, score = _binary_data(3, 500)
    ys = np.where(y == 1, "churn", "stay")
    ps = np.where(pred == 1, "churn", "stay")
    r = performance_report(ys, ps, score, pos_label="churn")
    assert r["f1"] == pytest.approx(skm.f1_score(ys, ps, pos_label="churn"), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    with pytest.raises(InvalidInputError, match="pos_label"):
        performance_report(ys, ps, score)


def test_binary_predictions_from_scores_and_2d_scores() -> None:
    y, _, score = _binary_data(4, 300)
    r = performance_report(y, y_score=np.c_[1 - score, score], threshold=0.5)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, score >= 0.5), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_ece_by_hand() -> None:
    # bins of width 0.1: [0.1] -> bin 1, [0.6] -> bin 6, [0.9, 0.9] -> bin 9, [1.0] -> bin 9
    y = np.array([0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.9, 0.9, 1.0])
    # bin1: |0 - 0.1| = 0.1 ; bin6: |1 - 0.6| = 0.4 ; bin9: |2 - 2.8| = 0.8 ; total 1.3 / 5
    assert expected_calibration_error(y, p) == pytest.approx(1.3 / 5, abs=1e-12)
    assert expected_calibration_error(y, p, n_bins=1) == pytest.approx(abs(3 - 3.5) / 5)
    r = performance_report(y, y_score=p)
    assert r["ece"] == pytest.approx(0.26, abs=1e-12)


def test_perfectly_calibrated_ece_is_small() -> None:
    rng = np.random.default_rng(7)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    # per bin, |mean(y)-mean(p)| ~ sqrt(0.25/20000) ≈ 0.0035
    assert expected_calibration_error(y, p) < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 3000, 4
    logits = rng.normal(size=(n, k)) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in proba])
    pred = proba.argmax(axis=1)
    for average in ("macro", "weighted", "micro"):
        r = performance_report(y, pred, proba, task="multiclass", average=average)
        for name, fn in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            assert r[name] == pytest.approx(fn(y, pred, average=average), abs=1e-12), name
    r = performance_report(y, pred, proba, task="multiclass")
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-12
    )
    onehot = np.eye(k)[y]
    assert r["pr_auc"] == pytest.approx(
        skm.average_precision_score(onehot, proba, average="macro"), abs=1e-12
    )
    assert r["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=1e-10)
    assert r["brier"] == pytest.approx(skm.brier_score_loss(y, proba), abs=1e-12)
    # top-label ECE by hand with a python loop
    conf, hit = proba.max(axis=1), (pred == y).astype(float)
    total = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        m = (conf >= lo) & ((conf < hi) if b < 9 else (conf <= hi))
        if m.any():
            total += m.sum() / n * abs(hit[m].mean() - conf[m].mean())
    assert r["ece"] == pytest.approx(total, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.lognormal(size=1000) + 0.5
    pred = y + rng.normal(scale=0.3, size=y.size)
    r = performance_report(y, pred, task="regression")
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert r["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert r["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), rel=1e-12)
    assert r["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-12)


def test_regression_undefined_metrics_have_reasons() -> None:
    r = performance_report([0.0, 1.0, 2.0], [0.5, 1.0, 2.5], task="regression")
    assert r["mape"] is None and "zeros" in r.reasons["mape"]
    assert r["mae"] == pytest.approx(1 / 3)
    r = performance_report([3.0, 3.0], [3.0, 2.0], task="regression")
    assert r["r2"] is None and "constant" in r.reasons["r2"]


def test_segments_match_subsets() -> None:
    y, pred, score = _binary_data(5, 3000)
    seg = np.array(["eu", "us", "apac"])[np.arange(y.size) % 3]
    r = performance_report(y, pred, score, segments=seg)
    assert set(r.segments) == {"eu", "us", "apac"}
    for name, sub in r.segments.items():
        m = seg == name
        assert sub.n == m.sum()
        assert sub["accuracy"] == pytest.approx(skm.accuracy_score(y[m], pred[m]))
        assert sub["roc_auc"] == pytest.approx(skm.roc_auc_score(y[m], score[m]))
    assert json.loads(r.to_json())["segments"]["eu"]["n"] == (seg == "eu").sum()


def test_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match=r"same length as `y_true` \(3\); got 2"):
        performance_report([0, 1, 1], [0, 1])
    with pytest.raises(InvalidInputError, match="y_score"):
        performance_report([0, 1, 1], [0, 1, 1], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="task"):
        performance_report([0, 1], [0, 1], task="ranking")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="multiclass"):
        performance_report([0, 1, 2], [0, 1, 2], task="binary")


def test_single_class_gives_none_with_reason() -> None:
    r = performance_report([1, 1, 1], [1, 0, 1], [0.9, 0.4, 0.8])
    assert r["roc_auc"] is None and "single class" in r.reasons["roc_auc"]
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    r = performance_report([0, 0, 0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert r["precision"] is None and "no positive predictions" in r.reasons["precision"]
    assert r["pr_auc"] is None
    json.loads(r.to_json())  # None, never NaN, in JSON


def test_nans_are_dropped_and_counted() -> None:
    y = np.array([0, 1, np.nan, 1, 0])
    score = np.array([0.1, 0.8, 0.5, np.nan, 0.3])
    r = performance_report(y, y_score=score)
    assert r.n == 3 and r.n_dropped == 2
    assert r["accuracy"] == 1.0
    assert "dropped" in r.notes[0]
    r = performance_report([None, None], [1, 0])
    assert r.n == 0 and r["accuracy"] is None and r.reasons["accuracy"] == "no rows with a label"


def test_non_probability_scores() -> None:
    y, _, _ = _binary_data(6, 200)
    margin = np.random.default_rng(0).normal(size=200) * 3 + y
    r = performance_report(y, (margin > 0).astype(int), margin)
    assert r["roc_auc"] == pytest.approx(skm.roc_auc_score(y, margin), abs=1e-12)
    assert r["log_loss"] is None and "[0, 1]" in r.reasons["log_loss"]


def test_incompatible_label_types() -> None:
    with pytest.raises(InvalidInputError, match="different types"):
        performance_report(np.array([0, 1]), np.array(["0", "1"]), task="multiclass")
    with pytest.raises(InvalidInputError, match="columns"):
        performance_report([0, 1, 2], [0, 1, 2], np.ones((3, 2)) / 2, task="multiclass")
