"""Triggers: when a pipeline should run — a cron schedule, a monitor's alert, new data, a request.

A :class:`Trigger` names a pipeline, its parameters and what fires it (``on``):

- :class:`OnSchedule` — a cron expression (UTC, or a time zone), e.g. ``"0 3 * * *"``;
- :class:`OnAlert` — a ``monitor_alert`` event of one monitor (or any), of chosen kinds:
  ``data_drift``, ``data_quality``, ``performance`` (realized, from labels) and
  ``estimated_performance`` (CBPE's estimate, before labels). The kind is read from the metric
  the alert's rule watched (:func:`alert_kind`), which the event carries;
- :class:`OnNewData` — a file appears or changes under a local path or an fsspec URL prefix;
- :class:`OnManual` — only when asked (every trigger can also be fired by hand).

These are descriptions; the agent (:mod:`mloop.loop`) evaluates them, records each firing under an
idempotency key and runs the pipeline. Each firing has a key that only its cause determines
(:meth:`OnSchedule.key`, ...), so two agents, or one restarted, agree on it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInputError
from mloop.pipelines._graph import PipelineDef, _load
from mloop.store import validate_trigger_name

__all__ = [
    "ALERT_KINDS",
    "OnAlert",
    "OnManual",
    "OnNewData",
    "OnSchedule",
    "Trigger",
    "alert_kind",
]

# What an alert is about, from the metric its rule watched.
ALERT_KINDS: tuple[str, ...] = (
    "data_drift",
    "data_quality",
    "performance",
    "estimated_performance",
)
_DRIFT_METRICS = ("drifted", "share_drifted", "n_drifted")


def alert_kind(metric: object) -> str | None:
    """The kind of an alert whose rule watched ``metric`` (a dotted path into a window's
    metrics), or None for a metric of no kind (``n_rows``, ``index``).

    Examples
    --------
    >>> alert_kind("share_drifted"), alert_kind("columns.age.statistic")
    ('data_drift', 'data_drift')
    >>> alert_kind("quality.n_failed"), alert_kind("performance.accuracy")
    ('data_quality', 'performance')
    >>> alert_kind("estimated.roc_auc"), alert_kind("n_rows")
    ('estimated_performance', None)
    """
    if not isinstance(metric, str):
        return None
    if metric in _DRIFT_METRICS or metric.startswith("columns."):
        return "data_drift"
    head = metric.split(".", 1)[0]
    return {
        "quality": "data_quality",
        "performance": "performance",
        "estimated": "estimated_performance",
    }.get(head)


@dataclass(frozen=True)
class OnSchedule:
    """Fire at the times of a cron expression (five fields), e.g. ``"*/15 * * * *"``, read in
    ``timezone`` (an IANA name, default ``"UTC"``): ``OnSchedule("0 3 * * *", "Europe/Paris")``
    fires at 03:00 Paris time, winter and summer.

    Times missed while no agent ran collapse into one firing, at the latest of them (a nightly
    retrain that was down for three nights runs once). A new schedule starts at the first
    evaluation: it fires at the next due time, not for the past. Across a daylight-saving change
    a local time that does not exist that day fires at the first minute after the gap, and one
    that occurs twice fires once.
    """

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        from croniter import croniter

        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise InvalidInputError(
                f"`cron` must be a cron expression such as '0 3 * * *'; got {self.cron!r}."
            )
        _zone(self.timezone)

    def latest_due(self, after_ms: int, until_ms: int) -> int | None:
        """The latest due time in ``(after_ms, until_ms]`` (ms since the epoch), or None."""
        from datetime import datetime

        from croniter import croniter

        # Due times are whole minutes: step back from just after until_ms to the latest one.
        zone = _zone(self.timezone)
        it = croniter(self.cron, datetime.fromtimestamp((until_ms + 1000) / 1000, tz=zone))
        fixed_hours = "*" not in self.cron.split()[1]
        due = round(it.get_prev(float) * 1000)
        # A local time that occurs twice (summer time ends) is due at its first occurrence only,
        # for a schedule at fixed hours (as cron does); an hourly one runs in both hours.
        while due > until_ms or (
            fixed_hours and due > after_ms and datetime.fromtimestamp(due / 1000, tz=zone).fold
        ):
            due = round(it.get_prev(float) * 1000)
        return due if after_ms < due <= until_ms else None


def _zone(name: object) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidInputError(
        f"`timezone` must be an IANA time zone name such as 'UTC' or 'Europe/Paris'; got {name!r}."
    )


@dataclass(frozen=True)
class OnAlert:
    """Fire on a monitor's alerts.

    Parameters
    ----------
    monitor : str, optional
        Only this monitor's alerts (default: any monitor's).
    kinds : sequence of str
        Of :data:`ALERT_KINDS` (default: all four).
    severities : sequence of str, optional
        Only alerts of these severities (``info``, ``warning``, ``critical``).

    All the matching alerts of one monitor window fire the trigger once.
    """

    monitor: str | None = None
    kinds: tuple[str, ...] = ALERT_KINDS
    severities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.monitor is not None and (not isinstance(self.monitor, str) or not self.monitor):
            raise InvalidInputError(f"`monitor` must be a monitor's name; got {self.monitor!r}.")
        kinds = _tuple(self.kinds, what="kinds")
        bad = [k for k in kinds if k not in ALERT_KINDS]
        if bad or not kinds:
            raise InvalidInputError(
                f"`kinds` must be a non-empty list of {list(ALERT_KINDS)}; got {list(kinds)!r}."
            )
        object.__setattr__(self, "kinds", kinds)
        if self.severities is not None:
            sev = _tuple(self.severities, what="severities")
            if not sev or any(s not in ("info", "warning", "critical") for s in sev):
                raise InvalidInputError(
                    "`severities` must be a non-empty list of 'info', 'warning', 'critical'; "
                    f"got {list(sev)!r}."
                )
            object.__setattr__(self, "severities", sev)

    def matches(self, payload: Mapping[str, Any]) -> bool:
        """Whether a ``monitor_alert`` event's payload fires this trigger."""
        if self.monitor is not None and payload.get("monitor") != self.monitor:
            return False
        if self.severities is not None and payload.get("severity") not in self.severities:
            return False
        return alert_kind(payload.get("metric")) in self.kinds


@dataclass(frozen=True)
class OnNewData:
    """Fire when a file appears or changes under ``path`` (a folder, or an fsspec URL prefix
    such as ``s3://bucket/landing/``), among those matching ``pattern`` (a glob on the path
    relative to ``path``).

    A file is known by its size and modification time (or its ETag / checksum where the
    filesystem has one). What was seen is kept durably with each firing (the snapshot of the
    files), so an agent restarted, or a second one, does not fire again for the same files.
    The first evaluation fires if any file is there.
    """

    path: str
    pattern: str = "*"
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InvalidInputError(f"`path` must be a folder or URL prefix; got {self.path!r}.")
        if not isinstance(self.pattern, str) or not self.pattern:
            raise InvalidInputError(
                f"`pattern` must be a glob such as '*.parquet'; got {self.pattern!r}."
            )

    def snapshot(self) -> dict[str, str]:
        """Relative path -> fingerprint of every matching file under ``path`` now."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.path, **dict(self.storage_options))
        root = root.rstrip("/")
        if not fs.exists(root):
            return {}
        found = fs.find(root, detail=True)
        out: dict[str, str] = {}
        for name, info in found.items():
            if info.get("type") == "directory":
                continue
            rel = name[len(root) :].lstrip("/") if name.startswith(root) else name
            if not fnmatch.fnmatchcase(rel, self.pattern):
                continue
            tag = info.get("ETag") or info.get("etag") or info.get("checksum") or info.get("md5")
            mtime = (
                info.get("mtime")
                or info.get("LastModified")
                or info.get("last_modified")
                or info.get("created")  # memory://, which has no modification time
            )
            out[rel] = f"{info.get('size')}:{tag if tag is not None else mtime}"
        return out


@dataclass(frozen=True)
class OnManual:
    """Fire only when asked: ``Agent.fire(name)`` or ``mloop agent trigger NAME``."""


@dataclass(frozen=True)
class Trigger:
    """A pipeline and what runs it.

    Parameters
    ----------
    name : str
        Unique among an agent's triggers (letters, digits, ``. _ -``).
    on : OnSchedule, OnAlert, OnNewData or OnManual
    pipeline : PipelineDef or str
        A ``@pipeline`` function, or its ``"module:function"`` (imported when it first runs).
    params : mapping
        The pipeline's arguments (JSON values). A pipeline function that declares a parameter
        named ``trigger`` also receives a JSON dict describing the firing: ``kind``, ``trigger``,
        ``key``, ``reason``, ``event_id``, and by kind ``monitor``, ``window_start_ms``,
        ``window_end_ms``, ``columns``, ``alerts`` (alert), ``due_ms`` (schedule), ``path``,
        ``new``, ``changed`` (data).
    executor : {"local", "process", "ray"}
        How the pipeline's steps run.

    Examples
    --------
    >>> t = Trigger("nightly", on=OnSchedule("0 3 * * *"), pipeline="flows.churn:retrain")
    >>> t.on.cron
    '0 3 * * *'
    """

    name: str
    on: OnSchedule | OnAlert | OnNewData | OnManual
    pipeline: PipelineDef | str
    params: Mapping[str, Any] = field(default_factory=dict)
    executor: str = "local"

    def __post_init__(self) -> None:
        validate_trigger_name(self.name, what="trigger name")
        if not isinstance(self.on, (OnSchedule, OnAlert, OnNewData, OnManual)):
            raise InvalidInputError(
                f"trigger {self.name!r}: `on` must be OnSchedule, OnAlert, OnNewData or "
                f"OnManual; got {self.on!r}."
            )
        if isinstance(self.pipeline, str):
            module, sep, qualname = self.pipeline.partition(":")
            if not sep or not module or not qualname:
                raise InvalidInputError(
                    f"trigger {self.name!r}: `pipeline` must be a @pipeline function or "
                    f"'module:function'; got {self.pipeline!r}."
                )
        elif not isinstance(self.pipeline, PipelineDef):
            raise InvalidInputError(
                f"trigger {self.name!r}: `pipeline` must be a @pipeline function or "
                f"'module:function'; got {self.pipeline!r}."
            )
        if not isinstance(self.params, Mapping) or not all(isinstance(k, str) for k in self.params):
            raise InvalidInputError(
                f"trigger {self.name!r}: `params` must be a mapping of names to JSON values; "
                f"got {self.params!r}."
            )
        try:
            json.dumps(dict(self.params), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"trigger {self.name!r}: `params` must be JSON values: {exc}."
            ) from None
        if self.executor not in ("local", "process", "ray"):
            raise InvalidInputError(
                f"trigger {self.name!r}: `executor` must be 'local', 'process' or 'ray'; got "
                f"{self.executor!r}."
            )

    @property
    def kind(self) -> str:
        """What fires it: ``schedule``, ``alert``, ``data`` or ``manual``."""
        return {OnSchedule: "schedule", OnAlert: "alert", OnNewData: "data"}.get(
            type(self.on), "manual"
        )

    def load(self) -> PipelineDef:
        """The pipeline (imported from its ``module:function`` the first time)."""
        if isinstance(self.pipeline, PipelineDef):
            return self.pipeline
        module, _, qualname = self.pipeline.partition(":")
        try:
            found = _load(module, qualname)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(
                f"trigger {self.name!r}: cannot import the pipeline {self.pipeline!r}: {exc}."
            ) from None
        if not isinstance(found, PipelineDef):
            raise InvalidInputError(
                f"trigger {self.name!r}: {self.pipeline!r} is not a @pipeline function."
            )
        object.__setattr__(self, "pipeline", found)
        return found

    @property
    def pipeline_name(self) -> str:
        """The pipeline's name (imports it when given as a string)."""
        return self.load().name


def snapshot_key(trigger: str, files: Mapping[str, str]) -> str:
    """The firing key of a data trigger that saw ``files``: the same files, the same key."""
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:40]
    return f"data:{trigger}:{digest}"


def _tuple(value: object, *, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError(f"`{what}` must be a list of str; got {value!r}.")
    return tuple(value)
