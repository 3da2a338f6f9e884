"""Setup for ``bench/gates.py``: the data, the two models, the policy, and both registries.

Imported by ``bench/gates.py`` in the project's ``.venv`` and in ``bench/.venv-mlflow`` (its
``--worker mlflow-setup``): nothing but the standard library at import time, and nothing from mloop
on MLflow's side.
"""

from __future__ import annotations

import argparse
import pickle
import time
import warnings
from pathlib import Path
from typing import Any

MODEL = "gates-bench"
ALIAS = "champion"
TARGET = "label"
N_NUMERIC = 24
NUMERIC = [f"x{i:02d}" for i in range(N_NUMERIC)]
CATEGORICAL = ["region", "plan"]
MIN_GAIN = 0.005  # MLflow: the candidate must beat the baseline by this much (no test)

POLICY = """\
# bench/gates.py: the default checks plus thresholds and non-regression on three metrics
primary_metric: roc_auc
thresholds:
  - roc_auc >= 0.8
  - accuracy >= 0.7
  - log_loss: {{threshold: 0.6, greater_is_better: false}}
non_regression:
  metrics: [roc_auc, accuracy, log_loss]
  resamples: {resamples}
"""

# types MLflow's skops format wants trusted explicitly (mloop allow-lists them at save)
TRUSTED: dict[str, list[str] | None] = {
    "champion": None,
    "candidate": [
        "functools.partial",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils.validation.check_array",
    ],
}

# MLflow's names for the same metrics and thresholds (each also gets min_absolute_change=MIN_GAIN)
MLFLOW_THRESHOLDS = {
    "roc_auc": {"threshold": 0.8, "greater_is_better": True},
    "accuracy_score": {"threshold": 0.7, "greater_is_better": True},
    "log_loss": {"threshold": 0.6, "greater_is_better": False},
}


# ============================================================================================ data
def make_data(rows: int, seed: int) -> tuple[Any, Any]:
    """(train, holdout) DataFrames, ``rows`` each, with the label in ``label``."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2 * rows,
        n_features=N_NUMERIC,
        n_informative=12,
        n_redundant=4,
        n_clusters_per_class=3,
        flip_y=0.05,
        class_sep=0.8,
        random_state=seed,
    )
    frame = pd.DataFrame(X.astype(np.float64), columns=NUMERIC)
    rng = np.random.default_rng(seed)
    # categoricals carry signal: binned informative features, with noise
    region = np.digitize(X[:, 0] + 0.5 * rng.normal(size=len(X)), [-1.5, -1, -0.5, 0, 0.5, 1, 1.5])
    plan = (X[:, 1] > 0).astype(int) * 2 + (X[:, 2] + 0.5 * rng.normal(size=len(X)) > 0)
    frame["region"] = np.array([f"r{i}" for i in range(8)], dtype=object)[region]
    frame["plan"] = np.array(["basic", "plus", "pro", "team"], dtype=object)[plan]
    frame[TARGET] = y.astype(np.int64)
    return frame.iloc[:rows].reset_index(drop=True), frame.iloc[rows:].reset_index(drop=True)


def fit_models(train: Any, seed: int) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    X, y = train[NUMERIC + CATEGORICAL], train[TARGET]
    champion = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)]
        ),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    candidate = make_pipeline(
        ColumnTransformer(
            [("num", "passthrough", NUMERIC), ("cat", OrdinalEncoder(), CATEGORICAL)],
            verbose_feature_names_out=False,
        ),
        HistGradientBoostingClassifier(
            max_iter=200,
            categorical_features=[N_NUMERIC, N_NUMERIC + 1],
            early_stopping=False,
            random_state=seed,
        ),
    ).fit(X, y)
    return {"champion": champion, "candidate": candidate}


def write_workspace(root: Path, rows: int, seed: int, resamples: int) -> dict[str, Any]:
    """Data files, pickled models and the policy under ``root``; returns facts for the JSON."""
    t0 = time.perf_counter()
    train, holdout = make_data(rows, seed)
    t1 = time.perf_counter()
    models = fit_models(train, seed)
    t2 = time.perf_counter()
    train.to_parquet(root / "train.parquet", index=False)
    holdout.to_parquet(root / "holdout.parquet", index=False)
    with open(root / "models.pkl", "wb") as f:
        pickle.dump(models, f)
    (root / "mloop.yaml").write_text(POLICY.format(resamples=resamples))
    return {
        "rows": {"train": len(train), "holdout": len(holdout)},
        "columns": {"numeric": len(NUMERIC), "categorical": len(CATEGORICAL)},
        "positive_share": float(holdout[TARGET].mean()),
        "generate_s": t1 - t0,
        "fit_s": t2 - t1,
        "holdout_bytes": (root / "holdout.parquet").stat().st_size,
    }


def _features(frame: Any) -> Any:
    return frame[NUMERIC + CATEGORICAL]


# ============================================================================================ mloop
def setup_mloop(root: Path) -> dict[str, Any]:
    """Both models logged (with the training set) in a fresh mloop home; the first is champion."""
    import pandas as pd

    import mloop
    from mloop.config import Settings
    from mloop.registry import Registry

    settings = Settings.from_env({"MLOOP_HOME": str(root / "mloop-home")})
    train = pd.read_parquet(root / "train.parquet")
    with open(root / "models.pkl", "rb") as f:
        models = pickle.load(f)
    versions = {}
    for role in ("champion", "candidate"):
        with mloop.start_run(project=MODEL, settings=settings, system_metrics=False) as run:
            run.log_dataset(train, name="train")
            mv = mloop.log_model(
                models[role], MODEL, run=run, input_example=_features(train).head(5)
            )
        versions[role] = int(mv.version)
    Registry(settings=settings).set_alias(MODEL, ALIAS, versions["champion"])
    return versions


# ============================================================================================ MLflow
def mlflow_env(root: Path, *, create: bool = False) -> None:
    """MLflow on a SQLite store in the workspace, its artifacts in a local folder there."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / 'mlflow.db'}")
    if create:
        mlflow.create_experiment(MODEL, artifact_location=(root / "mlartifacts").as_uri())
    mlflow.set_experiment(MODEL)


def worker_mlflow_setup(args: argparse.Namespace) -> dict[str, Any]:
    """In bench/.venv-mlflow: the pickled estimators logged and registered; champion alias."""
    import logging

    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    root = Path(args.workdir)
    mlflow_env(root, create=True)
    train = pd.read_parquet(root / "train.parquet")
    with open(root / "models.pkl", "rb") as f:
        models = pickle.load(f)
    versions = {}
    for role in ("champion", "candidate"):
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.sklearn.log_model(
                models[role],
                name="model",
                input_example=_features(train).head(5),
                registered_model_name=MODEL,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                # MLflow's default format (skops) refuses these unless trusted; the benchmark
                # made the files itself
                skops_trusted_types=TRUSTED[role],
            )
        versions[role] = int(info.registered_model_version)
    MlflowClient().set_registered_model_alias(MODEL, ALIAS, str(versions["champion"]))
    return {"versions": versions, "mlflow": mlflow.__version__, "sklearn": sklearn.__version__}
