"""Warm loads: what an earlier load verified is reused only while the package is unchanged on disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _files import after_a_clock_tick, flip_a_byte_keeping_size_and_mtime
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _blake3 import b3
from mloop.errors import NotFoundError
from mloop.registry import Registry, _verified
from mloop.registry._package import ModelIntegrityError, load_model_dir, save_model

pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def package(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]) -> Path:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    manifest = save_model(model, tmp_path / "m", input_example=X[:5])
    assert manifest.flavor_options["serialization"] == "skops"
    return tmp_path / "m"


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
    after_a_clock_tick()
    # same size, mtime put back: only the ctime (which utime cannot set) tells
    flip_a_byte_keeping_size_and_mtime(package / "model.skops")
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
    after_a_clock_tick()
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
    digest = b3((package / "MLOOP_MODEL.json").read_bytes())
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


def test_a_registry_load_after_a_cached_file_changed_is_refused(
    registry: Callable[[], Registry], data: tuple[pd.DataFrame, pd.Series], settled: None
) -> None:
    X, _ = data
    reg = registry()
    reg.set_alias("churn", "champion", 2)
    expected = reg.load("models:/churn@champion").predict(X)
    np.testing.assert_array_equal(reg.load("models:/churn@champion").predict(X), expected)
    after_a_clock_tick()
    path = reg.download("models:/churn@champion")
    flip_a_byte_keeping_size_and_mtime(path / "model.skops")
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
