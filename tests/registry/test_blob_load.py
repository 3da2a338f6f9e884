"""Cold loads (the alias just moved): from a local store, a registered package is read where its
blobs are, with every check a folder gets, and nothing is written; elsewhere, through the cache."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _files import after_a_clock_tick, flip_a_byte_keeping_size_and_mtime
from sklearn.linear_model import LogisticRegression

import mloop
from _blake3 import b3
from mloop.registry import Registry
from mloop.registry._blob_load import load_from_blobs
from mloop.registry._package import ModelIntegrityError, load_model_dir

pytestmark = pytest.mark.usefixtures("fresh_caches")


def _blob(reg: Registry, sha: str) -> Path:
    """The file of blob ``sha`` in the registry's local artifact folder."""
    found = list((Path(reg.settings.home) / "artifacts").rglob(sha))
    assert len(found) == 1, found
    return found[0]


def _cache(reg: Registry) -> Path:
    return Path(reg.settings.home) / "cache" / "models"


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_cold_load_reads_the_blobs_and_writes_nothing(
    registry: Callable[[], Registry],
    data: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, _ = data
    reg = registry()
    listed: list[str] = []
    real = type(reg.store).list_artifacts

    def listing(self: object, run_id: str, **kw: object) -> object:
        listed.append(run_id)
        return real(self, run_id, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(type(reg.store), "list_artifacts", listing)
    home = Path(reg.settings.home)
    before = _files_under(home)
    reg.set_alias("churn", "champion", 2)
    loaded = reg.load("models:/churn@champion")
    assert loaded.raw[-1].C == 1.0
    assert _files_under(home) == before  # no cache folder, no link, no temporary file
    assert listed == []  # the version's record names its files and their hashes
    assert "blobs" in repr(loaded)  # repr does not make the folder either
    assert not _cache(reg).exists()
    # The folder appears when asked for, and holds the package the model was read from.
    path = loaded.path
    assert path.is_relative_to(_cache(reg))
    assert load_model_dir(path).raw[-1].C == 1.0
    pd.testing.assert_frame_equal(loaded.input_example, X[:5])


def test_a_cold_load_checks_every_file_then_a_warm_load_hashes_nothing(
    registry: Callable[[], Registry], settled: None, hashed: list[str]
) -> None:
    reg = registry()
    reg.load("models:/churn/1")
    assert sorted(hashed) == sorted(reg.get_version("churn", 1).manifest["files"].values())
    hashed.clear()
    assert registry().load("models:/churn/1").raw[-1].C == 0.1
    assert hashed == []


def test_a_blob_changed_after_a_load_is_refused(
    registry: Callable[[], Registry], settled: None
) -> None:
    reg = registry()
    reg.load("models:/churn/2")
    after_a_clock_tick()
    flip_a_byte_keeping_size_and_mtime(
        _blob(reg, reg.get_version("churn", 2).manifest["files"]["model.skops"])
    )
    with pytest.raises(ModelIntegrityError, match=r"'model\.skops' failed its integrity check"):
        reg.load("models:/churn/2")


def test_a_corrupted_blob_is_refused_and_caches_nothing(registry: Callable[[], Registry]) -> None:
    reg = registry()
    sha = reg.get_version("churn", 2).manifest["files"]["model.skops"]
    flip_a_byte_keeping_size_and_mtime(_blob(reg, sha))
    with pytest.raises(ModelIntegrityError, match=rf"'model\.skops' .* got (?!{sha})"):
        reg.load("models:/churn/2")
    with pytest.raises(mloop.artifacts.IntegrityError, match=sha):
        reg.download("models:/churn/2")  # nor is a folder made from it
    assert list(_cache(reg).iterdir()) == []  # nothing half-made is left to be loaded later


def test_a_version_record_that_disagrees_with_its_manifest_is_refused(
    registry: Callable[[], Registry],
) -> None:
    reg = registry()
    mv1, mv2 = reg.get_version("churn", 1), reg.get_version("churn", 2)
    # Version 2's record, its model file pointed at version 1's (a real, intact blob).
    files = {**mv2.manifest["files"], "model.skops": mv1.manifest["files"]["model.skops"]}
    forged = dataclasses.replace(mv2, manifest={**mv2.manifest, "files": files})
    with pytest.raises(ModelIntegrityError, match=r"'model\.skops' failed its integrity check"):
        load_from_blobs(reg.blobstore, forged, strict=False, folder=lambda: Path())
    with pytest.raises(ModelIntegrityError, match=r"'model\.skops'"):
        load_model_dir(reg.download(forged), manifest_sha256=mv2.manifest["manifest_sha256"])
    # A record listing a file its manifest does not is refused too.
    extra = {**mv2.manifest["files"], "extra.py": mv1.manifest["files"]["model.skops"]}
    added = dataclasses.replace(mv2, manifest={**mv2.manifest, "files": extra})
    with pytest.raises(ModelIntegrityError, match=r"list different files \(\['extra\.py'\]\)"):
        load_from_blobs(reg.blobstore, added, strict=False, folder=lambda: Path())


def test_packages_that_need_a_folder_are_read_from_the_cache(
    registry: Callable[[], Registry], data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = data
    reg = registry()
    helper = tmp_path / "helper_for_blob_load.py"
    helper.write_text("SCALE = 2\n")
    with mloop.start_run(project="p", settings=reg.settings, system_metrics=False) as run:
        # Code paths go on sys.path as a folder: such a package is read from its cache folder.
        mloop.log_model(LogisticRegression().fit(X, y), "withcode", run=run, code_paths=[helper])
    loaded = reg.load("models:/withcode/1")
    assert "blobs" not in repr(loaded)  # read from a folder, made before the load
    np.testing.assert_array_equal(loaded.predict(X), LogisticRegression().fit(X, y).predict(X))
    assert loaded.path.is_relative_to(_cache(reg))
    assert (loaded.path / "code" / helper.name).read_text() == "SCALE = 2\n"


def test_a_cold_folder_links_the_local_blobs(registry: Callable[[], Registry]) -> None:
    reg = registry()
    mv = reg.get_version("churn", 2)
    path = reg.download("models:/churn/2")
    files = {**mv.manifest["files"], "MLOOP_MODEL.json": mv.manifest["manifest_sha256"]}
    assert sorted(p.name for p in path.iterdir()) == sorted(files)
    for rel, sha in files.items():
        cached = path / rel
        assert os.path.samefile(_blob(reg, sha), cached)  # one inode: a link, not a copy
        assert cached.stat().st_mode & 0o222 == 0  # read-only, so a write through it fails
        assert b3(cached.read_bytes()) == sha


def test_a_cold_folder_is_copied_when_the_file_system_refuses_a_link(
    registry: Callable[[], Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry()

    def refuse(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    path = reg.download("models:/churn/1")
    assert load_model_dir(path).raw[-1].C == 0.1
    sha = reg.get_version("churn", 1).manifest["files"]["model.skops"]
    assert not os.path.samefile(_blob(reg, sha), path / "model.skops")


def test_records_that_cannot_be_read_from_blobs_go_through_the_folder(
    registry: Callable[[], Registry],
) -> None:
    reg = registry()
    mv = reg.get_version("churn", 1)
    record = dict(mv.manifest)
    changes: list[dict[str, object]] = [
        {"code_paths": ["code"]},  # code goes on sys.path as a folder
        {"manifest_sha256": None},  # a record from before versions kept the manifest's hash
        {"files": None},
        {"files": {}},
        {"files": {**record["files"], "MLOOP_MODEL.json": record["manifest_sha256"]}},
    ]
    for change in changes:
        odd = dataclasses.replace(mv, manifest={**record, **change})
        assert load_from_blobs(reg.blobstore, odd, strict=False, folder=Path) is None, change
    remote = type("Remote", (), {"is_local": False})()
    assert load_from_blobs(remote, mv, strict=False, folder=Path) is None
    assert load_from_blobs(reg.blobstore, mv, strict=True, folder=Path).strict is True  # type: ignore[union-attr]


def test_warm_loads_of_several_versions_reuse_what_each_verified_and_built(
    registry: Callable[[], Registry],
    settled: None,
    hashed: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mloop.registry.flavors import sklearn as sk

    built: list[str] = []
    real = sk._load_skops

    def counting(*args: object, **kwargs: object) -> object:
        built.append("x")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sk, "_load_skops", counting)
    reg = registry()
    first = {v: reg.load(f"models:/churn/{v}") for v in (1, 2)}
    assert len(built) == 2
    hashed.clear()
    again = {v: registry().load(f"models:/churn/{v}") for v in (1, 2, 1)}
    assert hashed == [] and len(built) == 2  # neither re-hashed nor rebuilt: deep copies
    for v in (1, 2):
        assert again[v].raw is not first[v].raw
        assert again[v].raw[-1].C == first[v].raw[-1].C == {1: 0.1, 2: 1.0}[v]


def test_a_corrupted_manifest_blob_is_refused(registry: Callable[[], Registry]) -> None:
    reg = registry()
    sha = reg.get_version("churn", 1).manifest["manifest_sha256"]
    flip_a_byte_keeping_size_and_mtime(_blob(reg, sha))
    with pytest.raises(ModelIntegrityError, match=r"MLOOP_MODEL\.json failed its integrity check"):
        reg.load("models:/churn/1")


def test_a_record_listing_other_files_names_them_in_the_error(
    registry: Callable[[], Registry],
) -> None:
    reg = registry()
    mv = reg.get_version("churn", 2)
    files = {k: v for k, v in mv.manifest["files"].items() if k != "requirements.txt"}
    fewer = dataclasses.replace(mv, manifest={**mv.manifest, "files": files})
    with pytest.raises(ModelIntegrityError) as info:
        load_from_blobs(reg.blobstore, fewer, strict=False, folder=Path)
    assert info.value.details == {"file": "requirements.txt", "expected": None, "actual": None}
