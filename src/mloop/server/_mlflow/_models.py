"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models``), as mloop runs.

``mlflow.<flavor>.log_model`` creates a logged model, records it as an output of the active run,
uploads the package to the model's artifact location, marks it READY, and registers
``models:/<model_id>`` if asked. Here a logged model is a run of its experiment (a child of the run
that logged it, tagged ``mloop.mlflow.logged_model``) with the package in its ``model/`` folder: its
id is ``m-<run id>``, its params, tags and metrics are the run's, PENDING/READY/FAILED are
running/finished/failed. So the package sits where ``mloop.log_model`` puts one
(``runs:/<run id>/model``), and a version registered from it snapshots that run.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from mloop.errors import InvalidInputError, NotFoundError
from mloop.ids import now_ms
from mloop.server._mlflow._artifacts import list_root
from mloop.server._mlflow._common import filter_text, matches, project_for
from mloop.server._mlflow._convert import (
    HIDDEN_TAG_PREFIX,
    LOGGED_MODEL_TAG,
    key_values,
    pairs_from,
)
from mloop.server._mlflow._runs import get_run, model_run_id
from mloop.server._mlflow._wire import Args, Context, MlflowRoute, route, wire_float
from mloop.store import Comparison, Run, parse_filter

__all__ = ["ROUTES"]

_MODEL_TYPE_TAG = "mloop.mlflow.model_type"
_PACKAGE = "model"  # the folder of the model's run that holds the package
_STATUS_OUT = {
    "running": "LOGGED_MODEL_PENDING",
    "finished": "LOGGED_MODEL_READY",
    "failed": "LOGGED_MODEL_UPLOAD_FAILED",
    "killed": "LOGGED_MODEL_UPLOAD_FAILED",
}
_STATUS_IN: dict[str, Literal["running", "finished", "failed"]] = {
    "LOGGED_MODEL_PENDING": "running",
    "LOGGED_MODEL_READY": "finished",
    "LOGGED_MODEL_UPLOAD_FAILED": "failed",
    "READY": "finished",
    "FAILED": "failed",
    "PENDING": "running",
}
_ATTRIBUTES = {
    "name": "string",
    "model_id": "string",
    "source_run_id": "string",
    "status": "string",
    "model_type": "string",
    "creation_timestamp": "number",
    "creation_time": "number",
    "last_updated_timestamp": "number",
}


def model_doc(r: Run) -> dict[str, Any]:
    model_id = f"m-{r.id}"
    info: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": r.project_id,
        "name": r.name,
        "creation_timestamp_ms": r.start_ms,
        "last_updated_timestamp_ms": r.end_ms or r.heartbeat_ms or r.start_ms,
        "artifact_uri": f"mlflow-artifacts:/{r.project_id}/{r.id}/artifacts/{_PACKAGE}",
        "status": _STATUS_OUT[r.status],
        "tags": key_values(
            {k: v for k, v in r.tags.items() if not k.startswith(HIDDEN_TAG_PREFIX)}
        ),
    }
    if r.tags.get(_MODEL_TYPE_TAG):
        info["model_type"] = r.tags[_MODEL_TYPE_TAG]
    if r.parent_run_id:
        info["source_run_id"] = r.parent_run_id
    metrics = [
        {
            "key": k,
            "value": wire_float(m.last),
            "timestamp": m.timestamp,
            "step": m.step,
            "model_id": model_id,
            **({"run_id": r.parent_run_id} if r.parent_run_id else {}),
        }
        for k, m in r.metrics.items()
    ]
    return {"info": info, "data": {"params": key_values(r.params), "metrics": metrics}}


def _model_run(ctx: Context, model_id: str) -> Run:
    try:
        r = get_run(ctx.store, model_run_id(model_id))
    except NotFoundError:
        raise NotFoundError(f"Logged model with ID '{model_id}' not found.") from None
    if LOGGED_MODEL_TAG not in r.tags:
        raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
    return r


def _model_id(a: Args) -> str:
    return str(a.text("model_id", required=True))


@route("POST", "/logged-models")
def create_logged_model(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, a.text("experiment_id", required=True))
    source = a.text("source_run_id")
    if source:
        get_run(ctx.store, source)
    tags = pairs_from(a.messages("tags"), "logged model tag")
    tags[LOGGED_MODEL_TAG] = "true"
    if a.text("model_type"):
        tags[_MODEL_TYPE_TAG] = a.text("model_type")
    r = ctx.store.create_run(
        project.id,
        name=a.text("name") or _PACKAGE,
        parent_run_id=source,
        params=pairs_from(a.messages("params"), "logged model param"),
        tags=tags,
        user=ctx.user,
    )
    return {"model": model_doc(r)}


@route("GET", "/logged-models/{model_id}")
def get_logged_model(ctx: Context, a: Args) -> dict[str, Any]:
    return {"model": model_doc(_model_run(ctx, _model_id(a)))}


@route("PATCH", "/logged-models/{model_id}")
def finalize_logged_model(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    status = a.raw("status")
    if status not in _STATUS_IN:
        raise InvalidInputError(
            f"Invalid value {status!r} for parameter 'status': expected one of "
            f"{sorted(k for k in _STATUS_IN if k.startswith('LOGGED'))}."
        )
    mloop_status = _STATUS_IN[status]
    r = ctx.store.update_run(
        r.id,
        status=mloop_status,
        end_ms=None if mloop_status == "running" else now_ms(),
    )
    return {"model": model_doc(r)}


@route("DELETE", "/logged-models/{model_id}")
def delete_logged_model(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    ctx.store.delete_run(r.id)
    return {}


@route("PATCH", "/logged-models/{model_id}/tags")
def set_logged_model_tags(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    ctx.store.log_batch(r.id, tags=pairs_from(a.messages("tags"), "logged model tag"))
    return {"model": model_doc(ctx.store.get_run(r.id))}


@route("POST", "/logged-models/{model_id}/params")
def log_logged_model_params(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    ctx.store.log_batch(r.id, params=pairs_from(a.messages("params"), "logged model param"))
    return {}


@route("GET", "/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    sub = (a.text("artifact_directory_path") or "").strip("/")
    files = list_root(ctx.store, r.id, posixpath.join(_PACKAGE, sub) if sub else _PACKAGE)
    for f in files:
        f["path"] = posixpath.join(sub, f["path"]) if sub else f["path"]
    return {"root_uri": model_doc(r)["info"]["artifact_uri"], "files": files}


@route("DELETE", "/logged-models/{model_id}/tags/{tag_key}")
def delete_logged_model_tag(ctx: Context, a: Args) -> dict[str, Any]:
    r = _model_run(ctx, _model_id(a))
    (key,) = pairs_from([{"key": a.raw("tag_key"), "value": ""}], "logged model tag")
    try:
        ctx.store.delete_run_tag(r.id, key)
    except NotFoundError:
        raise NotFoundError(f"No tag with key {key!r} on logged model {_model_id(a)}.") from None
    return {}


# The filter's attributes as the run's (searched by the store) or checked on each model.
_RUN_ATTRIBUTES = {
    "name": "run_name",
    "creation_timestamp": "start_time",
    "creation_time": "start_time",
}


def _split(ast: list[Comparison]) -> tuple[list[Comparison], list[Comparison]]:
    stored, checked = [], []
    for c in ast:
        if c.entity != "attribute":
            stored.append(c)
        elif c.key in _RUN_ATTRIBUTES:
            stored.append(Comparison("attribute", _RUN_ATTRIBUTES[c.key], c.op, c.value))
        else:
            checked.append(c)
    return stored, checked


def _attribute(doc: dict[str, Any], key: str) -> Any:
    info = doc["info"]
    if key == "last_updated_timestamp":
        return info.get("last_updated_timestamp_ms")
    if key == "status":
        return info["status"].replace("LOGGED_MODEL_", "")
    return info.get(key)


@route("POST", "/logged-models/search", reads=True)
def search_logged_models(ctx: Context, a: Args) -> dict[str, Any]:
    ids = a.strings("experiment_ids")
    if not ids:
        raise InvalidInputError("Missing value for required parameter 'experiment_ids'.")
    projects = [project_for(ctx.store, i).id for i in ids]
    stored, checked = _split(parse_filter(a.text("filter") or "", attributes=_ATTRIBUTES))
    stored.insert(0, Comparison("tag", LOGGED_MODEL_TAG, "=", "true"))
    order_by = []
    for o in a.messages("order_by"):
        field = str(o.get("field_name") or "")
        direction = "ASC" if o.get("ascending", True) in (True, "true") else "DESC"
        field = {"creation_timestamp": "attributes.start_time", "name": "attributes.run_name"}.get(
            field, field
        )
        order_by.append(f"{field} {direction}")
    page = ctx.store.search_runs(
        projects,
        filter=filter_text(stored),
        order_by=[*order_by, "attributes.start_time DESC", "attributes.run_id ASC"],
        max_results=a.max_results(default=100, limit=1000),
        page_token=a.text("page_token"),
    )
    # What the store cannot search is checked here: a page may come back shorter than asked.
    docs = [model_doc(r) for r in page.items]
    models = [d for d in docs if all(matches(c, _attribute(d, c.key)) for c in checked)]
    out: dict[str, Any] = {"models": models}
    if page.next_page_token is not None:
        out["next_page_token"] = page.next_page_token
    return out


ROUTES: tuple[MlflowRoute, ...] = (
    search_logged_models,
    create_logged_model,
    get_logged_model,
    finalize_logged_model,
    delete_logged_model,
    set_logged_model_tags,
    log_logged_model_params,
    list_logged_model_artifacts,
    delete_logged_model_tag,
)
