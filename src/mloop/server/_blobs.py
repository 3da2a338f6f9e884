"""Artifacts through the server: blobs by sha256 and dataset versions' Parquet files, streamed both
ways over the server's own artifact store (a local folder, S3, ...), so clients need no storage
credentials of their own (``BlobStore("http://server")`` speaks this).

Uploads are streamed into the artifact store while being hashed, under a temporary name; a body
that does not hash to the name it was sent under is refused (400) and nothing of it is kept.
Downloads are streamed with ``Range`` support (206, 416), ``ETag`` (the sha256) and
``If-None-Match``. When the artifact store can sign URLs (S3, GCS) a blob download is a 307 to a
presigned URL, so the bytes do not pass through the server; uploads always do, because the server's
hash is what lets every client trust a blob's name (an S3 presigned PUT would store whatever a
client sends under a name of its choosing).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import anyio.from_thread
from fastapi import FastAPI
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from mloop.artifacts import (
    BlobStore,
    dataset_digest,
    dataset_file_size,
    open_dataset_file,
    store_dataset,
    to_arrow_table,
)
from mloop.codec import dumps
from mloop.errors import InvalidInputError, MloopError, NotFoundError
from mloop.server._blobs_openapi import blob_operation, blob_status_code
from mloop.server._ranges import RangeNotSatisfiableError, byte_range
from mloop.server._scopes import route_policy
from mloop.server._uploads import UploadSessions
from mloop.server._wire import error_response
from mloop.store import API_PREFIX, validate_digest

__all__ = ["BLOB_ROUTES", "BlobRoute", "mount_artifacts"]

_log = logging.getLogger("mloop.server")
_CHUNK = 1 << 20
_MAX_MISSING = 10_000  # digests asked about in one request
_JSON = "application/json"


@dataclass(frozen=True)
class BlobRoute:
    """One artifact operation (streamed, so not an :class:`~mloop.store.Endpoint`); ``role`` is
    what a token needs, as for the endpoints."""

    name: str
    method: Literal["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]
    path: str
    role: Literal["read", "write", "admin"]
    summary: str

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path


BLOB_ROUTES: tuple[BlobRoute, ...] = (
    BlobRoute("list_blobs", "GET", "/blobs", "admin",
              "Every stored blob as JSON lines {sha256, size, mtime} (for garbage collection)"),
    BlobRoute("upload_blob_stream", "POST", "/blobs", "write",
              "Store a streamed body; the server names it by its sha256"),
    BlobRoute("missing_blobs", "POST", "/blobs/missing", "write",
              "Which of these sha256 are not stored (those that are get a fresh age for GC)"),
    BlobRoute("upload_blob", "PUT", "/blobs/{sha256}", "write",
              "Store a blob under its sha256 (a body that hashes otherwise is refused)"),
    BlobRoute("download_blob", "GET", "/blobs/{sha256}", "read",
              "A blob's bytes (Range supported), or a redirect to a presigned URL"),
    BlobRoute("blob_size", "HEAD", "/blobs/{sha256}", "read",
              "Whether a blob is stored, and its size (Content-Length)"),
    BlobRoute("blob_url", "GET", "/blobs/{sha256}/url", "read",
              "A URL that reads the blob: presigned when the artifact store is S3"),
    BlobRoute("delete_blob", "DELETE", "/blobs/{sha256}", "admin",
              "Delete a blob (garbage collection; the server does not check references)"),
    BlobRoute("upload_dataset_file", "PUT", "/datasets/{sha256}/parquet", "write",
              "Store a dataset version's Parquet file (its content must have this digest)"),
    BlobRoute("download_dataset_file", "GET", "/datasets/{sha256}/parquet", "read",
              "A dataset version's Parquet file (Range supported)"),
    BlobRoute("dataset_file_size", "HEAD", "/datasets/{sha256}/parquet", "read",
              "Whether a dataset version's file is stored, and its size"),
    BlobRoute("create_upload", "POST", "/uploads", "write",
              "Start a resumable upload of a large blob: {sha256, size}"),
    BlobRoute("upload_status", "GET", "/uploads/{upload_id}", "write",
              "How many bytes of an upload the server holds (where to resume)"),
    BlobRoute("append_upload", "PATCH", "/uploads/{upload_id}", "write",
              "Append the bytes from Upload-Offset on (kept as they arrive)"),
    BlobRoute("complete_upload", "POST", "/uploads/{upload_id}/complete", "write",
              "Check an upload's sha256 and store it as a blob"),
    BlobRoute("abandon_upload", "DELETE", "/uploads/{upload_id}", "write",
              "Abandon an upload"),
)  # fmt: skip


def _body_reader(request: Request) -> IO[bytes]:
    return cast(IO[bytes], _BodyReader(request))


class _BodyReader(io.RawIOBase):
    """The request body as a blocking binary stream, for the artifact store's writers running in
    a worker thread: each read pulls the next chunk from the event loop (never the whole body)."""

    def __init__(self, request: Request) -> None:
        super().__init__()
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()
        self._buf = bytearray()
        self._eof = False

    async def _next(self) -> bytes | None:
        """The next ~1 MiB of the body (None at its end): the server hands it over in pieces of
        ~64 KiB, and one hop from this thread to the event loop per piece cost more than the
        bytes themselves (a 100 MB upload made ~1,600 hops)."""
        pieces: list[bytes] = []
        size = 0
        while size < _CHUNK:
            try:
                piece = await self._chunks.__anext__()
            except StopAsyncIteration:
                break
            pieces.append(piece)
            size += len(piece)
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while not self._buf and not self._eof:
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._eof = True
            else:
                self._buf += chunk
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        del self._buf[:n]
        return n


def _sha(request: Request) -> str:
    return validate_digest(str(request.path_params["sha256"]))


def _etag(sha: str) -> str:
    return f'"{sha}"'


def _json(doc: Any, status: int = 200) -> Response:
    return Response(dumps(doc), status_code=status, media_type=_JSON)


def _stream(
    opener: Callable[[], IO[bytes]],
    request: Request,
    *,
    size: int,
    etag: str,
    media_type: str,
) -> Response:
    """A file's bytes, or the one range the request asks for."""
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    wanted = byte_range(
        request.headers.get("range"), size, if_range=request.headers.get("if-range"), etag=etag
    )
    first, last = (0, size - 1) if wanted is None else wanted
    length = max(last - first + 1, 0)
    headers["Content-Length"] = str(length)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    f = opener()
    if first:
        f.seek(first)

    def body() -> Iterator[bytes]:
        left = length
        while left > 0:
            data = f.read(min(_CHUNK, left))
            if not data:
                # The stored file is shorter than its size said: end the response short, so the
                # client sees a broken transfer rather than a complete, wrong one.
                raise MloopError(f"the stored file ended {left:,} bytes early")
            left -= len(data)
            yield data

    return StreamingResponse(
        body(),
        status_code=status,
        headers=headers,
        media_type=media_type,
        background=BackgroundTask(f.close),
    )


class _Handlers:
    """The artifact routes over one :class:`BlobStore`."""

    def __init__(self, artifacts: BlobStore, *, presign_s: int, staging: Path) -> None:
        self.artifacts = artifacts
        self.presign_s = presign_s
        self.staging = staging
        self.uploads = UploadSessions(artifacts, staging / "uploads")

    # -------------------------------------------------------------- blobs

    async def upload_blob(self, request: Request) -> Response:
        sha = _sha(request)
        reader = _body_reader(request)
        stored, size = await run_in_threadpool(
            self.artifacts.put_stream, reader, expected_sha256=sha
        )
        return _json({"sha256": stored, "size": size})

    async def upload_blob_stream(self, request: Request) -> Response:
        reader = _body_reader(request)
        sha, size = await run_in_threadpool(self.artifacts.put_stream, reader)
        return _json({"sha256": sha, "size": size}, 201)

    async def missing_blobs(self, request: Request) -> Response:
        doc = _json_object(await request.body(), '{"sha256": [...]}', ("sha256",))
        shas = doc.get("sha256")
        if not isinstance(shas, list) or len(shas) > _MAX_MISSING:
            raise InvalidInputError(
                f'the body must be {{"sha256": [...]}} with at most {_MAX_MISSING:,} digests; '
                f"got {type(shas).__name__ if not isinstance(shas, list) else len(shas)}."
            )
        checked = [validate_digest(s) for s in shas]

        def work() -> list[str]:
            return [s for s in dict.fromkeys(checked) if not self.artifacts.touch(s)]

        return _json({"missing": await run_in_threadpool(work)})

    def _size(self, sha: str) -> int:
        """The blob's size; its absence said without the server's storage path."""
        try:
            return self.artifacts.size(sha)
        except NotFoundError:
            raise _blob_missing(sha) from None

    def _presigned(self, sha: str, expires_s: int) -> str | None:
        try:
            return self.artifacts.presigned_url(sha, expires_s=expires_s)
        except NotFoundError:
            raise _blob_missing(sha) from None

    async def download_blob(self, request: Request) -> Response:
        sha = _sha(request)
        if request.method == "GET" and self.presign_s > 0:
            url = await run_in_threadpool(self._presigned, sha, self.presign_s)
            if url is not None:
                return RedirectResponse(url, status_code=307, headers={"ETag": _etag(sha)})
        size = await run_in_threadpool(self._size, sha)
        return await run_in_threadpool(
            _stream,
            lambda: self.artifacts.open(sha),
            request,
            size=size,
            etag=_etag(sha),
            media_type="application/octet-stream",
        )

    blob_size = download_blob  # HEAD: the same answer without its body

    async def blob_url(self, request: Request) -> Response:
        sha = _sha(request)
        raw = request.query_params.get("expires_s", str(self.presign_s or 3600))
        if not raw.isdigit() or not 1 <= int(raw) <= 7 * 24 * 3600:
            raise InvalidInputError(
                f"`expires_s` must be an integer in [1, 604800] (S3's limit, 7 days); got {raw!r}."
            )
        size = await run_in_threadpool(self._size, sha)
        url = None
        if self.presign_s > 0:
            url = await run_in_threadpool(self._presigned, sha, int(raw))
        own = str(request.url_for("download_blob", sha256=sha))
        return _json(
            {
                "sha256": sha,
                "size": size,
                "url": url or own,
                "presigned": url is not None,
                "expires_at_ms": int((time.time() + int(raw)) * 1000) if url else None,
            }
        )

    async def delete_blob(self, request: Request) -> Response:
        sha = _sha(request)
        if not await run_in_threadpool(self.artifacts.delete, sha):
            raise _blob_missing(sha)
        return Response(status_code=204)

    async def list_blobs(self, request: Request) -> Response:
        infos = self.artifacts.iter_blob_infos()

        def lines() -> Iterator[bytes]:
            for sha, size, mtime in infos:
                yield (json.dumps({"sha256": sha, "size": size, "mtime": mtime}) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    # -------------------------------------------------------------- dataset files

    async def upload_dataset_file(self, request: Request) -> Response:
        sha = _sha(request)
        reader = _body_reader(request)

        def work() -> dict[str, Any]:
            self.staging.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="dataset-", dir=self.staging) as tmp:
                path = Path(tmp) / "upload.parquet"
                with open(path, "wb") as out:
                    while chunk := reader.read(_CHUNK):
                        out.write(chunk)
                table = to_arrow_table(path)
                actual = dataset_digest(table)
                if actual != sha:
                    raise InvalidInputError(
                        f"the Parquet file sent as dataset {sha} holds the data of {actual}; "
                        "nothing was stored.",
                        details={"sha256": sha, "actual_sha256": actual},
                    )
                version = store_dataset(self.artifacts, table, name="upload")
                return {"sha256": version.sha256, "num_rows": version.num_rows}

        return _json(await run_in_threadpool(work))

    def _dataset_size(self, sha: str) -> int:
        try:
            return dataset_file_size(self.artifacts, sha)
        except NotFoundError:
            raise NotFoundError(
                f"Dataset version {sha} has no file on this server.", details={"sha256": sha}
            ) from None

    async def download_dataset_file(self, request: Request) -> Response:
        sha = _sha(request)
        size = await run_in_threadpool(self._dataset_size, sha)
        return await run_in_threadpool(
            _stream,
            lambda: open_dataset_file(self.artifacts, sha),
            request,
            size=size,
            etag=_etag(sha),
            media_type="application/vnd.apache.parquet",
        )

    dataset_file_size = download_dataset_file

    # -------------------------------------------------------------- resumable uploads

    async def create_upload(self, request: Request) -> Response:
        doc = _json_object(await request.body(), "{sha256, size}", ("sha256", "size"))
        made = await run_in_threadpool(self.uploads.create, doc.get("sha256"), doc.get("size"))
        return _json(made, 200 if made.get("done") else 201)

    async def upload_status(self, request: Request) -> Response:
        upload_id = str(request.path_params["upload_id"])
        return _json(await run_in_threadpool(self.uploads.status, upload_id))

    async def append_upload(self, request: Request) -> Response:
        upload_id = str(request.path_params["upload_id"])
        offset = request.headers.get("upload-offset")
        reader = _body_reader(request)
        return _json(await run_in_threadpool(self.uploads.append, upload_id, offset, reader))

    async def complete_upload(self, request: Request) -> Response:
        upload_id = str(request.path_params["upload_id"])
        return _json(await run_in_threadpool(self.uploads.complete, upload_id))

    async def abandon_upload(self, request: Request) -> Response:
        upload_id = str(request.path_params["upload_id"])
        if not await run_in_threadpool(self.uploads.abandon, upload_id):
            raise NotFoundError(f"no upload {upload_id} on this server.")
        return Response(status_code=204)


def _json_object(body: bytes, shape: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"null")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"the body must be a JSON object {shape}.")
    unknown = sorted(set(doc) - set(keys))
    if unknown:  # a misspelt key is refused, never ignored
        raise InvalidInputError(
            f"the body must be a JSON object {shape}; got unknown key(s) {unknown}.",
            details={"unknown": unknown},
        )
    return doc


def _blob_missing(sha: str) -> MloopError:
    return NotFoundError(f"Blob {sha} is not stored on this server.", details={"sha256": sha})


def _guarded(
    name: str, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            return await handler(request)
        except ClientDisconnect:
            _log.info("%s: the client went away mid-body; nothing was stored", name)
            return error_response(
                InvalidInputError("the connection closed before the body ended."), request_id=rid
            )
        except Exception as exc:  # the boundary: every failure becomes {error_code, message}
            response = error_response(exc, request_id=rid)
            if isinstance(exc, RangeNotSatisfiableError):
                response.headers["Content-Range"] = f"bytes */{exc.details['size']}"
            return response

    route.__name__ = name
    return route


_OPENAPI_SHA = {
    "name": "sha256",
    "in": "path",
    "required": True,
    "description": "A dataset version's sha256.",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}
_OPENAPI_DIGEST = {
    **_OPENAPI_SHA,
    "description": "A blob's digest: 'blake3-' and 64 hex characters, or 64 for a sha256 (older blobs).",
    "schema": {"type": "string", "pattern": "^(blake3-)?[0-9a-f]{64}$"},
}


_OPENAPI_UPLOAD = {
    "name": "upload_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}


def mount_artifacts(
    app: FastAPI,
    artifacts: BlobStore,
    *,
    presign_s: int = 3600,
    staging_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Serve ``artifacts`` at ``/api/v1/blobs`` and ``/api/v1/datasets/{sha256}/parquet``.

    Parameters
    ----------
    app : FastAPI
    artifacts : BlobStore
        The server's artifact store (not a server's: the server is where they end).
    presign_s : int, default 3600
        Lifetime of presigned download URLs where the store can sign them; 0 streams every
        download through the server (clients that cannot reach the object store).
    staging_dir : path, optional
        Where resumable uploads and dataset files wait until they are checked (default:
        ``mloop-staging`` in the system's temporary folder; ``mloop server`` uses
        ``$MLOOP_HOME/staging``, which outlives a reboot).
    """
    if not isinstance(presign_s, int) or not 0 <= presign_s <= 7 * 24 * 3600:
        raise InvalidInputError(
            f"`presign_s` must be an int in [0, 604800] (0: no presigned URLs); got {presign_s!r}."
        )
    handlers = _Handlers(
        artifacts,
        presign_s=presign_s,
        staging=Path(tempfile.gettempdir()) / "mloop-staging"
        if staging_dir is None
        else Path(os.fspath(staging_dir)),
    )
    app.state.artifacts = artifacts
    for route in BLOB_ROUTES:
        fn = getattr(handlers, route.name)
        params = []
        if "{sha256}" in route.path:
            params = [_OPENAPI_SHA if route.path.startswith("/datasets/") else _OPENAPI_DIGEST]
        if "{upload_id}" in route.path:
            params = [_OPENAPI_UPLOAD]
        # Under auth: blobs and dataset files are named by their content, not by a project (a
        # digest is only known to who has the content or its index), so project-scoped tokens
        # may move them, as they may datasets; listing and deleting are an admin's, unscoped.
        guard = route_policy(route.role, scoped="deny" if route.role == "admin" else "any")
        app.add_api_route(
            route.full_path,
            guard(_guarded(route.name, fn)),
            methods=[route.method],
            operation_id=route.name,
            name=route.name,
            summary=route.summary,
            response_class=Response,
            status_code=blob_status_code(route.name),
            tags=["artifacts"],
            openapi_extra=blob_operation(route.name, params),
        )
