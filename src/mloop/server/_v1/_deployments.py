"""Deployments and their revisions: each route calls the store's public method, which validates
exactly as it does in-process. Every change records the actor through
:func:`~mloop.server._context.actor_for`: once auth is on, the token's name, never the claim."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.store import Store

__all__ = ["HANDLERS"]

# The spec fields a deployment takes (``mloop.store``'s SPEC_FIELDS), checked by name here so an
# unknown field is refused as bad input, not passed on as an unexpected keyword.
_SPEC_FIELDS = ("model", "canary", "canary_percent", "shadow", "sticky_key", "config")


def _fields(given: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(_SPEC_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"`{what}` has unknown field(s) {unknown}; a deployment's fields are "
            f"{list(_SPEC_FIELDS)}.",
            details={"unknown": unknown},
        )
    return dict(given)


def _create(s: Store, name: str, spec: dict[str, Any], actor: str | None) -> Any:
    fields = _fields(spec, what="spec")
    if "model" not in fields:
        raise InvalidInputError("`spec` needs `model`: the model URI the deployment serves.")
    return s.create_deployment(name, **fields, actor=actor_for(actor))


def _update(
    s: Store,
    name: str,
    changes: dict[str, Any],
    actor: str | None,
    reason: str | None,
    expected_revision: int | None,
) -> Any:
    return s.update_deployment(
        name,
        **_fields(changes, what="changes"),
        actor=actor_for(actor),
        reason=reason,
        expected_revision=expected_revision,
    )


HANDLERS: dict[str, Callable[..., Any]] = {
    "create_deployment": _create,
    "list_deployments": lambda s: s.list_deployments(),
    "get_deployment": lambda s, name: s.get_deployment(name),
    "update_deployment": _update,
    "rollback_deployment": lambda s, name, to_revision, actor, reason: s.rollback_deployment(
        name, to_revision=to_revision, actor=actor_for(actor), reason=reason
    ),
    "list_deployment_revisions": lambda s, name: s.list_deployment_revisions(name),
    "delete_deployment": lambda s, name, actor, reason: s.delete_deployment(
        name, actor=actor_for(actor), reason=reason
    ),
}
