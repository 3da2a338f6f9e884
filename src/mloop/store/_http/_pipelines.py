"""Pipelines over HTTP: each record travels whole in the wire codec's form and is validated again
by the server's store (role ``write`` to start, add to or finish a run, ``read`` to read)."""

from __future__ import annotations

from typing import Any

from mloop.store._http._endpoint import Endpoint
from mloop.store._pipeline_entities import Pipeline, PipelineRun, StepRun

__all__ = ["PIPELINE_ENDPOINTS", "HttpPipelinesMixin"]

_E = Endpoint
PIPELINE_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("start_pipeline_run", "PUT", "/pipeline-runs/{run_id}",
       {"run_id": str, "run": PipelineRun}, PipelineRun,
       summary="Record a new running pipeline run (and its pipeline)"),
    _E("put_step_run", "PUT", "/pipeline-runs/{run_id}/steps/{name}",
       {"run_id": str, "name": str, "step": StepRun}, StepRun,
       summary="Write a done step of a running pipeline run (once)"),
    _E("finish_pipeline_run", "POST", "/pipeline-runs/{run_id}/finish",
       {"run_id": str, "status": str, "error": str | None, "end_ms": int | None}, PipelineRun,
       summary="Finish a running pipeline run"),
    _E("get_pipeline", "GET", "/pipelines/{name}", {"name": str}, Pipeline,
       summary="One pipeline"),
    _E("list_pipelines", "GET", "/pipelines", {"limit": int | None}, list[Pipeline],
       summary="Pipelines by name"),
    _E("get_pipeline_run", "GET", "/pipeline-runs/{run_id}", {"run_id": str}, PipelineRun,
       summary="One pipeline run"),
    _E("list_pipeline_runs", "GET", "/pipeline-runs",
       {"pipeline": str | None, "status": str | None, "limit": int | None}, list[PipelineRun],
       summary="Pipeline runs, newest first"),
    _E("list_step_runs", "GET", "/pipeline-runs/{run_id}/steps", {"run_id": str},
       list[StepRun], summary="A pipeline run's step runs, in order of writing"),
    _E("find_cached_step", "GET", "/step-runs/by-cache-key/{cache_key}", {"cache_key": str},
       StepRun | None, summary="The newest step run that produced outputs under a cache key"),
)  # fmt: skip


class HttpPipelinesMixin:
    """Pipeline records, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_start_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        return self._call("start_pipeline_run", run_id=run.id, run=run)

    def _do_put_step_run(self, step: StepRun) -> StepRun:
        return self._call("put_step_run", run_id=step.run_id, name=step.name, step=step)

    def _do_finish_pipeline_run(
        self, run_id: str, status: str, error: str | None, end_ms: int | None
    ) -> PipelineRun:
        return self._call(
            "finish_pipeline_run", run_id=run_id, status=status, error=error, end_ms=end_ms
        )

    def _do_get_pipeline(self, name: str) -> Pipeline:
        return self._call("get_pipeline", name=name)

    def _do_list_pipelines(self, limit: int) -> list[Pipeline]:
        return self._call("list_pipelines", limit=limit)

    def _do_get_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._call("get_pipeline_run", run_id=run_id)

    def _do_list_pipeline_runs(
        self, pipeline: str | None, status: str | None, limit: int
    ) -> list[PipelineRun]:
        return self._call("list_pipeline_runs", pipeline=pipeline, status=status, limit=limit)

    def _do_list_step_runs(self, run_id: str) -> list[StepRun]:
        return self._call("list_step_runs", run_id=run_id)

    def _do_find_cached_step(self, cache_key: str) -> StepRun | None:
        return self._call("find_cached_step", cache_key=cache_key)
