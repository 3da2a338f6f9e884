"""Warm loads: what an earlier load verified is reused only while the package is unchanged on disk."""

from __future__ import annotations

import hashlib
import os
import time
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
from mloop.errors import NotFoundError
from mloop.registry import Registry, _package, _verified
from mloop.registry._package import ModelIntegrityError, load_model_dir, save_model
from mloop.store._open import clear_store_cache


@pytest.fixture(autouse=True)
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
def package(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]) -> Path:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    manifest = save_model(model, tmp_path / "m", input_example=X[:5])
    assert manifest.flavor_options["serialization"] == "skops"
    return tmp_path / "m"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packages count as settled at once (the racy window is for timestamps coarser than ours)."""
    monkeypatch.setattr(_verified, "RACY_NS", 0)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the loader hashes, in order."""
    names: list[str] = []
    real = _package.sha256_file

    def counting(file: Path) -> str:
        names.append(Path(file).name)
        return real(file)

    monkeypatch.setattr(_package, "sha256_file", counting)
    return names


def _after_a_clock_tick() -> None:
    # File timestamps come from a coarse kernel clock (a few ms): let it move on, so the change
    # below gets a ctime of its own.
    time.sleep(0.05)


def _flip_a_byte_keeping_size_and_mtime(file: Path) -> None:
    before = file.stat()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_warm_load_of_an_unchanged_package_hashes_nothing(
    package: Path, data: tuple[pd.DataFrame, pd.Series], settled: None, hashed: list[str]
) -> None:
    X, _ = data
    first = load_model_dir(package)
    assert sorted(hashed) == ["input_example.parquet", "model.skops", "requirements.txt"]
    hashed.clear()
    second = load_model_dir(package)
    assert hashed == []
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


def test_a_file_changed_after_a_warm_load_is_refused(
    package: Path, data: tuple[pd.DataFrame, pd.Series], settled: None, hashed: list[str]
) -> None:
    load_model_dir(package)
    load_model_dir(package)  # warm: verified by stat
    assert "model.skops" not in hashed[3:]
    _after_a_clock_tick()
    # same size, mtime put back: only the ctime (which utime cannot set) tells
    _flip_a_byte_keeping_size_and_mtime(package / "model.skops")
    with pytest.raises(ModelIntegrityError, match=r"'model\.skops' failed its integrity check"):
        load_model_dir(package)
    with pytest.raises(ModelIntegrityError):  # and stays refused
        load_model_dir(package)


@pytest.mark.parametrize("change", ["append", "replace", "remove", "add"])
def test_every_kind_of_change_after_a_warm_load_is_refused(
    package: Path, settled: None, change: str
) -> None:
    load_model_dir(package)
    load_model_dir(package)
    _after_a_clock_tick()
    victim = package / "requirements.txt"
    if change == "append":
        with open(victim, "ab") as fh:
            fh.write(b"evil==1\n")
    elif change == "replace":  # a new file renamed over the old one: another inode
        other = package.parent / "other.txt"
        other.write_bytes(victim.read_bytes().upper())
        os.replace(other, victim)
    elif change == "remove":
        victim.unlink()
    else:
        (package / "extra.py").write_text("import os\n")
    match = {"remove": "missing", "add": "not listed"}.get(change, "failed its integrity check")
    with pytest.raises(ModelIntegrityError, match=match):
        load_model_dir(package)


def test_a_warm_load_checks_the_expected_manifest_digest(package: Path, settled: None) -> None:
    digest = hashlib.sha256((package / "MLOOP_MODEL.json").read_bytes()).hexdigest()
    load_model_dir(package, manifest_sha256=digest)
    with pytest.raises(ModelIntegrityError, match=r"MLOOP_MODEL\.json failed its integrity check"):
        load_model_dir(package, manifest_sha256="0" * 64)
    load_model_dir(package, manifest_sha256=digest)


def test_a_package_changed_moments_before_it_was_verified_is_hashed_again(
    package: Path, hashed: list[str]
) -> None:
    load_model_dir(package)  # the package was written just now: its stat is not trusted yet
    hashed.clear()
    load_model_dir(package)
    assert sorted(hashed) == ["input_example.parquet", "model.skops", "requirements.txt"]


def test_warm_loads_hand_out_independent_models(
    package: Path, data: tuple[pd.DataFrame, pd.Series], settled: None
) -> None:
    X, _ = data
    first = load_model_dir(package)
    expected = first.predict(X)
    second = load_model_dir(package)
    assert second.raw is not first.raw
    first.raw[-1].coef_[:] = 0.0  # the caller's copy is theirs to change
    first.raw[-1].intercept_[:] = 5.0
    np.testing.assert_array_equal(second.predict(X), expected)
    np.testing.assert_array_equal(load_model_dir(package).predict(X), expected)


def test_kept_models_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    class Copying:
        def copy_loaded(self, raw: object, options: object) -> object:
            return [raw]

    kept = _verified.LoadedModels(max_model_bytes=10, max_total_bytes=25)
    fl = Copying()
    assert not kept.keep("big", fl, {}, "x", 11)  # over the per-model bound
    assert kept.keep("a", fl, {}, "A", 10) and kept.keep("b", fl, {}, "B", 10)
    assert kept.copy("a", fl, {}) == [["A"]]  # a used last...
    assert kept.keep("c", fl, {}, "C", 10)  # ...so b, least recently used, makes room
    assert kept.copy("b", fl, {}) is None and len(kept) == 2
    assert not kept.keep("d", object(), {}, "D", 1)  # a flavor that cannot copy keeps nothing


def test_a_pickled_model_is_loaded_from_its_file_every_time(
    tmp_path: Path, data: tuple[pd.DataFrame, pd.Series], settled: None
) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    save_model(model, tmp_path / "p", flavor_options={"serialization": "cloudpickle"})
    load_model_dir(tmp_path / "p")
    assert len(_verified.loaded_models) == 0
    load_model_dir(tmp_path / "p")
    assert len(_verified.loaded_models) == 0


def test_a_missing_package_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"MLOOP_MODEL\.json is missing"):
        load_model_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"MLOOP_MODEL\.json is missing"):
        load_model_dir(tmp_path / "empty")


# ------------------------------------------------------------------------- through the registry


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


def test_a_registry_load_after_a_cached_file_changed_is_refused(
    registry: Callable[[], Registry], data: tuple[pd.DataFrame, pd.Series], settled: None
) -> None:
    X, _ = data
    reg = registry()
    reg.set_alias("churn", "champion", 2)
    expected = reg.load("models:/churn@champion").predict(X)
    np.testing.assert_array_equal(reg.load("models:/churn@champion").predict(X), expected)
    _after_a_clock_tick()
    path = reg.download("models:/churn@champion")
    _flip_a_byte_keeping_size_and_mtime(path / "model.skops")
    with pytest.raises(ModelIntegrityError, match=r"model\.skops"):
        reg.load("models:/churn@champion")
    with pytest.raises(ModelIntegrityError, match=r"model\.skops"):
        registry().load("models:/churn/2")  # another Registry, same process and cache folder


def test_a_moved_alias_loads_the_version_it_now_names(
    registry: Callable[[], Registry], settled: None
) -> None:
    reg = registry()
    want = {v: reg.load(f"models:/churn/{v}").raw[-1].C for v in (1, 2)}
    assert want == {1: 0.1, 2: 1.0}
    for v in (1, 2, 1):
        reg.set_alias("churn", "champion", v)
        loaded = reg.load("models:/churn@champion")
        assert loaded.raw[-1].get_params()["C"] == want[v]


# ------------------------------------------------------------------- cold loads (alias just moved)


def _package_dir(reg: Registry, uri: str) -> Path:
    return reg.download(uri)


def _blob(reg: Registry, sha: str) -> Path:
    """The file of blob ``sha`` in the registry's local artifact folder."""
    found = list((Path(reg.settings.home) / "artifacts").rglob(sha))
    assert len(found) == 1, found
    return found[0]


def test_a_cold_load_links_the_local_blobs_and_lists_nothing(
    registry: Callable[[], Registry],
    data: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, _ = data
    reg = registry()
    mv = reg.get_version("churn", 2)
    listed: list[str] = []
    real = type(reg.store).list_artifacts
    monkeypatch.setattr(
        type(reg.store),
        "list_artifacts",
        lambda self, run_id, **kw: listed.append(run_id) or real(self, run_id, **kw),
    )
    loaded = reg.load("models:/churn/2")
    assert listed == []  # the version's record names its files and their hashes
    np.testing.assert_array_equal(loaded.predict(X), registry().load("models:/churn/2").predict(X))
    path = _package_dir(reg, "models:/churn/2")
    files = {**mv.manifest["files"], "MLOOP_MODEL.json": mv.manifest["manifest_sha256"]}
    assert sorted(p.name for p in path.iterdir()) == sorted(files)
    for rel, sha in files.items():
        blob = _blob(reg, sha)
        cached = path / rel
        assert os.path.samefile(blob, cached)  # one inode: a link, not a copy
        assert cached.stat().st_mode & 0o222 == 0  # read-only, so a write through it fails
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha


def test_a_cold_load_copies_when_the_file_system_refuses_a_link(
    registry: Callable[[], Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry()

    def refuse(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    loaded = reg.load("models:/churn/1")
    assert loaded.raw[-1].C == 0.1
    sha = reg.get_version("churn", 1).manifest["files"]["model.skops"]
    blob = _blob(reg, sha)
    assert not os.path.samefile(blob, _package_dir(reg, "models:/churn/1") / "model.skops")


def test_a_cold_load_of_a_corrupted_blob_is_refused_and_caches_nothing(
    registry: Callable[[], Registry],
) -> None:
    reg = registry()
    sha = reg.get_version("churn", 2).manifest["files"]["model.skops"]
    blob = _blob(reg, sha)
    _flip_a_byte_keeping_size_and_mtime(blob)
    with pytest.raises(mloop.artifacts.IntegrityError, match=sha):
        reg.load("models:/churn/2")
    cache = Path(reg.settings.home) / "cache" / "models"
    assert [p for p in cache.iterdir()] == []  # nothing half-made is left to be loaded later


def test_a_version_record_naming_other_files_is_refused_at_load(
    registry: Callable[[], Registry],
) -> None:
    import dataclasses

    reg = registry()
    mv1, mv2 = reg.get_version("churn", 1), reg.get_version("churn", 2)
    # The record of version 2, but pointing its model file at version 1's (a real blob).
    files = {**mv2.manifest["files"], "model.skops": mv1.manifest["files"]["model.skops"]}
    forged = dataclasses.replace(mv2, manifest={**mv2.manifest, "files": files})
    path = reg.download(forged)
    with pytest.raises(ModelIntegrityError, match=r"model\.skops"):
        load_model_dir(path, manifest_sha256=mv2.manifest["manifest_sha256"])
