"""A registry with real models on bundled datasets, for the check and promotion tests: a weak
champion, a clearly better candidate, an indistinguishable twin, schema-breaking ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import mloop
from mloop.config import Settings
from mloop.registry import Registry


class FlipOnLarge:
    """Wraps a classifier and gets every row with ``mean_radius > cut`` wrong (a slice bug)."""

    def __init__(self, inner: Any, cut: float) -> None:
        self.inner, self.cut = inner, cut
        self.classes_ = inner.classes_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        out = self.inner.predict(X)
        return np.where(X["mean_radius"].to_numpy() > self.cut, 1 - out, out)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.inner.predict_proba(X)
        large = X["mean_radius"].to_numpy() > self.cut
        return np.where(large[:, None], p[:, ::-1], p)


@dataclass
class Gallery:
    home: Path
    settings: Settings
    holdout: pd.DataFrame  # breast cancer, with "label"
    versions: dict[str, int]  # role -> version of model "cancer"
    wine_holdout: pd.DataFrame
    diabetes_holdout: pd.DataFrame

    @property
    def registry(self) -> Registry:
        return Registry(settings=self.settings)

    def uri(self, role: str, model: str = "cancer") -> str:
        return f"models:/{model}/{self.versions[role if model == 'cancer' else f'{model}:{role}']}"


def _log(settings: Settings, model: Any, name: str, train: pd.DataFrame, cols: list[str]) -> int:
    with mloop.start_run(project="gates", settings=settings, system_metrics=False) as run:
        run.log_dataset(train, name="train")
        mv = mloop.log_model(model, name, run=run, input_example=train[cols].head(5))
    return int(mv.version)


def _split(
    X: pd.DataFrame, y: pd.Series, n_train: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    X = X.rename(columns=lambda c: c.replace(" ", "_").replace("/", "_"))
    idx = np.random.default_rng(seed).permutation(len(X))
    frame = X.assign(label=y.to_numpy())
    return (
        frame.iloc[idx[:n_train]].reset_index(drop=True),
        frame.iloc[idx[n_train:]].reset_index(drop=True),
    )


def build_gallery(home: Path) -> Gallery:
    settings = Settings.from_env({"MLOOP_HOME": str(home)}, flush_interval_s=0.05)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    train, hold = _split(X, y, 300, 0)
    cols = [c for c in train.columns if c != "label"]
    Xt, yt = train[cols], train["label"]

    def logreg(C: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(Xt, yt)

    v: dict[str, int] = {}
    v["stump"] = _log(
        settings,
        DecisionTreeClassifier(max_depth=1, random_state=0).fit(Xt, yt),
        "cancer",
        train,
        cols,
    )
    v["logreg"] = _log(settings, logreg(1.0), "cancer", train, cols)
    v["twin"] = _log(settings, logreg(0.9), "cancer", train, cols)
    narrow = ["mean_radius", "mean_texture", "mean_smoothness"]
    v["narrow"] = _log(
        settings,
        make_pipeline(StandardScaler(), LogisticRegression()).fit(Xt[narrow], yt),
        "cancer",
        train,
        narrow,
    )
    extra = train.assign(new_feature=np.arange(len(train), dtype=float))
    wide = [*cols, "new_feature"]
    v["needs_extra"] = _log(
        settings,
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(extra[wide], yt),
        "cancer",
        extra,
        wide,
    )
    cut = float(np.quantile(train["mean_radius"], 0.8))
    v["slice_bug"] = _log(settings, FlipOnLarge(logreg(1.0), cut), "cancer", train, cols)

    # multiclass (accuracy, McNemar) and regression (RMSE, bootstrap)
    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    wtrain, whold = _split(Xw, yw, 90, 1)
    wcols = [c for c in wtrain.columns if c != "label"]
    v["wine:stump"] = _log(
        settings,
        DecisionTreeClassifier(max_depth=1, random_state=0).fit(wtrain[wcols], wtrain["label"]),
        "wine",
        wtrain,
        wcols,
    )
    v["wine:logreg"] = _log(
        settings,
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
            wtrain[wcols], wtrain["label"]
        ),
        "wine",
        wtrain,
        wcols,
    )
    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    dtrain, dhold = _split(Xd, yd, 200, 2)
    dcols = [c for c in dtrain.columns if c != "label"]
    v["diabetes:stump"] = _log(
        settings,
        DecisionTreeRegressor(max_depth=1).fit(dtrain[dcols], dtrain["label"]),
        "diabetes",
        dtrain,
        dcols,
    )
    v["diabetes:ridge"] = _log(
        settings, Ridge(alpha=0.1).fit(dtrain[dcols], dtrain["label"]), "diabetes", dtrain, dcols
    )
    return Gallery(home, settings, hold, v, whold, dhold)
