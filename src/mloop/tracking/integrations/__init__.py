"""Framework integrations: scikit-learn, and callbacks for plain loops, Keras, Lightning, XGBoost.

Importing this package imports no framework; each is imported when its helper is first used, and a
missing one raises :class:`MissingDependencyError` naming the package to install.
"""

from __future__ import annotations

from ._optional import MissingDependencyError
from .callbacks import MetricsCallback, keras_callback, lightning_callback, xgboost_callback
from .sklearn import MAX_PARAM_VALUE_LENGTH, TRUNCATION_MARKER, log_sklearn, sklearn_params

__all__ = [
    "MAX_PARAM_VALUE_LENGTH",
    "TRUNCATION_MARKER",
    "MetricsCallback",
    "MissingDependencyError",
    "keras_callback",
    "lightning_callback",
    "log_sklearn",
    "sklearn_params",
    "xgboost_callback",
]
