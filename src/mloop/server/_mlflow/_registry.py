"""MLflow's model registry over mloop's: registered models, versions, tags and aliases.

A version MLflow registers from ``models:/<model_id>`` (MLflow 3's logged model), ``runs:/<run>/<path>``
or a ``mlflow-artifacts:`` location becomes a mloop version of ``runs:/<run>/<path>`` with a
snapshot of that run (metrics, params, datasets, git commit), as ``mloop.log_model`` registers one;
what the client declared (its ``source``, ``run_id`` and ``model_id``) is kept in the version's
manifest and answered back. MLflow's stages do not exist here (MLflow 3 deprecated them for
aliases): every version is in stage ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.server._mlflow._common import filter_text, order_text
from mloop.server._mlflow._convert import model_version, pairs_from, registered_model
from mloop.server._mlflow._runs import get_run, model_run_id
from mloop.server._mlflow._wire import Args, Context, MlflowRoute, refuse, route
from mloop.store import (
    Comparison,
    ModelVersion,
    OrderKey,
    Store,
    parse_filter,
    parse_order_by,
)

__all__ = ["ROUTES", "download_uri"]

_MODEL_ATTRIBUTES = {
    "name": "string",
    "creation_timestamp": "number",
    "last_updated_timestamp": "number",
}
_VERSION_ATTRIBUTES = {
    "name": "string",
    "version_number": "number",
    "run_id": "string",
    "creation_timestamp": "number",
}
# MLflow's attribute names as mloop's registry search names them.
_RENAMES = {
    "creation_timestamp": "created",
    "last_updated_timestamp": "updated",
    "version_number": "version",
}
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<path>.*))?$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")
_PROXIED = re.compile(
    r"^(?:mlflow-artifacts:|https?://[^/]+/api/2\.0/mlflow-artifacts/artifacts)"
    r"/+(?P<exp>[^/]+)/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$"
)


def _version(a: Args) -> int:
    text = a.raw("version")
    if text is None or text == "":
        raise InvalidInputError("Missing value for required parameter 'version'.")
    try:
        number = int(str(text))
    except ValueError:
        raise InvalidInputError(f"Parameter 'version' must be an integer, got {text!r}.") from None
    if not 1 <= number < 2**31:
        raise InvalidInputError(
            f"Parameter 'version' must be an integer in [1, 2147483647], got {text!r}."
        )
    return number


def _name(a: Args) -> str:
    return str(a.text("name", required=True))


_PROMPT_TAG = "mlflow.prompt.is_prompt"


def _mloop_filter(text: str, attributes: dict[str, str]) -> tuple[str, bool]:
    """An MLflow registry filter as mloop's, and whether prompts are to be left out.

    MLflow's client adds ``tags.`mlflow.prompt.is_prompt` != 'true'`` to every model search (its
    prompts are models with that tag); a model without the tag must match it, which a tag
    comparison in mloop's search does not do, so that one clause is applied here.
    """
    ast, no_prompts = [], False
    for c in parse_filter(text, attributes=attributes):
        if c.entity == "tag" and c.key == _PROMPT_TAG and c.op == "!=" and c.value == "true":
            no_prompts = True
        elif c.entity == "attribute":
            ast.append(Comparison(c.entity, _RENAMES.get(c.key, c.key), c.op, c.value))
        else:
            ast.append(c)
    return filter_text(ast), no_prompts


def _mloop_order(clauses: list[str], attributes: dict[str, str]) -> list[str]:
    order = [
        OrderKey(k.entity, _RENAMES.get(k.key, k.key), k.ascending)
        if k.entity == "attribute"
        else k
        for k in parse_order_by(clauses, attributes=attributes)
    ]
    return order_text(order)


def _latest(store: Store, name: str) -> dict[str, Any] | None:
    try:
        return model_version(store.get_latest_version(name))
    except NotFoundError:
        return None


def _model_doc(store: Store, name: str) -> dict[str, Any]:
    try:
        m = store.get_registered_model(name)
    except NotFoundError:
        raise NotFoundError(f"Registered Model with name={name} not found") from None
    return registered_model(m, _latest(store, name))


def _get_version(store: Store, name: str, version: int) -> ModelVersion:
    try:
        return store.get_model_version(name, version)
    except NotFoundError:
        raise NotFoundError(f"Model Version (name={name}, version={version}) not found") from None


@route("POST", "/registered-models/create")
def create_registered_model(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    try:
        m = ctx.store.create_registered_model(
            name,
            description=a.text("description") or "",
            tags=pairs_from(a.messages("tags"), "registered model tag"),
            actor=ctx.user,
        )
    except AlreadyExistsError:
        raise AlreadyExistsError(f"Registered Model (name={name}) already exists.") from None
    return {"registered_model": registered_model(m, None)}


@route("GET", "/registered-models/get")
def get_registered_model(ctx: Context, a: Args) -> dict[str, Any]:
    return {"registered_model": _model_doc(ctx.store, _name(a))}


@route("GET", "/registered-models/search")
def search_registered_models(ctx: Context, a: Args) -> dict[str, Any]:
    text, no_prompts = _mloop_filter(a.text("filter") or "", _MODEL_ATTRIBUTES)
    page = ctx.store.search_registered_models(
        text,
        order_by=[*_mloop_order(a.strings("order_by"), _MODEL_ATTRIBUTES), "attributes.name ASC"],
        max_results=a.max_results(default=100, limit=1000),
        page_token=a.text("page_token"),
    )
    models = [m for m in page if not (no_prompts and m.tags.get(_PROMPT_TAG) == "true")]
    doc: dict[str, Any] = {
        "registered_models": [registered_model(m, _latest(ctx.store, m.name)) for m in models]
    }
    if page.next_page_token:
        doc["next_page_token"] = page.next_page_token
    return doc


@route("PATCH", "/registered-models/update")
def update_registered_model(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    _model_doc(ctx.store, name)
    if "description" in a:
        ctx.store.update_registered_model(
            name, description=a.text("description") or "", actor=ctx.user
        )
    return {"registered_model": _model_doc(ctx.store, name)}


@route("POST", "/registered-models/set-tag")
def set_registered_model_tag(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    _model_doc(ctx.store, name)
    value = a.raw("value")
    ctx.store.set_registered_model_tags(
        name, {a.text("key", required=True): "" if value is None else value}, actor=ctx.user
    )
    return {}


@route("DELETE", "/registered-models/delete-tag")
def delete_registered_model_tag(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    _model_doc(ctx.store, name)
    ctx.store.delete_registered_model_tag(name, a.text("key", required=True), actor=ctx.user)
    return {}


def _latest_versions(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    _model_doc(ctx.store, name)
    stages = [s.lower() for s in a.strings("stages")]
    latest = _latest(ctx.store, name)
    if latest is None or (stages and "none" not in stages):
        return {"model_versions": []}
    return {"model_versions": [latest]}


get_latest_versions = route("POST", "/registered-models/get-latest-versions", reads=True)(
    _latest_versions
)
get_latest_versions_get = route("GET", "/registered-models/get-latest-versions")(_latest_versions)


# ------------------------------------------------------------------------------ versions
def _snapshot(store: Store, run_id: str) -> dict[str, Any]:
    """What mloop records of a version's run at registration (as ``mloop.log_model`` does)."""
    run = store.get_run(run_id)
    datasets = []
    for i in run.inputs:
        entry: dict[str, Any] = {"sha256": i.dataset_sha256, "name": i.name, "context": i.context}
        try:
            ds = store.get_dataset(i.dataset_sha256)
            entry.update(num_rows=ds.num_rows, schema=dict(ds.schema))
        except NotFoundError:
            pass
        datasets.append(entry)
    return {
        "metrics": {k: m.last for k, m in run.metrics.items() if not k.startswith("system/")},
        "params": dict(run.params),
        "datasets": datasets,
        "git_commit": run.git_commit,
    }


def _flavors(ctx: Context, run_id: str, path: str) -> list[str]:
    """The flavors the package's ``MLmodel`` file lists (empty if it has none)."""
    if ctx.blobs is None:
        return []
    try:
        entry = ctx.store.get_artifact(run_id, f"{path}/MLmodel")
    except (NotFoundError, InvalidInputError):
        return []
    import yaml

    with ctx.blobs.open(entry.sha256) as f:
        try:
            doc = yaml.safe_load(f.read())
        except yaml.YAMLError:
            return []
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    return [str(k) for k in flavors] if isinstance(flavors, dict) else []


def _resolve_source(
    ctx: Context, source: str, run_id: str | None, model_id: str | None
) -> tuple[str, str | None, str | None, str | None]:
    """(artifact URI, run holding the files, MLflow's run_id, model_id) of a version's source."""
    if not model_id and source.startswith("models:/m-"):
        model_id = source[len("models:/") :].split("/", 1)[0]
    if model_id:
        holder = get_run(ctx.store, model_run_id(model_id))
        return f"runs:/{holder.id}/model", holder.id, holder.parent_run_id or run_id, model_id
    other = _VERSION_URI.match(source)
    if other is not None:  # a copy of a registered version (MlflowClient.copy_model_version)
        name, version, alias = other.group("name", "version", "alias")
        number = ctx.store.get_alias(name, alias).version if alias else int(version)
        origin = _get_version(ctx.store, name, number)
        declared = origin.manifest.get("mlflow") if isinstance(origin.manifest, Mapping) else None
        model_id = (declared or {}).get("model_id") if isinstance(declared, Mapping) else None
        run_id = run_id or model_version(origin).get("run_id")
        return origin.artifact_uri, origin.source_run_id, run_id, model_id
    m = _RUNS_URI.match(source) or _PROXIED.match(source)
    if m is not None:
        holder = get_run(ctx.store, m.group("run"))
        path = (m.group("path") or "").strip("/") or "model"
        return f"runs:/{holder.id}/{path}", holder.id, run_id or holder.id, None
    if run_id:
        get_run(ctx.store, run_id)
    # A location this server does not store (s3://, a file path): registered as the client gave it.
    return source, None, run_id, None


@route("POST", "/model-versions/create")
def create_model_version(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    source = a.text("source", required=True)
    artifact_uri, holder, run_id, model_id = _resolve_source(
        ctx, source, a.text("run_id"), a.text("model_id")
    )
    flavors: list[str] = []
    snapshot: dict[str, Any] = {}
    if holder is not None:
        path = artifact_uri.split("/", 3)[3] if artifact_uri.count("/") >= 3 else "model"
        flavors = _flavors(ctx, holder, path)
        snapshot = _snapshot(ctx.store, holder)
    declared = {"source": source, "run_id": run_id, "model_id": model_id, "flavors": flavors}
    main = [f for f in flavors if f != "python_function"] or flavors
    v = ctx.store.create_model_version(
        name,
        artifact_uri=artifact_uri,
        flavor=f"mlflow.{main[0]}" if main else "mlflow",
        source_run_id=holder,
        manifest={"format": "mlflow", "mlflow": {k: v for k, v in declared.items() if v}},
        description=a.text("description") or "",
        tags=pairs_from(a.messages("tags"), "model version tag"),
        actor=ctx.user,
        **snapshot,
    )
    return {"model_version": model_version(v)}


@route("GET", "/model-versions/get")
def get_model_version(ctx: Context, a: Args) -> dict[str, Any]:
    return {"model_version": model_version(_get_version(ctx.store, _name(a), _version(a)))}


@route("PATCH", "/model-versions/update")
def update_model_version(ctx: Context, a: Args) -> dict[str, Any]:
    name, version = _name(a), _version(a)
    v = _get_version(ctx.store, name, version)
    if "description" in a:
        v = ctx.store.update_model_version(
            name, version, description=a.text("description") or "", actor=ctx.user
        )
    return {"model_version": model_version(v)}


@route("DELETE", "/model-versions/delete")
def delete_model_version(ctx: Context, a: Args) -> dict[str, Any]:
    name, version = _name(a), _version(a)
    v = _get_version(ctx.store, name, version)
    # MLflow drops a deleted version's aliases with it; a protected alias still refuses to go.
    for alias in v.aliases:
        ctx.store.delete_alias(name, alias, actor=ctx.user, expected_version=version)
    ctx.store.delete_model_version(name, version, actor=ctx.user)
    return {}


@route("GET", "/model-versions/search")
def search_model_versions(ctx: Context, a: Args) -> dict[str, Any]:
    text, no_prompts = _mloop_filter(a.text("filter") or "", _VERSION_ATTRIBUTES)
    page = ctx.store.search_model_versions(
        text,
        order_by=[
            *_mloop_order(a.strings("order_by"), _VERSION_ATTRIBUTES),
            "attributes.name ASC",
            "attributes.version DESC",
        ],
        max_results=a.max_results(default=10_000, limit=50_000),
        page_token=a.text("page_token"),
    )
    versions = list(page)
    if no_prompts:
        prompts = {
            n
            for n in {v.name for v in versions}
            if ctx.store.get_registered_model(n).tags.get(_PROMPT_TAG) == "true"
        }
        versions = [v for v in versions if v.name not in prompts]
    doc: dict[str, Any] = {"model_versions": [model_version(v) for v in versions]}
    if page.next_page_token:
        doc["next_page_token"] = page.next_page_token
    return doc


def download_uri(store: Store, artifact_uri: str) -> str:
    """Where the MLflow client downloads a version's files: this server's artifact proxy."""
    m = _RUNS_URI.match(artifact_uri)
    if m is None:
        return artifact_uri
    run = get_run(store, m.group("run"))
    path = (m.group("path") or "").strip("/") or "model"
    return f"mlflow-artifacts:/{run.project_id}/{run.id}/artifacts/{path}"


@route("GET", "/model-versions/get-download-uri")
def get_model_version_download_uri(ctx: Context, a: Args) -> dict[str, Any]:
    v = _get_version(ctx.store, _name(a), _version(a))
    return {"artifact_uri": download_uri(ctx.store, v.artifact_uri)}


@route("POST", "/model-versions/set-tag")
def set_model_version_tag(ctx: Context, a: Args) -> dict[str, Any]:
    name, version = _name(a), _version(a)
    _get_version(ctx.store, name, version)
    value = a.raw("value")
    ctx.store.set_model_version_tags(
        name,
        version,
        {a.text("key", required=True): "" if value is None else value},
        actor=ctx.user,
    )
    return {}


@route("DELETE", "/model-versions/delete-tag")
def delete_model_version_tag(ctx: Context, a: Args) -> dict[str, Any]:
    name, version = _name(a), _version(a)
    _get_version(ctx.store, name, version)
    ctx.store.delete_model_version_tag(name, version, a.text("key", required=True), actor=ctx.user)
    return {}


# ------------------------------------------------------------------------------ aliases
@route("POST", "/registered-models/alias")
def set_registered_model_alias(ctx: Context, a: Args) -> dict[str, Any]:
    name, version = _name(a), _version(a)
    _get_version(ctx.store, name, version)
    ctx.store.set_alias(name, a.text("alias", required=True), version, actor=ctx.user)
    return {}


@route("DELETE", "/registered-models/alias")
def delete_registered_model_alias(ctx: Context, a: Args) -> dict[str, Any]:
    name = _name(a)
    _model_doc(ctx.store, name)
    ctx.store.delete_alias(name, a.text("alias", required=True), actor=ctx.user)
    return {}


@route("GET", "/registered-models/alias")
def get_model_version_by_alias(ctx: Context, a: Args) -> dict[str, Any]:
    name, alias = _name(a), a.text("alias", required=True)
    try:
        target = ctx.store.get_alias(name, alias)
    except NotFoundError:
        raise NotFoundError(f"Registered model alias {alias} not found.") from None
    return {"model_version": model_version(_get_version(ctx.store, name, target.version))}


# ------------------------------------------------------------------------------ not here
transition_stage = route("POST", "/model-versions/transition-stage")(
    refuse(
        "model version stages do not exist in mloop (MLflow 3 deprecated them too); "
        "point an alias at the version instead (set_registered_model_alias)."
    )
)
rename_registered_model = route("POST", "/registered-models/rename")(
    refuse(
        "registered models cannot be renamed in mloop: their name is the key of their "
        "versions' audit trail. Register the versions under a new name instead."
    )
)

delete_registered_model = route("DELETE", "/registered-models/delete")(
    refuse(
        "registered models are not deleted in mloop: a model's name keys its versions' audit "
        "trail. Delete its versions (delete_model_version) and aliases instead."
    )
)

ROUTES: tuple[MlflowRoute, ...] = (
    create_registered_model,
    get_registered_model,
    search_registered_models,
    update_registered_model,
    set_registered_model_tag,
    delete_registered_model_tag,
    get_latest_versions,
    get_latest_versions_get,
    create_model_version,
    get_model_version,
    update_model_version,
    delete_model_version,
    search_model_versions,
    get_model_version_download_uri,
    set_model_version_tag,
    delete_model_version_tag,
    set_registered_model_alias,
    delete_registered_model_alias,
    get_model_version_by_alias,
    transition_stage,
    rename_registered_model,
    delete_registered_model,
)
