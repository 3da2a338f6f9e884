"""Running a pipeline: hash, look up, execute, record, in dependency order; resume a failed run.

For each step, in the calling process and before it executes: its inputs' content hashes (an
upstream output's blob, or a literal stored as one), its code hash, and from them its cache key.
A step whose key cannot be computed runs uncached and its record says why (fail closed). A hit
reuses the outputs of the newest step run with the same key; otherwise the executor runs it
(with retries and backoff) and stores its outputs. Every step is recorded once it is done, and a
step downstream of a failure is recorded ``skipped``.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, MloopError
from mloop.ids import RUN_ID_RE, new_id
from mloop.pipelines._codehash import CodeHash, code_hash
from mloop.pipelines._executors import (
    Executor,
    InProcessExecutor,
    ProcessPoolExecutor,
    StepOutcome,
    StepTask,
)
from mloop.pipelines._graph import _RUNNER, Graph, Node, OutputRef, PipelineDef, _load
from mloop.pipelines._values import UnstorableValueError, decode_value, encode_value
from mloop.store import PipelineRun, StepRun, Store

__all__ = ["RUN_OPTIONS", "PipelineFailedError", "PipelineResult", "resume", "run"]

RUN_OPTIONS = frozenset(
    {"store", "blobs", "settings", "cache", "executor", "max_workers", "trigger", "reason",
     "actor", "track", "sleep", "project_root", "run_id"}
)  # fmt: skip
_KEY_VERSION = 1


class PipelineFailedError(MloopError):
    """A step failed after its retries; ``run_id`` names the run to resume."""

    def __init__(self, message: str, *, run_id: str, step: str) -> None:
        super().__init__(message, details={"run_id": run_id, "step": step})
        self.run_id = run_id
        self.step = step


@dataclass
class PipelineResult:
    """A finished run: its record, each step's record, and what the pipeline function returned
    with its references replaced by values."""

    run: PipelineRun
    steps: dict[str, StepRun]
    output: Any = None

    @property
    def executed(self) -> list[str]:
        return [n for n, s in self.steps.items() if s.status == "finished"]

    @property
    def cached(self) -> list[str]:
        return [n for n, s in self.steps.items() if s.status == "cached"]


def _now() -> int:
    return time.time_ns() // 1_000_000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Done:
    outputs: dict[str, tuple[str, str]]  # name -> (sha256, format)
    values: dict[str, Any] = field(default_factory=dict)


class _Runner:
    def __init__(
        self,
        pdef: PipelineDef,
        graph: Graph,
        record: PipelineRun,
        *,
        store: Store,
        blobs: Any,
        token: str | None,
        cache: bool,
        executor: Executor,
        project_root: str | None,
        reuse: Mapping[str, StepRun],
        tracking: tuple[str, Settings] | None = None,
    ) -> None:
        self.pdef, self.graph, self.record = pdef, graph, record
        self.tracking = tracking
        self.store, self.blobs, self.token = store, blobs, token
        self.cache, self.executor = cache, executor
        self.project_root, self.reuse = project_root, reuse
        self.done: dict[str, _Done] = {}
        self.steps: dict[str, StepRun] = {}
        self.failed: list[tuple[str, str]] = []
        # A step function's code hash, once per run: the code that runs is what this process
        # imported, and a step called 100 times in a pipeline is the same code 100 times.
        self.codes: dict[Callable[..., Any], CodeHash] = {}

    # ------------------------------------------------------------------ one step, before it runs
    def _inputs(self, node: Node) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        """Input hashes, literal values at hand, and the reasons a key cannot be made."""
        hashes: dict[str, str] = {}
        literals: dict[str, Any] = {}
        problems: list[str] = []
        for name, arg in node.args.items():
            if isinstance(arg, OutputRef):
                hashes[name] = self.done[arg.node].outputs[arg.output][0]
                continue
            literals[name] = arg
            try:
                _, data = encode_value(arg)
            except UnstorableValueError:
                problems.append(
                    f"input `{name}` is a {type(arg).__qualname__}, which has no deterministic "
                    "encoding"
                )
                continue
            hashes[name] = self.blobs.put_bytes(data)[0]
        return hashes, literals, problems

    def _key(
        self, node: Node, hashes: dict[str, str], problems: list[str]
    ) -> tuple[str | None, str | None, str | None]:
        """``(code_hash, cache_key, note)``: the key is None when the cache is off or fails."""
        code = self.codes.get(node.step.fn)
        if code is None:
            code = self.codes[node.step.fn] = code_hash(node.step.fn, root=self.project_root)
        if code.digest is None:
            problems.append(code.reason or "the code could not be hashed")
        if problems:
            return code.digest, None, "not cached: " + "; ".join(problems)
        if not self.cache:
            return code.digest, None, "not cached: the cache is off for this run"
        if not node.step.cache:
            return code.digest, None, "not cached: the step has cache=False"
        doc = {
            "v": _KEY_VERSION,
            "step": node.step.code_ref,
            "code": code.digest,
            "inputs": sorted(hashes.items()),
            "outputs": list(node.step.outputs),
        }
        key = _sha(json.dumps(doc, separators=(",", ":")).encode())
        return code.digest, key, None

    def _hit(self, found: StepRun) -> bool:
        return all(self.blobs.exists(sha) for sha in found.outputs.values())

    def _record(self, node: Node, **fields: Any) -> StepRun:
        step = StepRun(run_id=self.record.id, name=node.name, step=node.step.code_ref, **fields)
        self.steps[node.name] = self.store.put_step_run(step)
        return self.steps[node.name]

    def _reused(self, node: Node, prior: StepRun, note: str, code: str | None,
                key: str | None, hashes: dict[str, str]) -> None:  # fmt: skip
        now = _now()
        self._record(
            node,
            status="cached",
            inputs=hashes,
            outputs=dict(prior.outputs),
            output_formats=dict(prior.output_formats),
            code_hash=code,
            cache_key=key if key is not None else prior.cache_key,
            cache_hit=True,
            cache_note=note,
            start_ms=now,
            end_ms=now,
            tracking_run_id=prior.tracking_run_id,
            resources=dict(node.step.resources),
        )
        self.done[node.name] = _Done(
            {o: (sha, prior.output_formats[o]) for o, sha in prior.outputs.items()}
        )

    def prepare(self, node: Node) -> tuple[StepTask, dict[str, Any]] | None:
        """Record a reuse or a hit and return None, or the task to execute and its context."""
        hashes, literals, problems = self._inputs(node)
        code, key, note = self._key(node, hashes, problems)
        prior = self.reuse.get(node.name)
        if prior is not None and dict(prior.inputs) == hashes and not problems and self._hit(prior):
            self._reused(node, prior, f"reused from run {prior.run_id}", code, key, hashes)
            return None
        if key is not None:
            found = self.store.find_cached_step(key)
            if found is not None:
                if self._hit(found):
                    self._reused(node, found, f"hit: step {found.name!r} of run {found.run_id}",
                                 code, key, hashes)  # fmt: skip
                    return None
                note = "miss: the outputs of the cached step are no longer in the artifact store"
        values = dict(literals)
        stored: dict[str, tuple[str, str]] = {}
        for name, arg in node.args.items():
            if isinstance(arg, OutputRef):
                up = self.done[arg.node]
                if self.executor.shares_memory and arg.output in up.values:
                    values[name] = up.values[arg.output]
                else:
                    stored[name] = up.outputs[arg.output]
        lineage = {"mloop.pipeline": self.pdef.name, "mloop.pipeline_run": self.record.id,
                   "mloop.pipeline_step": node.name}  # fmt: skip
        task = StepTask(node.step, values, stored, str(self.blobs.uri), self.token,
                        lineage=lineage, tracking=self.tracking)  # fmt: skip
        return task, {"inputs": hashes, "code_hash": code, "cache_key": key, "cache_note": note}

    def finish(self, node: Node, outcome: StepOutcome, context: dict[str, Any]) -> None:
        common = {
            "inputs": context["inputs"],
            "code_hash": context["code_hash"],
            "cache_key": context["cache_key"],
            "cache_note": context["cache_note"],
            "attempts": outcome.attempts,
            "start_ms": outcome.start_ms,
            "end_ms": outcome.end_ms,
            "tracking_run_id": self.record.tracking_run_id,
            "resources": dict(node.step.resources),
            "models": tuple(outcome.models),
        }
        if outcome.error is not None:
            self._record(node, status="failed", error=outcome.error, **common)
            self.failed.append((node.name, outcome.error))
            return
        self._record(
            node,
            status="finished",
            outputs={o: sha for o, (sha, _) in outcome.outputs.items()},
            output_formats={o: fmt for o, (_, fmt) in outcome.outputs.items()},
            **common,
        )
        self.done[node.name] = _Done(dict(outcome.outputs), dict(outcome.values or {}))

    def skip(self, node: Node, because: str) -> None:
        now = _now()
        self._record(
            node, status="skipped", cache_note=f"not run: step {because!r} failed",
            start_ms=now, end_ms=now, resources=dict(node.step.resources),
        )  # fmt: skip

    # ------------------------------------------------------------------ the whole graph
    def execute(self) -> None:
        pending = dict(self.graph.nodes)
        upstream = {name: node.upstream for name, node in pending.items()}
        running: dict[cf.Future[StepOutcome], tuple[Node, dict[str, Any]]] = {}
        blocked: dict[str, str] = {}
        while pending or running:
            for name, node in list(pending.items()):
                ups = upstream[name]
                bad = next((u for u in ups if u in blocked), None)
                if bad is not None:
                    del pending[name]
                    blocked[name] = blocked[bad]
                    self.skip(node, blocked[bad])
                    continue
                if not all(u in self.done for u in ups):
                    continue
                del pending[name]
                prepared = self.prepare(node)
                if prepared is not None:
                    task, context = prepared
                    running[self.executor.submit(task)] = (node, context)
            if not running:
                if pending and not any(
                    all(u in self.done or u in blocked for u in upstream[n]) for n in pending
                ):
                    raise MloopError("pipeline graph has a step whose inputs never come.")
                continue
            finished, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                node, context = running.pop(fut)
                self.finish(node, fut.result(), context)
                if node.name not in self.done:
                    blocked[node.name] = node.name

    def value(self, ref: OutputRef) -> Any:
        done = self.done[ref.node]
        if ref.output not in done.values:
            sha, fmt = done.outputs[ref.output]
            with self.blobs.open(sha) as f:
                done.values[ref.output] = decode_value(fmt, f.read())
        return done.values[ref.output]

    def resolve(self, returned: Any) -> Any:
        if isinstance(returned, OutputRef):
            return self.value(returned)
        if isinstance(returned, tuple):
            return tuple(self.resolve(r) for r in returned)
        if isinstance(returned, list):
            return [self.resolve(r) for r in returned]
        if isinstance(returned, dict):
            return {k: self.resolve(v) for k, v in returned.items()}
        return returned


def _executor(kind: object, max_workers: int | None, sleep: Callable[[float], None]) -> Executor:
    if isinstance(kind, Executor):
        return kind
    if kind == "local":
        return InProcessExecutor(sleep=sleep)
    if kind == "process":
        return ProcessPoolExecutor(max_workers=max_workers)
    if kind == "ray":
        from mloop.pipelines._ray import RayExecutor

        return RayExecutor()
    raise InvalidInputError(
        f"`executor` must be 'local', 'process', 'ray' or an Executor; got {kind!r}."
    )


def _worker_tracking(
    tracking: Any, settings: Settings, store: Store, blobs: Any
) -> tuple[str, Settings]:
    """The tracking run and the settings a step in another process attaches to it with (an
    in-process step has it active already).

    One run per pipeline run, whatever the executor: a step in a worker logs and registers into
    the pipeline's run as an in-process step does, so a model version's source run is the
    pipeline's in both cases (a run per step would make a 100-step pipeline 100 runs, and the
    lineage would depend on the executor). The settings name the store and the artifact store
    this run uses, which may have been given as objects rather than by the environment.
    """
    tracking.flush()  # the run's row exists before a worker looks it up
    changes: dict[str, Any] = {"artifact_uri": str(blobs.uri)}
    uri = getattr(store, "uri", None)
    if isinstance(uri, str) and "://" in uri:
        changes["store_uri"] = uri
    return tracking.id, dataclasses.replace(settings, **changes)


def _json_params(pdef: PipelineDef, params: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in params.items():
        try:
            fmt, _ = encode_value(v)
        except UnstorableValueError:
            fmt = ""
        if fmt != "json":
            raise InvalidInputError(
                f"pipeline {pdef.name!r} parameter `{k}` must be a JSON value (it is recorded, "
                f"and a resume runs with it); got {type(v).__name__}. Pass data through a step."
            )
    return dict(params)


def run(
    pdef: PipelineDef,
    *,
    params: Mapping[str, Any] | None = None,
    store: Store | None = None,
    blobs: Any = None,
    settings: Settings | None = None,
    cache: bool | None = None,
    executor: Literal["local", "process", "ray"] | Executor = "local",
    max_workers: int | None = None,
    trigger: str = "manual",
    reason: str | None = None,
    actor: str | None = None,
    track: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    project_root: str | None = None,
    run_id: str | None = None,
    _resumed_from: str | None = None,
    _reuse: Mapping[str, StepRun] | None = None,
) -> PipelineResult:
    """Run ``pdef`` with ``params`` and record it; raise :class:`PipelineFailedError` on failure.

    Parameters
    ----------
    params : mapping
        The pipeline function's arguments: JSON values (they are recorded).
    store, blobs, settings : optional
        Where records and outputs go (default: from ``settings``, itself from the environment).
    cache : bool, optional
        Use the cache (default ``settings.pipeline_cache``, i.e. ``MLOOP_PIPELINE_CACHE``).
    executor : {"local", "process", "ray"} or Executor
        ``local`` runs steps one after the other in this process; ``process`` runs independent
        steps at once in ``max_workers`` processes; ``ray`` runs them as Ray tasks on the cluster
        ``ray.init()`` finds (a local one is started and stopped when none is running; ``pip
        install 'mloop[ray]'``). :class:`RayExecutor` takes an address and options.
    trigger, reason, actor :
        Recorded with the run.
    track : bool, default True
        Open a tracking run for the pipeline run (its steps' records point to it). Every step
        runs with it active, on any executor (a worker attaches to it through the store these
        settings name, not through its environment), so ``mloop.log`` and ``mloop.log_model``
        inside a step go there.
    sleep : callable
        Waits between retries (tests inject their own clock).
    project_root : str, optional
        Only modules under this folder count as project code in code hashes.
    run_id : str, optional
        The new run's id (32 lowercase hex), chosen by the caller: an agent records it with a
        trigger's firing before the run starts, so a restarted agent can tell whether it did.
        Default: a fresh one.
    """
    if not isinstance(pdef, PipelineDef):
        raise InvalidInputError(f"`pipeline` must be a @pipeline function; got {pdef!r}.")
    settings = settings or Settings.from_env()
    if store is None:
        from mloop.store import open_store

        store = open_store(settings)
    if blobs is None:
        from mloop.artifacts import BlobStore

        blobs = BlobStore(settings.artifact_uri, token=settings.token)
    use_cache = settings.pipeline_cache if cache is None else cache
    if not isinstance(use_cache, bool):
        raise InvalidInputError(f"`cache` must be a bool or None; got {cache!r}.")
    values = _json_params(pdef, pdef.params(dict(params or {})))
    graph, returned = pdef.build(values)
    ex = _executor(executor, max_workers, sleep)
    tracking = None
    if run_id is None:
        run_id = new_id()
    elif not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise InvalidInputError(f"`run_id` must be 32 lowercase hex characters; got {run_id!r}.")
    if track:
        from mloop.tracking import start_run

        tracking = start_run(
            "pipelines", name=f"{pdef.name}-{run_id[:8]}", config=values, system_metrics=False,
            tags={"mloop.pipeline": pdef.name, "mloop.pipeline_run": run_id},
            settings=settings, store=store,
        )  # fmt: skip
    record = store.start_pipeline_run(
        PipelineRun(
            id=run_id, pipeline=pdef.name, status="running", trigger=trigger,
            code_ref=pdef.code_ref, params=values, start_ms=_now(), reason=reason,
            resumed_from=_resumed_from, actor=actor,
            tracking_run_id=None if tracking is None else tracking.id,
        )
    )  # fmt: skip
    runner = _Runner(
        pdef, graph, record, store=store, blobs=blobs, token=settings.token, cache=use_cache,
        executor=ex, project_root=project_root, reuse=_reuse or {},
        tracking=None if tracking is None or ex.shares_memory
        else _worker_tracking(tracking, settings, store, blobs),
    )  # fmt: skip
    try:
        runner.execute()
    except BaseException as exc:
        store.finish_pipeline_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        if tracking is not None:
            tracking.finish("failed")
        raise
    finally:
        ex.close()
    if runner.failed:
        step, error = runner.failed[0]
        last = error.strip().splitlines()[-1] if error.strip() else error
        message = f"step {step!r} failed: {last}"
        store.finish_pipeline_run(run_id, status="failed", error=message)
        if tracking is not None:
            tracking.finish("failed")
        raise PipelineFailedError(
            f"pipeline {pdef.name!r} run {run_id} failed: {message}. Fix it and resume the run "
            f"with mloop.pipelines.resume({run_id!r}) (or `mloop pipelines resume {run_id}`).",
            run_id=run_id,
            step=step,
        )
    output = runner.resolve(returned)
    final = store.finish_pipeline_run(run_id, status="finished")
    if tracking is not None:
        tracking.finish("finished")
    return PipelineResult(final, dict(runner.steps), output)


def resume(
    run_id: str,
    /,
    *,
    pipeline: PipelineDef | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> PipelineResult:
    """Run a failed run again as a new run: steps that finished (with the same inputs) are reused,
    the rest execute. The pipeline is imported from the run's code ref unless given.
    ``options`` go to :func:`run` (``run_id`` there is the *new* run's id).

    Raises
    ------
    ConflictError
        The run did not fail (there is nothing to resume).
    """
    settings = settings or Settings.from_env()
    if store is None:
        from mloop.store import open_store

        store = open_store(settings)
    old = store.get_pipeline_run(run_id)
    if old.status != "failed":
        raise ConflictError(f"pipeline run {run_id} is {old.status}; only a failed run resumes.")
    if pipeline is None:
        module, _, qualname = old.code_ref.partition(":")
        try:
            pipeline = _load(module, qualname)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(
                f"cannot import the pipeline {old.code_ref!r} of run {run_id}: {exc}."
            ) from None
        if not isinstance(pipeline, PipelineDef):
            raise InvalidInputError(f"{old.code_ref!r} is not a @pipeline function.")
    reuse = {s.name: s for s in store.list_step_runs(run_id) if s.status in ("finished", "cached")}
    return run(
        pipeline, params=dict(old.params), store=store, settings=settings, trigger="resume",
        reason=options.pop("reason", f"resume of run {run_id}"), _resumed_from=run_id,
        _reuse=reuse, **options,
    )  # fmt: skip


_RUNNER[:] = [(run, RUN_OPTIONS)]
