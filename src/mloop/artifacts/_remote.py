"""The blob store of a team server (``BlobStore("http://host:5000")``): the same content-addressed
store, spoken over ``mloop server``'s blob endpoints with httpx.

The guarantees hold across the network. Uploads are hashed here and again on the server, which
refuses a body that does not hash to the blob's name and keeps nothing of it; an upload goes to a
temporary name on the server and appears whole or not at all. Every byte read back is hashed here:
``get_to_path`` renames a verified file into place, ``open`` raises :class:`IntegrityError` at the
end of a stream that does not match. Downloads interrupted by a dropped connection resume where
they stopped (``Range``). A file of 64 MiB or more goes up through a resumable upload session, which
resumes from the bytes the server holds; smaller uploads are retried whole (they are idempotent:
the name is the content).
A server whose artifact store is S3 answers downloads with a redirect to a presigned URL, which is
followed without the bearer token.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import httpx

from mloop._digest import digest_bytes, hasher
from mloop.artifacts._blobstore import BlobStore, register_server_store
from mloop.artifacts._hashing import CHUNK_SIZE, _chunks, _hash_file
from mloop.artifacts._integrity import (
    IntegrityError,
    check_content,
    check_sha,
    verified_into_place,
    write_chunks,
)
from mloop.artifacts._remote_http import (
    API,
    PAUSES_S,
    UNAVAILABLE,
    _base_url,
    _clients,
    _dataset_digest_of,
    _Dropped,
    _file_slice,
    _raise_for,
    _Reader,
)
from mloop.errors import (
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)

__all__ = ["ServerBlobStore"]

# Files this large go up through a resumable upload session: a dropped connection costs only what
# was in flight, not the whole file again.
_RESUMABLE_FROM = 64 << 20


class ServerBlobStore(BlobStore):
    """A :class:`BlobStore` kept by ``mloop server`` (made by ``BlobStore("http(s)://...")``).

    Parameters
    ----------
    uri : str
        The server's base URL, e.g. ``http://127.0.0.1:5000``.
    storage_options : dict, optional
        ``timeout_s`` (default 60): per request, and between two chunks of a transfer.
    token : str, optional
        Bearer token for a server started with ``--auth`` (``MLOOP_TOKEN``).
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> None:
        options = dict(storage_options or {})
        timeout_s = float(options.pop("timeout_s", 60.0))
        if options:
            raise InvalidInputError(
                f"a server artifact store takes the storage option 'timeout_s' only; got "
                f"{sorted(options)}."
            )
        self._local = None
        self._fs = None
        self.uri = _base_url(os.fspath(uri))
        self._root = self.uri
        self._token, self._timeout_s = token, timeout_s
        self._client, self._plain = _clients(self.uri, token, timeout_s)

    def __repr__(self) -> str:
        return f"BlobStore({self.uri!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Connections stay with their process: an unpickled copy (a worker) opens its own.
        return {"uri": self.uri, "token": self._token, "timeout_s": self._timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["uri"], storage_options={"timeout_s": state["timeout_s"]}, token=state["token"]
        )

    # ----------------------------------------------------------------- requests

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        retry: bool,
        content: Callable[[], Any] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        ok_missing: bool = False,
    ) -> httpx.Response | None:
        """One request (tried again if ``retry`` and the server cannot be reached); a 404 is
        None when ``ok_missing``, every other error is raised as the server's class."""
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method,
                    path,
                    content=None if content is None else content(),
                    headers=headers,
                    params=params,
                )
            except httpx.TransportError as exc:
                if retry and attempt < len(PAUSES_S):
                    time.sleep(PAUSES_S[attempt])
                    attempt += 1
                    continue
                raise self._unreachable(exc, what) from None
            if retry and response.status_code in UNAVAILABLE and attempt < len(PAUSES_S):
                time.sleep(PAUSES_S[attempt])
                attempt += 1
                continue
            if ok_missing and response.status_code == 404:
                return None
            _raise_for(response, what, self.uri)
            return response

    def _unreachable(self, exc: BaseException, what: str) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the mloop server at {self.uri} cannot be reached for {what} "
            f"({type(exc).__name__}: {exc}); is `mloop server` running there?",
            details={"url": self.uri},
        )

    def _download(self, path: str, what: str, *, offset: int = 0) -> Generator[bytes, None, None]:
        """The body of ``GET path`` from ``offset``, resumed with ``Range`` where a connection
        drops mid-way (the content is immutable, so the pieces belong together)."""
        attempt = 0
        while True:
            try:
                with contextlib.closing(self._download_once(path, what, offset)) as chunks:
                    for chunk in chunks:
                        offset += len(chunk)
                        attempt = 0
                        yield chunk
                return
            except (httpx.TransportError, _Dropped) as exc:
                if attempt >= len(PAUSES_S):
                    raise self._unreachable(exc, what) from None
                time.sleep(PAUSES_S[attempt])
                attempt += 1

    def _stream(self, path: str, what: str) -> Generator[bytes, None, None]:
        """:meth:`_download` with its first request made now, so a missing blob or an unreachable
        server is raised here rather than at the first read."""
        chunks = self._download(path, what)
        first = next(chunks, None)

        def rest() -> Generator[bytes, None, None]:
            with contextlib.closing(chunks):
                if first is not None:
                    yield first
                yield from chunks

        return rest()

    def _download_once(self, path: str, what: str, offset: int) -> Generator[bytes, None, None]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = self._client.build_request("GET", path, headers=headers)
        response = self._client.send(request, stream=True)
        try:
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location", "")
                response.close()
                # The server's artifact store signs a URL; read it without our token.
                response = self._plain.send(
                    self._plain.build_request("GET", location, headers=headers), stream=True
                )
            if response.status_code in UNAVAILABLE:
                raise _Dropped(f"HTTP {response.status_code}")
            _raise_for(response, what, self.uri)
            if offset and response.status_code != 206:
                raise MloopError(
                    f"the server ignored a range request for {what} (HTTP "
                    f"{response.status_code}); cannot resume the download."
                )
            yield from response.iter_raw(CHUNK_SIZE)
        finally:
            response.close()

    # ----------------------------------------------------------------- keys (used by _datasets.py)

    def _key_path(self, key: str) -> str:
        digest = _dataset_digest_of(key)
        if digest is not None:
            return f"{API}/datasets/{check_sha(digest)}/parquet"
        if key.startswith("blobs/"):
            return f"{API}/blobs/{check_sha(key.rsplit('/', 1)[-1])}"
        raise MloopError(f"the server keeps blobs and datasets only, not {key!r}.")

    def _key_size(self, key: str) -> int | None:
        r = self._request("HEAD", self._key_path(key), what=key, retry=True, ok_missing=True)
        return None if r is None else int(r.headers.get("content-length", "0"))

    def _key_exists(self, key: str) -> bool:
        return self._key_size(key) is not None

    def _open_key(self, key: str) -> BinaryIO:
        """A dataset file, downloaded into a seekable temporary file (Parquet readers seek to
        the footer first); in memory up to 64 MiB, on disk past that."""
        path = self._key_path(key)
        try:
            chunks = self._stream(path, key)
        except NotFoundError:  # what a local open() says, so callers handle both alike
            raise FileNotFoundError(2, "not on the server", f"{self.uri}{path}") from None
        f = tempfile.SpooledTemporaryFile(max_size=64 << 20, prefix="mloop-dataset-")  # noqa: SIM115
        try:
            with contextlib.closing(chunks):
                for chunk in chunks:
                    f.write(chunk)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f  # type: ignore[return-value]

    @contextlib.contextmanager
    def _write_key(self, key: str, *, size_hint: int = 0) -> Iterator[BinaryIO]:
        """A dataset file: written to a local temporary file, then uploaded whole (the server
        checks it holds the data its name says before it keeps it)."""
        digest = _dataset_digest_of(key)
        if digest is None:
            raise MloopError(f"only dataset files are written by key over HTTP, not {key!r}.")
        with tempfile.TemporaryFile(prefix="mloop-dataset-") as f:
            yield f
            f.flush()

            def body() -> Any:
                f.seek(0)
                return f  # read in 64 KiB chunks, with its length from fstat

            self._request(
                "PUT",
                self._key_path(key),
                what=f"dataset {digest}",
                retry=True,
                content=body,
                headers={"Content-Type": "application/vnd.apache.parquet"},
            )

    def _uri_for_key(self, key: str) -> str:
        return f"{self.uri}{self._key_path(key)}"

    def _delete_key(self, key: str) -> bool:
        r = self._request("DELETE", self._key_path(key), what=key, retry=True, ok_missing=True)
        return r is not None

    def _touch(self, key: str) -> None:
        """The server refreshes a blob it is asked about (see :meth:`put_file`)."""

    def _commit_tmp(self, tmp_key: str, sha: str, size: int) -> None:
        raise MloopError("a server store commits its own uploads")  # never reached: no tmp keys

    # ----------------------------------------------------------------- writes

    def _missing(self, sha: str) -> bool:
        """Ask whether the server lacks ``sha``; one it has is refreshed (a garbage collector's
        grace period then protects it until the caller indexes it)."""
        r = self._request(
            "POST",
            f"{API}/blobs/missing",
            what=f"blob {sha}",
            retry=True,
            content=lambda: json.dumps({"sha256": [sha]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert r is not None
        return sha in r.json().get("missing", [])

    def _upload(self, sha: str, body: Callable[[], Any], size: int) -> None:
        r = self._request(
            "PUT",
            f"{API}/blobs/{sha}",
            what=f"blob {sha}",
            retry=True,
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r is not None
        got = r.json()
        if got.get("sha256") != sha or int(got.get("size", -1)) != size:
            raise IntegrityError(
                f"the server stored {got} for blob {sha} ({size:,} bytes sent).",
                details={"sha256": sha, "answer": got},
            )

    def put_file(
        self, local_path: str | os.PathLike[str], *, expected_sha256: str | None = None
    ) -> tuple[str, int]:
        path = Path(os.fspath(local_path))
        expected = None if expected_sha256 is None else check_sha(expected_sha256)
        if not path.is_file():
            raise InvalidInputError(
                f"`local_path` must be an existing regular file; got '{path}'.",
                details={"local_path": str(path)},
            )
        sha, size = _hash_file(path, expected)
        if expected is not None:
            check_content(expected, sha, size)
        if size >= _RESUMABLE_FROM:
            self._upload_resumable(sha, path, size)
            return sha, size
        if not self._missing(sha):
            return sha, size
        with contextlib.ExitStack() as files:

            def body() -> Any:  # each attempt reads the file again from its start
                return files.enter_context(open(path, "rb"))

            try:
                self._upload(sha, body, size)
            except InvalidInputError as exc:
                if "actual_sha256" not in exc.details:
                    raise
                raise MloopError(
                    f"'{path}' changed while it was being uploaded (digest {sha} before, "
                    f"{exc.details['actual_sha256']} on the server); nothing was stored. Upload "
                    "it again once it is no longer being written."
                ) from None
        return sha, size

    def _upload_resumable(self, sha: str, path: Path, size: int) -> None:
        """A large file through an upload session: after a dropped connection, the server says
        how much it holds and only the rest is sent again."""
        started = self._request(
            "POST",
            f"{API}/uploads",
            what=f"blob {sha}",
            retry=True,
            content=lambda: json.dumps({"sha256": sha, "size": size}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert started is not None
        doc = started.json()
        if doc.get("done"):
            return
        session = f"{API}/uploads/{doc['upload_id']}"
        offset, stalled = int(doc["offset"]), 0
        while offset < size:
            try:
                r = self._client.patch(
                    session,
                    content=_file_slice(path, offset, size),
                    headers={
                        "Upload-Offset": str(offset),
                        "Content-Length": str(size - offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                if r.status_code not in UNAVAILABLE and r.status_code != 409:
                    _raise_for(r, f"blob {sha}", self.uri)
                    offset = int(r.json()["offset"])
                    continue
            except httpx.TransportError:
                pass
            # Dropped (or the server is still ending the broken request): ask where to resume.
            if stalled >= len(PAUSES_S):
                raise self._unreachable(RuntimeError("no progress"), f"blob {sha}")
            time.sleep(PAUSES_S[stalled])
            stalled += 1
            held = self._request("GET", session, what=f"blob {sha}", retry=True)
            assert held is not None
            if int(held.json()["offset"]) > offset:
                stalled = 0
            offset = int(held.json()["offset"])
        try:
            done = self._request("POST", f"{session}/complete", what=f"blob {sha}", retry=True)
        except NotFoundError:
            if not self.exists(sha):  # a completion whose answer was lost is fine; else raise
                raise
            return
        assert done is not None
        got = done.json()
        if got.get("sha256") != sha or int(got.get("size", -1)) != size:
            raise IntegrityError(f"the server stored {got} for blob {sha} ({size:,} bytes sent).")

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        view = memoryview(data).cast("B")
        sha = digest_bytes(view)
        payload = view.tobytes()
        self._upload(sha, lambda: payload, len(payload))
        return sha, len(payload)

    def put_stream(
        self, fileobj: IO[bytes], *, expected_sha256: str | None = None
    ) -> tuple[str, int]:
        """Stream to the server (chunked, never whole in memory); it names the blob by hashing
        what arrived, and that name must be the hash of what was read here.

        A stream can be read once, so a dropped connection is not retried: the error is raised
        and nothing is stored.
        """
        expected = None if expected_sha256 is None else check_sha(expected_sha256)
        h = hasher(expected)
        sent = [0]

        def body() -> Iterator[bytes]:
            for chunk in _chunks(fileobj, bytearray(CHUNK_SIZE)):
                h.update(chunk)
                sent[0] += len(chunk)
                yield bytes(chunk)

        path = f"{API}/blobs" if expected is None else f"{API}/blobs/{expected}"
        r = self._request(
            "POST" if expected is None else "PUT",
            path,
            what="a streamed blob",
            retry=False,
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r is not None
        got = r.json()
        sha, size = h.result(), sent[0]
        if got.get("sha256") != sha or int(got.get("size", -1)) != size:
            raise IntegrityError(
                f"the server stored {got.get('sha256')} ({got.get('size')} bytes) for a stream "
                f"that hashed to {sha} ({size:,} bytes) here.",
                details={"sha256": sha, "actual_sha256": got.get("sha256")},
            )
        return sha, size

    # ----------------------------------------------------------------- reads

    def exists(self, sha256: str) -> bool:
        return self._key_exists(f"blobs/{check_sha(sha256)}")

    def size(self, sha256: str) -> int:
        size = self._key_size(f"blobs/{check_sha(sha256)}")
        if size is None:
            raise self._not_found(sha256)
        return size

    def open(self, sha256: str) -> BinaryIO:
        """Stream a blob from the server; unlike a local store's, every byte is checked: the read
        that reaches the end raises :class:`IntegrityError` if the content does not match."""
        sha = check_sha(sha256)
        return _Reader(self._blob_chunks(sha), expected=sha)  # type: ignore[return-value]

    def _blob_chunks(self, sha: str) -> Generator[bytes, None, None]:
        try:
            return self._stream(f"{API}/blobs/{sha}", f"blob {sha}")
        except NotFoundError:
            raise self._not_found(sha) from None

    def get_to_path(
        self, sha256: str, dest: str | os.PathLike[str], *, verify: bool = True, link: bool = False
    ) -> Path:
        del link  # a server's blob always arrives as a new file
        sha = check_sha(sha256)
        dest_path = Path(os.fspath(dest))
        if not dest_path.parent.is_dir():
            raise FileNotFoundError(2, "No such directory", str(dest_path.parent))
        chunks = self._blob_chunks(sha)
        with contextlib.closing(chunks):
            return verified_into_place(
                dest_path,
                sha,
                self.uri_for(sha),
                "server's copy",
                lambda tmp: write_chunks(chunks, tmp, verify=verify, like=sha),
            )

    def _iter_blob_infos(self) -> Iterator[tuple[str, int, float]]:
        """Every blob the server keeps, streamed as JSON lines (an admin's request)."""
        with self._client.stream("GET", f"{API}/blobs") as response:
            _raise_for(response, "the blob listing", self.uri)
            for line in response.iter_lines():
                if line.strip():
                    item = json.loads(line)
                    yield str(item["sha256"]), int(item["size"]), float(item["mtime"])

    def delete(self, sha256: str) -> bool:
        return self._delete_key(f"blobs/{check_sha(sha256)}")

    def presigned_url(self, sha256: str, *, expires_s: int = 3600) -> str | None:
        """The URL the server hands out for reading the blob: presigned where its artifact store
        is S3 (or GCS), None where it streams the blob itself."""
        sha = check_sha(sha256)
        r = self._request(
            "GET",
            f"{API}/blobs/{sha}/url",
            what=f"blob {sha}",
            retry=True,
            params={"expires_s": str(int(expires_s))},
        )
        assert r is not None
        doc = r.json()
        return str(doc["url"]) if doc.get("presigned") else None

    def _not_found(self, sha256: str) -> NotFoundError:
        return NotFoundError(
            f"Blob {sha256} is not on the mloop server {self.uri}. It may have been garbage "
            "collected, or the run logged it to another artifact store.",
            details={"sha256": sha256},
        )


register_server_store(ServerBlobStore)
