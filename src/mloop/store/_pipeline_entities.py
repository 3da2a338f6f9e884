"""Pipelines as records: a pipeline (name, code ref) has runs; a run has one record per step.

A :class:`PipelineRun` is created ``running`` and finished once. A :class:`StepRun` is written
once, when the step is done (executed, taken from the cache, failed or skipped): it holds the
step's lineage, the content hashes (sha256 of the stored blobs) of its inputs and outputs, the key
its cache used (or why it had none) and the tracking run it ran in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.codec import WireEntity

__all__ = [
    "PIPELINE_RUN_STATUSES",
    "STEP_STATUSES",
    "TRIGGER_KINDS",
    "Pipeline",
    "PipelineRun",
    "StepRun",
]

# ``running`` until finished; ``failed`` when a step failed after its retries.
PIPELINE_RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed")
# ``finished``: executed; ``cached``: outputs taken from an earlier step run with the same key (or,
# on resume, from the run being resumed); ``failed``: raised after its retries; ``skipped``: not
# run because a step it depends on failed.
STEP_STATUSES: tuple[str, ...] = ("finished", "cached", "failed", "skipped")
# What started a run: a person or script (``manual``), ``resume`` of a failed run, a ``schedule``,
# a monitor's alert (``alert``), new data under a path (``data``).
TRIGGER_KINDS: tuple[str, ...] = ("manual", "resume", "schedule", "alert", "data")


@dataclass(frozen=True)
class Pipeline(WireEntity):
    """A named pipeline and where its code lives.

    Attributes
    ----------
    name : str
    code_ref : str
        ``module:qualname`` of the pipeline function (what ``mloop pipelines run`` imports).
    created_ms, updated_ms : int
        ``updated_ms`` moves when a run records a new ``code_ref``.
    """

    name: str
    code_ref: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class PipelineRun(WireEntity):
    """One run of a pipeline.

    Attributes
    ----------
    id : str
        32 hex characters.
    pipeline : str
    status : str
        One of :data:`PIPELINE_RUN_STATUSES`.
    trigger : str
        One of :data:`TRIGGER_KINDS`.
    reason : str or None
        Why it was triggered (an alert's id, a path, ...).
    code_ref : str
        The pipeline's code ref when this run started.
    params : mapping
        The pipeline function's arguments (JSON values): a resume runs with the same ones.
    start_ms, end_ms : int, int or None
    error : str or None
        Why it failed (the failing step and its exception).
    resumed_from : str or None
        The failed run this one resumes.
    tracking_run_id : str or None
        The tracking run the steps logged to.
    actor : str or None
    """

    id: str
    pipeline: str
    status: str
    trigger: str
    code_ref: str
    params: Mapping[str, Any] = field(default_factory=dict)
    start_ms: int = 0
    end_ms: int | None = None
    reason: str | None = None
    error: str | None = None
    resumed_from: str | None = None
    tracking_run_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class StepRun(WireEntity):
    """One step of a pipeline run, written when it is done.

    Attributes
    ----------
    run_id : str
        The pipeline run.
    name : str
        The step's name in the run's graph (its function's name; ``name_2``... when a pipeline
        calls a step more than once).
    step : str
        ``module:qualname`` of the step function.
    status : str
        One of :data:`STEP_STATUSES`.
    inputs : mapping of str to str
        Argument name -> sha256 of its stored value (an upstream output or a literal).
    outputs : mapping of str to str
        Output name -> sha256 of its stored blob.
    output_formats : mapping of str to str
        Output name -> how the blob is encoded (``json``, ``npy``, ``parquet:pandas``, ...).
    code_hash : str or None
        sha256 of the step's code (its source and the project modules it uses).
    cache_key : str or None
        sha256 of code, inputs and outputs' names: what a later run looks up. None when a key
        could not be computed (``cache_note`` says why) or the cache was off.
    cache_hit : bool
    cache_note : str or None
        Why the step was not cached, or where a hit came from.
    attempts : int
        How many times the step function was called (0 for cached and skipped steps, and for a
        failed step that never ran: its inputs did not load, or no worker could take it).
    start_ms, end_ms : int
    error : str or None
    tracking_run_id : str or None
        The tracking run the step ran in (for a hit, the run that computed the outputs).
    resources : mapping of str to number
        What the step declared it needs: ``cpus``, ``memory`` (bytes), ``gpus``; empty when it
        declared nothing.
    models : tuple of str
        The model versions the step registered while it ran (``models:/<name>/<version>``).
    """

    run_id: str
    name: str
    step: str
    status: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    output_formats: Mapping[str, str] = field(default_factory=dict)
    code_hash: str | None = None
    cache_key: str | None = None
    cache_hit: bool = False
    cache_note: str | None = None
    attempts: int = 0
    start_ms: int = 0
    end_ms: int = 0
    error: str | None = None
    tracking_run_id: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    models: tuple[str, ...] = ()
