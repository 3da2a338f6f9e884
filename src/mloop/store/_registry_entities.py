"""Registry entities: registered models, versions, aliases, audit events, webhooks.

Each has ``to_dict()`` (its wire form) and ``from_dict()`` (the inverse) through :mod:`mloop.codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.codec import WireEntity

__all__ = [
    "EVENT_TYPES",
    "ModelAlias",
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "Webhook",
    "WebhookDelivery",
]

EventType = Literal[
    "model_created",
    "model_updated",
    "version_registered",
    "version_updated",
    "version_deleted",
    "alias_set",
    "alias_deleted",
    "alias_rollback",
    "alias_protected",
    "tag_set",
    "tag_deleted",
    "report_attached",
    # A promotion forced past a failing or missing check report (``mloop promote --force``).
    "promotion_overridden",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RegisteredModel(WireEntity):
    """A named model; its versions are numbered 1, 2, 3..."""

    name: str
    description: str
    created_ms: int
    updated_ms: int
    created_by: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True)
class ModelVersion(WireEntity):
    """One registered version: where its files are, what produced it, and a snapshot of its run."""

    name: str
    version: int
    artifact_uri: str
    flavor: str
    source_run_id: str | None
    created_ms: int
    updated_ms: int
    created_by: str | None
    description: str = ""
    signature: Mapping[str, Any] | None = None
    manifest: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[Mapping[str, Any], ...] = ()
    git_commit: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    deleted: bool = False

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def pending(self) -> bool:
        """False: this version is registered (``log_model`` offline returns a pending one)."""
        return False


@dataclass(frozen=True)
class ModelAlias(WireEntity):
    name: str
    alias: str
    version: int
    protected: bool
    updated_ms: int
    updated_by: str | None


@dataclass(frozen=True)
class RegistryEvent(WireEntity):
    """One entry of the ordered registry event log (the audit trail). ``id`` is the cursor."""

    id: int
    ts_ms: int
    type: str
    model: str
    version: int | None
    alias: str | None
    actor: str | None
    before: Any
    after: Any
    reason: str | None
    report_id: str | None


@dataclass(frozen=True)
class Webhook(WireEntity):
    id: int
    url: str
    events: tuple[str, ...]
    model: str | None
    active: bool
    created_ms: int
    cursor: int


@dataclass(frozen=True)
class WebhookDelivery(WireEntity):
    id: int
    webhook_id: int
    event_id: int
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    ts_ms: int
    duration_ms: int
