"""A registered version's files never change: the Store refuses artifact writes under its path.

The rule lives in the backend-independent layer of the Store, so SQLite and PostgreSQL (and any later
backend) enforce it identically. Plain artifacts that no version references may still be overwritten.
"""

from __future__ import annotations

import pytest

from mloop.errors import ConflictError
from mloop.store import ArtifactEntry, Store

SHA = {c: c * 64 for c in "abcdef"}


def _run_with_package(store: Store, path: str = "model") -> str:
    run = store.create_run(store.create_project("p").id)
    store.add_artifacts(
        run.id,
        [
            ArtifactEntry(f"{path}/MLOOP_MODEL.json", 10, SHA["a"]),
            ArtifactEntry(f"{path}/model.skops", 20, SHA["b"]),
            ArtifactEntry("notes/readme.txt", 5, SHA["c"]),
        ],
    )
    return run.id


def _listing(store: Store, run_id: str) -> list[tuple[str, int, str]]:
    return [(e.path, e.size, e.sha256) for e in store.list_artifacts(run_id)]


def test_a_registered_versions_files_cannot_be_replaced_or_added_to(store: Store) -> None:
    run_id = _run_with_package(store)
    store.create_model_version(
        "iris", artifact_uri=f"runs:/{run_id}/model", flavor="sklearn", source_run_id=run_id
    )
    before = _listing(store, run_id)
    # Replacing a file of the package: refused, naming the version and what to do.
    with pytest.raises(ConflictError) as err:
        store.add_artifacts(run_id, [ArtifactEntry("model/model.skops", 21, SHA["d"])])
    msg = str(err.value)
    assert "'model/model.skops'" in msg and "models:/iris/1" in msg and run_id in msg
    assert "another artifact path" in msg
    assert err.value.details["version"] == 1 and err.value.details["name"] == "iris"
    # Adding a file to the package (it would make the package fail its integrity check): refused.
    with pytest.raises(ConflictError, match="models:/iris/1"):
        store.add_artifacts(run_id, [ArtifactEntry("model/extra.txt", 1, SHA["d"])])
    # A file exactly at the version's path: refused too.
    with pytest.raises(ConflictError, match="models:/iris/1"):
        store.add_artifacts(run_id, [ArtifactEntry("model", 1, SHA["d"])])
    # A mixed call is refused as a whole: its allowed entries are not written either.
    with pytest.raises(ConflictError):
        store.add_artifacts(
            run_id,
            [
                ArtifactEntry("other/fine.txt", 1, SHA["e"]),
                ArtifactEntry("model/model.skops", 21, SHA["d"]),
            ],
        )
    assert _listing(store, run_id) == before


def test_identical_rewrites_and_other_paths_stay_allowed(store: Store) -> None:
    run_id = _run_with_package(store)
    store.create_model_version(
        "iris", artifact_uri=f"runs:/{run_id}/model", flavor="sklearn", source_run_id=run_id
    )
    # Re-adding exactly what is there changes nothing (a spool replayed twice does this).
    store.add_artifacts(
        run_id,
        [
            ArtifactEntry("model/MLOOP_MODEL.json", 10, SHA["a"]),
            ArtifactEntry("model/model.skops", 20, SHA["b"]),
        ],
    )
    # Siblings whose names merely start with the version's path are other paths.
    store.add_artifacts(
        run_id,
        [
            ArtifactEntry("model-2/MLOOP_MODEL.json", 1, SHA["d"]),
            ArtifactEntry("modelx", 1, SHA["d"]),
        ],
    )
    # A plain artifact no version references may be overwritten (as in MLflow).
    store.add_artifacts(run_id, [ArtifactEntry("notes/readme.txt", 6, SHA["f"])])
    got = {e.path: e.sha256 for e in store.list_artifacts(run_id)}
    assert got["notes/readme.txt"] == SHA["f"] and got["model/model.skops"] == SHA["b"]
    assert got["model-2/MLOOP_MODEL.json"] == SHA["d"] and got["modelx"] == SHA["d"]


def test_every_version_referencing_the_path_protects_it(store: Store) -> None:
    run_id = _run_with_package(store, "nested/model")
    other = store.create_run(store.create_project("q").id)
    # `runs:/<id>` without a path means `model`; a deleted version still protects its files.
    store.add_artifacts(run_id, [ArtifactEntry("model/MLOOP_MODEL.json", 1, SHA["e"])])
    store.create_model_version(
        "a", artifact_uri=f"runs:/{run_id}", flavor="sklearn", source_run_id=run_id
    )
    store.create_model_version(
        "b",
        artifact_uri=f"runs:/{run_id}/nested/model/",
        flavor="sklearn",
        source_run_id=run_id,
    )
    store.delete_model_version("b", 1)
    with pytest.raises(ConflictError, match="models:/a/1"):
        store.add_artifacts(run_id, [ArtifactEntry("model/MLOOP_MODEL.json", 1, SHA["f"])])
    with pytest.raises(ConflictError, match="models:/b/1"):
        store.add_artifacts(run_id, [ArtifactEntry("nested/model/model.skops", 1, SHA["f"])])
    # Writing a parent folder that contains the version's path is refused for the files under it.
    with pytest.raises(ConflictError, match="models:/b/1"):
        store.add_artifacts(
            run_id,
            [
                ArtifactEntry("nested/readme.txt", 1, SHA["f"]),
                ArtifactEntry("nested/model/MLOOP_MODEL.json", 1, SHA["f"]),
            ],
        )
    store.add_artifacts(run_id, [ArtifactEntry("nested/readme.txt", 1, SHA["f"])])
    # Another run's paths are its own.
    store.add_artifacts(other.id, [ArtifactEntry("model/MLOOP_MODEL.json", 1, SHA["f"])])
    assert store.get_artifact(other.id, "model/MLOOP_MODEL.json").sha256 == SHA["f"]
