"""Model registry: packaged models ("flavors") with signatures, versions, aliases, audit trail,
lineage, and the event log with webhooks."""

from __future__ import annotations

from mloop.registry._api import load_model, log_model, register_model
from mloop.registry._frames import cast_rule
from mloop.registry._lineage import Lineage, VersionDiff
from mloop.registry._package import PackagedModel, load_model_dir
from mloop.registry._pending import PendingModelVersion
from mloop.registry._registry import MANIFEST_FILE, Registry
from mloop.registry._signature import ExtraColumnsWarning, ModelSignature, validate_input
from mloop.registry._uris import ModelRef, RunArtifactRef, parse_model_uri
from mloop.registry._webhooks import WebhookDispatcher, verify_signature
from mloop.store import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "MANIFEST_FILE",
    "ExtraColumnsWarning",
    "Lineage",
    "ModelAlias",
    "ModelRef",
    "ModelSignature",
    "ModelVersion",
    "PackagedModel",
    "PendingModelVersion",
    "RegisteredModel",
    "Registry",
    "RegistryEvent",
    "RunArtifactRef",
    "VersionDiff",
    "Webhook",
    "WebhookDelivery",
    "WebhookDispatcher",
    "cast_rule",
    "load_model",
    "load_model_dir",
    "log_model",
    "parse_model_uri",
    "register_model",
    "validate_input",
    "verify_signature",
]
