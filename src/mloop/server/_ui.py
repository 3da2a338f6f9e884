"""The web UI: its static pages under ``/ui`` and the few reads they need that the REST API's
store operations cannot answer fast (one columnar table of a project's runs, the ids a filter
matches, a metric's history over a step range, an artifact's preview).

The pages are plain JS modules and CSS shipped in the package (``mloop/server/ui``), with uPlot
vendored for the charts: nothing is fetched from elsewhere, so the UI works offline. Every data
route is a thin adapter over the store, guarded like the API under ``--auth``; the static files
hold no data and are served without a token (the pages ask for one when the API wants it).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from mloop.artifacts import BlobStore
from mloop.server._openapi import error_responses
from mloop.server._scopes import route_policy
from mloop.server._ui_common import handler, int_arg, openapi_param, required
from mloop.server._ui_loop import LOOP_OPERATIONS, mount_loop_routes
from mloop.server._ui_media import media_listing
from mloop.server._ui_models import MODEL_OPERATIONS, mount_model_routes
from mloop.server._wire import JSON
from mloop.store import API_PREFIX, MAX_RESULTS_LIMIT, Run, Store

__all__ = ["UI_DIR", "UI_OPERATIONS", "mount_ui"]

UI_DIR = Path(__file__).with_name("ui")
UI_API = f"{API_PREFIX}/ui"

MAX_PREVIEW_ROWS = 50
MAX_MODEL_VERSIONS = 200  # versions listed on a run page
MAX_PREVIEW_TEXT = 64 * 1024
_IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_TEXT = {".txt", ".log", ".md", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".cfg", ".ini",
         ".py", ".sh", ".html", ".xml", ".rst", ".mlmodel", ".requirements", ""}  # fmt: skip


def run_table(store: Store, project_id: str) -> dict[str, Any]:
    """A project's runs as columns (newest first): what the runs table shows, in one answer.

    ``params``, ``tags`` and ``metrics`` (each run's last value) map a key to one value per run,
    null where a run has none; at most :data:`MAX_RESULTS_LIMIT` runs (``truncated`` says so).
    """
    store.get_project(project_id)  # NotFoundError before an empty table
    page = store.search_runs(
        project_id, order_by=["attributes.start_time DESC"], max_results=MAX_RESULTS_LIMIT
    )
    runs: list[Run] = page.items
    n = len(runs)

    def columns(values: Callable[[Run], Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for i, r in enumerate(runs):
            for k, v in values(r).items():
                col = out.get(k)
                if col is None:
                    col = out[k] = [None] * n
                col[i] = v
        return out

    return {
        "project_id": project_id,
        "count": n,
        "truncated": page.next_page_token is not None,
        "id": [r.id for r in runs],
        "name": [r.name for r in runs],
        "status": [r.status for r in runs],
        "start_ms": [r.start_ms for r in runs],
        "end_ms": [r.end_ms for r in runs],
        "user": [r.user for r in runs],
        "params": columns(lambda r: r.params),
        "tags": columns(lambda r: r.tags),
        "metrics": columns(lambda r: {k: _finite(m.last) for k, m in r.metrics.items()}),
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def matching_ids(store: Store, project_id: str, filter: str) -> list[str]:
    """The ids of the project's runs that ``filter`` (the search language) matches: one ids-only
    query (the runs themselves are not built)."""
    return store.search_run_ids(project_id, filter=filter, max_results=MAX_RESULTS_LIMIT)


def run_models(store: Store, run_id: str) -> dict[str, Any]:
    """The model versions registered from a run (newest first), with their aliases: the run
    page's lineage beside its parent run and datasets."""
    store.get_run(run_id)  # NotFoundError for an unknown run; its id is validated hex
    page = store.search_model_versions(
        f"run_id = '{run_id}'", order_by=["created DESC"], max_results=MAX_MODEL_VERSIONS
    )
    return {
        "run_id": run_id,
        "truncated": page.next_page_token is not None,
        "versions": [
            {
                "name": v.name,
                "version": v.version,
                "flavor": v.flavor,
                "created_ms": v.created_ms,
                "created_by": v.created_by,
                "aliases": sorted(v.aliases),
            }
            for v in page.items
        ],
    }


def metric_range(
    store: Store,
    run_id: str,
    key: str,
    *,
    max_points: int,
    min_step: int | None,
    max_step: int | None,
) -> dict[str, Any]:
    """A metric's points with ``min_step <= step <= max_step``, min/max-downsampled to about
    ``max_points``: a zoomed chart asks for its visible range and gets the finer points there."""
    import numpy as np

    if min_step is not None and max_step is not None and min_step > max_step:
        min_step, max_step = max_step, min_step  # a drag from right to left
    h = store.get_metric_history(
        run_id, key, max_points=max_points, min_step=min_step, max_step=max_step
    )
    total = h.total
    if min_step is not None or max_step is not None:  # the whole metric's count, from its summary
        summary = store.get_run(run_id).metrics.get(key)
        total = summary.count if summary is not None else h.total
    return {
        "key": key,
        "total": total,
        "in_range": h.total,
        "downsampled": h.downsampled,
        "step": h.step,
        "value": np.where(np.isfinite(h.value), h.value, np.nan),
    }


def preview(store: Store, artifacts: BlobStore | None, run_id: str, path: str) -> dict[str, Any]:
    """What the artifacts browser shows of one file: an image (the client fetches its blob), the
    first rows of a table (Parquet, CSV, TSV), the start of a text, or only its size."""
    entry = store.get_artifact(run_id, path)
    suffix = Path(path).suffix.lower()
    base = {"path": entry.path, "size": entry.size, "sha256": entry.sha256}
    if suffix in _IMAGES:
        return {**base, "kind": "image", "mime": _IMAGES[suffix]}
    if artifacts is None:
        return {**base, "kind": "binary", "reason": "this server keeps no artifacts"}
    if not artifacts.exists(entry.sha256):
        return {**base, "kind": "binary", "reason": "its content is not in the artifact store"}
    if suffix == ".parquet":
        return {**base, **_parquet_rows(artifacts, entry.sha256)}
    if suffix in (".csv", ".tsv"):
        head = _head(artifacts, entry.sha256, MAX_PREVIEW_TEXT)
        return {**base, **_csv_rows(head, "\t" if suffix == ".tsv" else ",")}
    head = _head(artifacts, entry.sha256, MAX_PREVIEW_TEXT)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if suffix in _TEXT and exc.start >= len(head) - 3:  # a character cut by the limit
            text = head[: exc.start].decode("utf-8")
        else:
            return {**base, "kind": "binary"}
    return {**base, "kind": "text", "text": text, "truncated": entry.size > len(head)}


def _head(artifacts: BlobStore, sha256: str, limit: int) -> bytes:
    with artifacts.open(sha256) as fh:
        return fh.read(limit)


def _parquet_rows(artifacts: BlobStore, sha256: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    with artifacts.open(sha256) as fh:
        f = pq.ParquetFile(fh)
        columns = list(f.schema_arrow.names)
        total = f.metadata.num_rows
        batch = next(f.iter_batches(batch_size=MAX_PREVIEW_ROWS), None)
        rows = [] if batch is None else [list(r.values()) for r in batch.to_pylist()]
    return {"kind": "table", "columns": columns, "rows": _cells(rows), "total_rows": total}


def _csv_rows(head: bytes, delimiter: str) -> dict[str, Any]:
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if len(head) == MAX_PREVIEW_TEXT and lines:
        lines = lines[:-1]  # the last line may be cut by the limit
    parsed = list(
        csv.reader(io.StringIO("\n".join(lines[: MAX_PREVIEW_ROWS + 1])), delimiter=delimiter)
    )
    columns = parsed[0] if parsed else []
    return {"kind": "table", "columns": columns, "rows": parsed[1:], "total_rows": None}


def _cells(rows: Iterable[list[Any]]) -> list[list[Any]]:
    def cell(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else str(v)
        return str(v)

    return [[cell(v) for v in r] for r in rows]


_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64"}
_PID = openapi_param("project_id", "path", _STR, required=True)
_RID = openapi_param("run_id", "path", _STR, required=True)
# The operations (their ids) and what they take besides the path parameter.
_QUERY: dict[str, list[dict[str, Any]]] = {
    "ui_run_table": [],
    "ui_match_runs": [openapi_param("filter", "query", _STR, required=False)],
    "ui_metric_range": [
        openapi_param("key", "query", _STR, required=True),
        openapi_param(
            "max_points", "query", {**_INT, "minimum": 2, "maximum": 100_000}, required=False
        ),
        openapi_param("min_step", "query", _INT, required=False),
        openapi_param("max_step", "query", _INT, required=False),
    ],
    "ui_artifact_preview": [openapi_param("path", "query", _STR, required=True)],
    "ui_run_media": [],
    "ui_run_models": [],
}
UI_OPERATIONS = frozenset(_QUERY) | MODEL_OPERATIONS | LOOP_OPERATIONS


def _openapi(op: str, path_param: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": [path_param, *_QUERY[op]],
        "responses": {
            "200": {
                "description": "The answer (a JSON object; NaN and infinities are null).",
                "content": {JSON: {"schema": {"type": "object"}}},
            },
            **error_responses(with_body=False),
        },
    }


# plotly.js, for plotly figures logged as media: the copy the `plotly` Python package ships, from
# this server's own install (4.8 MB; nothing is fetched from a CDN, and no copy is vendored here).
PLOTLY_JS = "/ui/vendor/plotly.min.js"


def plotly_js_path() -> Path | None:
    """The plotly.min.js of the installed ``plotly`` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


async def _plotly_js(request: Request) -> Response:
    path = plotly_js_path()
    if path is None:
        return Response(
            "plotly.js is not installed where this server runs: pip install plotly",
            status_code=404,
            media_type="text/plain",
        )
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


def mount_ui(app: FastAPI, store: Store, *, artifacts: BlobStore | None) -> frozenset[str]:
    """Serve the pages at ``/ui/`` (``/`` redirects there) and their data routes at
    ``/api/v1/ui/...``; returns the paths that need no token (the static files)."""
    read_project = route_policy("read", scoped="project", param="project_id")
    read_run = route_policy("read", scoped="run", param="run_id")

    def table(request: Request) -> Any:
        return run_table(store, request.path_params["project_id"])

    def match(request: Request) -> Any:
        pid = request.path_params["project_id"]
        return {"ids": matching_ids(store, pid, request.query_params.get("filter", ""))}

    def metric(request: Request) -> Any:
        return metric_range(
            store,
            request.path_params["run_id"],
            required(request.query_params, "key"),
            max_points=int_arg(
                request.query_params.get("max_points"), "max_points", lo=2, hi=100_000, default=2000
            )
            or 2000,
            min_step=int_arg(
                request.query_params.get("min_step"),
                "min_step",
                lo=-(2**63),
                hi=2**63 - 1,
                default=None,
            ),
            max_step=int_arg(
                request.query_params.get("max_step"),
                "max_step",
                lo=-(2**63),
                hi=2**63 - 1,
                default=None,
            ),
        )

    def artifact_preview(request: Request) -> Any:
        run_id = request.path_params["run_id"]
        return preview(store, artifacts, run_id, required(request.query_params, "path"))

    def media(request: Request) -> Any:
        return media_listing(store, request.path_params["run_id"])

    def models(request: Request) -> Any:
        return run_models(store, request.path_params["run_id"])

    routes = [
        ("/projects/{project_id}/table", table, read_project, "ui_run_table",
         "A project's runs as columns (the UI's runs table)"),
        ("/projects/{project_id}/match", match, read_project, "ui_match_runs",
         "The ids of the project's runs a filter matches"),
        ("/runs/{run_id}/metric", metric, read_run, "ui_metric_range",
         "A metric over a step range, min/max-downsampled"),
        ("/runs/{run_id}/preview", artifact_preview, read_run, "ui_artifact_preview",
         "An artifact's preview: image, first table rows or text"),
        ("/runs/{run_id}/media", media, read_run, "ui_run_media",
         "A run's images, figures, tables and histograms by key, with their blobs"),
        ("/runs/{run_id}/models", models, read_run, "ui_run_models",
         "The model versions registered from a run, with their aliases"),
    ]  # fmt: skip
    for path, work, guard, op, summary in routes:
        app.add_api_route(
            UI_API + path,
            guard(handler(work)),
            methods=["GET"],
            operation_id=op,
            name=op,
            summary=summary,
            response_class=Response,
            tags=["ui"],
            openapi_extra=_openapi(op, _PID if "{project_id}" in path else _RID),
        )
    mount_model_routes(app, store)
    mount_loop_routes(app, store)

    async def to_ui(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    app.add_api_route("/", to_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(PLOTLY_JS, _plotly_js, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
    static = {"/", "/ui", "/ui/", PLOTLY_JS}
    static |= {"/ui/" + p.relative_to(UI_DIR).as_posix() for p in UI_DIR.rglob("*") if p.is_file()}
    return frozenset(static)
