"""LightGBM flavor: the native text model format.

A ``Booster`` is saved as ``model.txt``. A scikit-learn wrapper (``LGBMClassifier``,
``LGBMRegressor``, ``LGBMRanker``) is saved as its booster plus what predicting needs beyond it (the
wrapper's JSON-safe hyper-parameters, the objective, the class labels) and rebuilt around the
booster on load. The rebuild sets the attributes LightGBM's own ``fit`` sets; at save time it is
checked by predicting the input example with the rebuilt wrapper, and if it does not reproduce the
original, the package holds the bare booster instead (``kind: "booster"``, with a ``note``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError

from . import Flavor, SavedFlavor, call_method, import_object, qualified_name
from ._checks import checked_subclass

MODEL_FILE = "model.txt"


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster`` and the ``lightgbm.LGBMModel`` scikit-learn wrappers."""

    name = "lightgbm"
    framework = "lightgbm"
    module = "lightgbm"

    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        lgb = self.import_framework()
        if isinstance(model, lgb.Booster):
            model.save_model(str(path / MODEL_FILE))
            return SavedFlavor({"kind": "booster", "model_class": qualified_name(type(model))})
        if not isinstance(model, lgb.LGBMModel):
            raise InvalidInputError(
                "The lightgbm flavor takes a Booster or an LGBMModel; got "
                f"{qualified_name(type(model))}."
            )
        booster = model.booster_  # raises LightGBM's own error when the model is not fitted
        booster.save_model(str(path / MODEL_FILE))
        wrapper, why_not = _wrapper_options(model)
        if wrapper is not None:
            try:
                rebuilt = _rebuild(
                    lgb, type(model), lgb.Booster(model_file=str(path / MODEL_FILE)), wrapper
                )
                same = input_example is None or _same_predictions(model, rebuilt, input_example)
            except (AttributeError, TypeError, ValueError) as exc:  # private API moved
                same, why_not = False, f"{type(exc).__name__}: {exc}"
            if same:
                return SavedFlavor({"kind": "sklearn", **wrapper})
            why_not = why_not or "the rebuilt wrapper predicts differently on the input example"
        return SavedFlavor(
            {
                "kind": "booster",
                "model_class": qualified_name(type(model)),
                "note": f"saved as a bare Booster: the {type(model).__name__} wrapper could not "
                f"be rebuilt ({why_not}); predict returns raw Booster output (probabilities, "
                "not labels, for classifiers).",
            }
        )

    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        lgb = self.import_framework()
        booster = lgb.Booster(model_file=str(path / MODEL_FILE))
        if options.get("kind") != "sklearn":
            return booster
        cls = checked_subclass(
            import_object(options["model_class"], where="the lightgbm model class"), lgb.LGBMModel
        )
        return _rebuild(lgb, cls, booster, options)

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        lgb = self.import_framework()
        if isinstance(raw, lgb.Booster) and method not in (None, "predict"):
            raise InvalidInputError(
                f"A lightgbm Booster predicts with method 'predict' only; got {method!r}."
            )
        return call_method(raw, method or "predict", data, params)


def _json_safe(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        return False


def _wrapper_options(model: Any) -> tuple[dict[str, Any] | None, str]:
    params = model.get_params(deep=False)
    dropped = sorted(k for k, v in params.items() if not _json_safe(v))
    objective = getattr(model, "_objective", None)
    if not isinstance(objective, str | None):
        return None, "it has a custom (callable) objective"
    classes = getattr(model, "classes_", None) if hasattr(model, "_le") else None
    class_list: list[Any] | None = None
    classes_dtype = None
    if classes is not None:
        class_list = np.asarray(classes).tolist()
        classes_dtype = np.asarray(classes).dtype.str
        if not _json_safe(class_list):
            return None, "its class labels are not JSON-safe"
    return {
        "model_class": qualified_name(type(model)),
        "params": {k: v for k, v in params.items() if k not in dropped},
        "dropped_params": dropped,
        "objective": objective,
        "classes": class_list,
        "classes_dtype": classes_dtype,
        "fitted_with_feature_names": bool(getattr(model, "_fitted_with_feature_names", False)),
    }, ""


def _rebuild(lgb: Any, cls: type, booster: Any, options: Mapping[str, Any]) -> Any:
    """Set on a fresh wrapper what ``LGBMModel.fit`` sets, around an already trained booster."""
    model = cls(**dict(options.get("params") or {}))
    model._Booster = booster
    model._n_features = booster.num_feature()
    model._n_features_in = booster.num_feature()
    model._fitted_with_feature_names = bool(options.get("fitted_with_feature_names"))
    model._objective = options.get("objective")
    model._best_iteration = booster.best_iteration
    model._best_score = {}
    model._evals_result = {}
    model._class_weight = None
    classes = options.get("classes")
    if classes is not None:
        from lightgbm.sklearn import _LGBMLabelEncoder

        encoder = _LGBMLabelEncoder().fit(np.asarray(classes, dtype=options.get("classes_dtype")))
        model._le = encoder
        model._classes = encoder.classes_
        model._n_classes = len(encoder.classes_)
        model._class_map = dict(
            zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True)
        )
    model.fitted_ = True
    return model


def _same_predictions(a: Any, b: Any, data: Any) -> bool:
    for method in ("predict", "predict_proba"):
        if not hasattr(a, method):
            continue
        x, y = np.asarray(getattr(a, method)(data)), np.asarray(getattr(b, method)(data))
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True
