"""Registered models, versions, aliases and the registry's event log over HTTP.

Model names (``[A-Za-z0-9_][\\w.-]*``) and aliases (``[\\w-]+``) never hold a ``/``, so they travel
in the path, percent-quoted; tag keys may hold one, so they travel in the query string. What
carries a free-text ``reason`` (up to 8,000 characters) is a ``POST`` with a body, never a query
string, so a long reason cannot overflow a request line.

``expected_version`` has three meanings in the contract: unset (move unconditionally), ``None``
(the alias must not exist yet) and a version. JSON has no "unset", so the wire adds
``conditional``: false means unset, true means ``expected_version`` is the condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Required, TypedDict

from mloop.errors import MloopError
from mloop.store._entities import Page
from mloop.store._filter import Comparison, OrderKey
from mloop.store._http._endpoint import Endpoint
from mloop.store._registry_base import VersionFields, _Unset
from mloop.store._registry_entities import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)

__all__ = ["REGISTRY_ENDPOINTS", "HttpRegistryMixin", "NewVersion"]


def _page_of_models(data: Any) -> Page[RegisteredModel]:
    return Page.from_dict(data, item=RegisteredModel.from_dict)


def _page_of_versions(data: Any) -> Page[ModelVersion]:
    return Page.from_dict(data, item=ModelVersion.from_dict)


def _join_types(types: Sequence[str] | None) -> str | None:
    """Event types as one query value (no event type holds a comma)."""
    return None if not types else ",".join(str(t) for t in types)


# A new version's fields on the wire: those of ``VersionFields``, where only ``artifact_uri`` and
# ``flavor`` are required, as in ``create_model_version`` (the HTTP store sends them all). Written
# with the functional syntax so that ``Required`` is seen despite postponed annotations.
NewVersion = TypedDict(  # noqa: UP013 - see above
    "NewVersion",
    {
        "artifact_uri": Required[str],
        "flavor": Required[str],
        "source_run_id": str | None,
        "signature": dict[str, Any] | None,
        "manifest": dict[str, Any],
        "metrics": dict[str, float],
        "params": dict[str, str],
        "datasets": list[dict[str, Any]],
        "git_commit": str | None,
        "description": str,
        "tags": dict[str, str],
        "actor": str | None,
    },
    total=False,
)

_Actor = str | None
_MODEL = "/models/{name}"
_VERSION = _MODEL + "/versions/{version}"
_ALIAS = _MODEL + "/aliases/{alias}"

_E = Endpoint
REGISTRY_ENDPOINTS: tuple[Endpoint, ...] = (
    # ------------------------------------------------------------------ models
    _E("create_registered_model", "POST", "/models",
       {"name": str, "description": str | None, "tags": dict[str, str] | None, "actor": _Actor},
       RegisteredModel, summary="Create a registered model"),
    _E("search_registered_models", "POST", "/models/search",
       {"filter": str | None, "order_by": list[str] | None, "max_results": int | None,
        "page_token": str | None},
       Page[RegisteredModel], decode=_page_of_models,
       role="read", summary="Registered models matching a filter on name and tags, one page"),
    _E("get_registered_model", "GET", _MODEL, {"name": str}, RegisteredModel,
       summary="One registered model, with its aliases and latest version"),
    _E("update_registered_model", "PATCH", _MODEL,
       {"name": str, "description": str, "actor": _Actor}, RegisteredModel,
       summary="Change a registered model's description"),
    _E("set_registered_model_tags", "POST", _MODEL + "/tags",
       {"name": str, "tags": dict[str, str], "actor": _Actor}, None,
       summary="Set tags of a registered model (overwriting)"),
    _E("delete_registered_model_tag", "DELETE", _MODEL + "/tags",
       {"name": str, "key": str, "actor": _Actor}, None,
       summary="Delete a tag of a registered model (the key in the query string)"),
    # ------------------------------------------------------------------ versions
    _E("create_model_version", "POST", _MODEL + "/versions",
       {"name": str, "fields": NewVersion}, ModelVersion,
       summary="Register a new version (the model is created if needed)"),
    _E("get_latest_version", "GET", _MODEL + "/latest-version", {"name": str}, ModelVersion,
       summary="The highest version that is not deleted"),
    _E("search_model_versions", "POST", "/model-versions/search",
       {"filter": str | None, "name": str | None, "order_by": list[str] | None,
        "max_results": int | None, "page_token": str | None, "include_deleted": bool},
       Page[ModelVersion], decode=_page_of_versions,
       role="read", summary="Model versions matching a filter, one page"),
    _E("get_model_version", "GET", _VERSION, {"name": str, "version": int}, ModelVersion,
       summary="One model version"),
    _E("update_model_version", "PATCH", _VERSION,
       {"name": str, "version": int, "description": str, "actor": _Actor}, ModelVersion,
       summary="Change a version's description"),
    _E("delete_model_version", "POST", _VERSION + "/delete",
       {"name": str, "version": int, "actor": _Actor, "reason": str | None}, ModelVersion,
       summary="Soft-delete a version (refused while an alias points at it)"),
    _E("set_model_version_tags", "POST", _VERSION + "/tags",
       {"name": str, "version": int, "tags": dict[str, str], "actor": _Actor}, None,
       summary="Set tags of a model version (overwriting)"),
    _E("delete_model_version_tag", "DELETE", _VERSION + "/tags",
       {"name": str, "version": int, "key": str, "actor": _Actor}, None,
       summary="Delete a tag of a model version (the key in the query string)"),
    # ------------------------------------------------------------------ aliases
    _E("list_aliases", "GET", _MODEL + "/aliases", {"name": str}, list[ModelAlias],
       summary="A model's aliases"),
    _E("get_alias", "GET", _ALIAS, {"name": str, "alias": str}, ModelAlias,
       summary="Where an alias points"),
    _E("set_alias", "PUT", _ALIAS,
       {"name": str, "alias": str, "version": int, "actor": _Actor, "reason": str | None,
        "conditional": bool, "expected_version": int | None, "report_id": str | None,
        "event_type": Literal["alias_set", "alias_rollback"] | None},
       ModelAlias,
       summary="Point an alias at a version; with conditional, only if it points at "
               "expected_version (null: nowhere), else 409 with the current version"),
    _E("delete_alias", "POST", _ALIAS + "/delete",
       {"name": str, "alias": str, "actor": _Actor, "reason": str | None,
        "conditional": bool, "expected_version": int | None},
       None, summary="Remove an alias (conditionally, as set_alias)"),
    _E("set_alias_protected", "POST", _ALIAS + "/protection",
       {"name": str, "alias": str, "protected": bool, "actor": _Actor, "reason": str | None},
       ModelAlias, summary="Protect an alias (it then moves only with a reason) or unprotect it"),
    # ------------------------------------------------------------------ the registry's log
    _E("list_events", "GET", "/registry/events",
       {"model": str | None, "alias": str | None, "types": str | None, "after_id": int | None,
        "limit": int | None, "newest_first": bool},
       list[RegistryEvent],
       summary="The registry's audit log from a cursor (types: comma-separated)"),
    _E("add_event", "POST", "/registry/events",
       {"type": str, "model": str, "version": int | None, "alias": str | None,
        "actor": _Actor, "before": Any, "after": Any, "reason": str | None,
        "report_id": str | None},
       RegistryEvent, summary="Append an event to the registry log (e.g. promotion_overridden)"),
)  # fmt: skip


def _condition(expected_version: int | _Unset | None) -> dict[str, Any]:
    if isinstance(expected_version, _Unset):
        return {"conditional": False, "expected_version": None}
    return {"conditional": True, "expected_version": expected_version}


class HttpRegistryMixin:
    """The registry part of the store contract, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    # ------------------------------------------------------------------ models
    def _do_create_registered_model(
        self, name: str, description: str, tags: dict[str, str], actor: str | None
    ) -> RegisteredModel:
        return self._call(
            "create_registered_model", name=name, description=description, tags=tags, actor=actor
        )

    def _do_get_registered_model(self, name: str) -> RegisteredModel:
        return self._call("get_registered_model", name=name)

    def search_registered_models(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        """The filter is parsed on the server (its errors come back with their positions)."""
        return self._call(
            "search_registered_models",
            filter=filter,
            order_by=None if order_by is None else [str(o) for o in order_by],
            max_results=max_results,
            page_token=page_token,
        )

    def _do_search_registered_models(
        self, ast: list[Comparison], order: list[OrderKey], limit: int, offset: int
    ) -> tuple[list[RegisteredModel], bool]:
        raise MloopError("the HTTP store searches on the server: call search_registered_models")

    def _do_update_registered_model(
        self, name: str, description: str, actor: str | None
    ) -> RegisteredModel:
        return self._call(
            "update_registered_model", name=name, description=description, actor=actor
        )

    def _do_set_model_tags(
        self, name: str, version: int | None, tags: dict[str, str], actor: str | None
    ) -> None:
        if version is None:
            self._call("set_registered_model_tags", name=name, tags=tags, actor=actor)
        else:
            self._call("set_model_version_tags", name=name, version=version, tags=tags, actor=actor)

    def _do_delete_model_tag(
        self, name: str, version: int | None, key: str, actor: str | None
    ) -> None:
        if version is None:
            self._call("delete_registered_model_tag", name=name, key=key, actor=actor)
        else:
            self._call("delete_model_version_tag", name=name, version=version, key=key, actor=actor)

    # ------------------------------------------------------------------ versions
    def _do_create_model_version(self, name: str, fields: VersionFields) -> ModelVersion:
        return self._call("create_model_version", name=name, fields=fields)

    def _do_get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call("get_model_version", name=name, version=version)

    def _do_get_latest_version(self, name: str) -> ModelVersion:
        return self._call("get_latest_version", name=name)

    def search_model_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """The filter is parsed on the server (its errors come back with their positions)."""
        return self._call(
            "search_model_versions",
            filter=filter,
            name=name,
            order_by=None if order_by is None else [str(o) for o in order_by],
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )

    def _do_search_model_versions(
        self,
        ast: list[Comparison],
        order: list[OrderKey],
        limit: int,
        offset: int,
        include_deleted: bool,
    ) -> tuple[list[ModelVersion], bool]:
        raise MloopError("the HTTP store searches on the server: call search_model_versions")

    def _do_update_model_version(
        self, name: str, version: int, description: str, actor: str | None
    ) -> ModelVersion:
        return self._call(
            "update_model_version",
            name=name,
            version=version,
            description=description,
            actor=actor,
        )

    def _do_delete_model_version(
        self, name: str, version: int, actor: str | None, reason: str | None
    ) -> ModelVersion:
        return self._call(
            "delete_model_version", name=name, version=version, actor=actor, reason=reason
        )

    # ------------------------------------------------------------------ aliases
    def _do_set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
        report_id: str | None,
        event_type: Literal["alias_set", "alias_rollback"],
    ) -> ModelAlias:
        return self._call(
            "set_alias",
            name=name,
            alias=alias,
            version=version,
            actor=actor,
            reason=reason,
            report_id=report_id,
            event_type=event_type,
            **_condition(expected_version),
        )

    def _do_delete_alias(
        self,
        name: str,
        alias: str,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
    ) -> None:
        self._call(
            "delete_alias",
            name=name,
            alias=alias,
            actor=actor,
            reason=reason,
            **_condition(expected_version),
        )

    def _do_get_alias(self, name: str, alias: str) -> ModelAlias:
        return self._call("get_alias", name=name, alias=alias)

    def _do_list_aliases(self, name: str) -> list[ModelAlias]:
        return self._call("list_aliases", name=name)

    def _do_set_alias_protected(
        self, name: str, alias: str, protected: bool, actor: str | None, reason: str | None
    ) -> ModelAlias:
        return self._call(
            "set_alias_protected",
            name=name,
            alias=alias,
            protected=protected,
            actor=actor,
            reason=reason,
        )

    # ------------------------------------------------------------------ events
    def _do_list_events(
        self,
        model: str | None,
        alias: str | None,
        types: list[str] | None,
        after_id: int,
        limit: int,
        newest_first: bool,
    ) -> list[RegistryEvent]:
        return self._call(
            "list_events",
            model=model,
            alias=alias,
            types=_join_types(types),
            after_id=after_id,
            limit=limit,
            newest_first=newest_first,
        )

    def _do_add_event(
        self,
        type: str,
        model: str,
        version: int | None,
        alias: str | None,
        actor: str | None,
        before: Any,
        after: Any,
        reason: str | None,
        report_id: str | None,
    ) -> RegistryEvent:
        return self._call(
            "add_event",
            type=type,
            model=model,
            version=version,
            alias=alias,
            actor=actor,
            before=before,
            after=after,
            reason=reason,
            report_id=report_id,
        )
