"""A model whose code is not importable where it is loaded fails with MissingDependencyError.

Every flavor path that rebuilds a class by reference (cloudpickle for python_function and for
scikit-learn, skops for scikit-learn, the class reference of xgboost and lightgbm, as PyTorch already
did) names the missing module and says to install it or to save the model with ``code_paths``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from mloop.registry._package import load_model_dir, save_model
from mloop.registry.flavors import MissingDependencyError

CODE = """
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

class Scorer:
    def __init__(self, w):
        self.w = np.asarray(w, dtype=float)

    def predict(self, data):
        return np.asarray(data, dtype=float) @ self.w

class Tiny(RegressorMixin, BaseEstimator):
    def __init__(self, scale=2.0):
        self.scale = scale

    def fit(self, X, y=None):
        self.coef_ = np.full(np.asarray(X).shape[1], self.scale)
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float) @ self.coef_
"""

X = np.arange(12.0).reshape(4, 3)


@pytest.fixture
def temp_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, Callable[[], None]]]:
    """A module importable now; ``forget()`` makes it unimportable, as on another machine."""
    name = f"mloop_gone_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text(textwrap.dedent(CODE))
    monkeypatch.syspath_prepend(str(src))
    mod = __import__(name)

    def forget() -> None:
        monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(src)])

    yield mod, forget
    sys.modules.pop(name, None)


def _models(mod: ModuleType) -> dict[str, tuple[Any, dict[str, Any]]]:
    return {
        "python_function object": (mod.Scorer([1.0, 2.0, 3.0]), {}),
        "python_function class": (
            mod.Scorer,
            {"flavor_options": {"init_kwargs": {"w": [1.0, 0.0, 0.0]}}},
        ),
        "sklearn skops": (mod.Tiny().fit(X), {"flavor_options": {"serialization": "skops"}}),
        "sklearn cloudpickle": (
            mod.Tiny().fit(X),
            {"flavor_options": {"serialization": "cloudpickle"}},
        ),
    }


@pytest.mark.parametrize(
    "kind",
    ["python_function object", "python_function class", "sklearn skops", "sklearn cloudpickle"],
)
def test_unimportable_model_code_is_a_missing_dependency(
    tmp_path: Path, temp_module: tuple[ModuleType, Callable[[], None]], kind: str
) -> None:
    mod, forget = temp_module
    model, kwargs = _models(mod)[kind]
    save_model(model, tmp_path / "m", **kwargs)
    assert load_model_dir(tmp_path / "m").predict(X) is not None  # loads while importable
    forget()
    with pytest.raises(MissingDependencyError) as err:
        load_model_dir(tmp_path / "m")
    msg = err.value.message
    assert repr(mod.__name__) in msg and "code_paths" in msg and "pip install" in msg, msg
    assert isinstance(err.value, ImportError)  # still an ImportError for callers that catch one
    assert err.value.details["module"] == mod.__name__


def test_a_class_that_is_gone_from_its_module_is_a_missing_dependency(
    tmp_path: Path, temp_module: tuple[ModuleType, Callable[[], None]]
) -> None:
    mod, _ = temp_module
    save_model(mod.Scorer([1.0, 2.0, 3.0]), tmp_path / "m")
    del mod.Scorer  # the code changed since the model was saved
    with pytest.raises(MissingDependencyError) as err:
        load_model_dir(tmp_path / "m")
    msg = err.value.message
    assert "'Scorer'" in msg and repr(mod.__name__) in msg and "code_paths" in msg, msg


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_native_format_flavors_name_a_missing_model_class(
    tmp_path: Path, temp_module: tuple[ModuleType, Callable[[], None]], framework: str
) -> None:
    """xgboost and lightgbm do not unpickle, but rebuild the model's class by reference."""
    lib = pytest.importorskip(framework)
    mod, forget = temp_module
    base = lib.XGBRegressor if framework == "xgboost" else lib.LGBMRegressor
    exec("class Sub(base):\n    pass\n", mod.__dict__ | {"base": base}, mod.__dict__)
    mod.Sub.__module__ = mod.__name__
    model = mod.Sub(n_estimators=2).fit(X, np.arange(4.0))
    save_model(model, tmp_path / "m")
    forget()
    with pytest.raises(MissingDependencyError) as err:
        load_model_dir(tmp_path / "m")
    assert repr(mod.__name__) in err.value.message and "code_paths" in err.value.message


def test_a_fresh_process_sees_one_clear_error_line(
    tmp_path: Path, temp_module: tuple[ModuleType, Callable[[], None]]
) -> None:
    mod, _ = temp_module
    save_model(mod.Scorer([1.0, 2.0, 3.0]), tmp_path / "m")
    script = textwrap.dedent(
        f"""
        from mloop.registry._package import load_model_dir
        from mloop.registry.flavors import MissingDependencyError
        try:
            load_model_dir({str(tmp_path / "m")!r})
        except MissingDependencyError as exc:
            print("MISSING:", exc.message)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MISSING: " in proc.stdout and repr(mod.__name__) in proc.stdout, proc.stdout
