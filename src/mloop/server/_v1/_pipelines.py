"""Pipeline records: stored through the store's public methods (which validate again), with a
run's actor taken from the token once auth is on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.store import PipelineRun, StepRun, Store

__all__ = ["HANDLERS"]


def _start(s: Store, run_id: str, run: PipelineRun) -> PipelineRun:
    if run.id != run_id:
        raise InvalidInputError(f"the run's id {run.id!r} is not the one in the path, {run_id!r}.")
    actor = actor_for(run.actor)
    if actor != run.actor:
        run = dataclasses.replace(run, actor=actor)
    return s.start_pipeline_run(run)


def _put_step(s: Store, run_id: str, name: str, step: StepRun) -> StepRun:
    if (step.run_id, step.name) != (run_id, name):
        raise InvalidInputError(
            f"the step run {step.run_id}/{step.name} is not the one in the path, {run_id}/{name}."
        )
    return s.put_step_run(step)


HANDLERS: dict[str, Callable[..., Any]] = {
    "start_pipeline_run": _start,
    "put_step_run": _put_step,
    "finish_pipeline_run": lambda s, run_id, status, error=None, end_ms=None: s.finish_pipeline_run(
        run_id, status=status, error=error, end_ms=end_ms
    ),
    "get_pipeline": lambda s, name: s.get_pipeline(name),
    "list_pipelines": lambda s, limit: s.list_pipelines(limit=1000 if limit is None else limit),
    "get_pipeline_run": lambda s, run_id: s.get_pipeline_run(run_id),
    "list_pipeline_runs": lambda s, pipeline, status, limit: s.list_pipeline_runs(
        pipeline, status=status, limit=100 if limit is None else limit
    ),
    "list_step_runs": lambda s, run_id: s.list_step_runs(run_id),
    "find_cached_step": lambda s, cache_key: s.find_cached_step(cache_key),
}
