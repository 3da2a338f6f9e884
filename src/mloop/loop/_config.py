"""The agent's YAML file (optional: the Python API is the primary one), validated with pydantic.

::

    agent: {name: prod, interval: 30s, lease: 60s}
    monitors:
      - name: churn
        deployment: churn-api
        reference: data/train.parquet      # a table or a saved profile
        window: 1h
        lateness: 5min
        rules: ["share_drifted >= 0.3", "quality.n_failed >= 1", "performance.accuracy < 0.8"]
    triggers:
      - name: retrain
        pipeline: flows.churn:retrain      # module:function of a @pipeline
        params: {model: churn}
        on: {alert: {monitor: churn, kinds: [data_drift, data_quality, performance]}}
      - name: nightly
        pipeline: flows.churn:retrain
        on: {schedule: "0 3 * * *", timezone: Europe/Paris}   # default UTC
      - name: landing
        pipeline: flows.churn:ingest
        on: {new_data: {path: "s3://bucket/landing/", pattern: "*.parquet"}}

A mistake names the key and its line: ``agent.yaml, line 12: `triggers.0.on.alert.kinds.1` must
be one of ...``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mloop._yamlfile import explain, load_with_lines, read_text
from mloop.errors import InvalidInputError
from mloop.pipelines import ALERT_KINDS, OnAlert, OnManual, OnNewData, OnSchedule, Trigger

__all__ = ["AgentConfig", "AgentConfigError", "load_agent_config", "parse_agent_config"]

_Kind = Literal["data_drift", "data_quality", "performance", "estimated_performance"]


class AgentConfigError(InvalidInputError):
    """The agent's file is not valid; the message names each bad key and its line."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSection(_Model):
    name: str = "agent"
    interval: str = "30s"
    lease: str = "60s"


class MonitorSpec(_Model):
    name: str | None = None
    deployment: str
    reference: str
    window: str = "1h"
    lateness: str = "1min"
    rules: list[str] = Field(default_factory=list)
    columns: list[str] | None = None
    y_true: str | None = "label"
    y_pred: str | None = "prediction"
    y_score: str | None = None


class AlertOn(_Model):
    monitor: str | None = None
    kinds: list[_Kind] | None = None  # default: every kind
    severities: list[Literal["info", "warning", "critical"]] | None = None


class NewDataOn(_Model):
    path: str
    pattern: str = "*"


class OnSpec(_Model):
    alert: AlertOn | None = None
    schedule: str | None = None
    timezone: str | None = None  # of the schedule (IANA name); default UTC
    new_data: NewDataOn | None = None
    manual: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> OnSpec:
        given = [k for k in ("alert", "schedule", "new_data", "manual") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "needs exactly one of alert, schedule, new_data, manual; got "
                + (", ".join(given) or "none")
            )
        if self.timezone is not None and self.schedule is None:
            raise ValueError("`timezone` goes with `schedule` only")
        return self


class TriggerSpec(_Model):
    name: str
    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict)
    on: OnSpec
    executor: Literal["local", "process", "ray"] = "local"


class AgentConfig(_Model):
    """The agent file as validated data; :meth:`build_triggers` and :meth:`build_monitors` make
    the objects :class:`~mloop.loop.Agent` takes."""

    agent: AgentSection = Field(default_factory=AgentSection)
    monitors: list[MonitorSpec] = Field(default_factory=list)
    triggers: list[TriggerSpec]

    def build_triggers(self) -> list[Trigger]:
        out = []
        for t in self.triggers:
            on: Any
            if t.on.alert is not None:
                a = t.on.alert
                sev = None if a.severities is None else tuple(a.severities)
                kinds = ALERT_KINDS if a.kinds is None else tuple(a.kinds)
                on = OnAlert(monitor=a.monitor, kinds=kinds, severities=sev)
            elif t.on.schedule is not None:
                on = OnSchedule(t.on.schedule, timezone=t.on.timezone or "UTC")
            elif t.on.new_data is not None:
                on = OnNewData(t.on.new_data.path, pattern=t.on.new_data.pattern)
            else:
                on = OnManual()
            out.append(
                Trigger(t.name, on=on, pipeline=t.pipeline, params=t.params, executor=t.executor)
            )
        return out

    def build_monitors(self, *, store: Any, blobstore: Any, base: Path | None = None) -> list[Any]:
        from mloop.monitoring import InferenceMonitor

        out = []
        for m in self.monitors:
            ref = Path(m.reference)
            if base is not None and not ref.is_absolute() and "://" not in m.reference:
                ref = base / ref
            options: dict[str, Any] = {"rules": list(m.rules)}
            if m.columns is not None:
                options["columns"] = list(m.columns)
            out.append(
                InferenceMonitor(
                    m.deployment,
                    reference=str(ref),
                    window=m.window,
                    lateness=m.lateness,
                    name=m.name,
                    store=store,
                    blobstore=blobstore,
                    y_true=m.y_true,
                    y_pred=m.y_pred,
                    y_score=m.y_score,
                    **options,
                )
            )
        return out


def parse_agent_config(text: str, *, source: str = "agent.yaml") -> AgentConfig:
    """Validate the YAML ``text`` of an agent file; errors name each bad key and its line."""
    loaded = load_with_lines(text, source=source, error=AgentConfigError)
    if loaded is None or not isinstance(loaded[0], dict):
        raise AgentConfigError(
            f"{source}: an agent file is a mapping with `triggers` (and `monitors`, `agent`)."
        )
    data, lines, _ = loaded
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise AgentConfigError(explain(exc, lines, source, AgentConfig)) from None
    try:
        config.build_triggers()  # the triggers' own checks (cron, names, params) with the file
    except InvalidInputError as exc:
        raise AgentConfigError(f"{source}: {exc}") from None
    return config


def load_agent_config(path: str | os.PathLike[str]) -> AgentConfig:
    """The agent file at ``path`` (see :func:`parse_agent_config`)."""
    return parse_agent_config(
        read_text(path, what="agent file", error=AgentConfigError), source=str(path)
    )
