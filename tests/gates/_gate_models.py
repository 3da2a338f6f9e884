"""Real scikit-learn models on bundled datasets, logged and loaded through the registry, for the
budget and behavioural-test checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

import mloop
from mloop.config import Settings
from mloop.registry import Registry


@dataclass
class Logged:
    uri: str
    version: int
    model: Any  # PackagedModel


def settings_for(home: Path) -> Settings:
    return Settings.from_env({"MLOOP_HOME": str(home)}, flush_interval_s=0.05)


def log_and_load(settings: Settings, estimator: Any, X: pd.DataFrame, name: str) -> Logged:
    """Log ``estimator`` (already fitted) as a new version of ``name`` and load it by URI."""
    with mloop.start_run(project="gates", settings=settings, system_metrics=False) as run:
        mv = mloop.log_model(estimator, name, run=run, input_example=X.head(5))
    uri = f"models:/{name}/{mv.version}"
    return Logged(uri, int(mv.version), Registry(settings=settings).load(uri))


def breast_cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y
