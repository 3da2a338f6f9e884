"""Flavors: how one kind of model is written to a directory, read back and asked to predict.

A flavor is a small object (see :class:`Flavor`); :func:`get_flavor` returns one by name and
:func:`detect_flavor` picks one for a model object. Built-in flavors are imported only when used,
so packaging a scikit-learn model never imports torch.
"""

from __future__ import annotations

import abc
import importlib
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mloop.errors import InvalidInputError, MloopError

__all__ = [
    "Flavor",
    "MissingDependencyError",
    "SavedFlavor",
    "detect_flavor",
    "flavor_names",
    "get_flavor",
    "import_object",
    "missing_code_error",
    "qualified_name",
    "register_flavor",
]


class MissingDependencyError(MloopError, ImportError):
    """A package the model needs (its framework, skops, cloudpickle...) is not installed."""

    error_code = "MISSING_DEPENDENCY"
    http_status = 500


@dataclass(frozen=True)
class SavedFlavor:
    """What a flavor reports after writing a model.

    Attributes
    ----------
    options : dict
        JSON-safe ``flavor_options`` recorded in the manifest and handed back to ``load``.
    trusted_only : bool
        The files are unpickled on load: load them only from trusted sources.
    requirements : tuple of str
        Distribution names (beyond the framework) the files need at load time, pinned by the caller.
    """

    options: dict[str, Any] = field(default_factory=dict)
    trusted_only: bool = False
    requirements: tuple[str, ...] = ()


class Flavor(abc.ABC):
    """Write, read and run one kind of model.

    Subclasses set ``name`` (recorded in the manifest), ``framework`` (the distribution whose
    version is pinned and checked, e.g. ``"scikit-learn"``) and ``module`` (its import name).
    """

    name: ClassVar[str]
    framework: ClassVar[str]
    module: ClassVar[str]

    def import_framework(self) -> Any:
        """Import the framework, or raise :class:`MissingDependencyError` saying what to install."""
        return require(self.module, self.framework)

    def framework_version(self) -> str | None:
        """The installed framework version (imports the framework)."""
        return getattr(self.import_framework(), "__version__", None)

    @abc.abstractmethod
    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        """Write ``model`` into the existing, empty directory ``path``."""

    def prepare(self, model: Any, options: Mapping[str, Any]) -> Any:
        """The object ``predict`` should be given for a not-yet-saved ``model`` (default: itself)."""
        return model

    @abc.abstractmethod
    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        """Read the framework object back from ``path``."""

    def load_files(self, files: Mapping[str, Path], options: Mapping[str, Any]) -> Any | None:
        """Read the framework object from the package's verified files (relative path -> file,
        e.g. blobs of a local store, named by their hash), or None when this flavor needs the
        package as a folder (the default): it is then read through :meth:`load`."""
        return None

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call ``raw.<method>(data, **params)`` (``method`` defaults to ``predict``)."""
        return call_method(raw, method or "predict", data, params)


def call_method(raw: Any, method: str, data: Any, params: Mapping[str, Any] | None) -> Any:
    """``raw.<method>(data, **params)``, with a clear error for a method the model lacks."""
    if method.startswith("_"):
        raise InvalidInputError(f"`method` must name a public prediction method; got {method!r}.")
    fn = getattr(raw, method, None)
    if not callable(fn):
        raise InvalidInputError(
            f"The model ({qualified_name(type(raw))}) has no method {method!r}; "
            "try 'predict', 'predict_proba' or 'decision_function'."
        )
    return fn(data, **dict(params or {}))


def require(module: str, distribution: str | None = None) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = distribution or module
        raise MissingDependencyError(
            f"This model needs {dist!r}, which is not installed: pip install {dist} "
            "(or pip install 'mloop[models]')."
        ) from exc


_PICKLE_MISSING_ATTR = re.compile(
    r"Can't get attribute '(?P<attr>[^']+)' on <module '(?P<module>[^']+)'"
)


def missing_code_error(exc: BaseException, *, file: str) -> MissingDependencyError | None:
    """The :class:`MissingDependencyError` for ``exc`` raised while reading ``file``, when ``exc``
    says the model refers to code that cannot be imported here (None for any other error).

    Unpickling (and skops) rebuild classes by reference: a module that is not installed, or that no
    longer has the class, surfaces as ``ModuleNotFoundError`` / ``AttributeError`` deep inside the
    unpickler. This names the module and says how to make it importable.
    """
    if isinstance(exc, ImportError):
        module = exc.name or "?"
        what = f"code in module {module!r}, which cannot be imported here ({exc})"
    elif isinstance(exc, AttributeError):
        m = _PICKLE_MISSING_ATTR.search(str(exc))
        obj = getattr(exc, "obj", None)
        if m is not None:
            module, attr = m.group("module"), m.group("attr")
        elif isinstance(obj, types.ModuleType) and getattr(exc, "name", None):
            module, attr = obj.__name__, str(exc.name)
        else:
            return None
        what = (
            f"{attr!r} in module {module!r}, which the module does not have here (the code changed "
            "since the model was saved?)"
        )
    else:
        return None
    top = module.partition(".")[0]
    return MissingDependencyError(
        f"Cannot load {file}: the model refers to {what}. Install the package that provides "
        f"{top!r} (e.g. pip install {top}) in the version the model was saved with; or, if it is "
        f"your own code, save the model again with code_paths=['path/to/{top}.py' or its package "
        "folder] so the code travels inside the package.",
        details={"module": module, "file": file},
    )


def qualified_name(obj: Any) -> str:
    """``module:QualName`` of a class or function (what :func:`import_object` reads)."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_object(ref: str, *, where: str) -> Any:
    """Import ``"pkg.mod:Name"`` (or ``"pkg.mod.Name"``)."""
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise InvalidInputError(f"{where} must look like 'package.module:ClassName'; got {ref!r}.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"Cannot import module {module_name!r} for {where} ({exc}); install it, or package "
            "the code with code_paths=[...]."
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise MissingDependencyError(
                f"Module {module_name!r} has no {attr!r} (needed for {where})."
            ) from exc
    return obj


_BUILTIN: dict[str, str] = {
    "sklearn": "mloop.registry.flavors.sklearn:SklearnFlavor",
    "xgboost": "mloop.registry.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "mloop.registry.flavors.lightgbm:LightGBMFlavor",
    "pytorch": "mloop.registry.flavors.pytorch:PyTorchFlavor",
    "python_function": "mloop.registry.flavors.pyfunc:PyFuncFlavor",
}
# Top-level module of a class in a model's MRO -> flavor. The first match in MRO order wins, so an
# XGBClassifier (xgboost, then sklearn's BaseEstimator) is an xgboost model.
_ROOTS: dict[str, str] = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "pytorch",
    "sklearn": "sklearn",
}
_registered: dict[str, Flavor] = {}


def register_flavor(flavor: Flavor) -> None:
    """Add (or replace) a flavor under ``flavor.name``."""
    _registered[flavor.name] = flavor


def flavor_names() -> list[str]:
    """Names of every known flavor."""
    return sorted({*_BUILTIN, *_registered})


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises
    ------
    InvalidInputError
        For an unknown name.
    """
    flavor = _registered.get(name)
    if flavor is not None:
        return flavor
    ref = _BUILTIN.get(name)
    if ref is None:
        raise InvalidInputError(f"Unknown flavor {name!r}; expected one of {flavor_names()}.")
    flavor = import_object(ref, where=f"flavor {name!r}")()
    _registered[name] = flavor
    return flavor


def detect_flavor(model: Any) -> str:
    """Pick a flavor for ``model`` from the modules of its classes, else ``python_function``.

    Raises
    ------
    InvalidInputError
        When the object is neither a known framework's model nor has a ``predict`` method.
    """
    cls = model if isinstance(model, type) else type(model)
    if not isinstance(model, type):
        for base in cls.__mro__:
            root = (base.__module__ or "").partition(".")[0]
            if root in _ROOTS:
                return _ROOTS[root]
    if callable(getattr(model, "predict", None)) or callable(model):
        return "python_function"
    raise InvalidInputError(
        f"Cannot tell how to package a {qualified_name(cls)}: it is not a scikit-learn, XGBoost, "
        "LightGBM or PyTorch model and has no `predict` method. Pass flavor=... explicitly."
    )
