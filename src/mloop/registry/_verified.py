"""What loading a model package has already verified, so that a warm load does not redo it.

Two process-wide, bounded caches serve :func:`mloop.registry._package.load_model_dir`:

* **Verified packages.** Per package directory: the sha256 and parsed form of its manifest, and the
  ``stat`` of every file and folder in it (device, inode, mode, size, mtime_ns, ctime_ns), taken
  *before* the files were hashed. A later load whose stats all still match skips reading and
  hashing. Any change fails the match and the package is verified from scratch: a file written in
  place or truncated (size, mtime and ctime move; setting the mtime back with ``os.utime`` still
  moves the ctime), a file replaced by a rename (another inode) or a file added, removed or renamed
  (its folder's mtime and ctime move). A package with an entry changed less than
  :data:`RACY_NS` before it was verified is not recorded: a second change inside the file system's
  timestamp granularity could leave the stat as it was (git's "racily clean" rule), so such a
  package is re-hashed until it has been still for that long.
* **Loaded models.** Per manifest digest (the manifest lists every file's sha256, so its digest
  names the package's whole content), the model a flavor built from those verified files, for
  flavors that can hand out an independent copy (:meth:`copy_loaded`; scikit-learn's skops files).
  The same verified bytes rebuild the same estimator, so a warm load returns a deep copy of the one
  built before instead of reading, auditing and rebuilding the file again. Packages whose files
  hold more than :data:`MAX_MODEL_BYTES` are not kept, nor more than :data:`MAX_TOTAL_BYTES` in all.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_PACKAGES",
    "MAX_TOTAL_BYTES",
    "RACY_NS",
    "LoadedModels",
    "Snapshot",
    "VerifiedPackages",
    "clear",
    "loaded_models",
    "snapshot_files",
    "take_snapshot",
    "verified_packages",
]

RACY_NS = 2_000_000_000  # 2 s: the coarsest common timestamp granularity (FAT; some network mounts)
MAX_PACKAGES = 256
MAX_MODEL_BYTES = 16 << 20
MAX_TOTAL_BYTES = 64 << 20

StatKey = tuple[int, int, int, int, int, int]


def _key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class Snapshot:
    """The files of a package (POSIX paths relative to its root) and the stat of every entry.

    ``root`` names the package (its folder, or another key for a package read from elsewhere);
    ``entries`` maps the path of each file and folder (the root folder included) to its stat key;
    ``files`` lists the package's files; ``nbytes`` is their total size.
    """

    root: str
    files: tuple[str, ...]
    entries: tuple[tuple[str, StatKey], ...]
    nbytes: int
    taken_ns: int

    def unchanged(self) -> bool:
        """Whether every entry still has the stat it had when the snapshot was taken."""
        stat = os.stat
        try:
            for path, key in self.entries:
                if _key(stat(path)) != key:
                    return False
        except OSError:  # removed, or no longer readable: verify again (and fail there)
            return False
        return True

    def racy(self) -> bool:
        """Whether an entry changed too shortly before the snapshot for its stat to be trusted."""
        limit = self.taken_ns - RACY_NS
        return any(key[4] > limit or key[5] > limit for _, key in self.entries)


def take_snapshot(root: str | os.PathLike[str], *, ignored_dirs: Iterable[str]) -> Snapshot:
    """Stat every folder and file under ``root`` (skipping folders named in ``ignored_dirs``).

    Takes the clock first, so that :meth:`Snapshot.racy` errs on the side of re-hashing.
    """
    taken_ns = time.time_ns()
    base = os.fspath(root)
    skip = frozenset(ignored_dirs)
    files: list[str] = []
    entries: list[tuple[str, StatKey]] = [(base, _key(os.stat(base)))]
    nbytes = 0
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        rel_dir = os.path.relpath(dirpath, base)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in dirnames:
            path = os.path.join(dirpath, name)
            entries.append((path, _key(os.stat(path))))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            entries.append((path, _key(st)))
            files.append(prefix + name)
            nbytes += st.st_size
    return Snapshot(base, tuple(files), tuple(entries), nbytes, taken_ns)


def snapshot_files(key: str, files: Mapping[str, str | os.PathLike[str]]) -> Snapshot:
    """Stat the files of a package that is not a folder (relative path -> file), named ``key``.

    The files are immutable blobs that other packages may share, so only they are watched: a
    folder holding them changes as other blobs come and go.
    """
    taken_ns = time.time_ns()
    entries: list[tuple[str, StatKey]] = []
    nbytes = 0
    for file in files.values():
        path = os.fspath(file)
        st = os.stat(path)
        entries.append((path, _key(st)))
        nbytes += st.st_size
    return Snapshot(key, tuple(files), tuple(entries), nbytes, taken_ns)


@dataclass(frozen=True)
class _Record:
    snapshot: Snapshot
    manifest_sha256: str
    manifest: Any  # ModelManifest (not imported: _manifest imports the signature machinery)


class VerifiedPackages:
    """Package directory -> what its last full verification saw (bounded, least recently used)."""

    def __init__(self, max_packages: int = MAX_PACKAGES) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._max = max_packages
        self._lock = threading.Lock()

    def lookup(self, root: str, manifest_sha256: str | None) -> tuple[Any, str] | None:
        """The manifest and its sha256 when ``root`` is unchanged since it was verified, else None.

        ``manifest_sha256``, when given, must also be the digest that was verified.
        """
        with self._lock:
            record = self._records.get(root)
        if record is None:
            return None
        if manifest_sha256 is not None and manifest_sha256 != record.manifest_sha256:
            return None
        if not record.snapshot.unchanged():
            with self._lock:
                if self._records.get(root) is record:
                    del self._records[root]
            return None
        with self._lock:
            if root in self._records:
                self._records.move_to_end(root)
        return record.manifest, record.manifest_sha256

    def record(self, snapshot: Snapshot, manifest_sha256: str, manifest: Any) -> bool:
        """Remember a package verified against ``snapshot`` (not when the snapshot is racy)."""
        if snapshot.racy():
            with self._lock:
                self._records.pop(snapshot.root, None)
            return False
        with self._lock:
            self._records[snapshot.root] = _Record(snapshot, manifest_sha256, manifest)
            self._records.move_to_end(snapshot.root)
            while len(self._records) > self._max:
                self._records.popitem(last=False)
        return True

    def forget(self, root: str) -> None:
        with self._lock:
            self._records.pop(root, None)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)


class LoadedModels:
    """Manifest digest -> a private copy of the model built from those verified files."""

    def __init__(
        self, max_model_bytes: int = MAX_MODEL_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES
    ) -> None:
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._max_model = max_model_bytes
        self._max_total = max_total_bytes
        self._total = 0
        self._lock = threading.Lock()

    def copy(self, digest: str, flavor: Any, options: Any) -> Any | None:
        """A fresh copy of the model kept for ``digest``, or None when none is kept."""
        with self._lock:
            hit = self._models.get(digest)
            if hit is not None:
                self._models.move_to_end(digest)
        copier = getattr(flavor, "copy_loaded", None)
        if hit is None or copier is None:
            return None
        return copier(hit[0], options)

    def keep(self, digest: str, flavor: Any, options: Any, raw: Any, nbytes: int) -> bool:
        """Keep a private copy of ``raw`` (built from ``nbytes`` of verified files) if it fits."""
        copier = getattr(flavor, "copy_loaded", None)
        if copier is None or nbytes > self._max_model:
            return False
        private = copier(raw, options)
        if private is None:
            return False
        with self._lock:
            old = self._models.pop(digest, None)
            if old is not None:
                self._total -= old[1]
            self._models[digest] = (private, nbytes)
            self._total += nbytes
            while self._total > self._max_total and self._models:
                _, (_, size) = self._models.popitem(last=False)
                self._total -= size
        return True

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._total = 0

    def __len__(self) -> int:
        return len(self._models)


verified_packages = VerifiedPackages()
loaded_models = LoadedModels()


def clear() -> None:
    """Forget every verified package and kept model (the next loads verify and read everything)."""
    verified_packages.clear()
    loaded_models.clear()
