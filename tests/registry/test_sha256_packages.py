"""Models saved and registered by mloop 0.1, whose packages and blobs are named by SHA-256, still
load, verified with SHA-256 file by file, beside the BLAKE3 names of everything registered since."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop import _digest
from mloop.config import Settings
from mloop.registry import Registry
from mloop.registry._package import (
    MANIFEST_NAME,
    ModelIntegrityError,
    load_model_dir,
    save_model,
)
from mloop.store._open import clear_store_cache

pytestmark = pytest.mark.usefixtures("fresh_caches")


def _as_in_0_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name new content by bare SHA-256, as mloop 0.1 did (the spelling says the algorithm)."""
    monkeypatch.setattr(_digest, "_blake3", hashlib.sha256)
    monkeypatch.setattr(_digest, "BLAKE3_PREFIX", "")


@pytest.fixture
def old_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: tuple[pd.DataFrame, pd.Series]
) -> Iterator[Registry]:
    """A store where version 1 was registered by 0.1 and version 2 by this version."""
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    settings = Settings.from_env(flush_interval_s=0.05)
    X, y = data
    with monkeypatch.context() as old:
        _as_in_0_1(old)
        with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
            mloop.log_model(LogisticRegression(C=0.1).fit(X, y), "churn", run=run)
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
        mloop.log_model(LogisticRegression(C=1.0).fit(X, y), "churn", run=run)
    yield Registry(settings=settings)
    clear_store_cache()


def _blob(reg: Registry, digest: str) -> Path:
    (found,) = (Path(reg.settings.home) / "artifacts").rglob(digest)
    return found


def test_a_version_registered_by_0_1_loads_beside_a_new_one(
    old_registry: Registry, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = data
    old, new = old_registry.get_version("churn", 1), old_registry.get_version("churn", 2)
    assert all(not d.startswith("blake3-") for d in old.manifest["files"].values())
    assert all(d.startswith("blake3-") for d in new.manifest["files"].values())
    assert (
        old.manifest["manifest_sha256"]
        == hashlib.sha256(
            _blob(old_registry, old.manifest["manifest_sha256"]).read_bytes()
        ).hexdigest()
    )
    for version, c in [(1, 0.1), (2, 1.0)]:
        loaded = old_registry.load(f"models:/churn/{version}")
        assert c == loaded.raw.C
        assert loaded.predict(X[:3]).shape == (3,)
        assert c == load_model_dir(loaded.path).raw.C  # the cache folder verifies too


@pytest.mark.parametrize("which", ["model file", "manifest"])
def test_a_damaged_0_1_blob_is_refused(old_registry: Registry, which: str) -> None:
    record = old_registry.get_version("churn", 1).manifest
    digest = (
        record["manifest_sha256"] if which == "manifest" else next(iter(record["files"].values()))
    )
    blob = _blob(old_registry, digest)
    blob.chmod(0o644)
    body = bytearray(blob.read_bytes())
    body[len(body) // 2] ^= 1
    blob.write_bytes(bytes(body))
    with pytest.raises(ModelIntegrityError, match=digest):
        old_registry.load("models:/churn/1")


def test_a_package_folder_saved_by_0_1_is_verified_with_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    with monkeypatch.context() as old:
        _as_in_0_1(old)
        save_model(model, tmp_path / "m")
    path = tmp_path / "m"
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    for rel, digest in manifest["files"].items():
        assert digest == hashlib.sha256((path / rel).read_bytes()).hexdigest()
    mine = hashlib.sha256((path / MANIFEST_NAME).read_bytes()).hexdigest()
    loaded = load_model_dir(path, manifest_sha256=mine)
    assert np.array_equal(np.asarray(loaded.predict(X)), model.predict(X))
    victim = next(p for p in path.iterdir() if p.name != MANIFEST_NAME and p.is_file())
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(
        ModelIntegrityError, match=r"expected digest [0-9a-f]{64}, got [0-9a-f]{64}"
    ):
        load_model_dir(path, manifest_sha256=mine)
