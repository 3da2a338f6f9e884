"""Where step functions execute: in this process, or in a pool of processes for parallel branches.

The engine decides what runs (inputs hashed, cache looked up, records written, all in the calling
process); an :class:`Executor` only executes a :class:`StepTask`: load the inputs it is given by
hash, call the function with its retries, store the outputs, and answer a :class:`StepOutcome`.
A new executor (a cluster) implements :meth:`Executor.submit` and :meth:`Executor.close`; Ray's is
in ``_ray.py`` and is imported only when asked for (``executor="ray"``).
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextlib
import functools
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.pipelines._graph import Step
from mloop.pipelines._values import decode_value, encode_value

__all__ = [
    "Executor",
    "InProcessExecutor",
    "ProcessPoolExecutor",
    "StepOutcome",
    "StepTask",
    "execute_task",
]

MAX_ERROR = 8000


@dataclass
class StepTask:
    """One step to execute.

    ``values`` are inputs at hand (in this process); ``stored`` are inputs to load from the
    artifact store as ``(sha256, format)``. ``lineage`` holds the tags a model version registered
    by the step carries (its pipeline, pipeline run and step). ``tracking`` is the pipeline's
    tracking run and the settings that reach its store: a step executed in another process runs
    with that run attached and active (``mloop.log``, ``mloop.log_model`` go there, as they do in
    the calling process).
    """

    step: Step
    values: dict[str, Any]
    stored: dict[str, tuple[str, str]]
    blob_uri: str
    token: str | None = None
    keep_values: bool = True
    lineage: dict[str, str] = field(default_factory=dict)
    tracking: tuple[str, Settings] | None = None


@dataclass
class StepOutcome:
    """What an execution produced: stored outputs ``{name: (sha256, format)}``, or an error, and
    the model versions the step registered (``models:/<name>/<version>``)."""

    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)
    values: dict[str, Any] | None = None
    attempts: int = 0
    error: str | None = None
    start_ms: int = 0
    end_ms: int = 0
    models: list[str] = field(default_factory=list)


def _error_text(exc: BaseException) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(tb[-6:]) if len(tb) > 6 else "".join(tb)
    return text[-MAX_ERROR:]


def execute_task(task: StepTask, sleep: Callable[[float], None] = time.sleep) -> StepOutcome:
    """Run ``task`` here: inputs, the function with retries and backoff, outputs stored."""
    from mloop.artifacts import BlobStore

    start = time.time_ns() // 1_000_000
    blobs = BlobStore(task.blob_uri, token=task.token)
    step = task.step
    kwargs = dict(task.values)
    try:
        for name, (sha, fmt) in task.stored.items():
            with blobs.open(sha) as f:
                kwargs[name] = decode_value(fmt, f.read())
        step.check_inputs(kwargs)
    except Exception as exc:  # a boundary: the step fails with the reason, recorded
        end = time.time_ns() // 1_000_000
        return StepOutcome(attempts=0, error=_error_text(exc), start_ms=start, end_ms=end)
    from mloop.tracking import registration_context

    attempts = 0
    delay = step.retry_delay
    with contextlib.ExitStack() as scope:
        if task.tracking is not None:
            try:
                scope.enter_context(_tracking(*task.tracking))
            except Exception as exc:  # a boundary: the run is out of reach; the step never ran
                end = time.time_ns() // 1_000_000
                return StepOutcome(
                    attempts=0,
                    error=f"the pipeline's tracking run cannot be attached: {_error_text(exc)}",
                    start_ms=start,
                    end_ms=end,
                )
        models = scope.enter_context(registration_context(task.lineage))
        while True:
            attempts += 1
            try:
                result = step.fn(**kwargs)
                break
            except Exception as exc:  # the user's code: retried, then recorded
                if attempts > step.retries:
                    end = time.time_ns() // 1_000_000
                    return StepOutcome(attempts=attempts, error=_error_text(exc),
                                       start_ms=start, end_ms=end, models=models)  # fmt: skip
                sleep(delay)
                delay *= 2
    try:
        values = step.split_outputs(result)
        outputs = {}
        for name, value in values.items():
            fmt, data = encode_value(value)
            sha, _ = blobs.put_bytes(data)
            outputs[name] = (sha, fmt)
    except InvalidInputError as exc:  # a wrong type, or a value that cannot be stored
        end = time.time_ns() // 1_000_000
        return StepOutcome(attempts=attempts, error=f"InvalidInputError: {exc}", start_ms=start,
                           end_ms=end, models=models)  # fmt: skip
    end = time.time_ns() // 1_000_000
    return StepOutcome(
        outputs=outputs,
        values=values if task.keep_values else None,
        attempts=attempts,
        start_ms=start,
        end_ms=end,
        models=models,
    )


@contextlib.contextmanager
def _tracking(run_id: str, settings: Settings) -> Iterator[None]:
    """The pipeline's tracking run, attached and active while the step runs in a worker (status
    untouched, logs flushed at the end); as it is when it is already active here."""
    from mloop.tracking import active_run, attached_run

    current = active_run()
    if current is not None and current.id == run_id:
        yield
        return
    with attached_run(run_id, settings=settings):
        yield


class Executor(abc.ABC):
    """Executes step tasks; the engine waits on the futures it returns."""

    #: False when tasks run in other processes (inputs then travel by hash, not by value).
    shares_memory: bool = True

    @abc.abstractmethod
    def submit(self, task: StepTask) -> cf.Future[StepOutcome]: ...

    def close(self) -> None:  # noqa: B027 - an executor without resources need not override it
        """Release workers. Idempotent."""


class InProcessExecutor(Executor):
    """Each step in the calling thread, one after the other (``sleep`` waits between retries)."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        fut: cf.Future[StepOutcome] = cf.Future()
        fut.set_result(execute_task(task, self._sleep))
        return fut


class ProcessPoolExecutor(Executor):
    """Independent steps at once in worker processes; inputs and outputs go through the artifact
    store by hash (nothing is pickled but the task: the step by reference and literal inputs).

    A step's ``resources["cpus"]`` (default 1) counts against the pool's ``max_workers`` CPUs:
    steps wait, in order, until enough are free, so the pool never runs more CPUs' worth of steps
    than it has workers (a step asking for more than that runs alone).
    """

    shares_memory = False

    def __init__(self, *, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise InvalidInputError(f"`max_workers` must be an int >= 1; got {max_workers!r}.")
        import multiprocessing

        self.capacity = max_workers or os.cpu_count() or 1
        # spawn: a worker does not inherit the caller's threads and locks (the tracking writer,
        # a database pool), whatever the platform's default.
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.capacity, mp_context=multiprocessing.get_context("spawn")
        )
        self._lock = threading.Lock()
        self._used = 0.0
        self._queue: deque[tuple[StepTask, float, cf.Future[StepOutcome]]] = deque()

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        task.keep_values = False
        need = min(float(task.step.resources.get("cpus", 1)), float(self.capacity))
        outer: cf.Future[StepOutcome] = cf.Future()
        with self._lock:
            self._queue.append((task, need, outer))
        self._dispatch()
        return outer

    def _dispatch(self) -> None:
        ready = []
        with self._lock:
            while self._queue and (
                self._used == 0 or self._used + self._queue[0][1] <= self.capacity + 1e-9
            ):
                item = self._queue.popleft()
                self._used += item[1]
                ready.append(item)
        for task, need, outer in ready:
            if not outer.set_running_or_notify_cancel():
                self._release(need)
                continue
            try:
                inner = self._pool.submit(execute_task, task)
            except RuntimeError as exc:  # the pool was shut down or broke
                self._release(need)
                outer.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(self._done, need=need, outer=outer))

    def _release(self, need: float) -> None:
        with self._lock:
            self._used = max(0.0, self._used - need)

    def _done(self, inner: cf.Future[StepOutcome], need: float,
              outer: cf.Future[StepOutcome]) -> None:  # fmt: skip
        self._release(need)
        exc = (
            cf.CancelledError("the pool was shut down") if inner.cancelled() else inner.exception()
        )
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())
        self._dispatch()

    def close(self) -> None:
        with self._lock:
            queued, self._queue = list(self._queue), deque()
        for _, _, outer in queued:
            outer.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
