"""Deployments and their revisions over HTTP.

Deployment names (``[A-Za-z0-9][A-Za-z0-9_.-]*``) never hold a ``/``, so they travel in the path.
A spec travels as the validated fields the hook receives; an update sends only the fields it
changes (``canary: null`` removes the canary), which the server applies with the same
``update_deployment``. What carries a free-text ``reason`` is a ``POST`` with a body, so a long
reason cannot overflow a request line (delete is ``POST .../delete``, as for model versions).
"""

from __future__ import annotations

from typing import Any

from mloop.store._deploy_base import Deployment, DeploymentRevision
from mloop.store._http._endpoint import Endpoint

__all__ = ["DEPLOYMENT_ENDPOINTS", "HttpDeploymentsMixin"]

_DEPLOYMENT = "/deployments/{name}"
_Text = str | None

_E = Endpoint
DEPLOYMENT_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("create_deployment", "POST", "/deployments",
       {"name": str, "spec": dict[str, Any], "actor": _Text}, Deployment,
       summary="Create a deployment at revision 1 (model, canary, shadow, sticky_key, config)"),
    _E("list_deployments", "GET", "/deployments", {}, list[Deployment],
       summary="Every deployment, by name"),
    _E("get_deployment", "GET", _DEPLOYMENT, {"name": str}, Deployment,
       summary="One deployment"),
    _E("update_deployment", "PATCH", _DEPLOYMENT,
       {"name": str, "changes": dict[str, Any], "actor": _Text, "reason": _Text,
        "expected_revision": int | None},
       Deployment, summary="Change the given fields as one new revision"),
    _E("rollback_deployment", "POST", _DEPLOYMENT + "/rollback",
       {"name": str, "to_revision": int | None, "actor": _Text, "reason": _Text}, Deployment,
       summary="Restore an earlier revision's spec as a new revision"),
    _E("list_deployment_revisions", "GET", _DEPLOYMENT + "/revisions", {"name": str},
       list[DeploymentRevision], summary="A deployment's revisions, oldest first"),
    _E("delete_deployment", "POST", _DEPLOYMENT + "/delete",
       {"name": str, "actor": _Text, "reason": _Text}, None,
       summary="Remove a deployment and its revisions (the log keeps their events)"),
)  # fmt: skip


class HttpDeploymentsMixin:
    """The deployment part of the store contract, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_create_deployment(
        self, name: str, spec: dict[str, Any], actor: str | None
    ) -> Deployment:
        return self._call("create_deployment", name=name, spec=spec, actor=actor)

    def _do_get_deployment(self, name: str) -> Deployment:
        return self._call("get_deployment", name=name)

    def _do_list_deployments(self) -> list[Deployment]:
        return self._call("list_deployments")

    def _do_update_deployment(
        self,
        name: str,
        changes: dict[str, Any],
        actor: str | None,
        reason: str | None,
        expected_revision: int | None,
    ) -> Deployment:
        return self._call(
            "update_deployment",
            name=name,
            changes=changes,
            actor=actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def _do_rollback_deployment(
        self, name: str, to_revision: int | None, actor: str | None, reason: str | None
    ) -> Deployment:
        return self._call(
            "rollback_deployment", name=name, to_revision=to_revision, actor=actor, reason=reason
        )

    def _do_list_deployment_revisions(self, name: str) -> list[DeploymentRevision]:
        return self._call("list_deployment_revisions", name=name)

    def _do_delete_deployment(self, name: str, actor: str | None, reason: str | None) -> None:
        self._call("delete_deployment", name=name, actor=actor, reason=reason)
