"""A sweep: N training configurations at once, each a tracking run nested under one parent run.

``sweep(train, grid={"lr": [0.1, 0.01], "depth": [3, 5]}, metric="val_loss")`` calls
``train(**config)`` for every configuration, in this process one after another (``"local"``), in a
pool of processes (``"process"``) or as Ray tasks (``"ray"``), at most ``max_parallel`` at once.
Each call runs inside its own tracking run (``parent_run_id`` = the sweep's run) that records
the configuration as params and, as metrics, what the function returned (a number is the
``metric``; a dict is several) or logged itself with ``mloop.log``. A configuration that raises is
a ``failed`` nested run with its error and does not stop the others. The result lists the trials
best first.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.pipelines._graph import Step
from mloop.pipelines._resources import parse_resources
from mloop.store import Store

__all__ = ["SweepResult", "Trial", "sweep"]

MAX_ERROR = 4000


@dataclass(frozen=True)
class Trial:
    """One configuration's outcome: its nested run, status, metrics, and error when it failed."""

    index: int
    config: Mapping[str, Any]
    run_id: str | None
    status: Literal["finished", "failed"]
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """The parent run and every trial, best first (trials without the metric, then failed ones,
    last, in configuration order)."""

    parent_run_id: str
    metric: str
    mode: Literal["min", "max"]
    trials: tuple[Trial, ...]

    @property
    def best(self) -> Trial | None:
        first = self.trials[0] if self.trials else None
        return first if first is not None and self.metric in first.metrics else None

    @property
    def best_config(self) -> Mapping[str, Any] | None:
        return None if self.best is None else self.best.config

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "failed"]


@dataclass
class _Spec:
    fn: Any  # a function or a Step, pickled by reference for other processes
    index: int
    config: dict[str, Any]
    metric: str
    project: str
    name: str
    parent_run_id: str
    settings: Settings
    store: Store | None = None  # only in this process


def _error(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])
    return text[-MAX_ERROR:]


def _metrics(returned: Any, metric: str) -> dict[str, float]:
    if returned is None:
        return {}
    if isinstance(returned, (int, float)) and not isinstance(returned, bool):
        return {metric: float(returned)}
    if isinstance(returned, Mapping) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in returned.items()
    ):
        return {k: float(v) for k, v in returned.items()}
    raise InvalidInputError(
        f"a sweep's function must return a number (the `{metric}`), a dict of metric names to "
        f"numbers, or None (it logs with mloop.log); got {type(returned).__name__}."
    )


def run_trial(spec: _Spec) -> Trial:
    """One configuration in its nested run (here, or in a worker that opens the store itself)."""
    from mloop.tracking import start_run

    fn = spec.fn.fn if isinstance(spec.fn, Step) else spec.fn
    run = start_run(
        spec.project, name=f"{spec.name}-{spec.index}", config=spec.config,
        parent_run_id=spec.parent_run_id, system_metrics=False, settings=spec.settings,
        store=spec.store, tags={"mloop.sweep": spec.parent_run_id, "mloop.trial": spec.index},
    )  # fmt: skip
    try:
        returned = fn(**spec.config)
        metrics = _metrics(returned, spec.metric)
        if metrics:
            run.log(metrics)
    except Exception as exc:  # the user's code: this trial fails, the sweep goes on
        error = _error(exc)
        run.set_tags({"mloop.error": error[-1000:]})
        run.finish("failed")
        return Trial(spec.index, spec.config, run.id, "failed", {}, error)
    run.finish("finished")
    logged: dict[str, float] = {}
    if run.store is not None:
        summary = run.store.get_run(run.id).metrics
        logged = {k: m.last for k, m in summary.items() if not k.startswith("system/")}
    return Trial(spec.index, spec.config, run.id, "finished", {**logged, **metrics})


def _configs(configs: Sequence[Mapping[str, Any]] | None,
             grid: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:  # fmt: skip
    if (configs is None) == (grid is None):
        raise InvalidInputError("pass exactly one of `configs` (a list of dicts) and `grid`.")
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            raise InvalidInputError(
                f"`grid` must be a non-empty mapping of parameter names to lists; got {grid!r}."
            )
        for k, v in grid.items():
            if not isinstance(k, str) or isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v:  # fmt: skip
                raise InvalidInputError(
                    f"`grid[{k!r}]` must be a non-empty list of values; got {v!r}."
                )
        keys = list(grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if (
        isinstance(configs, (str, bytes, Mapping))
        or not isinstance(configs, Sequence)
        or not configs
    ):
        raise InvalidInputError(f"`configs` must be a non-empty list of dicts; got {configs!r}.")
    out = []
    for i, c in enumerate(configs):
        if not isinstance(c, Mapping) or not all(isinstance(k, str) for k in c):
            raise InvalidInputError(f"`configs[{i}]` must be a dict with str keys; got {c!r}.")
        out.append(dict(c))
    return out


def _sort_key(mode: str, metric: str) -> Callable[[Trial], tuple[int, float, int]]:
    def key(t: Trial) -> tuple[int, float, int]:
        v = t.metrics.get(metric)
        if t.status == "failed":
            return (2, 0.0, t.index)
        if v is None or math.isnan(v):
            return (1, 0.0, t.index)
        return (0, v if mode == "min" else -v, t.index)

    return key


def _crashed(spec: _Spec, exc: BaseException) -> Trial:
    return Trial(spec.index, spec.config, None, "failed", {},
                 f"the worker running the trial died: {type(exc).__name__}: {exc}")  # fmt: skip


def sweep(
    fn: Callable[..., Any] | Step,
    *,
    configs: Sequence[Mapping[str, Any]] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    metric: str,
    mode: Literal["min", "max"] = "min",
    executor: Literal["local", "process", "ray"] = "local",
    max_parallel: int | None = None,
    resources: Mapping[str, Any] | None = None,
    project: str = "sweeps",
    name: str | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
) -> SweepResult:
    """Run ``fn(**config)`` for each configuration, each in a run nested under one parent run.

    Parameters
    ----------
    fn : callable or Step
        The training function; keyword arguments are a configuration's keys. It returns a number
        (the ``metric``), a dict of metrics, or None when it logs with ``mloop.log`` (its run is
        the active one). For ``"process"`` and ``"ray"`` it must be importable (module level).
    configs : list of dict, optional
        The configurations; or ``grid``: every combination of the values listed per key.
    metric, mode :
        What ranks the trials and whether lower (``"min"``) or higher is better.
    executor : {"local", "process", "ray"}
        One after another here; or at once in processes or Ray tasks (which open the store and
        the artifact store that ``settings`` name). ``"local"`` stays sequential on purpose:
        the active run (what ``mloop.log`` writes to) is one per process, so trials on threads
        would log into each other's runs, and training code holds the GIL anyway; use
        ``"process"`` for parallel trials on one machine.
    max_parallel : int, optional
        At most this many trials at once (default: the CPU count; Ray: as the cluster allows;
        ``"local"``: one).
    resources : mapping, optional
        Each trial's needs on Ray (``{"cpus": 2, "memory": "4GB", "gpus": 1}``).
    project, name :
        Where the parent run goes and its name (default ``sweep-<function name>``).

    Returns
    -------
    SweepResult
        ``trials`` best first, ``best``, ``best_config``, ``parent_run_id``.

    Examples
    --------
    >>> r = sweep(lambda x: (x - 2) ** 2, grid={"x": [1, 2, 3]}, metric="loss")  # doctest: +SKIP
    >>> r.best_config  # doctest: +SKIP
    {'x': 2}
    """
    if not callable(fn):
        raise InvalidInputError(f"`fn` must be a function or a @step; got {fn!r}.")
    if not isinstance(metric, str) or not metric:
        raise InvalidInputError(f"`metric` must be a non-empty str; got {metric!r}.")
    if mode not in ("min", "max"):
        raise InvalidInputError(f"`mode` must be 'min' or 'max'; got {mode!r}.")
    if executor not in ("local", "process", "ray"):
        raise InvalidInputError(
            f"`executor` must be 'local', 'process' or 'ray'; got {executor!r}."
        )
    if max_parallel is not None and (
        isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
    ):
        raise InvalidInputError(f"`max_parallel` must be an int >= 1; got {max_parallel!r}.")
    todo = _configs(configs, grid)
    needs = parse_resources(resources)
    settings = settings or Settings.from_env()
    from mloop.tracking import start_run

    fn_name = getattr(fn, "name", None) or getattr(fn, "__name__", "fn")
    label = name or f"sweep-{fn_name}".replace("<", "").replace(">", "")
    parent = start_run(project, name=label, system_metrics=False, settings=settings, store=store,
                       tags={"mloop.sweep": "parent", "mloop.sweep.metric": metric,
                             "mloop.sweep.mode": mode, "mloop.sweep.trials": len(todo)})  # fmt: skip
    worker_settings = settings
    uri = getattr(store, "uri", None)
    if uri is not None and executor != "local":
        # Workers open the store themselves: the one this process was given, by its URI.
        worker_settings = dataclasses.replace(settings, store_uri=str(uri))
    local = executor == "local"
    specs = [
        _Spec(fn, i, c, metric, project, label, parent.id,
              settings if local else worker_settings, store if local else None)
        for i, c in enumerate(todo)
    ]  # fmt: skip
    try:
        trials = _execute(specs, executor, max_parallel, needs)
    except BaseException:
        parent.finish("failed")
        raise
    if any(t.run_id is None and t.status == "failed" for t in trials):
        trials = _close_crashed(trials, parent.id, parent.project_id, parent.store)
    ranked = tuple(sorted(trials, key=_sort_key(mode, metric)))
    result = SweepResult(parent.id, metric, mode, ranked)
    best = result.best
    if best is not None:
        parent.log({f"best_{metric}": best.metrics[metric]})
        parent.set_tags({"mloop.sweep.best_run": best.run_id or "",
                         "mloop.sweep.best_trial": best.index})  # fmt: skip
    parent.finish("finished" if any(t.status == "finished" for t in trials) else "failed")
    return result


def _close_crashed(
    trials: list[Trial], parent_id: str, project_id: str | None, store: Store | None
) -> list[Trial]:
    """A trial whose worker died left its nested run ``running``: find it (by parent and trial
    index) and mark it ``failed`` with the crash as its error; the trial then names it."""
    if store is None or project_id is None:
        return trials  # offline: the runs are in the spool, not searchable
    lost = {t.index: t for t in trials if t.run_id is None and t.status == "failed"}
    found: dict[int, str] = {}
    token = None
    while True:
        page = store.search_runs(project_id, max_results=1000, page_token=token)
        for r in page.items:
            index = r.tags.get("mloop.trial")
            if r.parent_run_id == parent_id and index is not None and int(index) in lost:
                found[int(index)] = r.id
                if r.status == "running":
                    error = lost[int(index)].error or "the worker running the trial died"
                    store.log_batch(r.id, tags={"mloop.error": error[-1000:]}, status="failed",
                                    end_ms=time.time_ns() // 1_000_000)  # fmt: skip
        token = page.next_page_token
        if token is None:
            break
    return [
        dataclasses.replace(t, run_id=found[t.index]) if t.index in found else t for t in trials
    ]


def _execute(specs: list[_Spec], executor: str, max_parallel: int | None,
             needs: Mapping[str, Any]) -> list[Trial]:  # fmt: skip
    if executor == "local":
        return [run_trial(s) for s in specs]
    if executor == "ray":
        from mloop.pipelines._ray import map_on_ray

        return map_on_ray(run_trial, [(s,) for s in specs], resources=needs,
                          max_parallel=max_parallel,
                          on_error=lambda i, exc: _crashed(specs[i], exc))  # fmt: skip
    import multiprocessing

    workers = min(max_parallel or os.cpu_count() or 1, len(specs))
    context = multiprocessing.get_context("spawn")
    trials: dict[int, Trial] = {}
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_trial, s): s for s in specs}
        for fut in cf.as_completed(futures):
            spec = futures[fut]
            try:
                trials[spec.index] = fut.result()
            except Exception as exc:  # a boundary: a dead worker fails its trial only
                trials[spec.index] = _crashed(spec, exc)
    return [trials[s.index] for s in specs]
