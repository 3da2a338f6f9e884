"""Entities the store returns: frozen dataclasses, never ORM rows.

Each has ``to_dict()`` (its wire form: strict JSON, non-finite floats as ``"NaN"``/``"Infinity"``)
and ``from_dict()`` (the inverse, decoding by field types), so they travel between a server and
the HTTP store through :mod:`mloop.codec` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from mloop._lazy import LazyModule
from mloop.codec import WireEntity, array_from_wire, dataclass_from_wire, to_wire
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


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
class Project(WireEntity):
    """A project (an MLflow experiment): string id, unique name."""

    id: str
    name: str
    created_ms: int
    updated_ms: int
    lifecycle_stage: Literal["active", "deleted"] = "active"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSummary(WireEntity):
    """Per-(run, key) summary kept on every write: last by (step, timestamp), min and max, count."""

    key: str
    last: float
    step: int
    timestamp: int
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class RunInput(WireEntity):
    """A dataset version recorded as an input of a run (MLflow's ``log_inputs``)."""

    dataset_sha256: str
    name: str
    context: str = "training"


@dataclass(frozen=True)
class Run(WireEntity):
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

    def _wire_(self) -> dict[str, Any]:
        return {"steps": self.steps, "timestamps": self.timestamps, "values": self.values}

    def to_dict(self) -> dict[str, Any]:
        """The three columns as lists (values in wire form: ``"NaN"``, ``"Infinity"``...)."""
        return to_wire(self, what="MetricSeries")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricSeries:
        """The inverse of :meth:`to_dict`: int64 steps and timestamps, float64 values, exactly."""
        if not isinstance(data, Mapping) or not {"steps", "timestamps", "values"} <= set(data):
            raise InvalidInputError(
                "`MetricSeries` must be a JSON object with `steps`, `timestamps` and `values`; "
                f"got {data!r:.80}."
            )
        try:
            return cls(
                array_from_wire(data["steps"], np.int64, what="MetricSeries.steps"),
                array_from_wire(data["timestamps"], np.int64, what="MetricSeries.timestamps"),
                array_from_wire(data["values"], np.float64, what="MetricSeries.values"),
            )
        except InvalidInputError:
            raise
        except ValueError as exc:
            raise InvalidInputError(f"`MetricSeries` is not valid: {exc}") from None


@dataclass(frozen=True, eq=False)
class MetricHistory(WireEntity):
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricHistory:
        """The inverse of :meth:`to_dict`: int64 ``step``/``timestamp``, float64 ``value``."""
        return dataclass_from_wire(cls, data, arrays=_HISTORY_DTYPES)


_HISTORY_DTYPES = {"step": "int64", "timestamp": "int64", "value": "float64"}


@dataclass(frozen=True)
class ArtifactEntry(WireEntity):
    """One file of a run's artifact tree: relative POSIX path -> content-addressed blob."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetVersion(WireEntity):
    """A dataset version keyed by the sha256 of its content."""

    sha256: str
    name: str
    schema: Mapping[str, str]
    num_rows: int
    source_uri: str | None
    storage_uri: str
    created_ms: int
    profile: Mapping[str, Any] | None = None


_Item = TypeVar("_Item")


@dataclass(frozen=True)
class Page(Generic[_Item]):
    """One page of results; ``next_page_token`` is None on the last page."""

    items: list[_Item]
    next_page_token: str | None = None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def _wire_(self) -> dict[str, Any]:
        return {"items": self.items, "next_page_token": self.next_page_token}

    def to_dict(self) -> dict[str, Any]:
        """``{"items": [...], "next_page_token": ...}``, each item in its wire form."""
        return to_wire(self, what="Page")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, item: Callable[[Any], _Item]) -> Page[_Item]:
        """The inverse of :meth:`to_dict`; ``item`` builds each item (e.g. ``Run.from_dict``)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
            raise InvalidInputError(
                f"`Page` must be a JSON object with an `items` list; got {data!r:.80}."
            )
        token = data.get("next_page_token")
        if token is not None and not isinstance(token, str):
            raise InvalidInputError(
                f"`Page.next_page_token` must be a string or null; got {token!r}."
            )
        return cls([item(x) for x in data["items"]], token)
