"""MLflow's artifact APIs over mloop's artifact index and blob store.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``; the MLflow client
turns it into ``/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>`` and PUTs,
GETs and lists files there. Each file becomes what mloop's own SDK writes: a content-addressed blob
and an entry ``(path, size, sha256)`` in the run's artifact index, so ``mloop`` sees the files the
MLflow client logged, and the MLflow client downloads the files mloop logged.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mloop.errors import InvalidInputError, MloopError, NotFoundError
from mloop.server._mlflow._convert import run_artifact_uri
from mloop.server._mlflow._runs import get_run
from mloop.server._mlflow._wire import (
    Args,
    Context,
    MlflowRoute,
    error_response,
    json_response,
    mlflow_error,
    refuse,
    route,
)
from mloop.store import ArtifactEntry, Store, validate_artifact_path

__all__ = ["ROUTES", "download", "list_root", "upload"]

_CHUNK = 1 << 20


def _no_blobs() -> MloopError:
    return mlflow_error(
        "this server keeps no artifacts (start it with an artifact store).",
        "NOT_IMPLEMENTED",
        501,
    )


def _locate(store: Store, location: str) -> tuple[str, str]:
    """``<experiment>/<run>/artifacts[/<path>]`` as (run id, path in the run's tree)."""
    parts = [p for p in location.strip("/").split("/") if p not in ("", ".")]
    if len(parts) < 3 or parts[2] != "artifacts":
        raise InvalidInputError(
            f"artifact path {location!r} is not under a run's artifact root "
            "'<experiment_id>/<run_id>/artifacts'."
        )
    experiment_id, run_id = parts[0], parts[1]
    run = get_run(store, run_id)
    if run.project_id != experiment_id:
        raise NotFoundError(f"Run with id={run_id} not found in experiment {experiment_id}")
    rest = "/".join(parts[3:])
    return run_id, validate_artifact_path(rest) if rest else ""


def _children(entries: list[ArtifactEntry], prefix: str) -> list[dict[str, Any]]:
    """The files and folders directly under ``prefix`` (names relative to it)."""
    files: dict[str, dict[str, Any]] = {}
    base = prefix + "/" if prefix else ""
    for e in entries:
        if not e.path.startswith(base) or e.path == prefix:
            continue
        head, sep, _ = e.path[len(base) :].partition("/")
        if sep:
            files.setdefault(head, {"path": head, "is_dir": True})
        else:
            files[head] = {"path": head, "is_dir": False, "file_size": e.size}
    return [files[k] for k in sorted(files)]


def list_root(store: Store, run_id: str, path: str) -> list[dict[str, Any]]:
    return _children(store.list_artifacts(run_id, prefix=path), path)


@route("GET", "/artifacts/list")
def list_artifacts(ctx: Context, a: Args) -> dict[str, Any]:
    """The tracking API's listing (the MLflow UI's): paths relative to the run's root."""
    run_id = a.run_id()
    r = get_run(ctx.store, run_id)
    path = a.text("path") or ""
    path = validate_artifact_path(path) if path.strip("/") else ""
    files = list_root(ctx.store, run_id, path)
    for f in files:
        f["path"] = posixpath.join(path, f["path"]) if path else f["path"]
    return {"root_uri": run_artifact_uri(r.project_id, run_id), "files": files}


def _list_proxied(ctx: Context, a: Args) -> dict[str, Any]:
    location = a.text("path") or ""
    run_id, path = _locate(ctx.store, location)
    return {"files": list_root(ctx.store, run_id, path)}


class _BodyReader:
    """The request body as a blocking file object, for the blob store in a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""
        self._done = False

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._left]
            self._left = b""
            while not self._done:
                parts.append(self._fetch())
            return b"".join(parts)
        while not self._left and not self._done:
            self._left = self._fetch()
        out, self._left = self._left[:n], self._left[n:]
        return out

    def _fetch(self) -> bytes:
        chunk = anyio.from_thread.run(self._next)
        if not chunk:
            self._done = True
        return chunk


async def upload(request: Request, ctx: Context) -> Response:
    """``PUT /api/2.0/mlflow-artifacts/artifacts/<location>``: stream the body into a blob."""
    try:
        if ctx.blobs is None:
            raise _no_blobs()
        location = request.path_params["location"]
        run_id, path = await run_in_threadpool(_locate, ctx.store, location)
        if not path:
            raise InvalidInputError("an artifact upload needs a file path under the run's root.")
        reader = _BodyReader(request.stream().__aiter__())

        def store_file() -> None:
            sha, size = ctx.blobs.put_stream(reader)
            ctx.store.add_artifacts(run_id, [ArtifactEntry(path, size, sha)])

        await run_in_threadpool(store_file)
        return json_response({})
    except Exception as exc:  # the boundary: MLflow's error JSON
        return error_response(exc)


async def download(request: Request, ctx: Context) -> Response:
    """``GET /api/2.0/mlflow-artifacts/artifacts/<location>``: the file, streamed."""
    try:
        if ctx.blobs is None:
            raise _no_blobs()
        location = request.path_params["location"]
        run_id, path = await run_in_threadpool(_locate, ctx.store, location)
        if not path:
            raise InvalidInputError("an artifact download needs a file path under the run's root.")
        try:
            entry = await run_in_threadpool(ctx.store.get_artifact, run_id, path)
        except NotFoundError:
            raise NotFoundError(f"File {path} does not exist in run {run_id}") from None
        f = await run_in_threadpool(ctx.blobs.open, entry.sha256)
    except Exception as exc:
        return error_response(exc)

    def chunks() -> Iterator[bytes]:
        with f:
            while True:
                data = f.read(_CHUNK)
                if not data:
                    return
                yield data

    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StreamingResponse(
        chunks(),
        media_type=media,
        headers={
            "Content-Length": str(entry.size),
            "Content-Disposition": f'attachment; filename="{posixpath.basename(path)}"',
        },
    )


list_proxied = route("GET", "/artifacts")(_list_proxied)
delete_proxied = route("DELETE", "/artifacts/{location:path}")(
    refuse(
        "a run's files are kept in mloop (a registered version may name them); log a new "
        "file over the path instead."
    )
)

# Routes relative to /api/2.0/mlflow (the tracking API).
ROUTES: tuple[MlflowRoute, ...] = (list_artifacts,)
# Routes relative to /api/2.0/mlflow-artifacts (the artifact proxy).
PROXY_ROUTES: tuple[MlflowRoute, ...] = (list_proxied, delete_proxied)


@route("GET", "/server-info", version="3.0")
def server_info(ctx: Context, a: Args) -> dict[str, Any]:
    """What MLflow 3's client asks before moving artifacts: no multipart or presigned transfers
    (every file streams through this server), no workspaces, no trace archival."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
    }


ROUTES = (*ROUTES, server_info)
