"""A pipeline that records each firing it was run for (the agent tests' stand-in for a retrain)."""

from __future__ import annotations

from typing import Any

from mloop.pipelines import pipeline, step

__all__ = ["CALLS", "record", "retrain"]

CALLS: list[dict[str, Any]] = []


@step
def record(trigger: dict, label: str) -> int:
    CALLS.append({"trigger": trigger, "label": label})
    return len(CALLS)


@pipeline
def retrain(trigger: dict | None = None, label: str = "x") -> Any:
    return record(trigger or {}, label)
