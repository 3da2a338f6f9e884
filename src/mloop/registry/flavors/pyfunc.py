"""python_function flavor: any object (or class) with ``predict``, or a plain callable, cloudpickled.

The code a model needs but that is not installed (a module next to a training script, say) travels
with it through ``code_paths``: the files are copied into the package and put on ``sys.path``
before unpickling, so a class pickled by reference imports again in a fresh process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

from . import Flavor, SavedFlavor, _pickle, call_method, qualified_name

PICKLE_FILE = "model.pkl"


class PyFuncFlavor(Flavor):
    """Generic Python models; loading unpickles, so packages are marked ``trusted_only``."""

    name = "python_function"
    framework = "cloudpickle"
    module = "cloudpickle"

    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        init_kwargs = dict(options.get("init_kwargs") or {})
        if isinstance(model, type):
            if not callable(getattr(model, "predict", None)):
                raise InvalidInputError(
                    f"Class {qualified_name(model)} has no `predict` method; a python_function "
                    "model needs one."
                )
            kind = "class"
        elif callable(getattr(model, "predict", None)):
            kind = "object"
        elif callable(model):
            kind = "callable"
        else:
            raise InvalidInputError(
                f"A python_function model needs a `predict` method or must be callable; got a "
                f"{qualified_name(type(model))}."
            )
        if init_kwargs and kind != "class":
            raise InvalidInputError("`init_kwargs` applies only when the model is a class.")
        cls = model if isinstance(model, type) else type(model)
        _pickle.dump(model, path / PICKLE_FILE)
        return SavedFlavor(
            {"kind": kind, "model_class": qualified_name(cls), "init_kwargs": init_kwargs},
            trusted_only=True,
            requirements=("cloudpickle",),
        )

    def prepare(self, model: Any, options: Mapping[str, Any]) -> Any:
        if options.get("kind") == "class":
            return model(**dict(options.get("init_kwargs") or {}))
        return model

    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        return self.prepare(_pickle.load(path / PICKLE_FILE), options)

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        if method is None and not callable(getattr(raw, "predict", None)) and callable(raw):
            return raw(data, **dict(params or {}))
        return call_method(raw, method or "predict", data, params)
