"""Registered models, versions, aliases and the registry's log: each route calls the store's public
method, which validates exactly as it does in-process. Every change records the actor through
:func:`~mloop.server._context.actor_for`: once auth is on, the token's principal, never the claim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mloop.server._context import actor_for
from mloop.store import UNSET, Store

__all__ = ["HANDLERS"]


def _expected(conditional: bool, expected_version: int | None) -> Any:
    return expected_version if conditional else UNSET


def _given(**kw: Any) -> dict[str, Any]:
    """The arguments a caller sent: an omitted optional one takes the method's own default."""
    return {k: v for k, v in kw.items() if v is not None}


def _create_model_version(s: Store, name: str, fields: dict[str, Any]) -> Any:
    return s.create_model_version(name, **{**fields, "actor": actor_for(fields.get("actor"))})


def _set_alias(
    s: Store,
    name: str,
    alias: str,
    version: int,
    actor: str | None,
    conditional: bool,
    expected_version: int | None,
    **kw: Any,
) -> Any:
    return s.set_alias(
        name,
        alias,
        version,
        actor=actor_for(actor),
        expected_version=_expected(conditional, expected_version),
        **_given(**kw),
    )


def _delete_alias(
    s: Store,
    name: str,
    alias: str,
    actor: str | None,
    reason: str | None,
    conditional: bool,
    expected_version: int | None,
) -> None:
    s.delete_alias(
        name,
        alias,
        actor=actor_for(actor),
        reason=reason,
        expected_version=_expected(conditional, expected_version),
    )


def _list_events(s: Store, types: str | None, **kw: Any) -> Any:
    # the query string carries the types comma-separated (no event type holds a comma)
    return s.list_events(types=[t for t in (types or "").split(",") if t] or None, **_given(**kw))


HANDLERS: dict[str, Callable[..., Any]] = {
    "create_registered_model": lambda s, name, description, tags, actor: s.create_registered_model(
        name, description=description or "", tags=tags or {}, actor=actor_for(actor)
    ),
    "search_registered_models": lambda s, **kw: s.search_registered_models(**_given(**kw)),
    "get_registered_model": lambda s, name: s.get_registered_model(name),
    "update_registered_model": lambda s, name, description, actor: s.update_registered_model(
        name, description=description, actor=actor_for(actor)
    ),
    "set_registered_model_tags": lambda s, name, tags, actor: s.set_registered_model_tags(
        name, tags, actor=actor_for(actor)
    ),
    "delete_registered_model_tag": lambda s, name, key, actor: s.delete_registered_model_tag(
        name, key, actor=actor_for(actor)
    ),
    "create_model_version": _create_model_version,
    "get_latest_version": lambda s, name: s.get_latest_version(name),
    "search_model_versions": lambda s, **kw: s.search_model_versions(**_given(**kw)),
    "get_model_version": lambda s, name, version: s.get_model_version(name, version),
    "update_model_version": lambda s, name, version, description, actor: s.update_model_version(
        name, version, description=description, actor=actor_for(actor)
    ),
    "delete_model_version": lambda s, name, version, actor, reason: s.delete_model_version(
        name, version, actor=actor_for(actor), reason=reason
    ),
    "set_model_version_tags": lambda s, name, version, tags, actor: s.set_model_version_tags(
        name, version, tags, actor=actor_for(actor)
    ),
    "delete_model_version_tag": lambda s, name, version, key, actor: s.delete_model_version_tag(
        name, version, key, actor=actor_for(actor)
    ),
    "list_aliases": lambda s, name: s.list_aliases(name),
    "get_alias": lambda s, name, alias: s.get_alias(name, alias),
    "set_alias": _set_alias,
    "delete_alias": _delete_alias,
    "set_alias_protected": lambda s, name, alias, protected, actor, reason: s.set_alias_protected(
        name, alias, protected, actor=actor_for(actor), reason=reason
    ),
    "list_events": _list_events,
    "add_event": lambda s, type, model, actor, **kw: s.add_event(
        type, model, actor=actor_for(actor), **kw
    ),
}
