"""The closed loop: an agent that watches monitors and the event log and runs pipelines.

>>> from mloop.loop import Agent
>>> from mloop.pipelines import OnAlert, OnSchedule, Trigger

:class:`Agent` runs monitors over the inference log, reads the event log through its durable
cursor, evaluates triggers (:class:`~mloop.pipelines.Trigger`: schedules, monitor alerts, new
data, manual requests) and runs their pipelines, each cause fired once (see
:mod:`mloop.loop._agent`). ``mloop agent run --config agent.yaml`` runs one from a file.
"""

from __future__ import annotations

from mloop.loop._agent import Agent, agent_status, describe_firing, request_trigger
from mloop.loop._config import AgentConfig, load_agent_config
from mloop.loop._replay import replay
from mloop.loop._replay_data import ReplayResult, load_replay_dir
from mloop.loop._scenarios import SCENARIO_KINDS, ScenarioSpec, generate_scenario
from mloop.pipelines import ALERT_KINDS, OnAlert, OnManual, OnNewData, OnSchedule, Trigger

__all__ = [
    "ALERT_KINDS",
    "SCENARIO_KINDS",
    "Agent",
    "AgentConfig",
    "OnAlert",
    "OnManual",
    "OnNewData",
    "OnSchedule",
    "ReplayResult",
    "ScenarioSpec",
    "Trigger",
    "agent_status",
    "describe_firing",
    "generate_scenario",
    "load_agent_config",
    "load_replay_dir",
    "replay",
    "request_trigger",
]
