"""Content-addressed blob store over a local folder, any fsspec filesystem (``s3://``, ...) or a team
server (``http(s)://``, see ``_remote.py``).

Layout under the store's root::

    blobs/<xx>/<digest>         file contents, named by their digest (``blake3-<hex>``, or ``<hex>``
                                for a sha256 from mloop 0.1); ``xx`` is the hash's first 2 hex
    datasets/<digest>.parquet   dataset versions, named by their content digest (see _datasets.py)
    tmp/                        local in-flight writes (same filesystem, renamed into place)

Every write is atomic: a reader sees a whole blob or none. Data is streamed in 1 MiB chunks and hashed
on the way, so a large file is never held in memory. The local folder is written with plain ``os``
calls (``os.replace`` is the atomic step); other filesystems go through fsspec, where an S3 PUT or a
completed multipart upload is atomic by itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from mloop._digest import digest_bytes, hasher
from mloop.artifacts import _s3
from mloop.artifacts._hashing import (
    CHUNK_SIZE,
    _chunks,
    _copy_and_hash,
    _hash_file,
    _link_and_hash,
)
from mloop.artifacts._integrity import (
    IntegrityError,
    check_content,
    check_sha,
    verified_into_place,
    write_chunks,
)
from mloop.artifacts._paths import blob_key as _blob_key
from mloop.artifacts._paths import local_blob_infos, remote_blob_infos
from mloop.artifacts._verified import (
    copy_verified,
    drop_stamp,
    unchanged,
    write_stamp,
)
from mloop.errors import InvalidInputError, MloopError, NotFoundError

__all__ = ["BlobStore", "IntegrityError"]

# From this size an S3 upload goes in parts, several at once (see _s3.py: each part in flight is
# held in memory while sent, a few parts at most, whatever the file size).
_PARALLEL_FROM = 32 << 20


def _is_s3(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", ())
    return "s3" in ((protocol,) if isinstance(protocol, str) else tuple(protocol))


# Part size for remote writes and read-ahead for remote reads: S3's minimum part is 5 MiB, and
# bigger parts mean fewer requests; 8 MiB bounds what a transfer holds in memory.
_REMOTE_BLOCK = 8 << 20


# The class ``BlobStore("http(s)://...")`` makes: set by ``_remote.py``, which the package imports
# (it subclasses this one, so this module cannot import it).
_SERVER_STORE: list[type[BlobStore]] = []


def register_server_store(cls: type[BlobStore]) -> None:
    _SERVER_STORE[:] = [cls]


def _is_server_uri(uri: object) -> bool:
    return isinstance(uri, str) and uri[:8].lower().startswith(("http://", "https://"))


class BlobStore:
    """Content-addressed storage of immutable blobs named by their digest.

    New content is named by its BLAKE3 digest (``blake3-<64 hex>``); blobs that mloop 0.1 stored
    keep their SHA-256 names (``<64 hex>``) and are verified with SHA-256 (:mod:`mloop._digest`).

    Parameters
    ----------
    uri : str or os.PathLike
        A local folder (path or ``file://`` URL), an fsspec URL such as ``s3://bucket/prefix``, or
        a team server's URL (``http://host:5000``: ``mloop server`` keeps the blobs in its own
        artifact store; every guarantee below holds over the network too).
        The folder need not exist; it is created on the first write.
    storage_options : dict, optional
        Passed to the fsspec filesystem, e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...}``
        for s3fs. Listing caches are off unless set here (other processes write to the same store).
        For a server: ``{"timeout_s": 60}``.
    token : str, optional
        A team server's bearer token (``MLOOP_TOKEN``); unused by other stores.

    Examples
    --------
    >>> import tempfile
    >>> store = BlobStore(tempfile.mkdtemp())
    >>> sha, size = store.put_bytes(b"hello")
    >>> size, store.exists(sha)
    (5, True)
    >>> with store.open(sha) as f:
    ...     f.read()
    b'hello'
    """

    def __new__(
        cls,
        uri: str | os.PathLike[str] = "",  # absent when unpickled: the state is restored after
        *,
        storage_options: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> BlobStore:
        if cls is BlobStore and _is_server_uri(uri) and _SERVER_STORE:
            return super().__new__(_SERVER_STORE[0])
        return super().__new__(cls)

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> None:
        raw = os.fspath(uri)
        if not isinstance(raw, str) or not raw:
            raise InvalidInputError(f"`uri` must be a non-empty path or URL; got {uri!r}.")
        options = dict(storage_options or {})
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        self._local: Path | None = None
        self._fs: Any = None
        if "://" not in raw:
            self._local = Path(raw).expanduser().absolute()
            self._root = str(self._local)
            self.uri = self._local.as_uri()
        else:
            import fsspec

            protocol = raw.split("://", 1)[0]
            if protocol == "s3":
                options.setdefault("use_listings_cache", False)
                options.setdefault("skip_instance_cache", True)
            try:
                fs, path = fsspec.core.url_to_fs(raw, **options)
            except (ImportError, ValueError) as exc:
                raise InvalidInputError(
                    f"`uri` must be a local folder or a supported fsspec URL; got {raw!r} ({exc})."
                ) from exc
            self._fs = fs
            self._root = path.rstrip("/")
            self.uri = raw.rstrip("/")

    def __repr__(self) -> str:
        return f"BlobStore({self.uri!r})"

    @property
    def is_local(self) -> bool:
        """True when the store is a local folder (written with ``os`` calls, not fsspec)."""
        return self._local is not None

    # ----------------------------------------------------------------- keys (private, shared with
    # _datasets.py): a key is a path relative to the root, '/'-separated.

    def _full(self, key: str) -> str:
        if self._local is not None:
            return os.path.join(self._root, *key.split("/"))
        return f"{self._root}/{key}"

    def _key_exists(self, key: str) -> bool:
        if self._local is not None:
            return os.path.isfile(self._full(key))
        return bool(self._fs.exists(self._full(key)))

    def _key_size(self, key: str) -> int | None:
        try:
            if self._local is not None:
                return os.stat(self._full(key)).st_size
            return int(self._fs.size(self._full(key)))
        except FileNotFoundError:
            return None

    def _open_key(self, key: str) -> BinaryIO:
        if self._local is not None:
            return open(self._full(key), "rb")
        return self._fs.open(
            self._full(key), "rb", block_size=_REMOTE_BLOCK, cache_type="readahead"
        )

    @contextlib.contextmanager
    def _write_key(self, key: str, *, size_hint: int = 0) -> Iterator[BinaryIO]:
        """Write ``key`` atomically: it appears complete when the block exits, or not at all.

        ``size_hint`` (bytes) grows the remote part size so a large file stays within S3's
        10,000 parts per upload; without it the limit is ~80 GB.
        """
        if self._local is not None:
            final = self._full(key)
            tmp = f"{final}.tmp-{uuid.uuid4().hex}"
            os.makedirs(os.path.dirname(final), exist_ok=True)
            try:
                with open(tmp, "xb") as f:
                    yield f
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        else:
            block = max(_REMOTE_BLOCK, -(-size_hint // 9_000))
            rf = self._fs.open(self._full(key), "wb", block_size=block)
            try:
                yield rf
            except BaseException:
                # Closing would commit the partial object; abort the upload instead.
                rf.discard()
                rf.closed = True
                raise
            rf.close()

    def _touch(self, key: str) -> None:
        """Refresh a local blob's mtime when it is stored again, so a GC grace period protects a
        blob that is about to be referenced. (Remote objects cannot be touched without a copy.)"""
        if self._local is not None:
            with contextlib.suppress(OSError):
                os.utime(self._full(key))

    def _delete_key(self, key: str) -> bool:
        try:
            if self._local is not None:
                os.unlink(self._full(key))
            else:
                if not self._fs.exists(self._full(key)):
                    return False
                self._fs.rm_file(self._full(key))
        except FileNotFoundError:
            return False
        return True

    def _uri_for_key(self, key: str) -> str:
        if self._local is not None:
            return Path(self._full(key)).as_uri()
        return f"{self.uri}/{key}"

    # ----------------------------------------------------------------- writes

    def put_file(
        self, local_path: str | os.PathLike[str], *, expected_sha256: str | None = None
    ) -> tuple[str, int]:
        """Store a local file; identical content is stored once.

        Parameters
        ----------
        local_path : str or os.PathLike
            The file to store. It is read in 1 MiB chunks, never whole.
        expected_sha256 : str, optional
            The digest the content must have (hashed with the algorithm it names, so a SHA-256
            name is checked with SHA-256): a file that hashes otherwise is refused and nothing
            is stored (the file is hashed once either way).

        Returns
        -------
        (str, int)
            The digest and the size in bytes.

        Raises
        ------
        InvalidInputError
            If ``local_path`` is not an existing regular file, or does not hash to
            ``expected_sha256``.
        MloopError
            If the file changed while it was being uploaded (remote stores).
        """
        path = Path(os.fspath(local_path))
        expected = None if expected_sha256 is None else check_sha(expected_sha256)
        if not path.is_file():
            raise InvalidInputError(
                f"`local_path` must be an existing regular file; got '{path}'.",
                details={"local_path": str(path)},
            )
        if self._local is not None:
            # Copy in the kernel and hash at the same time (see _copy_and_hash), then rename.
            tmp_key = f"tmp/{uuid.uuid4().hex}"
            os.makedirs(os.path.dirname(self._full(tmp_key)), exist_ok=True)
            try:
                sha, size = _copy_and_hash(path, Path(self._full(tmp_key)), expected)
                if expected is not None:
                    check_content(expected, sha, size)
            except BaseException:
                self._delete_key(tmp_key)
                raise
            self._commit_tmp(tmp_key, sha, size)
            return sha, size
        # Remote: the key is the hash, so hash first, skip the upload when the blob is there, and
        # re-hash while uploading (or, for S3's parallel parts, compare the file's status before
        # and after) to catch a file that changed in between.
        before = os.stat(path)
        sha, size = _hash_file(path, expected)
        if expected is not None:
            check_content(expected, sha, size)
        if self.exists(sha):
            return sha, size
        key = _blob_key(sha)
        if size >= _PARALLEL_FROM and _is_s3(self._fs):
            # Parts go up in parallel; the upload is completed (the object appears, whole) only
            # if the file is unchanged since it was hashed.
            _s3.upload(
                self._fs,
                path,
                self._full(key),
                size,
                still_same=lambda: unchanged(before, os.stat(path)),
            )
            return sha, size
        h = hasher(sha)
        buf = bytearray(CHUNK_SIZE)
        with self._write_key(key, size_hint=size) as out, open(path, "rb") as f:
            for chunk in _chunks(f, buf):
                h.update(chunk)
                out.write(chunk)
            if h.result() != sha:
                raise MloopError(
                    f"'{path}' changed while it was being uploaded (digest {sha} before, "
                    f"{h.result()} after); nothing was stored. Upload it again once it is "
                    "no longer being written."
                )
        return sha, size

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Store bytes held in memory; returns ``(digest, size)``.

        Examples
        --------
        >>> import tempfile
        >>> BlobStore(tempfile.mkdtemp()).put_bytes(b"")[0][:19]
        'blake3-af1349b9f5f9'
        """
        view = memoryview(data).cast("B")
        sha = digest_bytes(view)
        key = _blob_key(sha)
        if self._key_size(key) == view.nbytes:
            self._touch(key)
        else:
            with self._write_key(key) as out:
                out.write(view)
        return sha, view.nbytes

    def put_stream(
        self, fileobj: IO[bytes], *, expected_sha256: str | None = None
    ) -> tuple[str, int]:
        """Store everything readable from a binary file-like object, streaming.

        The stream is written to a temporary name while being hashed, then moved into place
        (locally ``os.replace``; remotely a server-side copy), or dropped if the blob already exists.

        Parameters
        ----------
        fileobj : binary file-like
            Read with ``readinto`` (or ``read``) in 1 MiB chunks until EOF.
        expected_sha256 : str, optional
            What the content must hash to (a client announcing a blob by name): content that
            hashes otherwise is refused and nothing is stored.

        Returns
        -------
        (str, int)
            The digest and the number of bytes read.

        Raises
        ------
        InvalidInputError
            If ``expected_sha256`` is given and the content hashes to something else.
        """
        expected = None if expected_sha256 is None else check_sha(expected_sha256)
        h = hasher(expected)
        size = 0
        buf = bytearray(CHUNK_SIZE)
        tmp_key = f"tmp/{uuid.uuid4().hex}"
        with self._write_key(tmp_key) as out:
            for chunk in _chunks(fileobj, buf):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        sha = h.result()
        if expected is not None:
            try:
                check_content(expected, sha, size)
            except InvalidInputError:
                self._delete_key(tmp_key)
                raise
        self._commit_tmp(tmp_key, sha, size)
        return sha, size

    def _commit_tmp(self, tmp_key: str, sha: str, size: int) -> None:
        """Move a fully written temp object into place as blob ``sha``, or drop it if present."""
        key = _blob_key(sha)
        try:
            existing = self._key_size(key)
            if existing == size:
                self._touch(key)
                return
            # Absent, or a truncated leftover of a crash: (re)place it.
            if self._local is not None:
                os.makedirs(os.path.dirname(self._full(key)), exist_ok=True)
                os.replace(self._full(tmp_key), self._full(key))
                # ``sha`` is the hash of these very bytes: a download need not hash them again.
                write_stamp(self._root, sha, os.stat(self._full(key)))
            else:
                self._fs.copy(self._full(tmp_key), self._full(key))
        finally:
            self._delete_key(tmp_key)

    # ----------------------------------------------------------------- reads

    def exists(self, sha256: str) -> bool:
        """True if the blob is stored."""
        return self._key_exists(_blob_key(check_sha(sha256)))

    def size(self, sha256: str) -> int:
        """Size of a stored blob in bytes.

        Raises
        ------
        NotFoundError
            If the blob is not stored.
        """
        size = self._key_size(_blob_key(check_sha(sha256)))
        if size is None:
            raise self._not_found(sha256)
        return size

    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for streaming reads (use as a context manager). Not verified: see
        :meth:`get_to_path`.

        Raises
        ------
        NotFoundError
            If the blob is not stored.
        """
        try:
            return self._open_key(_blob_key(check_sha(sha256)))
        except FileNotFoundError:
            raise self._not_found(sha256) from None

    def local_path(self, sha256: str) -> Path | None:
        """The file of blob ``sha256`` in a local folder (None for other stores). Not checked:
        it may be missing, and whoever reads it must hash what they read."""
        if self._local is None:
            return None
        return Path(self._full(_blob_key(check_sha(sha256))))

    def get_to_path(
        self, sha256: str, dest: str | os.PathLike[str], *, verify: bool = True, link: bool = False
    ) -> Path:
        """Download a blob to ``dest``, streaming, and check its hash before it appears there.

        The data goes to a temporary file next to ``dest``, hashed on the way; only a verified file
        is renamed onto ``dest``, so ``dest`` is never left half-written or corrupted.

        Parameters
        ----------
        sha256 : str
            The blob.
        dest : str or os.PathLike
            Target file; its parent directory must exist. Replaced if present.
        verify : bool, default True
            Hash the content with the algorithm ``sha256`` names and compare.
        link : bool, default False
            Only for a private cache that nobody edits (the registry's model cache): from a local
            folder, make ``dest`` a hard link to the blob (made read-only) instead of a copy, once
            its bytes hash right. Blobs over 8 MiB, other stores, ``verify=False`` and file
            systems that refuse the link get a copy.

        Returns
        -------
        pathlib.Path
            ``dest``.

        Raises
        ------
        NotFoundError
            If the blob is not stored.
        IntegrityError
            If ``verify`` and the content does not match; ``dest`` is untouched.
        """
        dest_path = Path(os.fspath(dest))

        def fill(tmp: Path) -> str:
            if self._fs is not None and _is_s3(self._fs):
                key = _blob_key(check_sha(sha256))
                size = self._key_size(key)
                if size is None:
                    raise self._not_found(sha256)
                with open(tmp, "x+b") as out:
                    try:
                        return _s3.download(
                            self._fs,
                            self._full(key),
                            out.fileno(),
                            size,
                            verify=verify,
                            like=sha256,
                        )
                    except FileNotFoundError:  # deleted since its size was read
                        raise self._not_found(sha256) from None
            if self._local is None:
                with self.open(sha256) as src:
                    return write_chunks(
                        _chunks(src, bytearray(CHUNK_SIZE)), tmp, verify=verify, like=sha256
                    )
            # Kernel copy while hashing the blob in parallel; the blob is immutable.
            blob = Path(self._full(_blob_key(check_sha(sha256))))
            try:
                if link and verify and (linked := _link_and_hash(blob, tmp, sha256)) is not None:
                    return linked
                if verify:
                    return copy_verified(self._root, sha256, blob, tmp)
                shutil.copyfile(blob, tmp)
                return ""
            except FileNotFoundError:
                if not dest_path.parent.is_dir():
                    raise
                raise self._not_found(sha256) from None

        return verified_into_place(dest_path, sha256, self.uri_for(sha256), "stored copy", fill)

    def iter_blobs(self) -> Iterator[str]:
        """Yield the digest of every stored blob (in no particular order)."""
        for sha, _size, _mtime in self._iter_blob_infos():
            yield sha

    def iter_blob_infos(self) -> Iterator[tuple[str, int, float]]:
        """Yield ``(digest, size in bytes, modified time in s)`` of every stored blob, from one
        listing (no request per blob), in no particular order."""
        return self._iter_blob_infos()

    def touch(self, sha256: str) -> bool:
        """Whether the blob is stored; a stored one in a local folder gets a fresh modified time,
        so a garbage collector's grace period (``min_age_s``) spares it until it is indexed."""
        key = _blob_key(check_sha(sha256))
        if not self._key_exists(key):
            return False
        self._touch(key)
        return True

    def _iter_blob_infos(self) -> Iterator[tuple[str, int, float]]:
        """Yield ``(sha256, size, mtime seconds)`` from one listing (no request per blob)."""
        if self._local is not None:
            yield from local_blob_infos(os.path.join(self._root, "blobs"))
            return
        yield from remote_blob_infos(self._fs, f"{self._root}/blobs")

    def delete(self, sha256: str) -> bool:
        """Delete a blob; returns False if it was not stored. Referenced blobs are the caller's
        business (see :func:`mloop.artifacts.find_unreferenced`)."""
        sha = check_sha(sha256)
        if self._local is not None:
            drop_stamp(self._root, sha)
        return self._delete_key(_blob_key(sha))

    def uri_for(self, sha256: str) -> str:
        """The URL of a blob, e.g. ``s3://bucket/prefix/blobs/ab/ab12...``."""
        return self._uri_for_key(_blob_key(check_sha(sha256)))

    def presigned_url(self, sha256: str, *, expires_s: int = 3600) -> str | None:
        """An HTTPS URL that reads the blob without credentials for ``expires_s`` seconds, where
        the storage can sign one (S3, GCS); None otherwise (a local folder).

        Raises
        ------
        NotFoundError
            If the blob is not stored.
        """
        key = _blob_key(check_sha(sha256))
        if self._fs is None:
            return None
        if not self._key_exists(key):
            raise self._not_found(sha256)
        try:
            return str(self._fs.sign(self._full(key), expiration=int(expires_s)))
        except NotImplementedError:
            return None

    def _not_found(self, sha256: str) -> NotFoundError:
        return NotFoundError(
            f"Blob {sha256} is not in the artifact store {self.uri}. It may have been garbage "
            "collected, or the run logged it to another artifact store.",
            details={"sha256": sha256},
        )
