"""Pipelines, their runs and step runs as records, each change announced in the event log.

A run is started (``pipeline_run_started``, which also records the pipeline and its code ref),
each step is written once when it is done (``step_finished``), and the run is finished once
(``pipeline_run_finished``); each event is appended in the transaction of its change, with subject
``pipelines/<name>``. A step run can only be added to a running run, and a finished run does not
change again. :meth:`PipelineStoreMixin.find_cached_step` is the cache's look-up: the newest step
run that produced outputs under a given key.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Mapping

from mloop.errors import InvalidInputError
from mloop.ids import RUN_ID_RE
from mloop.store._checks_base import _int, _one_of, _text
from mloop.store._common import validate_max_results
from mloop.store._events_base import PIPELINE_EVENT_TYPES
from mloop.store._pipeline_entities import (
    PIPELINE_RUN_STATUSES,
    STEP_STATUSES,
    TRIGGER_KINDS,
    Pipeline,
    PipelineRun,
    StepRun,
)
from mloop.store._validation import is_digest, is_sha256

__all__ = [
    "PIPELINE_EVENT_TYPES",
    "PipelineStoreMixin",
    "validate_pipeline_name",
    "validate_pipeline_run",
    "validate_step_run",
]

MAX_PIPELINE_NAME = 200
MAX_CODE_REF = 1000
MAX_ERROR = 8000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def validate_pipeline_name(name: object, *, what: str = "pipeline") -> str:
    """``name`` if it is 1 to 200 letters, digits and ``. _ -``, starting with a letter or digit."""
    if not isinstance(name, str) or len(name) > MAX_PIPELINE_NAME or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"`{what}` must be 1 to {MAX_PIPELINE_NAME} letters, digits and . _ - (starting "
            f"with a letter or digit); got {name!r}."
        )
    return name


def _run_id(value: object, *, what: str) -> str:
    if not isinstance(value, str) or not RUN_ID_RE.fullmatch(value):
        raise InvalidInputError(f"`{what}` must be 32 lowercase hex characters; got {value!r}.")
    return value


def _hashes(value: object, *, what: str) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"`{what}` must be a mapping of names to digests; got {value!r}.")
    for k, v in value.items():
        if not isinstance(k, str) or not _STEP_NAME.fullmatch(k) or len(k) > 255:
            raise InvalidInputError(
                f"`{what}` keys must be identifiers of at most 255 characters; got {k!r}."
            )
        if not is_digest(v):
            raise InvalidInputError(
                f"`{what}[{k!r}]` must be a blob digest ('blake3-' and 64 hex, or 64 hex); "
                f"got {v!r}."
            )


def _optional_sha(value: object, *, what: str) -> None:
    if value is not None and not is_sha256(value):
        raise InvalidInputError(f"`{what}` must be a sha256 (64 hex) or None; got {value!r}.")


def validate_pipeline_run(run: object) -> PipelineRun:
    """``run`` if it is a well-formed :class:`PipelineRun` (any status)."""
    if not isinstance(run, PipelineRun):
        raise InvalidInputError(f"`run` must be a PipelineRun; got {type(run).__name__}.")
    _run_id(run.id, what="run.id")
    validate_pipeline_name(run.pipeline, what="run.pipeline")
    _one_of(run.status, PIPELINE_RUN_STATUSES, what="run.status")
    _one_of(run.trigger, TRIGGER_KINDS, what="run.trigger")
    code_ref = _text(run.code_ref, what="run.code_ref", limit=MAX_CODE_REF)
    if not code_ref:
        raise InvalidInputError("`run.code_ref` must be a non-empty str; got ''.")
    if not isinstance(run.params, Mapping) or not all(isinstance(k, str) for k in run.params):
        raise InvalidInputError(
            f"`run.params` must be a mapping with str keys; got {type(run.params).__name__}."
        )
    _int(run.start_ms, what="run.start_ms", low=0)
    if run.end_ms is not None:
        _int(run.end_ms, what="run.end_ms", low=0)
    _text(run.reason, what="run.reason", limit=MAX_ERROR, optional=True)
    _text(run.error, what="run.error", limit=MAX_ERROR, optional=True)
    if run.resumed_from is not None:
        _run_id(run.resumed_from, what="run.resumed_from")
    if run.tracking_run_id is not None:
        _run_id(run.tracking_run_id, what="run.tracking_run_id")
    _text(run.actor, what="run.actor", limit=255, optional=True)
    return run


def validate_step_run(step: object) -> StepRun:
    """``step`` if it is a well-formed, self-consistent :class:`StepRun`.

    A ``cached`` step has ``cache_hit`` True and every other status False; a ``finished`` or
    ``cached`` step has a format for each output; ``attempts`` is 0 for cached and skipped steps,
    >= 1 for a finished one, and may be 0 for a failed one (its error says why it never ran: its
    inputs did not load, or no worker could take it).
    """
    if not isinstance(step, StepRun):
        raise InvalidInputError(f"`step` must be a StepRun; got {type(step).__name__}.")
    s = step
    _run_id(s.run_id, what="step.run_id")
    if not isinstance(s.name, str) or len(s.name) > 255 or not _STEP_NAME.fullmatch(s.name):
        raise InvalidInputError(
            f"`step.name` must be an identifier of at most 255 characters; got {s.name!r}."
        )
    if not _text(s.step, what="step.step", limit=MAX_CODE_REF):
        raise InvalidInputError("`step.step` must be a non-empty str; got ''.")
    _one_of(s.status, STEP_STATUSES, what="step.status")
    _hashes(s.inputs, what="step.inputs")
    _hashes(s.outputs, what="step.outputs")
    if not isinstance(s.output_formats, Mapping) or set(s.output_formats) != set(s.outputs):
        raise InvalidInputError(
            "`step.output_formats` must name a format for each output and no other; got "
            f"{dict(s.output_formats) if isinstance(s.output_formats, Mapping) else s.output_formats!r}"
            f" for outputs {sorted(s.outputs)}."
        )
    for k, v in s.output_formats.items():
        _text(v, what=f"step.output_formats[{k!r}]", limit=100)
    _optional_sha(s.code_hash, what="step.code_hash")
    _optional_sha(s.cache_key, what="step.cache_key")
    if not isinstance(s.cache_hit, bool) or s.cache_hit != (s.status == "cached"):
        raise InvalidInputError(
            f"`step.cache_hit` must be True exactly when `step.status` is 'cached'; got "
            f"{s.cache_hit!r} with status {s.status!r}."
        )
    _text(s.cache_note, what="step.cache_note", limit=MAX_ERROR, optional=True)
    _int(s.attempts, what="step.attempts", low=0)
    if s.status in ("cached", "skipped") and s.attempts != 0:
        raise InvalidInputError(
            f"`step.attempts` must be 0 for a {s.status} step; got {s.attempts}."
        )
    if s.status == "finished" and s.attempts < 1:
        raise InvalidInputError(
            f"`step.attempts` must be >= 1 for a finished step; got {s.attempts}."
        )
    _int(s.start_ms, what="step.start_ms", low=0)
    _int(s.end_ms, what="step.end_ms", low=0)
    _text(s.error, what="step.error", limit=MAX_ERROR, optional=True)
    if (s.status == "failed") != (s.error is not None):
        raise InvalidInputError(
            f"`step.error` must be set exactly when the step failed; got status {s.status!r} "
            f"and error {s.error!r}."
        )
    if s.tracking_run_id is not None:
        _run_id(s.tracking_run_id, what="step.tracking_run_id")
    if not isinstance(s.resources, Mapping) or not all(
        k in ("cpus", "memory", "gpus")
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v >= 0
        for k, v in s.resources.items()
    ):
        raise InvalidInputError(
            f"`step.resources` must map cpus, memory, gpus to numbers >= 0; got {s.resources!r}."
        )
    if not isinstance(s.models, tuple) or not all(
        isinstance(m, str) and m.startswith("models:/") and len(m) <= MAX_CODE_REF for m in s.models
    ):
        raise InvalidInputError(
            f"`step.models` must be a tuple of models:/<name>/<version> URIs; got {s.models!r}."
        )
    return s


class PipelineStoreMixin(abc.ABC):
    """Pipelines, pipeline runs and step runs, announced in the event log."""

    def start_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        """Record a new ``running`` run (and its pipeline, created or given the run's code ref).

        Raises
        ------
        InvalidInputError
            Malformed, or not ``running``, or with an ``end_ms``.
        AlreadyExistsError
            A run with this id exists.
        NotFoundError
            ``resumed_from`` names no run of this pipeline.
        """
        r = validate_pipeline_run(run)
        if r.status != "running" or r.end_ms is not None or r.error is not None:
            raise InvalidInputError(
                f"a new run must be 'running' with no end_ms or error; got status {r.status!r}."
            )
        return self._do_start_pipeline_run(r)

    def put_step_run(self, step: StepRun) -> StepRun:
        """Write a done step of a running run, once.

        Raises
        ------
        InvalidInputError
            See :func:`validate_step_run`.
        NotFoundError
            No such run.
        ConflictError
            The run is finished.
        AlreadyExistsError
            The run has a step of this name.
        """
        return self._do_put_step_run(validate_step_run(step))

    def finish_pipeline_run(
        self, run_id: str, *, status: str, error: str | None = None, end_ms: int | None = None
    ) -> PipelineRun:
        """Finish a running run (``finished`` or ``failed``, with ``error`` when failed).

        Raises
        ------
        NotFoundError
            No such run.
        ConflictError
            The run is already finished.
        """
        _run_id(run_id, what="run_id")
        _one_of(status, ("finished", "failed"), what="status")
        _text(error, what="error", limit=MAX_ERROR, optional=True)
        if (status == "failed") != (error is not None):
            raise InvalidInputError(
                f"`error` must be given exactly when `status` is 'failed'; got {error!r}."
            )
        if end_ms is not None:
            _int(end_ms, what="end_ms", low=0)
        return self._do_finish_pipeline_run(run_id, status, error, end_ms)

    def get_pipeline(self, name: str) -> Pipeline:
        """The pipeline ``name`` (:class:`~mloop.errors.NotFoundError` when it never ran)."""
        return self._do_get_pipeline(validate_pipeline_name(name, what="name"))

    def list_pipelines(self, *, limit: int = 1000) -> list[Pipeline]:
        """Pipelines by name."""
        return self._do_list_pipelines(validate_max_results(limit, name="limit"))

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._do_get_pipeline_run(_run_id(run_id, what="run_id"))

    def list_pipeline_runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[PipelineRun]:
        """Runs newest first (``start_ms``, then order of writing), of one pipeline or all."""
        if pipeline is not None:
            validate_pipeline_name(pipeline)
        if status is not None:
            _one_of(status, PIPELINE_RUN_STATUSES, what="status")
        validate_max_results(limit, name="limit")
        return self._do_list_pipeline_runs(pipeline, status, limit)

    def list_step_runs(self, run_id: str) -> list[StepRun]:
        """The run's step runs in order of writing (NotFoundError for an unknown run)."""
        return self._do_list_step_runs(_run_id(run_id, what="run_id"))

    def find_cached_step(self, cache_key: str) -> StepRun | None:
        """The newest ``finished`` or ``cached`` step run with ``cache_key``, or None."""
        if not is_sha256(cache_key):
            raise InvalidInputError(f"`cache_key` must be a sha256 (64 hex); got {cache_key!r}.")
        return self._do_find_cached_step(cache_key)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_start_pipeline_run(self, run: PipelineRun) -> PipelineRun: ...
    @abc.abstractmethod
    def _do_put_step_run(self, step: StepRun) -> StepRun: ...
    @abc.abstractmethod
    def _do_finish_pipeline_run(
        self, run_id: str, status: str, error: str | None, end_ms: int | None
    ) -> PipelineRun: ...
    @abc.abstractmethod
    def _do_get_pipeline(self, name: str) -> Pipeline: ...
    @abc.abstractmethod
    def _do_list_pipelines(self, limit: int) -> list[Pipeline]: ...
    @abc.abstractmethod
    def _do_get_pipeline_run(self, run_id: str) -> PipelineRun: ...
    @abc.abstractmethod
    def _do_list_pipeline_runs(
        self, pipeline: str | None, status: str | None, limit: int
    ) -> list[PipelineRun]: ...
    @abc.abstractmethod
    def _do_list_step_runs(self, run_id: str) -> list[StepRun]: ...
    @abc.abstractmethod
    def _do_find_cached_step(self, cache_key: str) -> StepRun | None: ...
