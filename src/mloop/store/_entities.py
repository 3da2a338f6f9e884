"""Entities the store returns: frozen dataclasses, never ORM rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "RUN_STATUSES",
    "ArtifactEntry",
    "DatasetVersion",
    "MetricHistory",
    "MetricSeries",
    "MetricSummary",
    "Page",
    "Project",
    "Run",
    "RunInput",
    "RunStatus",
]

RunStatus = Literal["running", "finished", "failed", "killed"]
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "killed")


@dataclass(frozen=True)
class Project:
    """A project (an MLflow experiment): string id, unique name."""

    id: str
    name: str
    created_ms: int
    updated_ms: int
    lifecycle_stage: Literal["active", "deleted"] = "active"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSummary:
    """Per-(run, key) summary kept on every write: last by (step, timestamp), min and max, count."""

    key: str
    last: float
    step: int
    timestamp: int
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class RunInput:
    """A dataset version recorded as an input of a run (MLflow's ``log_inputs``)."""

    dataset_sha256: str
    name: str
    context: str = "training"


@dataclass(frozen=True)
class Run:
    """A tracked run with its params, tags, metric summaries and captured context."""

    id: str
    project_id: str
    name: str
    status: RunStatus
    start_ms: int
    end_ms: int | None
    heartbeat_ms: int | None
    parent_run_id: str | None
    user: str | None
    host: str | None
    git_commit: str | None
    git_dirty: bool | None
    lifecycle_stage: Literal["active", "deleted"] = "active"
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, MetricSummary] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[RunInput, ...] = ()

    @property
    def latest_metrics(self) -> dict[str, float]:
        """``{key: last value}``, the shape most callers want."""
        return {k: m.last for k, m in self.metrics.items()}


class MetricSeries:
    """Columnar metric points of one key: int64 steps, int64 ms timestamps, float64 values.

    The unit in which metrics travel from the SDK to a store: one series per key per batch.
    """

    __slots__ = ("steps", "timestamps", "values")

    def __init__(self, steps: Any, timestamps: Any, values: Any) -> None:
        self.steps = np.ascontiguousarray(steps, dtype=np.int64)
        self.timestamps = np.ascontiguousarray(timestamps, dtype=np.int64)
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        n = len(self.values)
        if len(self.steps) != n or len(self.timestamps) != n or self.values.ndim != 1:
            raise ValueError(
                "`steps`, `timestamps` and `values` must be 1-d and of one length; got "
                f"{len(self.steps)}, {len(self.timestamps)}, {len(self.values)}."
            )

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"MetricSeries(n={len(self)})"


@dataclass(frozen=True, eq=False)
class MetricHistory:
    """A metric's history, ordered by (step, timestamp): numpy columns ``step``, ``timestamp``, ``value``.

    ``downsampled`` is true when ``max_points`` reduced the history; ``total`` is the full point count.
    """

    key: str
    step: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray
    total: int
    downsampled: bool = False

    def __len__(self) -> int:
        return len(self.value)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"step": self.step, "timestamp": self.timestamp, "value": self.value})


@dataclass(frozen=True)
class ArtifactEntry:
    """One file of a run's artifact tree: relative POSIX path -> content-addressed blob."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetVersion:
    """A dataset version keyed by the sha256 of its content."""

    sha256: str
    name: str
    schema: Mapping[str, str]
    num_rows: int
    source_uri: str | None
    storage_uri: str
    created_ms: int
    profile: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Page:
    """One page of results; ``next_page_token`` is None on the last page."""

    items: list[Any]
    next_page_token: str | None = None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
