"""XGBoost flavor: the native UBJSON (default) or JSON model format.

A ``Booster`` is saved with ``Booster.save_model``; a scikit-learn wrapper (``XGBClassifier``,
``XGBRegressor``, ``XGBRanker``...) with the wrapper's own ``save_model``, which keeps the fitted
wrapper attributes, and is read back into the wrapper class recorded in the manifest. Neither
format can run code on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

from . import Flavor, SavedFlavor, call_method, import_object, qualified_name
from ._checks import checked_subclass

_FORMATS = ("ubj", "json")


class XGBoostFlavor(Flavor):
    """``xgboost.Booster`` and the ``xgboost.XGBModel`` scikit-learn wrappers."""

    name = "xgboost"
    framework = "xgboost"
    module = "xgboost"

    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        xgb = self.import_framework()
        fmt = options.get("format", "ubj")
        if fmt not in _FORMATS:
            raise InvalidInputError(f"xgboost `format` must be one of {_FORMATS}; got {fmt!r}.")
        file = f"model.{fmt}"
        if isinstance(model, xgb.Booster):
            kind = "booster"
        elif isinstance(model, xgb.XGBModel):
            kind = "sklearn"
        else:
            raise InvalidInputError(
                f"The xgboost flavor takes a Booster or an XGBModel; got {qualified_name(type(model))}."
            )
        model.save_model(str(path / file))
        return SavedFlavor({"kind": kind, "file": file, "model_class": qualified_name(type(model))})

    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        xgb = self.import_framework()
        file = str(path / options["file"])
        if options.get("kind") == "booster":
            return xgb.Booster(model_file=file)
        cls = checked_subclass(
            import_object(options["model_class"], where="the xgboost model class"),
            xgb.XGBModel,
        )
        model = cls()
        model.load_model(file)
        return model

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        xgb = self.import_framework()
        if isinstance(raw, xgb.Booster):
            if method not in (None, "predict"):
                raise InvalidInputError(
                    f"An xgboost Booster predicts with method 'predict' only; got {method!r}."
                )
            if not isinstance(data, xgb.DMatrix):
                data = xgb.DMatrix(data, enable_categorical=True)
            return raw.predict(data, **dict(params or {}))
        return call_method(raw, method or "predict", data, params)
