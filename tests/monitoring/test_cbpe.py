"""CBPE on simulated covariate shift (labels known, then hidden) and against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from mloop.errors import InvalidInputError
from mloop.monitoring import CBPE, estimate_performance
from mloop.monitoring._cbpe import _Isotonic

SEEDS = [0, 1, 2, 2024]
W = np.array([1.2, -0.8])


def _binary_frame(
    rng: np.random.Generator, n: int, mean: tuple[float, float], scale: float
) -> dict:
    x = rng.normal(loc=mean, scale=scale, size=(n, 2))
    logit = x @ W + 0.2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    # an overconfident model: monotone in the true probability but miscalibrated
    proba = 1 / (1 + np.exp(-(1.8 * logit + 0.4)))
    return {
        "x0": x[:, 0],
        "x1": x[:, 1],
        "proba": proba,
        "pred": (proba >= 0.5).astype(int),
        "label": y,
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("mean", "scale"), [((0.0, 0.0), 1.0), ((0.8, 0.3), 0.8), ((-0.5, 0.6), 1.3)]
)
def test_binary_covariate_shift_estimate_within_002(seed: int, mean: tuple, scale: float) -> None:
    # 60k rows: sd of realised accuracy/AUC around its expectation is ~0.002-0.003, so 0.02 is a
    # >6 sigma margin for any seed.
    rng = np.random.default_rng(seed)
    ref = _binary_frame(rng, 60_000, (0.0, 0.0), 1.0)
    cur = _binary_frame(rng, 60_000, mean, scale)
    est = estimate_performance(pd.DataFrame(ref), pd.DataFrame(cur).drop(columns="label"))
    assert est.calibrated == [True]  # overconfident scores: isotonic wins in cross-validation
    y, pred, proba = cur["label"], cur["pred"], cur["proba"]
    assert est["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=0.02)
    assert est["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba), abs=0.02)
    assert est["precision"] == pytest.approx(skm.precision_score(y, pred), abs=0.02)
    assert est["recall"] == pytest.approx(skm.recall_score(y, pred), abs=0.02)
    assert est["f1"] == pytest.approx(skm.f1_score(y, pred), abs=0.02)
    json.loads(est.to_json())


def test_uncalibrated_estimate_would_miss() -> None:
    # the same data without calibration is off by more than the tolerance: calibration matters
    rng = np.random.default_rng(11)
    ref = _binary_frame(rng, 60_000, (0.0, 0.0), 1.0)
    cur = _binary_frame(rng, 60_000, (0.8, 0.3), 0.8)
    raw = estimate_performance(ref, cur, calibration="none")
    real = skm.accuracy_score(cur["label"], cur["pred"])
    assert raw.calibrated == [False]
    assert abs(raw["accuracy"] - real) > 0.02


def _multiclass_frame(rng: np.random.Generator, n: int, shift: float) -> dict:
    x = rng.normal(size=(n, 2)) + shift
    logits = np.c_[x[:, 0], x[:, 1], -x[:, 0] - x[:, 1] + 0.5] * 1.3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cum = p.cumsum(axis=1)
    y = (rng.random(n)[:, None] > cum).sum(axis=1)
    # scores: a tempered softmax (overconfident)
    q = np.exp(1.7 * logits) / np.exp(1.7 * logits).sum(axis=1, keepdims=True)
    names = np.array(["a", "b", "c"])
    return {
        "p_a": q[:, 0],
        "p_b": q[:, 1],
        "p_c": q[:, 2],
        "pred": names[q.argmax(axis=1)],
        "label": names[y],
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_covariate_shift_estimate_within_002(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = _multiclass_frame(rng, 60_000, 0.0)
    cur = _multiclass_frame(rng, 60_000, 0.5)
    est = estimate_performance(
        pl.DataFrame(ref),
        pl.DataFrame(cur).drop("label"),
        y_score={"a": "p_a", "b": "p_b", "c": "p_c"},
    )
    assert est.task == "multiclass" and est.labels == ["a", "b", "c"]
    y, pred = cur["label"], cur["pred"]
    proba = np.c_[cur["p_a"], cur["p_b"], cur["p_c"]]
    assert est["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=0.02)
    assert est["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=0.02)
    realised_auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert est["roc_auc"] == pytest.approx(realised_auc, abs=0.02)
    # a list of columns plus labels is the same thing
    est2 = estimate_performance(
        pa.table(ref), pa.table(cur), y_score=["p_a", "p_b", "p_c"], labels=["a", "b", "c"]
    )
    assert est2.metrics == est.metrics


def test_expected_confusion_matrix_by_hand() -> None:
    ref = {"proba": np.tile([0.2, 0.8], 10), "label": np.tile([0, 1], 10)}
    cur = {"proba": np.array([0.9, 0.6, 0.3, 0.1]), "pred": np.array([1, 1, 0, 0])}
    est = estimate_performance(ref, cur, calibration="none")
    # TP = 0.9 + 0.6, FP = 0.1 + 0.4, FN = 0.3 + 0.1, TN = 0.7 + 0.9
    tp, fp, fn, tn = 1.5, 0.5, 0.4, 1.6
    np.testing.assert_allclose(est.expected_confusion_matrix, [[tn, fp], [fn, tp]], atol=1e-12)
    assert est["accuracy"] == pytest.approx((tp + tn) / 4)
    assert est["precision"] == pytest.approx(tp / (tp + fp))
    assert est["recall"] == pytest.approx(tp / (tp + fn))
    assert est["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # expected ROC: thresholds 0.9, 0.6, 0.3, 0.1 -> tps (.9, 1.5, 1.8, 1.9), fps (.1, .5, 1.2, 2.1)
    tpr = np.array([0, 0.9, 1.5, 1.8, 1.9]) / 1.9
    fpr = np.array([0, 0.1, 0.5, 1.2, 2.1]) / 2.1
    assert est["roc_auc"] == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)


def test_isotonic_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.random(2000), 2)  # ties
    y = (rng.random(2000) < x**2).astype(float)
    ours = _Isotonic(x, y)
    theirs = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(x, y)
    grid = np.linspace(-0.1, 1.1, 301)
    np.testing.assert_allclose(ours(grid), theirs.predict(grid), atol=1e-12)


def test_well_calibrated_scores_estimate_on_reference_matches_realised() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(80_000)
    ref = {"proba": p, "label": (rng.random(p.size) < p).astype(int)}
    est = CBPE(y_pred=None).fit(ref).estimate(ref)
    assert est["accuracy"] == pytest.approx(est.reference_metrics["accuracy"], abs=0.01)
    assert est["roc_auc"] == pytest.approx(est.reference_metrics["roc_auc"], abs=0.01)


def test_bad_input() -> None:
    ref = {"proba": np.linspace(0, 1, 50), "label": np.arange(50) % 2}
    with pytest.raises(InvalidInputError, match=r"\['label'\], which is not in the reference data"):
        estimate_performance({"proba": ref["proba"]}, ref)
    with pytest.raises(InvalidInputError, match=r"\['proba'\], which is not in the current data"):
        estimate_performance(ref, {"score": ref["proba"]})
    with pytest.raises(InvalidInputError, match="at least"):
        estimate_performance({"proba": [0.1, 0.9], "label": [0, 1]}, ref)
    with pytest.raises(InvalidInputError, match="not fitted"):
        CBPE().estimate(ref)
    with pytest.raises(InvalidInputError, match="calibration"):
        estimate_performance(ref, ref, calibration="platt")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="score columns"):
        estimate_performance(
            {"a": [0.5] * 20, "b": [0.5] * 20, "label": [0, 1, 2, 3] * 5}, ref, y_score=["a", "b"]
        )
    empty = estimate_performance(ref, {"proba": np.array([])}, y_pred=None)
    assert empty.n == 0 and empty["accuracy"] is None
    assert "no rows" in empty.reasons["accuracy"]
