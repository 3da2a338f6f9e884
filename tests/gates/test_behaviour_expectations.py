"""The helpers behavioural tests call (invariance, direction, minimum functionality), on real
scikit-learn models logged and loaded through the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _gate_models import breast_cancer, diabetes, log_and_load, settings_for
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.errors import InvalidInputError
from mloop.gates import (
    ExpectationFailed,
    ExpectationResult,
    ModelUnderTest,
    expect_direction,
    expect_invariance,
    expect_min_functionality,
)
from mloop.store._open import clear_store_cache


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = settings_for(tmp_path_factory.mktemp("expectations") / "home")
    X, y = breast_cancer()
    X = X.assign(patient=[f"patient-{i}" for i in range(len(X))])  # the model ignores it
    used = [c for c in X.columns if c != "patient"]
    clf = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), used)], remainder="drop"),
        LogisticRegression(max_iter=5000),
    ).fit(X, y)
    c = log_and_load(settings, clf, X, "cancer")
    Xd, yd = diabetes()
    r = log_and_load(settings, LinearRegression().fit(Xd, yd), Xd, "diabetes")
    yield {
        "clf": ModelUnderTest(c.model, uri=c.uri, version=c.version),
        "X": X,
        "y": y,
        "coef": dict(zip(used, clf[-1].coef_[0], strict=True)),
        "reg": ModelUnderTest(r.model, uri=r.uri, version=r.version),
        "Xd": Xd,
        "reg_coef": dict(zip(Xd.columns, r.model.raw.coef_, strict=True)),
    }
    clear_store_cache()


def _scale(column: str, factor: float) -> Any:
    return lambda df: df.assign(**{column: df[column] * factor})


# ------------------------------------------------------------------------------------ invariance


def test_invariance_holds_on_a_column_the_model_ignores(models: dict[str, Any]) -> None:
    model, X = models["clf"], models["X"]
    result = expect_invariance(model, X, lambda df: df.assign(patient="Alex"))
    assert isinstance(result, ExpectationResult)
    assert (result.rows, result.violations, result.allowed, result.passed) == (len(X), 0, 0, True)
    assert "Invariance held" in result.message and f"0 of {len(X):,} rows" in result.message
    # the probabilities are bit-for-bit the same too
    assert expect_invariance(model, X, lambda df: df.assign(patient=""), method="predict_proba")


def test_invariance_catches_a_feature_the_model_uses(models: dict[str, Any]) -> None:
    model, X = models["clf"], models["X"]
    perturb = _scale("worst radius", 1.6)
    before = model.predict(X)
    after = model.predict(perturb(X.copy()))
    changed = np.flatnonzero(before != after)
    assert len(changed) > 0  # the premise: scaling the radius flips some diagnoses

    with pytest.raises(ExpectationFailed) as caught:
        expect_invariance(model, X, perturb)
    result = caught.value.result
    assert isinstance(caught.value, AssertionError)
    assert (result.rows, result.violations, result.allowed) == (len(X), len(changed), 0)
    message = str(caught.value)
    assert f"changed on {len(changed):,} of {len(X):,} rows" in message
    assert "none may change" in message
    # up to five examples, the first violating rows, with their index and both predictions
    assert len(result.examples) == min(5, len(changed))
    first = result.examples[0]
    i = int(changed[0])
    assert first == {"index": int(X.index[i]), "before": int(before[i]), "after": int(after[i])}
    assert f"{X.index[i]}: {before[i]} -> {after[i]}" in message

    # allowing that share of changes lets it pass; one row fewer does not
    share = len(changed) / len(X)
    assert expect_invariance(model, X, perturb, max_changed_share=share).passed
    with pytest.raises(ExpectationFailed):
        expect_invariance(model, X, perturb, max_changed_share=(len(changed) - 1) / len(X))


def test_invariance_does_not_let_perturb_touch_the_callers_frame(models: dict[str, Any]) -> None:
    X = models["X"].head(50)
    original = X.copy()

    def in_place(df: pd.DataFrame) -> pd.DataFrame:
        df["patient"] = "someone else"
        return df

    expect_invariance(models["clf"], X, in_place)
    pd.testing.assert_frame_equal(X, original)


def test_invariance_refuses_a_perturbation_that_returns_nothing_or_other_rows(
    models: dict[str, Any],
) -> None:
    model, X = models["clf"], models["X"].head(20)
    with pytest.raises(InvalidInputError, match="returned None"):
        expect_invariance(model, X, lambda df: None)
    with pytest.raises(InvalidInputError, match="same 20 rows"):
        expect_invariance(model, X, lambda df: df.head(10))
    with pytest.raises(InvalidInputError, match="no rows"):
        expect_invariance(model, X.head(0), lambda df: df)
    with pytest.raises(InvalidInputError, match=r"max_changed_share.*\[0, 1\]"):
        expect_invariance(model, X, lambda df: df, max_changed_share=1.5)


def test_invariance_tolerance_on_numeric_outputs(models: dict[str, Any]) -> None:
    model, Xd = models["reg"], models["Xd"]
    coef = models["reg_coef"]["s6"]
    nudge = 1e-6
    perturb = lambda df: df.assign(s6=df["s6"] + nudge)  # noqa: E731
    with pytest.raises(ExpectationFailed):
        expect_invariance(model, Xd, perturb)  # every prediction moves by coef * nudge
    assert expect_invariance(model, Xd, perturb, tolerance=abs(coef) * nudge * 2).passed


# ------------------------------------------------------------------------------------- direction


def test_direction_of_a_probability(models: dict[str, Any]) -> None:
    model, X, coef = models["clf"], models["X"], models["coef"]["worst texture"]
    assert coef < 0  # the premise: a rougher texture lowers P(benign) in this fitted model
    perturb = _scale("worst texture", 1.2)
    held = expect_direction(model, X, perturb, direction="decrease", output=1)
    assert (held.violations, held.allowed) == (0, 0)
    assert "predict_proba column 1 should decrease" in held.message

    with pytest.raises(ExpectationFailed) as caught:
        expect_direction(model, X, perturb, direction="increase", output=1)
    result = caught.value.result
    before = model.predict_proba(X)[:, 1]
    after = model.predict_proba(perturb(X.copy()))[:, 1]
    fell = np.flatnonzero(after < before)
    assert result.violations == len(fell) > 0
    assert f"it fell on {len(fell):,} of {len(X):,} rows" in str(caught.value)
    ex = result.examples[0]
    assert ex["index"] == int(X.index[fell[0]])
    assert ex["before"] == pytest.approx(before[fell[0]]) and ex["after"] < ex["before"]


def test_direction_of_a_regression_and_min_share(models: dict[str, Any]) -> None:
    model, Xd = models["reg"], models["Xd"]
    assert models["reg_coef"]["bmi"] > 0
    perturb = lambda df: df.assign(bmi=df["bmi"] + 0.01)  # noqa: E731
    assert expect_direction(model, Xd, perturb, direction="increase").passed
    with pytest.raises(ExpectationFailed, match=f"rose on {len(Xd):,} of {len(Xd):,} rows"):
        expect_direction(model, Xd, perturb, direction="decrease")
    # min_share=0 tolerates every row moving the wrong way
    assert expect_direction(model, Xd, perturb, direction="decrease", min_share=0.0).passed
    # a negative tolerance demands a move of at least that size: bmi's effect is coef * 0.01
    step = models["reg_coef"]["bmi"] * 0.01
    assert expect_direction(model, Xd, perturb, tolerance=-step * 0.9).passed
    with pytest.raises(ExpectationFailed):
        expect_direction(model, Xd, perturb, tolerance=-step * 1.1)


def test_direction_rejects_bad_options(models: dict[str, Any]) -> None:
    model, X = models["clf"], models["X"].head(10)
    with pytest.raises(InvalidInputError, match="'increase' or 'decrease'"):
        expect_direction(model, X, lambda df: df, direction="up")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not a column of predict_proba"):
        expect_direction(model, X, lambda df: df, output=2)
    with pytest.raises(InvalidInputError, match="'predict' or a predict_proba column"):
        expect_direction(model, X, lambda df: df, output="proba")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="has no predict_proba"):
        expect_direction(models["reg"], models["Xd"], lambda df: df, output=1)


# ---------------------------------------------------------------------------- min functionality


def test_min_functionality_on_cases_with_known_answers(models: dict[str, Any]) -> None:
    model, X, y = models["clf"], models["X"], models["y"]
    proba = model.predict_proba(X)[:, 1]
    order = np.argsort(proba)
    picks = np.concatenate([order[:3], order[-3:]])  # the model's most confident answers
    cases, expected = X.iloc[picks], y.iloc[picks].to_numpy()
    assert list(expected) == [0, 0, 0, 1, 1, 1]  # the premise: those are right
    result = expect_min_functionality(model, cases, expected)
    assert (result.rows, result.violations, result.passed) == (6, 0, True)
    assert "accuracy 100%" in result.message

    wrong = expected.copy()
    wrong[[0, 4]] = 1 - wrong[[0, 4]]
    with pytest.raises(ExpectationFailed) as caught:
        expect_min_functionality(model, cases, wrong)
    message = str(caught.value)
    assert "2 of 6 cases answered wrongly (accuracy 66.7%, at least 100% required)" in message
    assert [e["index"] for e in caught.value.result.examples] == [
        int(cases.index[0]),
        int(cases.index[4]),
    ]
    assert caught.value.result.examples[0]["expected"] == 1
    assert caught.value.result.examples[0]["predicted"] == 0
    assert expect_min_functionality(model, cases, wrong, min_accuracy=4 / 6).passed
    with pytest.raises(InvalidInputError, match="one answer per case"):
        expect_min_functionality(model, cases, expected[:5])


def test_min_functionality_with_string_labels_and_a_tolerance() -> None:
    class Words:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.where(frame["x"] > 0, "yes", "no")

    cases = pd.DataFrame({"x": [1.0, -1.0, 2.0]}, index=["a", "b", "c"])
    assert expect_min_functionality(Words(), cases, ["yes", "no", "yes"]).passed
    with pytest.raises(
        ExpectationFailed, match=r"Examples \(index: expected -> predicted\): c: no"
    ):
        expect_min_functionality(Words(), cases, ["yes", "no", "no"])

    class Doubles:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return frame["x"].to_numpy() * 2.0

    assert expect_min_functionality(Doubles(), cases, [2.05, -2.0, 4.0], tolerance=0.1).passed
    with pytest.raises(ExpectationFailed):
        expect_min_functionality(Doubles(), cases, [2.05, -2.0, 4.0])


def test_model_under_test_names_what_a_regressor_lacks(
    models: dict[str, Any], tmp_path: Path
) -> None:
    reg = models["reg"]
    assert not reg.has_predict_proba and models["clf"].has_predict_proba
    with pytest.raises(InvalidInputError, match=r"models:/diabetes/1 \(LinearRegression\) has no"):
        reg.predict_proba(models["Xd"])
    assert reg.uri == "models:/diabetes/1" and reg.version == 1
    assert isinstance(reg.raw, LinearRegression)
    assert "models:/diabetes/1" in repr(reg)
