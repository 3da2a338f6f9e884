"""scikit-learn flavor: skops' secure format when it can hold the model, else cloudpickle.

skops stores an estimator as data plus a list of the types it needs; loading refuses any type not
explicitly trusted. At save time we record exactly the types this file needs, and at load time we
trust those and nothing else, so a file swapped for one that smuggles in another type is refused.
A model skops cannot hold (custom classes it does not know how to rebuild, lambdas...) or one that
does not predict identically after a skops round trip is cloudpickled instead and the manifest
says ``trusted_only``.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import sys
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import MloopError

from . import Flavor, SavedFlavor, _pickle, missing_code_error, qualified_name, require

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"
# Types from these packages (and skops' default-trusted ones) never vanish from a running process.
_FRAMEWORK_MODULES = frozenset({"sklearn", "numpy", "scipy", "builtins"})
_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")

# ``import skops.io`` lists scikit-learn's estimators with ``all_estimators()``, whose package walk
# imports every subpackage of scikit-learn, including its array-API adapters for PyTorch, Dask and
# CuPy: with PyTorch installed that alone is ~0.8 s of the first load or save in every process, for
# packages that hold no estimator. They are kept out of that walk (only); the estimator list skops
# builds is the same, and scikit-learn imports them as usual when a PyTorch array is used.
_WALK_SKIPS = frozenset(
    f"sklearn.externals.array_api_compat.{backend}" for backend in ("torch", "dask", "cupy")
)
_skops_lock = threading.Lock()


class _SkipInWalk:
    """A meta-path finder that refuses the modules in ``_WALK_SKIPS`` (the walk ignores that)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in _WALK_SKIPS:
            raise ImportError(f"{name} is not imported while skops lists the estimators")


def _skops_io() -> Any:
    """``skops.io``, imported without the array-API adapters the estimator listing would load."""
    module = sys.modules.get("skops.io")
    if module is not None:
        return module
    with _skops_lock:
        finder = _SkipInWalk()
        sys.meta_path.insert(0, finder)
        try:
            return require("skops.io", "skops")
        finally:
            sys.meta_path.remove(finder)


class SklearnFlavor(Flavor):
    """Any scikit-learn estimator or Pipeline (and sklearn-compatible estimators)."""

    name = "sklearn"
    framework = "scikit-learn"
    module = "sklearn"

    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        methods = [m for m in _METHODS if callable(getattr(model, m, None))]
        base = {"model_class": qualified_name(type(model)), "methods": methods}
        serialization = options.get("serialization", "auto")
        if serialization in ("auto", "skops") and importlib.util.find_spec("skops") is not None:
            trusted, why_not = _try_skops(model, path / SKOPS_FILE, input_example)
            if trusted is not None:
                return SavedFlavor(
                    {**base, "serialization": "skops", "trusted_types": trusted},
                    requirements=("skops",),
                )
            if serialization == "skops":
                raise MloopError(f"skops cannot hold this model: {why_not}")
            base["skops_fallback_reason"] = why_not
        elif serialization == "auto":
            base["skops_fallback_reason"] = "skops is not installed"
        _pickle.dump(model, path / PICKLE_FILE)
        return SavedFlavor(
            {**base, "serialization": "cloudpickle"},
            trusted_only=True,
            requirements=("cloudpickle",),
        )

    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        self.import_framework()
        if options.get("serialization") == "skops":
            return _load_skops(path / SKOPS_FILE, list(options.get("trusted_types", [])))
        return _pickle.load(path / PICKLE_FILE)

    def load_files(self, files: Mapping[str, Path], options: Mapping[str, Any]) -> Any | None:
        if options.get("serialization") != "skops" or SKOPS_FILE not in files:
            return None  # a pickled model is read from its folder
        self.import_framework()
        trusted = list(options.get("trusted_types", []))
        return _load_skops(files[SKOPS_FILE], trusted, name=SKOPS_FILE)

    def copy_loaded(self, raw: Any, options: Mapping[str, Any]) -> Any | None:
        """An independent copy of a model loaded from verified files, for a warm load to reuse.

        Only for skops files whose types all come from scikit-learn, numpy, scipy or the standard
        types skops trusts by default: those deep-copy to exactly what loading the same bytes
        again builds, and stay importable for the life of the process. A type from the user's
        code may have become unimportable since (a load must then say so), and a cloudpickled
        model may hold anything (locks, handles, state its ``__reduce__`` recreates): None, so
        those are loaded from their files every time.
        """
        if options.get("serialization") != "skops":
            return None
        trusted = options.get("trusted_types") or []
        if not all(str(name).partition(".")[0] in _FRAMEWORK_MODULES for name in trusted):
            return None
        return copy.deepcopy(raw)


def _try_skops(model: Any, file: Path, input_example: Any) -> tuple[list[str] | None, str]:
    """Write ``model`` with skops; the trusted type list, or None and why skops cannot be used."""
    sio = _skops_io()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skops warns about types it will not trust later
            sio.dump(model, buf)
    except (
        Exception
    ) as exc:  # skops raises TypeError/NotImplementedError/... for what it cannot hold
        return None, f"skops.io.dump failed: {type(exc).__name__}: {exc}"
    data = buf.getvalue()
    trusted = sorted(sio.get_untrusted_types(data=data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = sio.loads(data, trusted=trusted)
    except Exception as exc:  # a file skops wrote but cannot read back: fall back
        return None, f"skops.io.loads failed: {type(exc).__name__}: {exc}"
    if input_example is not None:
        try:
            same = _same(model.predict(input_example), loaded.predict(input_example))
        except Exception as exc:  # the reloaded estimator is broken: fall back
            return None, f"the skops copy failed to predict: {type(exc).__name__}: {exc}"
        if not same:
            return None, "the skops copy predicts differently on the input example"
    file.write_bytes(data)
    return trusted, ""


def _load_skops(file: Path, trusted: list[str], *, name: str | None = None) -> Any:
    """Load a skops file; errors name it ``name`` (default: the file's own name)."""
    from mloop.registry._manifest import ModelIntegrityError

    name = name or file.name

    sio = _skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(file, trusted=trusted)
    except (ImportError, AttributeError) as exc:  # a type skops rebuilds by reference is missing
        missing = missing_code_error(exc, file=name)
        if missing is None:
            raise
        raise missing from exc
    except UntrustedTypesFoundException as exc:
        unexpected = sorted(set(sio.get_untrusted_types(file=file)) - set(trusted))
        raise ModelIntegrityError(
            f"{name} needs types that were not trusted when the model was saved: "
            f"{unexpected}; refusing to load it.",
            details={"file": name, "untrusted_types": unexpected},
        ) from exc


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))
