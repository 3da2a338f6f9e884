from __future__ import annotations

import math
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import mloop.tracking.integrations as integrations
from mloop.errors import InvalidInputError, MloopError
from mloop.tracking.integrations import (
    TRUNCATION_MARKER,
    MetricsCallback,
    MissingDependencyError,
    keras_callback,
    lightning_callback,
    log_sklearn,
    sklearn_params,
    xgboost_callback,
)

sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin, clone  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402


class FakeRun:
    """Records what an integration does to a run, enforcing the Run contract it relies on."""

    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, float], int | None]] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.summary: dict[str, Any] = {}

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            assert isinstance(key, str) and key
            assert type(value) is float, f"{key}={value!r} is {type(value).__name__}, not float"
        assert step is None or type(step) is int
        self.logged.append((dict(metrics), step))

    def log_params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            value = str(value)
            assert len(value) <= 6000
            if key in self.params and self.params[key] != value:
                raise AssertionError(f"param {key} re-logged with another value")
            self.params[key] = value

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    @property
    def metrics(self) -> dict[str, float]:
        merged: dict[str, float] = {}
        for metrics, _ in self.logged:
            merged.update(metrics)
        return merged


@pytest.fixture
def run() -> FakeRun:
    return FakeRun()


def test_exported_members() -> None:
    assert sorted(integrations.__all__) == [
        "MAX_PARAM_VALUE_LENGTH",
        "MetricsCallback",
        "MissingDependencyError",
        "TRUNCATION_MARKER",
        "keras_callback",
        "lightning_callback",
        "log_sklearn",
        "sklearn_params",
        "xgboost_callback",
    ]


@pytest.mark.parametrize("module", ["callbacks", "sklearn", "_optional"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"mloop.tracking.integrations.{module}")
    result = doctest.testmod(mod)
    assert result.failed == 0


def test_importing_integrations_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, mloop.tracking.integrations; "
        "print(sorted(m for m in ('sklearn', 'xgboost', 'keras', 'lightning', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- scikit-learn ------------------------------------------------------------------------------


@pytest.fixture
def binary_data() -> tuple[Any, ...]:
    X, y = load_breast_cancer(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0, stratify=y))


def test_binary_classifier_pipeline(run: FakeRun, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
    fitted, scores = log_sklearn(run, pipe, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va)

    assert fitted is pipe
    proba = pipe.predict_proba(X_va)[:, 1]
    pred = pipe.predict(X_va)
    expected = {
        "val_accuracy": accuracy_score(y_va, pred),
        "val_f1": f1_score(y_va, pred, average="weighted"),
        "val_roc_auc": roc_auc_score(y_va, proba),
    }
    assert scores == pytest.approx(expected, rel=1e-12)
    assert 0.9 < scores["val_roc_auc"] <= 1.0
    assert run.metrics == {**scores, "fit_time_s": run.metrics["fit_time_s"]}
    assert 0.0 < run.metrics["fit_time_s"] < 60.0
    assert run.summary == run.metrics
    assert len(run.logged) == 1 and run.logged[0][1] is None

    # Params: sklearn's nested names, estimators by class name, values as strings.
    assert run.params["logisticregression__C"] == "0.5"
    assert run.params["logisticregression__max_iter"] == "1000"
    assert run.params["standardscaler__with_mean"] == "True"
    assert run.params["logisticregression"] == "LogisticRegression"
    assert run.params["steps"] == (
        "[('standardscaler', StandardScaler), ('logisticregression', LogisticRegression)]"
    )
    assert run.params["memory"] == "None"
    assert set(run.params) == set(pipe.get_params(deep=True))
    assert run.tags == {
        "estimator_class": "sklearn.pipeline.Pipeline",
        "estimator_name": "Pipeline",
        "sklearn_version": sklearn.__version__,
    }


def test_multiclass_classifier(run: FakeRun) -> None:
    X, y = load_iris(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.4, random_state=1, stratify=y)
    model = RandomForestClassifier(n_estimators=20, max_depth=2, random_state=0)
    _, scores = log_sklearn(run, model, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va)
    pred = model.predict(X_va)
    assert scores == pytest.approx(
        {
            "val_accuracy": accuracy_score(y_va, pred),
            "val_f1": f1_score(y_va, pred, average="weighted"),
            "val_roc_auc": roc_auc_score(
                y_va, model.predict_proba(X_va), multi_class="ovr", average="weighted"
            ),
        },
        rel=1e-12,
    )
    assert run.params["n_estimators"] == "20"
    assert run.tags["estimator_class"] == "sklearn.ensemble._forest.RandomForestClassifier"


def test_string_labels_and_no_predict_proba(run: FakeRun, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    names = np.array(["benign", "malignant"])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    _, scores = log_sklearn(
        run, model, X_train=X_tr, y_train=names[y_tr], X_val=X_va, y_val=names[y_va]
    )
    # positive class is classes_[1] == "malignant", as roc_auc_score takes it
    assert scores["val_roc_auc"] == pytest.approx(
        roc_auc_score(y_va, model.predict_proba(X_va)[:, 1]), rel=1e-12
    )

    svc_run = FakeRun()
    svc = make_pipeline(StandardScaler(), LinearSVC())
    _, scores = log_sklearn(svc_run, svc, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va)
    assert set(scores) == {"val_accuracy", "val_f1"}  # no predict_proba -> no roc_auc


def test_single_class_validation_skips_auc(run: FakeRun, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    only_ones = y_va == 1
    _, scores = log_sklearn(
        run,
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        X_train=X_tr,
        y_train=y_tr,
        X_val=X_va[only_ones],
        y_val=y_va[only_ones],
    )
    assert set(scores) == {"val_accuracy", "val_f1"}


def test_regressor(run: FakeRun) -> None:
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.3, random_state=2)
    model, scores = log_sklearn(
        run, Ridge(alpha=0.3), X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va
    )
    pred = model.predict(X_va)
    assert scores == pytest.approx(
        {
            "val_r2": r2_score(y_va, pred),
            "val_mae": mean_absolute_error(y_va, pred),
            "val_rmse": float(np.sqrt(np.mean((y_va - pred) ** 2))),
        },
        rel=1e-12,
    )
    assert scores["val_rmse"] == pytest.approx(math.sqrt(mean_squared_error(y_va, pred)))
    assert run.params == {
        "alpha": "0.3",
        "copy_X": "True",
        "fit_intercept": "True",
        "max_iter": "None",
        "positive": "False",
        "random_state": "None",
        "solver": "auto",
        "tol": "0.0001",
    }


def test_custom_scoring(run: FakeRun, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    def error_rate(estimator: Any, X: Any, y: Any) -> float:
        return float(np.mean(estimator.predict(X) != y))

    _, scores = log_sklearn(
        run,
        model,
        X_train=X_tr,
        y_train=y_tr,
        X_val=X_va,
        y_val=y_va,
        scoring={"bacc": "balanced_accuracy", "err": error_rate, "nll": "neg_log_loss"},
    )
    pred = model.predict(X_va)
    assert set(scores) == {"val_bacc", "val_err", "val_nll"}
    assert scores["val_bacc"] == pytest.approx(balanced_accuracy_score(y_va, pred))
    assert scores["val_err"] == pytest.approx(1 - accuracy_score(y_va, pred))
    assert scores["val_nll"] < 0  # sklearn's sign convention is kept

    list_run = FakeRun()
    _, scores = log_sklearn(
        list_run, model, fit=False, X_val=X_va, y_val=y_va, scoring=["accuracy", "f1"]
    )
    assert scores == pytest.approx(
        {"val_accuracy": accuracy_score(y_va, pred), "val_f1": f1_score(y_va, pred)}
    )
    assert "fit_time_s" not in list_run.metrics  # fit=False: nothing was fitted


def test_prefix_applies_to_every_key(run: FakeRun, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    _, scores = log_sklearn(
        run, model, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va, prefix="rf/"
    )
    assert set(scores) == {"rf/val_accuracy", "rf/val_f1", "rf/val_roc_auc"}
    assert set(run.metrics) == {*scores, "rf/fit_time_s"}
    assert set(run.summary) == set(run.metrics)
    assert all(k.startswith("rf/") for k in [*run.params, *run.tags])
    assert run.params["rf/n_estimators"] == "5"


def test_unsupervised_and_no_validation(run: FakeRun) -> None:
    X, _ = load_iris(return_X_y=True)
    model, scores = log_sklearn(run, KMeans(n_clusters=3, n_init=2, random_state=0), X_train=X)
    assert scores == {}
    assert set(run.metrics) == {"fit_time_s"}
    assert hasattr(model, "cluster_centers_")

    scored = FakeRun()
    _, scores = log_sklearn(scored, model, fit=False, X_val=X, y_val=np.zeros(len(X)))
    assert scores == {"val_score": pytest.approx(model.score(X))}


class _Noted(ClassifierMixin, BaseEstimator):
    def __init__(self, note: str = "", fn: Any = None) -> None:
        self.note = note
        self.fn = fn

    def fit(self, X: Any, y: Any) -> _Noted:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def _double(x: Any) -> Any:
    return 2 * x


def test_param_rendering_truncation_and_determinism(run: FakeRun) -> None:
    est = _Noted(note="x" * 10_000, fn=_double)
    params = sklearn_params(est)
    assert len(params["note"]) == 6000
    assert params["note"].endswith(TRUNCATION_MARKER)
    assert params["note"].startswith("x" * 5000)
    assert params["fn"] == f"{_double.__module__}._double"
    assert sklearn_params(_Noted(note="short"))["note"] == "short"  # no quotes at top level

    pipe = make_pipeline(FunctionTransformer(np.log1p), StandardScaler())
    first = sklearn_params(pipe)
    assert first["functiontransformer__func"] == "numpy.log1p"
    assert "0x" not in "".join(first.values())  # no memory addresses: re-logging matches
    assert sklearn_params(clone(pipe)) == first

    log_sklearn(run, est, X_train=np.zeros((4, 1)), y_train=[0, 1, 0, 1])
    assert run.params["note"] == params["note"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fit": True}, "X_train"),
        ({"fit": False, "X_val": np.zeros((2, 1))}, "X_val` and `y_val"),
        ({"fit": False, "y_val": [0, 1]}, "X_val` and `y_val"),
        ({"fit": False, "X_val": np.zeros((2, 1)), "y_val": [0, 1]}, "not fitted"),
        ({"fit": False, "scoring": "no_such_scorer"}, "unknown scikit-learn scorer"),
        ({"fit": False, "scoring": {"a": 3}}, "scorer name or a callable"),
        ({"fit": False, "scoring": []}, "empty"),
    ],
)
def test_bad_input(run: FakeRun, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        log_sklearn(run, LogisticRegression(), **kwargs)


def test_not_an_estimator(run: FakeRun) -> None:
    with pytest.raises(InvalidInputError, match="scikit-learn estimator"):
        log_sklearn(run, object(), fit=False)


def test_missing_sklearn(run: FakeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"pip install scikit-learn"):
        log_sklearn(run, LogisticRegression(), fit=False)
    assert run.params == {}


# -- generic callback --------------------------------------------------------------------------


def test_metrics_callback_plain_loop(run: FakeRun) -> None:
    cb = MetricsCallback(run, prefix="train/", log_every=3)
    logs_seen = []
    for step in range(8):
        logs = {"loss": 1.0 / (step + 1), "acc": np.float32(0.5)}
        logs_seen.append(dict(logs))
        returned = cb.on_step_end(step, logs)
        assert logs == logs_seen[-1]  # not mutated
        assert returned == ({} if step % 3 else {"train/loss": 1.0 / (step + 1), "train/acc": 0.5})
    assert [step for _, step in run.logged] == [0, 3, 6]
    assert run.logged[1][0] == {"train/loss": 0.25, "train/acc": 0.5}

    epochs = FakeRun()
    cb = MetricsCallback(epochs)
    for epoch in range(2):
        cb.on_epoch_end(epoch, {"val_loss": 0.1 * epoch})
    assert epochs.logged == [({"val_loss": 0.0}, 0), ({"val_loss": 0.1}, 1)]


def test_metrics_callback_value_conversion(run: FakeRun) -> None:
    cb = MetricsCallback(run)
    logged = cb.on_epoch_end(
        0,
        {
            "int": 3,
            "np_int": np.int64(4),
            "np_f16": np.float16(0.5),
            "zero_d": np.array(2.5),
            "one_elem": np.array([1.5]),
            "nan": float("nan"),
            "flag": True,
            "np_flag": np.bool_(True),
            "name": "adam",
            "vector": np.array([1.0, 2.0]),
            "list": [1.0],
            "none": None,
        },
    )
    assert set(logged) == {"int", "np_int", "np_f16", "zero_d", "one_elem", "nan"}
    assert logged["int"] == 3.0 and logged["zero_d"] == 2.5 and logged["one_elem"] == 1.5
    assert math.isnan(logged["nan"])
    assert cb.on_epoch_end(1, {"name": "sgd"}) == {}
    assert len(run.logged) == 1  # nothing numeric -> no empty log call
    assert cb.on_epoch_end(2, None) == {}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_metrics_callback_bad_log_every(run: FakeRun, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="log_every"):
        MetricsCallback(run, log_every=bad)


def test_metrics_callback_needs_a_run() -> None:
    with pytest.raises(InvalidInputError, match="run"):
        MetricsCallback(object())  # type: ignore[arg-type]


# -- framework adapters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "modules", "pip_name"),
    [
        (keras_callback, ["keras"], "keras"),
        (
            lightning_callback,
            ["lightning", "lightning.pytorch", "pytorch_lightning"],
            "lightning",
        ),
        (xgboost_callback, ["xgboost", "xgboost.callback"], "xgboost"),
    ],
)
def test_missing_framework_names_pip_package(
    run: FakeRun,
    monkeypatch: pytest.MonkeyPatch,
    factory: Any,
    modules: list[str],
    pip_name: str,
) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as info:
        factory(run)
    err = info.value
    assert isinstance(err, ImportError) and isinstance(err, MloopError)
    assert f"pip install {pip_name}" in str(err)
    assert factory.__name__ in str(err)
    assert err.details["pip"] == pip_name


@pytest.fixture
def fake_keras(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    keras = types.ModuleType("keras")
    callbacks = types.ModuleType("keras.callbacks")

    class Callback:
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            raise AssertionError("base method should be overridden")

    callbacks.Callback = Callback  # type: ignore[attr-defined]
    keras.callbacks = callbacks  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setitem(sys.modules, "keras.callbacks", callbacks)
    return keras


def test_keras_adapter(run: FakeRun, fake_keras: Any) -> None:
    cb = keras_callback(run, prefix="k/")
    assert isinstance(cb, fake_keras.callbacks.Callback)
    cb.on_epoch_end(0, {"loss": np.float32(0.75), "val_loss": 0.5})
    cb.on_epoch_end(1, None)
    assert run.logged == [({"k/loss": 0.75, "k/val_loss": 0.5}, 0)]


@pytest.fixture
def fake_lightning(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    pkg = types.ModuleType("lightning")
    pkg.__path__ = []
    pl = types.ModuleType("lightning.pytorch")

    class Callback:
        pass

    pl.Callback = Callback  # type: ignore[attr-defined]
    pkg.pytorch = pl  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lightning", pkg)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", pl)
    return pl


class _Trainer:
    def __init__(self) -> None:
        self.callback_metrics: dict[str, Any] = {}
        self.current_epoch = 0
        self.sanity_checking = False


class _Tensor:
    """Quacks like a 0-d torch tensor."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_lightning_adapter_logs_each_metric_once_per_epoch(
    run: FakeRun, fake_lightning: Any
) -> None:
    cb = lightning_callback(run)
    assert isinstance(cb, fake_lightning.Callback)
    trainer = _Trainer()

    trainer.sanity_checking = True
    cb.on_validation_epoch_start(trainer, None)
    trainer.callback_metrics = {"val_loss": _Tensor(9.0)}
    cb.on_validation_epoch_end(trainer, None)
    assert run.logged == []  # sanity check is not logged
    trainer.sanity_checking = False

    for epoch, (train_step, val, train_epoch) in enumerate([(0.9, 0.8, 0.85), (0.5, 0.45, 0.6)]):
        trainer.current_epoch = epoch
        trainer.callback_metrics["train_loss_step"] = _Tensor(train_step)
        cb.on_validation_epoch_start(trainer, None)
        trainer.callback_metrics["val_loss"] = _Tensor(val)
        cb.on_validation_epoch_end(trainer, None)
        trainer.callback_metrics["train_loss_epoch"] = _Tensor(train_epoch)
        cb.on_train_epoch_end(trainer, None)

    assert run.logged == [
        ({"val_loss": 0.8}, 0),
        ({"train_loss_step": 0.9, "train_loss_epoch": 0.85}, 0),
        ({"val_loss": 0.45}, 1),
        ({"train_loss_step": 0.5, "train_loss_epoch": 0.6}, 1),
    ]


def test_lightning_adapter_validate_only(run: FakeRun, fake_lightning: Any) -> None:
    cb = lightning_callback(run, prefix="eval/")
    trainer = _Trainer()
    cb.on_validation_epoch_start(trainer, None)
    trainer.callback_metrics = {"val_acc": _Tensor(0.9)}
    cb.on_validation_epoch_end(trainer, None)
    assert run.logged == [({"eval/val_acc": 0.9}, 0)]


@pytest.fixture
def xgb() -> Iterator[Any]:
    yield pytest.importorskip("xgboost")


def test_xgboost_adapter_train(run: FakeRun, xgb: Any, binary_data: tuple[Any, ...]) -> None:
    X_tr, X_va, y_tr, y_va = binary_data
    dtrain, dval = xgb.DMatrix(X_tr, label=y_tr), xgb.DMatrix(X_va, label=y_va)
    history: dict[str, Any] = {}
    xgb.train(
        {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "nthread": 1},
        dtrain,
        num_boost_round=6,
        evals=[(dtrain, "train"), (dval, "val")],
        evals_result=history,
        callbacks=[xgboost_callback(run, log_every=2)],
        verbose_eval=False,
    )
    assert [step for _, step in run.logged] == [0, 2, 4]
    for metrics, step in run.logged:
        assert metrics == {
            f"{data}-{metric}": pytest.approx(history[data][metric][step], rel=1e-12)
            for data in ("train", "val")
            for metric in ("logloss", "auc")
        }


def test_xgboost_adapter_sklearn_api_and_cv(run: FakeRun, xgb: Any) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = xgb.XGBRegressor(n_estimators=3, n_jobs=1, callbacks=[xgboost_callback(run)])
    model.fit(X, y, eval_set=[(X, y)], verbose=False)
    rmse = model.evals_result()["validation_0"]["rmse"]
    assert [m["validation_0-rmse"] for m, _ in run.logged] == pytest.approx(rmse, rel=1e-12)

    cv_run = FakeRun()
    cv = xgb.cv(
        {"objective": "reg:squarederror", "nthread": 1},
        xgb.DMatrix(X, label=y),
        num_boost_round=3,
        nfold=3,
        seed=0,
        callbacks=[xgboost_callback(cv_run)],
    )
    assert [step for _, step in cv_run.logged] == [0, 1, 2]
    last = cv_run.logged[-1][0]
    assert last["test-rmse"] == pytest.approx(cv["test-rmse-mean"].iloc[-1], rel=1e-9)
    assert last["test-rmse-std"] == pytest.approx(cv["test-rmse-std"].iloc[-1], rel=1e-9)


# -- end to end, with the real Run and store ---------------------------------------------------


def test_end_to_end_with_real_run(mloop_home: Any, binary_data: tuple[Any, ...]) -> None:
    import mloop
    from mloop.tracking._system import SystemMetricsSampler

    X_tr, X_va, y_tr, y_va = binary_data
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
    with mloop.start_run(project="e2e", system_metrics=False) as run:
        cb = MetricsCallback(run, prefix="train/")
        for epoch in range(3):
            cb.on_epoch_end(epoch, {"loss": np.float32(1.0 / (epoch + 1)), "phase": "fit"})
        _, scores = log_sklearn(run, model, X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va)
        with SystemMetricsSampler(run.log, interval_s=0.05):
            deadline = time.monotonic() + 10
            while run.step < 6 and time.monotonic() < deadline:
                time.sleep(0.01)
        run_id = run.id

    client = mloop.Client()
    stored = client.get_run(run_id)
    assert stored.status == "finished"
    assert stored.params["logisticregression__C"] == "0.5"
    assert stored.params["steps"].startswith("[('standardscaler', StandardScaler)")
    assert stored.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    latest = stored.latest_metrics
    for key, value in scores.items():
        assert latest[key] == pytest.approx(value, rel=1e-12)
    assert latest["fit_time_s"] > 0
    history = client.get_metric_history(run_id, "train/loss")
    assert list(history.step) == [0, 1, 2]
    assert list(history.value) == pytest.approx([1.0, 0.5, 1 / 3], rel=1e-6)
    assert "system/memory_percent" in latest and "system/cpu_percent" in latest
    for key, value in scores.items():
        points = client.get_metric_history(run_id, key)
        # run.log and run.summary both record the score; both land on the same step and value
        assert set(points.step.tolist()) == {3}
        assert points.value.tolist() == pytest.approx([value] * len(points.value), rel=1e-12)

    # The captured context the run store keeps: columns plus the context JSON.
    assert stored.host and stored.user is not None
    assert stored.context["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert stored.context["packages"]["scikit-learn"] == sklearn.__version__
