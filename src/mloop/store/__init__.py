"""Metadata persistence: one ``Store`` contract, SQL backends (SQLite default, PostgreSQL)."""

from __future__ import annotations

from mloop.store._backends import BackendFactory, create_store, register_backend, registered_schemes
from mloop.store._base import MAX_RESULTS_LIMIT, Store, downsample_minmax
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
    Event,
    EventCursor,
    EventListener,
    PollingListener,
)
from mloop.store._filter import Comparison, OrderKey, parse_filter, parse_order_by
from mloop.store._follow import Follower
from mloop.store._open import open_store, store_exists
from mloop.store._sql import SqlStore

__all__ = [
    "EVENT_TYPES",
    "MAX_RESULTS_LIMIT",
    "RUN_STATUSES",
    "ArtifactEntry",
    "BackendFactory",
    "Comparison",
    "DatasetVersion",
    "Event",
    "EventCursor",
    "EventListener",
    "Follower",
    "MetricHistory",
    "MetricSeries",
    "MetricSummary",
    "OrderKey",
    "Page",
    "PollingListener",
    "Project",
    "Run",
    "RunInput",
    "SqlStore",
    "Store",
    "create_store",
    "downsample_minmax",
    "open_store",
    "parse_filter",
    "parse_order_by",
    "register_backend",
    "registered_schemes",
    "store_exists",
]
