"""Pipelines: ``@step`` functions composed by a ``@pipeline``, cached on inputs, parameters and code.

>>> from mloop.pipelines import pipeline, step
>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> double(3)  # outside a pipeline, a step is its function
6

Inside a ``@pipeline`` function, calls to steps build a graph; ``run()`` executes it (in this
process, a process pool or as Ray tasks), stores each output in the artifact store by content hash, records the
run and each step in the store (with events), and reuses the outputs of an earlier step run whose
code, inputs and parameters hash the same. ``resume(run_id)`` re-runs a failed run from its
failure. ``sweep()`` runs N training configurations at once, each a nested tracking run.
"""

from __future__ import annotations

from mloop.pipelines._codehash import CodeHash, code_hash
from mloop.pipelines._engine import PipelineFailedError, PipelineResult, resume, run
from mloop.pipelines._executors import (
    Executor,
    InProcessExecutor,
    ProcessPoolExecutor,
    StepOutcome,
    StepTask,
)
from mloop.pipelines._graph import OutputRef, PipelineDef, Step, pipeline, step
from mloop.pipelines._sweep import SweepResult, Trial, sweep
from mloop.pipelines._triggers import (
    ALERT_KINDS,
    OnAlert,
    OnManual,
    OnNewData,
    OnSchedule,
    Trigger,
    alert_kind,
    snapshot_key,
)
from mloop.pipelines._values import (
    Serializer,
    UnstorableValueError,
    decode_value,
    encode_value,
    register_serializer,
)

__all__ = [
    "ALERT_KINDS",
    "CodeHash",
    "Executor",
    "InProcessExecutor",
    "OnAlert",
    "OnManual",
    "OnNewData",
    "OnSchedule",
    "OutputRef",
    "PipelineDef",
    "PipelineFailedError",
    "PipelineResult",
    "ProcessPoolExecutor",
    "RayExecutor",
    "Serializer",
    "Step",
    "StepOutcome",
    "StepTask",
    "SweepResult",
    "Trial",
    "Trigger",
    "UnstorableValueError",
    "alert_kind",
    "code_hash",
    "decode_value",
    "encode_value",
    "pipeline",
    "register_serializer",
    "resume",
    "run",
    "snapshot_key",
    "step",
    "sweep",
]


def __getattr__(name: str) -> object:
    # RayExecutor imports Ray: only when asked for, never with this package.
    if name == "RayExecutor":
        from mloop.pipelines._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
