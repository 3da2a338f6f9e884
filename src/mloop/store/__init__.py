"""Metadata persistence: one ``Store`` contract, SQL backends (SQLite default, PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop.store._backends import BackendFactory, create_store, register_backend, registered_schemes
from mloop.store._base import MAX_RESULTS_LIMIT, Store, downsample_minmax
from mloop.store._check_entities import (
    CHECK_KINDS,
    CHECK_STATUSES,
    REPORT_KINDS,
    CheckReport,
    CheckResult,
)
from mloop.store._checks_base import validate_check_report
from mloop.store._deploy_base import (
    Deployment,
    DeploymentRevision,
    validate_deployment_name,
    validate_model_uri,
)
from mloop.store._entities import (
    RUN_STATUSES,
    ArtifactEntry,
    DatasetVersion,
    MetricHistory,
    MetricSeries,
    MetricSummary,
    Page,
    Project,
    Run,
    RunInput,
)
from mloop.store._events_base import (
    EVENT_TYPES,
    MAX_EVENT_WAIT_S,
    Event,
    EventCursor,
    EventListener,
    PollingListener,
)
from mloop.store._filter import Comparison, OrderKey, parse_filter, parse_order_by
from mloop.store._follow import Follower
from mloop.store._inference_base import InferenceChunk, InferenceLabel, validate_request_id
from mloop.store._media_base import (
    MEDIA_KINDS,
    MediaItem,
    validate_media_item,
)
from mloop.store._open import open_store, store_exists
from mloop.store._pipeline_entities import (
    PIPELINE_RUN_STATUSES,
    STEP_STATUSES,
    TRIGGER_KINDS,
    Pipeline,
    PipelineRun,
    StepRun,
)
from mloop.store._pipelines_base import (
    validate_pipeline_name,
    validate_pipeline_run,
    validate_step_run,
)
from mloop.store._registry_base import UNSET, validate_alias, validate_model_name
from mloop.store._registry_entities import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    Webhook,
    WebhookDelivery,
)
from mloop.store._runs_base import NewRun, RunFields
from mloop.store._serving_base import (
    LATENCY_BOUNDS_MS,
    ServingMinute,
    latency_quantile,
    validate_serving_minute,
)
from mloop.store._sql import SqlStore, describe_uri, upgrade_store
from mloop.store._tokens_base import (
    TOKEN_ROLES,
    ApiToken,
    NewToken,
    hash_token_secret,
    is_token_secret,
)
from mloop.store._triggers_base import (
    FIRING_KINDS,
    FIRING_STATUSES,
    TriggerFiring,
    validate_trigger_firing,
    validate_trigger_name,
)
from mloop.store._validation import (
    is_digest,
    is_sha256,
    storable_text,
    validate_artifact_path,
    validate_digest,
    validate_key,
    validate_metric_value,
    validate_name,
    validate_params,
    validate_run_id,
    validate_sha256,
    validate_tags,
    validate_text,
)

__all__ = [
    "API_PREFIX",
    "CHECK_KINDS",
    "CHECK_STATUSES",
    "ENDPOINTS",
    "EVENT_TYPES",
    "FIRING_KINDS",
    "FIRING_STATUSES",
    "LATENCY_BOUNDS_MS",
    "MAX_EVENT_WAIT_S",
    "MAX_RESULTS_LIMIT",
    "MEDIA_KINDS",
    "PIPELINE_RUN_STATUSES",
    "REPORT_KINDS",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "TOKEN_ROLES",
    "TRIGGER_KINDS",
    "UNSET",
    "ApiToken",
    "ArtifactEntry",
    "BackendFactory",
    "CheckReport",
    "CheckResult",
    "Comparison",
    "DatasetVersion",
    "Deployment",
    "DeploymentRevision",
    "Endpoint",
    "Event",
    "EventCursor",
    "EventListener",
    "Follower",
    "HttpStore",
    "InferenceChunk",
    "InferenceLabel",
    "MediaItem",
    "MetricHistory",
    "MetricSeries",
    "MetricSummary",
    "ModelAlias",
    "ModelVersion",
    "NewRun",
    "NewToken",
    "OrderKey",
    "Page",
    "Pipeline",
    "PipelineRun",
    "PollingListener",
    "Project",
    "RegisteredModel",
    "RegistryEvent",
    "Run",
    "RunFields",
    "RunInput",
    "ServingMinute",
    "SqlStore",
    "StepRun",
    "Store",
    "TriggerFiring",
    "Webhook",
    "WebhookDelivery",
    "create_store",
    "describe_uri",
    "downsample_minmax",
    "hash_token_secret",
    "is_digest",
    "is_sha256",
    "is_token_secret",
    "latency_quantile",
    "open_store",
    "parse_filter",
    "parse_order_by",
    "register_backend",
    "registered_schemes",
    "storable_text",
    "store_exists",
    "upgrade_store",
    "validate_alias",
    "validate_artifact_path",
    "validate_check_report",
    "validate_deployment_name",
    "validate_digest",
    "validate_key",
    "validate_media_item",
    "validate_metric_value",
    "validate_model_name",
    "validate_model_uri",
    "validate_name",
    "validate_params",
    "validate_pipeline_name",
    "validate_pipeline_run",
    "validate_request_id",
    "validate_run_id",
    "validate_serving_minute",
    "validate_sha256",
    "validate_step_run",
    "validate_tags",
    "validate_text",
    "validate_trigger_firing",
    "validate_trigger_name",
]


if TYPE_CHECKING:
    from mloop.store._http import API_PREFIX, ENDPOINTS, Endpoint, HttpStore

_HTTP_NAMES = ("API_PREFIX", "ENDPOINTS", "Endpoint", "HttpStore")


def __getattr__(name: str) -> object:
    # The HTTP store (and httpx) load only when a server URI is used.
    if name in _HTTP_NAMES:
        from mloop.store import _http

        return getattr(_http, name)
    raise AttributeError(f"module 'mloop.store' has no attribute {name!r}")
