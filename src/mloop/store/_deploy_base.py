"""Deployments as records: which model URIs a named endpoint serves, and how traffic is split.

A deployment's spec (``model``, ``canary`` + ``canary_percent``, ``shadow``, ``sticky_key``,
``config``) changes only through this contract. Every change is a new *revision* (1 on create,
+1 on every update and rollback), kept as history, and an event of the log
(``deployment_created``, ``deployment_updated``, ``deployment_rollback``, ``deployment_deleted``,
subject ``deployments/<name>``) appended in the transaction of the change: servers follow it.

Model URIs are stored as given in canonical form: ``models:/<name>/<version>``,
``models:/<name>/latest`` or ``models:/<name>@<alias>``. An alias stays an alias reference (the
server resolves it, and follows it when it moves); the store does not check that it resolves
(that is the deployment service's job, which sees the registry).
"""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._registry_base import UNSET, _Unset, validate_alias, validate_model_name
from mloop.store._validation import validate_text

__all__ = [
    "SPEC_FIELDS",
    "Deployment",
    "DeploymentRevision",
    "DeploymentStoreMixin",
    "merge_spec",
    "validate_deployment_name",
    "validate_model_uri",
]

SPEC_FIELDS: tuple[str, ...] = (
    "model",
    "canary",
    "canary_percent",
    "shadow",
    "sticky_key",
    "config",
)
MAX_CONFIG_BYTES = 65_536
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_STICKY = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))")


@dataclass(frozen=True)
class Deployment(WireEntity):
    """A named endpoint: the model it serves, an optional canary and shadow, serve options.

    ``canary_percent`` of the requests (0 < p < 100) go to ``canary``; with ``sticky_key`` the
    split is decided by the hash of that request header or field, so a caller keeps its side.
    ``shadow`` sees every request off the request path; its predictions are logged, never
    returned. ``config`` holds serve options (``log_sample``, ``max_batch_size``, ...).
    """

    name: str
    model: str
    canary: str | None
    canary_percent: float
    shadow: str | None
    sticky_key: str | None
    config: Mapping[str, Any]
    revision: int
    created_ms: int
    updated_ms: int
    created_by: str | None
    updated_by: str | None

    @property
    def spec(self) -> dict[str, Any]:
        """The fields a revision records (``SPEC_FIELDS``)."""
        return {f: getattr(self, f) for f in SPEC_FIELDS}

    @property
    def subject(self) -> str:
        """The subject of this deployment's events in the log."""
        return f"deployments/{self.name}"


@dataclass(frozen=True)
class DeploymentRevision(WireEntity):
    """One revision of a deployment's spec: who made it, when and why."""

    name: str
    revision: int
    spec: Mapping[str, Any]
    actor: str | None
    reason: str | None
    created_ms: int


# ---------------------------------------------------------------------------------------- validation


def validate_deployment_name(name: object) -> str:
    """1 to 128 characters of letters, digits, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            "a deployment name must be 1 to 128 characters of letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit; got {name!r}."
        )
    return name


def validate_model_uri(uri: object, *, what: str = "model") -> str:
    """A registered model's URI in canonical form; anything else is refused, naming the forms."""
    m = _URI.fullmatch(uri) if isinstance(uri, str) else None
    forms = "models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"
    if m is None:
        raise InvalidInputError(f"`{what}` must be a model URI, {forms}; got {uri!r}.")
    validate_model_name(m.group("name"))
    if m.group("alias") is not None:
        validate_alias(m.group("alias"))
    elif m.group("version") != "latest" and not re.fullmatch(
        r"[1-9][0-9]{0,9}", m.group("version")
    ):
        raise InvalidInputError(
            f"`{what}` must name a version as an int >= 1 or 'latest' ({forms}); got {uri!r}."
        )
    assert isinstance(uri, str)
    return uri


def _optional_uri(uri: object, *, what: str) -> str | None:
    return None if uri is None else validate_model_uri(uri, what=what)


def _percent(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(
            f"`canary_percent` must be a number in (0, 100) (0 without a canary); got {value!r}."
        )
    return float(value)


def _sticky_key(key: object) -> str | None:
    if key is not None and (not isinstance(key, str) or not _STICKY.fullmatch(key)):
        raise InvalidInputError(
            "`sticky_key` must be a request header or field name: 1 to 255 characters of "
            f"letters, digits, '_', '.' and '-'; got {key!r}."
        )
    return key


def _config(config: object) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidInputError(
            f"`config` must be a mapping of serve options; got {type(config).__name__}."
        )
    for k in config:
        if not isinstance(k, str) or not k or len(k) > 250:
            raise InvalidInputError(
                f"`config` keys must be non-empty strings of at most 250 characters; got {k!r}."
            )
    try:
        text = json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`config` must hold JSON values only: {exc}.") from None
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise InvalidInputError(
            f"`config` must be at most {MAX_CONFIG_BYTES} bytes as JSON; got {len(text.encode())}."
        )
    validate_text(text, what="`config`")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _actor(actor: object) -> str | None:
    if actor is not None and (not isinstance(actor, str) or len(actor) > 255):
        raise InvalidInputError(f"`actor` must be a str of at most 255 characters; got {actor!r}.")
    return None if actor is None else validate_text(actor, what="`actor`")


def _reason(reason: object) -> str | None:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 8000):
        raise InvalidInputError(
            f"`reason` must be a str of at most 8000 characters; got {type(reason).__name__}."
        )
    return None if reason is None else validate_text(reason, what="`reason`")


def _revision(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise InvalidInputError(f"`{name}` must be an int >= 1; got {value!r}.")
    return value


_FIELD_CHECKS = {
    "model": lambda v: validate_model_uri(v, what="model"),
    "canary": lambda v: _optional_uri(v, what="canary"),
    "canary_percent": _percent,
    "shadow": lambda v: _optional_uri(v, what="shadow"),
    "sticky_key": _sticky_key,
    "config": _config,
}


def _check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The rules between fields: a canary needs 0 < canary_percent < 100, no canary needs 0."""
    p = spec["canary_percent"]
    if spec["canary"] is None and p != 0:
        raise InvalidInputError(
            f"`canary_percent` must be 0 without a canary; got {p!r}. Set `canary` too."
        )
    if spec["canary"] is not None and not 0 < p < 100:
        raise InvalidInputError(f"`canary_percent` must be in (0, 100) with a canary; got {p!r}.")
    return spec


def merge_spec(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with validated ``changes`` applied, checked as a whole.

    Removing the canary (``canary=None``) sets ``canary_percent`` to 0 unless it is given.
    Backends call it inside the transaction that reads ``current``.
    """
    spec = {**current, **changes}
    if "canary" in changes and changes["canary"] is None and "canary_percent" not in changes:
        spec["canary_percent"] = 0.0
    return _check_spec(spec)


def _changes(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _FIELD_CHECKS[k](v) for k, v in fields.items() if not isinstance(v, _Unset)}


# ---------------------------------------------------------------------------------------- contract


class DeploymentStoreMixin(abc.ABC):
    """Deployments, their revisions, and the events that announce every change."""

    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        canary: str | None = None,
        canary_percent: float = 0.0,
        shadow: str | None = None,
        sticky_key: str | None = None,
        config: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Deployment:
        """Create deployment ``name`` at revision 1 (:class:`AlreadyExistsError` if it exists)."""
        spec = _check_spec(
            _changes(
                {
                    "model": model,
                    "canary": canary,
                    "canary_percent": canary_percent,
                    "shadow": shadow,
                    "sticky_key": sticky_key,
                    "config": config,
                }
            )
        )
        return self._do_create_deployment(validate_deployment_name(name), spec, _actor(actor))

    def get_deployment(self, name: str) -> Deployment:
        return self._do_get_deployment(validate_deployment_name(name))

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        return self._do_list_deployments()

    def update_deployment(
        self,
        name: str,
        *,
        model: str | _Unset = UNSET,
        canary: str | _Unset | None = UNSET,
        canary_percent: float | _Unset = UNSET,
        shadow: str | _Unset | None = UNSET,
        sticky_key: str | _Unset | None = UNSET,
        config: Mapping[str, Any] | _Unset | None = UNSET,
        actor: str | None = None,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Change the given fields as one new revision; the others keep their values.

        ``expected_revision`` guards against a concurrent change (:class:`ConflictError` when the
        deployment is at another revision). A change that leaves the spec as it is makes no
        revision and no event; it returns the deployment unchanged. ``config`` is replaced as a
        whole.
        """
        changes = _changes(
            {
                "model": model,
                "canary": canary,
                "canary_percent": canary_percent,
                "shadow": shadow,
                "sticky_key": sticky_key,
                "config": config,
            }
        )
        if not changes:
            raise InvalidInputError(
                f"nothing to change in deployment {name!r}: give at least one of "
                f"{', '.join(SPEC_FIELDS)}."
            )
        expected = (
            None
            if expected_revision is None
            else _revision(expected_revision, name="expected_revision")
        )
        return self._do_update_deployment(
            validate_deployment_name(name), changes, _actor(actor), _reason(reason), expected
        )

    def rollback_deployment(
        self,
        name: str,
        *,
        to_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Restore the spec of ``to_revision`` (default: the revision before the current one)
        as a new revision. The history is kept: a rollback is undone by another rollback."""
        target = None if to_revision is None else _revision(to_revision, name="to_revision")
        return self._do_rollback_deployment(
            validate_deployment_name(name), target, _actor(actor), _reason(reason)
        )

    def list_deployment_revisions(self, name: str) -> list[DeploymentRevision]:
        """The deployment's revisions, oldest first (:class:`NotFoundError` if it does not exist)."""
        return self._do_list_deployment_revisions(validate_deployment_name(name))

    def delete_deployment(
        self, name: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Remove the deployment and its revisions; the log keeps its events."""
        self._do_delete_deployment(validate_deployment_name(name), _actor(actor), _reason(reason))

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_create_deployment(
        self, name: str, spec: dict[str, Any], actor: str | None
    ) -> Deployment: ...
    @abc.abstractmethod
    def _do_get_deployment(self, name: str) -> Deployment: ...
    @abc.abstractmethod
    def _do_list_deployments(self) -> list[Deployment]: ...
    @abc.abstractmethod
    def _do_update_deployment(
        self,
        name: str,
        changes: dict[str, Any],
        actor: str | None,
        reason: str | None,
        expected_revision: int | None,
    ) -> Deployment:
        """Apply ``changes`` with :func:`merge_spec` to the spec read in the same transaction."""

    @abc.abstractmethod
    def _do_rollback_deployment(
        self, name: str, to_revision: int | None, actor: str | None, reason: str | None
    ) -> Deployment: ...
    @abc.abstractmethod
    def _do_list_deployment_revisions(self, name: str) -> list[DeploymentRevision]: ...
    @abc.abstractmethod
    def _do_delete_deployment(self, name: str, actor: str | None, reason: str | None) -> None: ...
