"""Artifact path validation and local file collection.

An artifact path is the name a file has inside a run's artifact tree. It is stored in the metadata
store and later joined onto a user's download directory, so it must never be able to point outside of
that directory: no ``..``, nothing absolute (POSIX, Windows drive or UNC), no NUL or other control
characters, and ``/`` as the only separator.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mloop._digest import fanout
from mloop.errors import InvalidInputError
from mloop.store import (
    is_digest,
    validate_artifact_path,  # one definition: the store enforces it too
)

__all__ = [
    "blob_key",
    "collect_files",
    "local_blob_infos",
    "remote_blob_infos",
    "validate_artifact_path",
]


def _join(prefix: str | None, rel: str) -> str:
    return rel if prefix is None else f"{prefix}/{rel}"


def collect_files(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> list[tuple[str, Path]]:
    """List the files to upload for a local file or directory, with their artifact paths.

    A file is stored as ``<artifact_path>/<file name>``; a directory's *contents* are stored under
    ``<artifact_path>`` (at the root when it is None), as MLflow's ``log_artifact`` /
    ``log_artifacts`` and W&B's ``add_file`` / ``add_dir`` do.

    Symbolic links are followed (to files and to directories). Nothing is skipped silently: a broken
    link, a symlink loop, a special file (FIFO, socket, device) or a name that is not a valid
    artifact path raises. Empty directories have no files and so leave no trace in the tree.

    Parameters
    ----------
    local_path : str or os.PathLike
        A file or a directory.
    artifact_path : str, optional
        Folder inside the run's artifact tree; validated by :func:`validate_artifact_path`.

    Returns
    -------
    list of (str, pathlib.Path)
        ``(artifact path, local file)`` pairs sorted by artifact path.

    Raises
    ------
    InvalidInputError
        If ``local_path`` does not exist, or for any of the cases above.
    """
    prefix = None if artifact_path is None else validate_artifact_path(artifact_path)
    root = Path(os.fspath(local_path))
    try:
        st = root.stat()
    except FileNotFoundError:
        raise InvalidInputError(
            f"`local_path` must be an existing file or directory; got '{root}'"
            + (" (a broken symbolic link)." if root.is_symlink() else "."),
            details={"local_path": str(root)},
        ) from None
    if stat.S_ISREG(st.st_mode):
        rel = validate_artifact_path(root.absolute().name, name="file name")
        return [(_join(prefix, rel), root)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(
            f"`local_path` must be a regular file or a directory; got '{root}', a special file.",
            details={"local_path": str(root)},
        )
    out: list[tuple[str, Path]] = []
    _walk(root, "", {(st.st_dev, st.st_ino)}, prefix, out)
    out.sort(key=lambda item: item[0])
    return out


def _walk(
    directory: Path,
    rel: str,
    ancestors: set[tuple[int, int]],
    prefix: str | None,
    out: list[tuple[str, Path]],
) -> None:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child_rel = f"{rel}{entry.name}"
        child = directory / entry.name
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            raise InvalidInputError(
                f"Cannot upload '{child}': it is a broken symbolic link. Remove it or point it at "
                "a file; nothing was uploaded.",
                details={"local_path": str(child)},
            ) from None
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                raise InvalidInputError(
                    f"Cannot upload '{child}': it is a symbolic link to one of its own parent "
                    "directories (a loop). Remove the link; nothing was uploaded.",
                    details={"local_path": str(child)},
                )
            _walk(child, f"{child_rel}/", ancestors | {key}, prefix, out)
        elif stat.S_ISREG(st.st_mode):
            try:
                valid = validate_artifact_path(child_rel, name="file name")
            except InvalidInputError as exc:
                raise InvalidInputError(
                    f"Cannot upload '{child}': {exc.message} Rename it; nothing was uploaded.",
                    details={"local_path": str(child)},
                ) from None
            out.append((_join(prefix, valid), child))
        else:
            raise InvalidInputError(
                f"Cannot upload '{child}': it is a special file (FIFO, socket or device), not a "
                "regular file. Remove it or upload its parent's files one by one.",
                details={"local_path": str(child)},
            )


def blob_key(digest: str) -> str:
    """Where a blob lives under a store's root: ``blobs/<2 hex of the hash>/<digest>``."""
    return f"blobs/{fanout(digest)}/{digest}"


def local_blob_infos(base: str) -> Iterator[tuple[str, int, float]]:
    """``(sha256, size, mtime seconds)`` of each blob file under a local store's ``blobs`` folder
    (``blobs/<xx>/<digest>``), from one scan; files that vanish meanwhile are skipped."""
    try:
        prefixes = list(os.scandir(base))
    except FileNotFoundError:
        return
    for prefix in prefixes:
        if not prefix.is_dir():
            continue
        with os.scandir(prefix.path) as it:
            for entry in it:
                if is_digest(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat()
                        yield entry.name, st.st_size, st.st_mtime


def remote_blob_infos(fs: Any, base: str) -> Iterator[tuple[str, int, float]]:
    """``(digest, size, mtime seconds)`` of each blob under ``base`` on an fsspec filesystem, from
    one listing (no request per blob)."""
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        return
    for path, info in found.items():
        name = path.rsplit("/", 1)[-1]
        if is_digest(name):
            mtime = info.get("LastModified") or info.get("mtime") or info.get("created")
            ts = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime or 0.0)
            yield name, int(info.get("size") or 0), ts
