"""Steps as Ray tasks (``run(pdef, executor="ray")`` or ``executor=RayExecutor(address=...)``).

The engine is the same as for the other executors: it hashes, looks up the cache and records in
the calling process; a Ray task only runs :func:`execute_task` on a worker, which reads its inputs
from and writes its outputs to the artifact store named by URI (never a live object), so a Ray
node needs to reach the store that the caller's settings name. A step's ``resources`` become the
task's ``num_cpus``, ``memory`` and ``num_gpus``; a request that no node of the cluster can hold
fails the step at once (or after ``resource_wait_s``, for a cluster that grows) instead of
waiting forever, as Ray would.

Ray is imported here only, when a Ray executor is made: ``import mloop`` and the other executors
never load it.
"""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from mloop.errors import InvalidInputError, MloopError
from mloop.pipelines._executors import Executor, StepOutcome, StepTask, execute_task

__all__ = [
    "RayExecutor",
    "import_ray",
    "infeasible_reason",
    "map_on_ray",
    "ray_options",
    "run_pickled",
]


def import_ray() -> Any:
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MloopError(
            f"`executor='ray'` needs Ray, which is not installed ({exc}); install it with "
            "pip install 'mloop[ray]'."
        ) from exc
    return ray


def ray_options(resources: Mapping[str, Any]) -> dict[str, Any]:
    """A step's resources as Ray task options (a task takes 1 CPU unless it says otherwise)."""
    options: dict[str, Any] = {"num_cpus": resources.get("cpus", 1)}
    if "memory" in resources:
        options["memory"] = int(resources["memory"])
    if "gpus" in resources:
        options["num_gpus"] = resources["gpus"]
    return options


def _describe(res: Mapping[str, float]) -> str:
    parts = [f"{res.get('CPU', 0):g} CPU"]
    if res.get("GPU"):
        parts.append(f"{res['GPU']:g} GPU")
    parts.append(f"{res.get('memory', 0) / 1e9:.2f} GB memory")
    return ", ".join(parts)


def infeasible_reason(ray: Any, options: Mapping[str, Any]) -> str | None:
    """Why no live node of the cluster can ever run a task with ``options``, or None."""
    need = {
        "CPU": float(options.get("num_cpus", 1)),
        "memory": float(options.get("memory", 0)),
        "GPU": float(options.get("num_gpus", 0)),
    }
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(all(node.get(k, 0.0) >= v for k, v in need.items() if v > 0) for node in nodes):
        return None
    largest: Mapping[str, float] = max(
        nodes, key=lambda n: (n.get("CPU", 0), n.get("memory", 0)), default={}
    )
    return (
        f"it asks for {_describe(need)} and no node of the Ray cluster has that much (the "
        f"largest has {_describe(largest)}); ask for less or add a node that fits"
    )


def run_pickled(paths: list[str], payload: bytes) -> Any:
    """On a Ray worker: make the caller's import paths importable, then run the pickled call.

    The call travels as bytes so that it is unpickled only after the paths are in place (a step
    is pickled by reference to its module, which may live in the caller's project folder).
    """
    for p in paths:
        if p not in sys.path:
            sys.path.append(p)
    fn, args = pickle.loads(payload)
    return fn(*args)


def _failed(step: str, message: str, *, attempts: int = 0) -> StepOutcome:
    """A failure Ray reports: the function never ran (0 attempts: it could not be scheduled or
    sent) or its task died under it (1)."""
    now = time.time_ns() // 1_000_000
    return StepOutcome(
        attempts=attempts, error=f"step {step!r}: {message}", start_ms=now, end_ms=now
    )


class RayExecutor(Executor):
    """Each step a Ray task, independent steps at once, as the cluster's resources allow.

    Parameters
    ----------
    address : str, optional
        The cluster for ``ray.init(address=...)``. When Ray is already initialised in this
        process, its cluster is used as it is; otherwise ``ray.init`` connects (``"auto"``, an
        address) or, with None and no cluster running, starts a local instance, which
        :meth:`close` stops.
    init_options : mapping, optional
        More ``ray.init`` arguments (``num_cpus``, ``runtime_env``, ...).
    resource_wait_s : float, default 0
        How long a step whose resources no node has waits for one to join (an autoscaling
        cluster) before it fails. Ray itself would wait forever.

    Raises
    ------
    MloopError
        Ray is not installed (``pip install 'mloop[ray]'``).
    """

    shares_memory = False

    def __init__(
        self,
        address: str | None = None,
        *,
        init_options: Mapping[str, Any] | None = None,
        resource_wait_s: float = 0.0,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise InvalidInputError(f"`address` must be a str or None; got {address!r}.")
        if init_options is not None and not isinstance(init_options, Mapping):
            raise InvalidInputError(f"`init_options` must be a mapping; got {init_options!r}.")
        if (
            isinstance(resource_wait_s, bool)
            or not isinstance(resource_wait_s, (int, float))
            or not resource_wait_s >= 0
        ):
            raise InvalidInputError(
                f"`resource_wait_s` must be a number >= 0; got {resource_wait_s!r}."
            )
        self._ray = import_ray()
        self.address = address
        self.init_options = dict(init_options or {})
        self.resource_wait_s = float(resource_wait_s)
        self._started = False
        self._remote: Any = None

    def _ensure(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            options = {"include_dashboard": False, **self.init_options}
            ray.init(address=self.address, **options)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(run_pickled)
        return ray

    def _fits(self, ray: Any, options: Mapping[str, Any]) -> str | None:
        deadline = time.monotonic() + self.resource_wait_s
        while True:
            reason = infeasible_reason(ray, options)
            if reason is None or time.monotonic() >= deadline:
                return reason
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        task.keep_values = False
        ray = self._ensure()
        done: cf.Future[StepOutcome] = cf.Future()
        options = ray_options(task.step.resources)
        reason = self._fits(ray, options)
        if reason is not None:
            done.set_result(_failed(task.step.name, f"cannot be scheduled on Ray: {reason}."))
            return done
        try:
            payload = pickle.dumps((execute_task, (task,)))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            done.set_result(_failed(task.step.name, f"its inputs cannot be sent to Ray: {exc}."))
            return done
        ref = self._remote.options(max_retries=0, **options).remote(list(sys.path), payload)
        ref.future().add_done_callback(lambda f: _settle(f, done, task.step.name))
        return done

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
        self._remote = None


def _settle(fut: cf.Future[Any], done: cf.Future[StepOutcome], step: str) -> None:
    """A Ray-level failure (a worker killed, out of memory) becomes the step's recorded error."""
    try:
        done.set_result(fut.result())
    except Exception as exc:  # a boundary: whatever Ray raised is the step's failure
        done.set_result(
            _failed(step, f"the Ray task failed: {type(exc).__name__}: {exc}", attempts=1)
        )


def map_on_ray(
    fn: Callable[..., Any],
    calls: list[tuple[Any, ...]],
    *,
    resources: Mapping[str, Any],
    max_parallel: int | None,
    on_error: Callable[[int, BaseException], Any],
) -> list[Any]:
    """``[fn(*args) for args in calls]`` as Ray tasks, at most ``max_parallel`` at once; a call
    whose task fails at the Ray level gives ``on_error(index, exc)``. Ray is started locally (and
    stopped afterwards) when it is not initialised."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False)
    try:
        options = ray_options(resources)
        reason = infeasible_reason(ray, options)
        if reason is not None:
            raise InvalidInputError(f"the sweep's trials cannot be scheduled on Ray: {reason}.")
        remote = ray.remote(run_pickled).options(max_retries=0, **options)
        paths = list(sys.path)
        results: dict[int, Any] = {}
        index: dict[Any, int] = {}
        todo = list(enumerate(calls))
        limit = max_parallel or len(calls) or 1
        while todo or index:
            while todo and len(index) < limit:
                i, args = todo.pop(0)
                index[remote.remote(paths, pickle.dumps((fn, args)))] = i
            ready, _ = ray.wait(list(index), num_returns=1)
            for ref in ready:
                i = index.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except Exception as exc:  # a boundary: one failed task does not stop the others
                    results[i] = on_error(i, exc)
        return [results[i] for i in range(len(calls))]
    finally:
        if started:
            ray.shutdown()
