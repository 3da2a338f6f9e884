"""What the registry's load tests share: data, a registry with two versions, file helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mloop
from mloop.config import Settings
from mloop.registry import Registry, _package, _verified
from mloop.store._open import clear_store_cache


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    _verified.clear()
    yield
    _verified.clear()


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return X, (X["a"] - X["b"] > 0).astype(int)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packages count as settled at once (the racy window is for timestamps coarser than ours)."""
    monkeypatch.setattr(_verified, "RACY_NS", 0)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the loader hashes, in order."""
    names: list[str] = []
    real = _package.file_digest

    def counting(file: Path, like: str | None = None) -> str:
        names.append(Path(file).name)
        return real(file, like)

    monkeypatch.setattr(_package, "file_digest", counting)
    return names


@pytest.fixture
def registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: tuple[pd.DataFrame, pd.Series]
) -> Iterator[Callable[[], Registry]]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    settings = Settings.from_env(flush_interval_s=0.05)
    X, y = data
    for c in (0.1, 1.0):
        with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y)
            mloop.log_model(model, "churn", run=run, input_example=X[:5])
    yield lambda: Registry(settings=settings)
    clear_store_cache()
