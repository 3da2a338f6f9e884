"""MLflow experiments over mloop projects: create, get (by id and by name), search, delete,
restore, rename, and their tags."""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInputError, NotFoundError
from mloop.server._mlflow._common import (
    decode_token,
    encode_token,
    matches,
    project_for,
    sort_items,
)
from mloop.server._mlflow._convert import experiment, pairs_from
from mloop.server._mlflow._wire import Args, Context, MlflowRoute, route
from mloop.store import OrderKey, Project, parse_filter, parse_order_by

__all__ = ["ROUTES"]

_VIEWS = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
_ATTRIBUTES = {
    "name": "string",
    "experiment_id": "string",
    "creation_time": "number",
    "last_update_time": "number",
}


def _experiment_id(a: Args) -> str:
    return str(a.text("experiment_id", required=True))


@route("POST", "/experiments/create")
def create_experiment(ctx: Context, a: Args) -> dict[str, Any]:
    name = a.text("name", required=True)
    tags = pairs_from(a.messages("tags"), "experiment tag")
    # ``artifact_location`` is not the client's to choose here: this server stores the files of
    # every run it tracks and hands out ``mlflow-artifacts:`` locations for them.
    project = ctx.store.create_project(name, tags=tags)
    return {"experiment_id": project.id}


@route("GET", "/experiments/get")
def get_experiment(ctx: Context, a: Args) -> dict[str, Any]:
    try:
        return {"experiment": experiment(project_for(ctx.store, _experiment_id(a)))}
    except NotFoundError:
        raise NotFoundError(f"No Experiment with id={_experiment_id(a)} exists") from None


@route("GET", "/experiments/get-by-name")
def get_experiment_by_name(ctx: Context, a: Args) -> dict[str, Any]:
    name = a.text("experiment_name", required=True)
    project = ctx.store.get_project_by_name(name)
    if project is None:
        raise NotFoundError(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment(project)}


def _value(p: Project, key: OrderKey | Any) -> Any:
    if key.entity == "tag":
        return p.tags.get(key.key)
    return {
        "name": p.name,
        "experiment_id": p.id,
        "creation_time": p.created_ms,
        "last_update_time": p.updated_ms,
    }[key.key]


def _search(ctx: Context, a: Args) -> dict[str, Any]:
    view = a.enum("view_type", _VIEWS, default="ACTIVE_ONLY")
    max_results = a.max_results(default=1000, limit=50_000)
    offset = decode_token(a.text("page_token"))
    ast = parse_filter(a.text("filter") or "", attributes=_ATTRIBUTES)
    order = parse_order_by(a.strings("order_by"), attributes=_ATTRIBUTES)
    for c in [*((x.entity, x.key) for x in ast), *((x.entity, x.key) for x in order)]:
        if c[0] not in ("attribute", "tag"):
            raise InvalidInputError(
                f"Invalid attribute key '{c[0]}s.{c[1]}': experiments are searched by "
                "name, experiment_id, creation_time, last_update_time and tags."
            )
    projects = ctx.store.list_projects(include_deleted=view != "ACTIVE_ONLY")
    if view == "DELETED_ONLY":
        projects = [p for p in projects if p.lifecycle_stage == "deleted"]
    projects = [p for p in projects if all(matches(c, _value(p, c)) for c in ast)]
    # MLflow's order: what was asked, then the newest first, then by id.
    default = [OrderKey("attribute", "creation_time", False), OrderKey("attribute", "name", True)]
    projects = sort_items(projects, [*order, *default], _value)
    page = projects[offset : offset + max_results]
    doc: dict[str, Any] = {"experiments": [experiment(p) for p in page]}
    if offset + max_results < len(projects):
        doc["next_page_token"] = encode_token(offset + max_results)
    return doc


search_experiments = route("POST", "/experiments/search", reads=True)(_search)
search_experiments_get = route("GET", "/experiments/search")(_search)


@route("POST", "/experiments/delete")
def delete_experiment(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, _experiment_id(a))
    ctx.store.delete_project(project.id)
    return {}


@route("POST", "/experiments/restore")
def restore_experiment(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, _experiment_id(a))
    ctx.store.restore_project(project.id)
    return {}


def _tag_key(a: Args) -> str:
    key = str(a.text("key", required=True))
    pairs_from([{"key": key, "value": ""}], "experiment tag")  # reserved keys refused
    return key


@route("POST", "/experiments/set-experiment-tag")
def set_experiment_tag(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, _experiment_id(a))
    value = a.raw("value")
    tags = pairs_from([{"key": a.raw("key"), "value": value}], "experiment tag")
    ctx.store.set_project_tags(project.id, tags)
    return {}


@route("POST", "/experiments/delete-experiment-tag")
def delete_experiment_tag(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, _experiment_id(a))
    ctx.store.delete_project_tag(project.id, _tag_key(a))
    return {}


@route("POST", "/experiments/update")
def rename_experiment(ctx: Context, a: Args) -> dict[str, Any]:
    project = project_for(ctx.store, _experiment_id(a))
    new_name = a.text("new_name")
    if new_name:
        ctx.store.rename_project(project.id, new_name)
    return {}


ROUTES: tuple[MlflowRoute, ...] = (
    create_experiment,
    get_experiment,
    get_experiment_by_name,
    search_experiments,
    search_experiments_get,
    delete_experiment,
    restore_experiment,
    set_experiment_tag,
    delete_experiment_tag,
    rename_experiment,
)
