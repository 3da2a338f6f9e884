"""The joblib-free forest predict predicts exactly what scikit-learn's does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)

from mloop.serving._forest import forest_predictor


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
def test_classifiers_match_bit_for_bit(cls: type) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = np.where(X[:, 0] + rng.normal(size=400) > 0, "yes", np.where(X[:, 1] > 1, "maybe", "no"))
    model = cls(n_estimators=30, random_state=0).fit(X, y)
    fn = forest_predictor(model)
    assert fn is not None
    fresh = rng.normal(size=(300, 6))
    np.testing.assert_array_equal(fn(fresh), model.predict(fresh))
    np.testing.assert_array_equal(fn(fresh[:1]), model.predict(fresh[:1]))


@pytest.mark.parametrize("cls", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressors_match_bit_for_bit(cls: type) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    model = cls(n_estimators=20, random_state=0).fit(X, X @ [1.0, -2.0, 0.5, 0.0])
    fn = forest_predictor(model)
    assert fn is not None
    fresh = rng.normal(size=(200, 4))
    assert np.array_equal(fn(fresh), model.predict(fresh))  # equal, not merely close


def test_other_models_and_multi_output_forests_keep_their_own_predict() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    assert forest_predictor(GradientBoostingClassifier(n_estimators=5).fit(X, y)) is None
    multi = RandomForestRegressor(n_estimators=5).fit(X, np.column_stack([y, y]))
    assert forest_predictor(multi) is None
    assert forest_predictor(RandomForestClassifier()) is None  # not fitted
    assert forest_predictor(object()) is None
