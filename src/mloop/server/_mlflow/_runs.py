"""MLflow runs over mloop runs: create, get, update, delete, restore, search, and every way MLflow
logs to a run (a metric, a param, a tag, a batch, inputs, outputs) and reads a metric's history."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError, NotFoundError
from mloop.ids import RUN_ID_RE, now_ms
from mloop.server._mlflow._common import (
    decode_token,
    encode_token,
    filter_text,
    order_text,
    project_for,
)
from mloop.server._mlflow._convert import (
    LOGGED_MODEL_TAG,
    MODEL_OUTPUTS_TAG,
    dataset_from_mlflow,
    dataset_input,
    pairs_from,
    run,
    run_info,
    run_status,
)
from mloop.server._mlflow._wire import (
    Args,
    Context,
    MlflowRoute,
    route,
    to_double,
    to_int64,
    wire_float,
)
from mloop.store import MetricSeries, Run, RunInput, Store, parse_filter, parse_order_by

__all__ = ["ROUTES", "get_run", "model_run_id", "run_doc"]

_VIEWS = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
# MLflow's GetMetricHistory page size when the client names none.
_HISTORY_PAGE = 25_000


def get_run(store: Store, run_id: str) -> Run:
    try:
        return store.get_run(run_id)
    except (NotFoundError, InvalidInputError):
        # MLflow answers an id that cannot exist as it answers one that does not.
        raise NotFoundError(f"Run with id={run_id} not found") from None


def model_run_id(model_id: str) -> str:
    """The mloop run that holds an MLflow logged model ``m-<run id>``."""
    if not isinstance(model_id, str) or not model_id.startswith("m-"):
        raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
    return model_id[2:]


def run_doc(store: Store, r: Run, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """MLflow's ``Run`` for ``r``, its dataset inputs read from the store (once per request)."""
    inputs = []
    cache = {} if cache is None else cache
    for i in r.inputs:
        ds = cache.get(i.dataset_sha256)
        if ds is None:
            try:
                ds = cache[i.dataset_sha256] = store.get_dataset(i.dataset_sha256)
            except NotFoundError:
                continue
        inputs.append(dataset_input(ds, i.context))
    return run(r, inputs)


@route("POST", "/runs/create")
def create_run(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, a.text("experiment_id") or "0")
    if project.lifecycle_stage != "active":
        raise InvalidInputError(
            f"The experiment {project.id} must be in the 'active' state. "
            f"Current state is {project.lifecycle_stage}."
        )
    tags = pairs_from(a.messages("tags"), "run tag")
    name = a.text("run_name") or tags.get("mlflow.runName")
    if name:
        tags["mlflow.runName"] = name
    user = a.text("user_id") or tags.get("mlflow.user")
    r = ctx.store.create_run(
        project.id,
        name=name,
        start_ms=a.int64("start_time"),
        user=user,
        parent_run_id=tags.get("mlflow.parentRunId"),
        git_commit=tags.get("mlflow.source.git.commit"),
        tags=tags,
    )
    return {"run": run_doc(ctx.store, r)}


@route("GET", "/runs/get")
def get_run_route(ctx: Context, a: Args) -> dict[str, Any]:
    return {"run": run_doc(ctx.store, get_run(ctx.store, a.run_id()))}


@route("POST", "/runs/update")
def update_run(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    get_run(ctx.store, run_id)
    status = a.raw("status")
    r = ctx.store.update_run(
        run_id,
        status=run_status(status) if status else None,
        end_ms=a.int64("end_time"),
        name=a.text("run_name"),
    )
    if a.text("run_name"):
        ctx.store.log_batch(run_id, tags={"mlflow.runName": a.text("run_name")})
    return {"run_info": run_info(r)}


@route("POST", "/runs/delete")
def delete_run(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    get_run(ctx.store, run_id)
    ctx.store.delete_run(run_id)
    return {}


@route("POST", "/runs/restore")
def restore_run(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    get_run(ctx.store, run_id)
    ctx.store.restore_run(run_id)
    return {}


def _log(ctx: Context, run_id: str, **kw: Any) -> None:
    """One write to a run (no read first: the hot path of MLflow's logging calls)."""
    if not RUN_ID_RE.match(run_id):
        raise NotFoundError(f"Run with id={run_id} not found")
    try:
        ctx.store.log_batch(run_id, **kw)
    except NotFoundError:
        raise NotFoundError(f"Run with id={run_id} not found") from None


def _series(points: list[tuple[int, int, float]]) -> MetricSeries:
    arr = list(zip(*points, strict=True))
    return MetricSeries(
        np.asarray(arr[0], dtype=np.int64),
        np.asarray(arr[1], dtype=np.int64),
        np.asarray(arr[2], dtype=np.float64),
    )


def _metrics(
    items: list[Any],
) -> tuple[dict[str, MetricSeries], dict[str, dict[str, MetricSeries]]]:
    """MLflow ``Metric`` messages as one series per key, and per logged model they also belong to."""
    by_key: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    by_model: dict[str, dict[str, list[tuple[int, int, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    ts_default = now_ms()
    for m in items:
        key = m.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"every metric needs a non-empty string 'key'; got {m!r:.80}.")
        if m.get("value") is None:
            raise InvalidInputError(f"Missing value for required parameter 'value' of {key!r}.")
        point = (
            to_int64(m.get("step", 0) or 0, "step"),
            to_int64(m.get("timestamp") or ts_default, "timestamp"),
            to_double(m["value"], "value"),
        )
        by_key[key].append(point)
        if m.get("model_id"):
            by_model[str(m["model_id"])][key].append(point)
    series = {k: _series(v) for k, v in by_key.items()}
    models = {mid: {k: _series(v) for k, v in ks.items()} for mid, ks in by_model.items()}
    return series, models


def _log_model_metrics(ctx: Context, models: dict[str, dict[str, MetricSeries]]) -> None:
    # A metric logged with a model id belongs to that logged model too (MLflow 3), whose run is here.
    for model_id, series in models.items():
        _log(ctx, model_run_id(model_id), metrics=series)


@route("POST", "/runs/log-metric")
def log_metric(ctx: Context, a: Args) -> dict[str, Any]:
    metric = {
        "key": a.text("key", required=True),
        "value": a.double("value", required=True),
        "timestamp": a.int64("timestamp"),
        "step": a.int64("step", default=0),
        "model_id": a.text("model_id"),
    }
    series, models = _metrics([metric])
    _log(ctx, a.run_id(), metrics=series)
    _log_model_metrics(ctx, models)
    return {}


@route("POST", "/runs/log-parameter")
def log_param(ctx: Context, a: Args) -> dict[str, Any]:
    key = a.text("key", required=True)
    value = a.raw("value")
    _log(ctx, a.run_id(), params={key: "" if value is None else value})
    return {}


@route("POST", "/runs/set-tag")
def set_tag(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    tags = pairs_from([{"key": a.raw("key"), "value": a.raw("value")}], "run tag")
    key, value = next(iter(tags.items()))
    _log(ctx, run_id, tags=tags)
    if key == "mlflow.runName" and isinstance(value, str) and value:
        ctx.store.update_run(run_id, name=value)  # MLflow's run name and this tag are one
    return {}


@route("POST", "/runs/log-batch")
def log_batch(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    series, models = _metrics(a.messages("metrics"))
    params = pairs_from(a.messages("params"), "param")
    tags = pairs_from(a.messages("tags"), "run tag")
    _log(ctx, run_id, metrics=series, params=params, tags=tags)
    _log_model_metrics(ctx, models)
    if tags.get("mlflow.runName"):
        ctx.store.update_run(run_id, name=tags["mlflow.runName"])
    return {}


@route("POST", "/runs/log-inputs")
def log_inputs(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    get_run(ctx.store, run_id)
    for item in a.messages("datasets"):
        declared = item.get("dataset")
        if not isinstance(declared, dict):
            raise InvalidInputError("every dataset input needs a 'dataset' object.")
        ds = ctx.store.put_dataset(dataset_from_mlflow(declared, now_ms=now_ms()))
        context = pairs_from(item.get("tags") or [], "input tag").get(
            "mlflow.data.context", "training"
        )
        ctx.store.log_input(run_id, RunInput(ds.sha256, ds.name, context or "training"))
    for m in a.messages("models"):
        get_run(ctx.store, model_run_id(str(m.get("model_id"))))  # a model input must exist
    return {}


@route("POST", "/runs/outputs")
def log_outputs(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    r = get_run(ctx.store, run_id)
    outputs = json.loads(r.tags.get(MODEL_OUTPUTS_TAG) or "[]")
    for m in a.messages("models"):
        model_id = str(m.get("model_id") or "")
        get_run(ctx.store, model_run_id(model_id))
        entry = {"model_id": model_id, "step": to_int64(m.get("step", 0) or 0, "step")}
        if entry not in outputs:
            outputs.append(entry)
    ctx.store.log_batch(run_id, tags={MODEL_OUTPUTS_TAG: json.dumps(outputs)})
    return {}


def _search(ctx: Context, a: Args) -> dict[str, Any]:
    ids = a.strings("experiment_ids")
    projects = [project_for(ctx.store, i).id for i in ids]
    view = a.enum("run_view_type", _VIEWS, default="ACTIVE_ONLY")
    max_results = a.max_results(default=1000, limit=50_000)
    ast = parse_filter(a.text("filter") or "")
    order = parse_order_by(a.strings("order_by"))
    order_by = [*order_text(order), "attributes.start_time DESC", "attributes.run_id ASC"]
    if not projects:
        return {"runs": []}
    page = ctx.store.search_runs(
        projects,
        filter=filter_text(ast),
        order_by=order_by,
        max_results=max_results,
        page_token=a.text("page_token"),
        include_deleted=view != "ACTIVE_ONLY",
    )
    # Logged models are runs here, not runs to an MLflow client; a page may come back shorter.
    runs = [r for r in page.items if LOGGED_MODEL_TAG not in r.tags]
    if view == "DELETED_ONLY":
        runs = [r for r in runs if r.lifecycle_stage == "deleted"]
    cache: dict[str, Any] = {}
    doc: dict[str, Any] = {"runs": [run_doc(ctx.store, r, cache) for r in runs]}
    if page.next_page_token is not None:
        doc["next_page_token"] = page.next_page_token
    return doc


search_runs = route("POST", "/runs/search", reads=True)(_search)


@route("GET", "/metrics/get-history")
def get_metric_history(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    key = a.text("metric_key", required=True)
    get_run(ctx.store, run_id)
    h = ctx.store.get_metric_history(run_id, key)
    max_results = a.max_results(default=_HISTORY_PAGE, limit=_HISTORY_PAGE)
    offset = decode_token(a.text("page_token"))
    end = min(offset + max_results, len(h))
    steps = h.step[offset:end].tolist()
    stamps = h.timestamp[offset:end].tolist()
    window = h.value[offset:end]
    values: list[Any] = window.tolist()
    if not np.isfinite(window).all():
        values = [wire_float(v) for v in values]
    doc: dict[str, Any] = {
        "metrics": [
            {"key": key, "value": v, "timestamp": t, "step": s, "run_id": run_id}
            for s, t, v in zip(steps, stamps, values, strict=True)
        ]
    }
    if end < len(h):
        doc["next_page_token"] = encode_token(end)
    return doc


@route("POST", "/runs/delete-tag")
def delete_tag(ctx: Context, a: Args) -> dict[str, Any]:
    run_id = a.run_id()
    (key,) = pairs_from([{"key": a.raw("key"), "value": ""}], "run tag")
    get_run(ctx.store, run_id)
    try:
        ctx.store.delete_run_tag(run_id, key)
    except NotFoundError:
        raise NotFoundError(f"No tag with name: {key} in run with id {run_id}") from None
    return {}


ROUTES: tuple[MlflowRoute, ...] = (
    create_run,
    get_run_route,
    update_run,
    delete_run,
    restore_run,
    log_metric,
    log_param,
    set_tag,
    log_batch,
    log_inputs,
    log_outputs,
    search_runs,
    get_metric_history,
    delete_tag,
)
