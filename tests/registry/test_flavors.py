"""Every flavor: save, load in a fresh process, identical predictions; plus detection and failures."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _models import HERE, Doubler, Threshold, predict_in_fresh_process
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mloop.errors import InvalidInputError
from mloop.registry._package import (
    MANIFEST_NAME,
    ModelIntegrityError,
    file_digest,
    load_model_dir,
    save_model,
)
from mloop.registry.flavors import detect_flavor


@pytest.fixture
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    n = 400
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 12_000, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    y = pd.Series((X["income"] / 1000 + X["age"] * 0.3 + rng.normal(0, 5, n) > 62).astype(int))
    return X, y


def _assert_same(a: Any, b: Any) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    else:
        assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------- scikit-learn


def test_sklearn_pipeline_uses_skops_and_round_trips(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    pipe = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["plan"])]
        ),
        LogisticRegression(),
    ).fit(X, y)
    manifest = save_model(pipe, tmp_path / "m", input_example=X[:5])
    assert manifest.flavor == "sklearn"
    assert manifest.flavor_options["serialization"] == "skops"
    assert manifest.trusted_only is False
    assert (tmp_path / "m" / "model.skops").exists() and not (tmp_path / "m" / "model.pkl").exists()
    name, (pred, proba) = predict_in_fresh_process(
        tmp_path / "m", X[:50], methods=(None, "predict_proba")
    )
    assert name == "Pipeline"
    _assert_same(pred, pipe.predict(X[:50]))
    _assert_same(proba, pipe.predict_proba(X[:50]))


def test_sklearn_records_exactly_the_types_skops_must_trust(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    model = HistGradientBoostingClassifier(max_iter=10).fit(X[["age", "income"]], y)
    manifest = save_model(model, tmp_path / "m", input_example=X[["age", "income"]][:5])
    assert manifest.flavor_options["trusted_types"] == [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    ]
    _, pred = predict_in_fresh_process(tmp_path / "m", X[["age", "income"]])
    _assert_same(pred, model.predict(X[["age", "income"]]))


def test_sklearn_custom_estimator_from_an_importable_module(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    num = X[["age", "income"]]
    pipe = make_pipeline(Doubler(3.0), LogisticRegression(max_iter=500)).fit(num, y)
    manifest = save_model(pipe, tmp_path / "m", input_example=num[:5])
    assert manifest.flavor_options["serialization"] == "skops"
    assert "_models.Doubler" in manifest.flavor_options["trusted_types"]
    _, pred = predict_in_fresh_process(tmp_path / "m", num, extra_path=[HERE])
    _assert_same(pred, pipe.predict(num))


def test_sklearn_falls_back_to_cloudpickle_and_marks_trusted_only(
    tmp_path: Path, frame: Any
) -> None:
    X, y = frame
    num = X[["age", "income"]]
    pipe = make_pipeline(FunctionTransformer(lambda z: np.log1p(np.abs(z))), LogisticRegression())
    pipe.fit(num, y)
    manifest = save_model(pipe, tmp_path / "m", input_example=num[:5])
    assert manifest.flavor_options["serialization"] == "cloudpickle"
    assert manifest.trusted_only is True
    assert manifest.flavor_options["skops_fallback_reason"]
    assert any(r.startswith("cloudpickle==") for r in manifest.requirements)
    _, pred = predict_in_fresh_process(tmp_path / "m", num)
    _assert_same(pred, pipe.predict(num))


def test_skops_file_needing_other_types_is_refused(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    num = X[["age", "income"]]
    save_model(LogisticRegression().fit(num, y), tmp_path / "plain")
    save_model(HistGradientBoostingClassifier(max_iter=3).fit(num, y), tmp_path / "hgb")
    # Swap in a file that needs a type the manifest does not trust, and fix the hash so that only
    # the trusted-type list stands between it and loading.
    (tmp_path / "plain" / "model.skops").write_bytes(
        (tmp_path / "hgb" / "model.skops").read_bytes()
    )
    data = json.loads((tmp_path / "plain" / MANIFEST_NAME).read_text())
    data["files"]["model.skops"] = file_digest(tmp_path / "plain" / "model.skops")
    (tmp_path / "plain" / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="TreePredictor"):
        load_model_dir(tmp_path / "plain")


def test_sklearn_predict_method_that_does_not_exist(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    num = X[["age", "income"]]
    save_model(LogisticRegression().fit(num, y), tmp_path / "m", input_example=num[:3])
    model = load_model_dir(tmp_path / "m")
    with pytest.raises(InvalidInputError, match="no method 'transform'"):
        model.predict(num, method="transform")
    with pytest.raises(InvalidInputError, match="public"):
        model.predict(num, method="__class__")


# ------------------------------------------------------------------------------ XGBoost and LightGBM


def test_xgboost_sklearn_wrapper_round_trips_into_the_same_class(
    tmp_path: Path, frame: Any
) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = frame
    num = X[["age", "income"]]
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(num, y)
    manifest = save_model(model, tmp_path / "m", input_example=num[:5])
    assert manifest.flavor == "xgboost"
    assert manifest.flavor_options["model_class"] == "xgboost.sklearn:XGBClassifier"
    assert (tmp_path / "m" / "model.ubj").exists() and not manifest.trusted_only
    name, (pred, proba) = predict_in_fresh_process(
        tmp_path / "m", num, methods=(None, "predict_proba")
    )
    assert name == "XGBClassifier"
    _assert_same(pred, model.predict(num))
    _assert_same(proba, model.predict_proba(num))


def test_xgboost_booster_json_format(tmp_path: Path, frame: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = frame
    num = X[["age", "income"]]
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(num, y), num_boost_round=10)
    save_model(booster, tmp_path / "m", input_example=num[:5], flavor_options={"format": "json"})
    assert json.loads((tmp_path / "m" / "model.json").read_text())["learner"]
    name, pred = predict_in_fresh_process(tmp_path / "m", num)
    assert name == "Booster"
    _assert_same(pred, booster.predict(xgb.DMatrix(num)))


def test_xgboost_rejects_a_model_class_that_is_not_xgboost(tmp_path: Path, frame: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = frame
    num = X[["age", "income"]]
    save_model(xgb.XGBRegressor(n_estimators=2).fit(num, y), tmp_path / "m")
    data = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    data["flavor_options"]["model_class"] = "subprocess:Popen"
    (tmp_path / "m" / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match="refusing to instantiate"):
        load_model_dir(tmp_path / "m")


@pytest.mark.parametrize("labels", [None, ["churn", "stay"]])
def test_lightgbm_classifier_rebuilt_around_its_native_booster(
    tmp_path: Path, frame: Any, labels: list[str] | None
) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = frame
    num = X[["age", "income"]]
    target = y if labels is None else y.map(dict(enumerate(labels)))
    model = lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(num, target)
    manifest = save_model(model, tmp_path / "m", input_example=num[:5])
    assert manifest.flavor == "lightgbm" and manifest.flavor_options["kind"] == "sklearn"
    assert (tmp_path / "m" / "model.txt").read_text().startswith("tree")
    name, (pred, proba) = predict_in_fresh_process(
        tmp_path / "m", num, methods=(None, "predict_proba")
    )
    assert name == "LGBMClassifier"
    _assert_same(pred, model.predict(num))
    _assert_same(proba, model.predict_proba(num))


def test_lightgbm_regressor_and_booster(tmp_path: Path, frame: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, _ = frame
    num = X[["age", "income"]]
    target = num["income"] / 1000 + num["age"]
    reg = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(num, target)
    save_model(reg, tmp_path / "reg", input_example=num[:5])
    _, pred = predict_in_fresh_process(tmp_path / "reg", num)
    _assert_same(pred, reg.predict(num))
    booster = lgb.train({"verbose": -1}, lgb.Dataset(num, target), num_boost_round=5)
    save_model(booster, tmp_path / "b", input_example=num[:5])
    name, pred = predict_in_fresh_process(tmp_path / "b", num)
    assert name == "Booster"
    _assert_same(pred, booster.predict(num))


# ------------------------------------------------------------------------------------------ PyTorch


def test_pytorch_state_dict_with_module_class(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from _models import TinyNet

    torch.manual_seed(0)
    net = TinyNet(4, hidden=16)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    manifest = save_model(
        net,
        tmp_path / "m",
        input_example=x[:4],
        flavor_options={"init_kwargs": {"n_in": 4, "hidden": 16}},
    )
    opts = manifest.flavor_options
    assert opts["format"] == "state_dict" and opts["module_class"] == "_models:TinyNet"
    assert manifest.signature is not None
    assert manifest.signature.inputs.specs[0].shape == (-1, 4)
    assert manifest.signature.outputs is not None
    assert manifest.signature.outputs.specs[0].shape == (-1, 2)
    name, pred = predict_in_fresh_process(tmp_path / "m", x, extra_path=[HERE])
    assert name == "TinyNet"
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    _assert_same(pred, expected)


def test_pytorch_wrong_init_kwargs_fail_at_save(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from _models import TinyNet

    with pytest.raises(InvalidInputError, match="init_kwargs"):
        save_model(TinyNet(4), tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("how", ["script", "trace"])
def test_pytorch_torchscript(tmp_path: Path, how: str) -> None:
    torch = pytest.importorskip("torch")
    from _models import TinyNet

    torch.manual_seed(1)
    net = TinyNet(3)
    x = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    manifest = save_model(
        net,
        tmp_path / "m",
        input_example=x[:2],
        flavor_options={"format": "torchscript", "torchscript": how},
    )
    assert manifest.flavor_options["file"] == "model.torchscript.pt"
    _, pred = predict_in_fresh_process(tmp_path / "m", x)  # no module class needed
    with torch.no_grad():
        _assert_same(pred, net(torch.from_numpy(x)).numpy())


def test_pytorch_class_from_main_is_refused_with_advice(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x: Any) -> Any:
            return self.lin(x)

    Net.__module__ = "__main__"
    with pytest.raises(InvalidInputError, match="torchscript"):
        save_model(Net(), tmp_path / "m")


# ---------------------------------------------------------------------------------- python_function


def test_pyfunc_with_code_paths_loads_where_the_module_is_not_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "scorer_mod_x1.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Scorer:
                def __init__(self, w):
                    self.w = np.asarray(w)

                def predict(self, data):
                    return np.asarray(data) @ self.w
            """
        )
    )
    monkeypatch.syspath_prepend(str(src))
    import scorer_mod_x1

    model = scorer_mod_x1.Scorer([0.5, -1.0, 2.0])
    x = np.random.default_rng(2).normal(size=(20, 3))
    manifest = save_model(
        model, tmp_path / "pkg" / "m", input_example=x[:3], code_paths=[src / "scorer_mod_x1.py"]
    )
    assert manifest.flavor == "python_function" and manifest.trusted_only
    assert manifest.code_paths == ("code",)
    assert "code/scorer_mod_x1.py" in manifest.files
    name, pred = predict_in_fresh_process(tmp_path / "pkg" / "m", x)
    assert name == "Scorer"
    _assert_same(pred, model.predict(x))


def test_pyfunc_class_with_init_kwargs_and_plain_callable(tmp_path: Path) -> None:
    data = {"x": np.array([-1.0, 0.5, 2.0])}
    save_model(
        Threshold,
        tmp_path / "cls",
        input_example=data,
        flavor_options={"init_kwargs": {"cut": 1.0}},
    )
    name, pred = predict_in_fresh_process(tmp_path / "cls", data, extra_path=[HERE])
    assert name == "Threshold"
    _assert_same(pred, np.array([0, 0, 1]))

    save_model(lambda d: np.asarray(d) * 2, tmp_path / "fn", input_example=np.ones((2, 2)))
    _, pred = predict_in_fresh_process(tmp_path / "fn", np.arange(4.0).reshape(2, 2))
    _assert_same(pred, np.arange(4.0).reshape(2, 2) * 2)


class _Cache:
    def __init__(self) -> None:
        self.values: dict[str, float] = {"a": 1.0}
        self._lock = threading.Lock()


class _LockedModel:
    def __init__(self) -> None:
        self.weights = np.ones(3)
        self.cache = _Cache()

    def predict(self, data: Any) -> Any:
        return np.asarray(data) @ self.weights


def test_unserializable_model_names_the_attribute_and_type(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        save_model(_LockedModel(), tmp_path / "m")
    message = str(info.value)
    assert "`model.cache._lock`" in message and "`_thread.lock`" in message
    assert info.value.details == {"attribute": "model.cache._lock", "type": "_thread.lock"}
    assert list(tmp_path.iterdir()) == []  # no half-written package, no temp dir


def test_unserializable_sklearn_estimator_names_the_attribute(tmp_path: Path, frame: Any) -> None:
    X, y = frame
    num = X[["age", "income"]]
    model = LogisticRegression().fit(num, y)
    model.telemetry_ = {"lock": threading.RLock()}
    with pytest.raises(
        InvalidInputError, match=r"`model\.telemetry_\['lock'\]` is a `_thread\.RLock`"
    ):
        save_model(model, tmp_path / "m")


# --------------------------------------------------------------------------------------- detection


def test_detect_flavor() -> None:
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    assert detect_flavor(make_pipeline(StandardScaler(), LogisticRegression())) == "sklearn"
    assert detect_flavor(Doubler()) == "sklearn"
    assert detect_flavor(xgb.XGBClassifier()) == "xgboost"
    assert detect_flavor(lgb.LGBMRegressor()) == "lightgbm"
    assert detect_flavor(Threshold()) == "python_function"
    assert detect_flavor(Threshold) == "python_function"
    with pytest.raises(InvalidInputError, match="flavor="):
        detect_flavor(object())


def test_detect_flavor_torch() -> None:
    pytest.importorskip("torch")
    from _models import TinyNet

    assert detect_flavor(TinyNet(2)) == "pytorch"
