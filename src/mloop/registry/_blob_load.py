"""A registered version read straight from a local blob store: a cold load creates no file.

A version's record lists its package's files with their sha256 (and the manifest's own), and a
local folder store keeps each blob as a file named by its hash. When the flavor can read its files
wherever they are (scikit-learn's skops file), the package is verified and loaded from those files
directly, with the checks a package folder gets: the manifest's hash, every file's hash, the same
files as the manifest lists (none missing, none added) and the paths the manifest points the
loader at. What was verified is kept by the files' ``stat`` (see ``_verified.py``), so a warm load
hashes nothing. The package folder is made only if someone asks for ``PackagedModel.path``.

Everything else (another store, a package with code paths, a pickled model, a record from before
versions listed their files) is read from the content-addressed cache folder, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.registry import _verified
from mloop.registry._manifest import MANIFEST_NAME, ModelIntegrityError
from mloop.registry._package import (
    PackagedModel,
    _check_references,
    _read_checked_manifest,
    _warn_versions,
    check_file,
)
from mloop.registry.flavors import Flavor, get_flavor

if TYPE_CHECKING:
    from mloop.artifacts import BlobStore
    from mloop.store import ModelVersion

__all__ = ["load_from_blobs"]


def load_from_blobs(
    blobstore: BlobStore, mv: ModelVersion, *, strict: bool, folder: Callable[[], Path]
) -> PackagedModel | None:
    """``mv``'s model read from the blobs of a local store, or None when it must be read from a
    folder (``folder`` makes that folder, for ``PackagedModel.path``, when it is asked for)."""
    record = mv.manifest
    listed = record.get("files")
    manifest_sha = record.get("manifest_sha256")
    if (
        not blobstore.is_local
        or record.get("code_paths")
        or not isinstance(manifest_sha, str)
        or not isinstance(listed, Mapping)
        or not listed
        or MANIFEST_NAME in listed
    ):
        return None
    fl = get_flavor(str(record.get("flavor")))
    if type(fl).load_files is Flavor.load_files:
        return None  # this flavor reads a folder
    files: dict[str, Path] = {}
    for rel, sha in {**listed, MANIFEST_NAME: manifest_sha}.items():
        path = blobstore.local_path(str(sha))
        if path is None:
            return None
        files[str(rel)] = path
    key = f"blobs:{manifest_sha}"
    snapshot: _verified.Snapshot | None
    # The key holds the digest already: passing it too is belt and braces.
    seen = _verified.verified_packages.lookup(key, manifest_sha)  # pragma: no mutate - see above
    if seen is not None:
        (manifest, digest), snapshot = seen, None
    else:
        try:
            snapshot = _verified.snapshot_files(key, files)
        except FileNotFoundError:
            return None  # a blob is missing: the folder's download says which
        manifest, digest = _verify(files, manifest_sha)
        _verified.verified_packages.record(snapshot, digest, manifest)
    _warn_versions(fl, manifest)
    options = manifest.flavor_options
    raw = _verified.loaded_models.copy(digest, fl, options)
    if raw is None:
        raw = fl.load_files({rel: files[rel] for rel in manifest.files}, options)
        if raw is None:
            return None
        if snapshot is not None:
            _verified.loaded_models.keep(digest, fl, options, raw, snapshot.nbytes)
    return PackagedModel(folder, manifest, raw, fl, strict=strict)


def _verify(files: Mapping[str, Path], manifest_sha: str) -> tuple[Any, str]:
    """The package's manifest, checked; every file it lists hashed against it."""
    file = files[MANIFEST_NAME]
    where = file.parent  # pragma: no mutate - it only names a manifest gone since its stat
    manifest, digest = _read_checked_manifest(where, manifest_sha, file=file)
    recorded = set(files) - {MANIFEST_NAME}
    if recorded != set(manifest.files):
        differ = sorted(recorded ^ set(manifest.files))
        raise ModelIntegrityError(
            f"The version's record and its manifest list different files ({differ}); "
            "refusing to load.",
            details={"file": differ[0], "expected": None, "actual": None},
        )
    for rel, expected in manifest.files.items():
        check_file(rel, files[rel], expected)
    _check_references(manifest)
    return manifest, digest
