"""Uploading a run's files into a :class:`BlobStore` and downloading them back, as path -> blob."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from mloop.artifacts._blobstore import BlobStore
from mloop.artifacts._paths import collect_files, validate_artifact_path
from mloop.errors import InvalidInputError
from mloop.store import ArtifactEntry

__all__ = ["BlobRef", "download_tree", "upload_tree"]

_T = TypeVar("_T")
_R = TypeVar("_R")
# Remote stores are latency-bound: overlap requests. Locally, hashing and copying release the GIL,
# so a few threads still help on many small files without oversubscribing a small machine.
_REMOTE_WORKERS = 8
_LOCAL_WORKERS = min(4, os.cpu_count() or 1)


class BlobRef(Protocol):
    """What :func:`download_tree` needs of an entry: where the file goes and which blob it is
    (an :class:`~mloop.store.ArtifactEntry` is one)."""

    @property
    def path(self) -> str: ...

    @property
    def sha256(self) -> str: ...


_LOCAL_SEQUENTIAL_BELOW = 16  # starting a pool costs more than copying a handful of local files


def _map(store: BlobStore, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    workers = _LOCAL_WORKERS if store.is_local else _REMOTE_WORKERS
    if len(items) <= 1 or workers <= 1 or (store.is_local and len(items) < _LOCAL_SEQUENTIAL_BELOW):
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def upload_tree(
    blobstore: BlobStore,
    local_path: str | os.PathLike[str],
    *,
    artifact_path: str | None = None,
) -> list[ArtifactEntry]:
    """Store a local file or directory and return its entries for the run's artifact index.

    Paths follow :func:`collect_files`: a file lands at ``<artifact_path>/<name>``, a directory's
    contents under ``<artifact_path>``. Identical files (in this tree, or anywhere in the store)
    are stored once. Every file is validated before anything is uploaded.

    Parameters
    ----------
    blobstore : BlobStore
        Where the blobs go.
    local_path : str or os.PathLike
        A file or a directory.
    artifact_path : str, optional
        Folder inside the run's artifact tree.

    Returns
    -------
    list of ArtifactEntry
        One entry per file, sorted by path.

    Raises
    ------
    InvalidInputError
        See :func:`collect_files`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("hi")
    >>> [e.path for e in upload_tree(BlobStore(tempfile.mkdtemp()), d, artifact_path="out")]
    ['out/a.txt']
    """
    files = collect_files(local_path, artifact_path)

    def one(item: tuple[str, Path]) -> ArtifactEntry:
        rel, path = item
        sha, size = blobstore.put_file(path)
        return ArtifactEntry(path=rel, size=size, sha256=sha)

    return _map(blobstore, one, files)


def download_tree(
    blobstore: BlobStore,
    entries: Iterable[BlobRef],
    dest_dir: str | os.PathLike[str],
    *,
    verify: bool = True,
    link: bool = False,
) -> list[Path]:
    """Download artifact entries under ``dest_dir``, checking every file's sha256.

    Parameters
    ----------
    blobstore : BlobStore
        Where the blobs are.
    entries : iterable of BlobRef
        E.g. a run's artifact index (:class:`~mloop.store.ArtifactEntry`), or the part of it
        under one folder: anything with ``path`` and ``sha256``.
    dest_dir : str or os.PathLike
        Created if missing. Existing files at the same paths are replaced.
    verify : bool, default True
        Check each file's hash (see :meth:`BlobStore.get_to_path`).
    link : bool, default False
        Hard-link small local blobs instead of copying them, for a private cache only (see
        :meth:`BlobStore.get_to_path`).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``entries``.

    Raises
    ------
    InvalidInputError
        If an entry's path is invalid, would leave ``dest_dir`` (e.g. through a symlink already in
        it), or is both a file and a folder of another entry.
    IntegrityError
        If a blob is corrupted; files already verified stay, the corrupted one is not written.
    NotFoundError
        If a blob is missing from the store.
    """
    root = Path(os.fspath(dest_dir))
    items = list(entries)
    paths = [validate_artifact_path(e.path) for e in items]
    files = set(paths)
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise InvalidInputError(
                    f"`entries` must not hold '{parent}' both as a file and as the folder of "
                    f"'{p}'; got both. The artifact index is inconsistent.",
                    details={"path": p},
                )
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    targets: list[Path] = []
    checked: set[Path] = set()  # each folder is made and checked once, not once per file in it
    for p in paths:
        target = root.joinpath(*p.split("/"))
        if target.parent not in checked:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(real_root):
                raise InvalidInputError(
                    f"Cannot download '{p}': its folder under '{root}' is a symbolic link leading "
                    "outside of it. Download into an empty folder.",
                    details={"path": p},
                )
            checked.add(target.parent)
        targets.append(target)

    def one(pair: tuple[BlobRef, Path]) -> Path:
        entry, target = pair
        return blobstore.get_to_path(entry.sha256, target, verify=verify, link=link)

    return _map(blobstore, one, list(zip(items, targets, strict=True)))
