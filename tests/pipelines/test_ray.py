"""The Ray executor and the sweep on Ray, against a real local Ray instance (started once for the
module): steps run in Ray workers, independent ones at once; resources reach Ray and an infeasible
request fails clearly; a step run on Ray is a cache hit when run again locally; retries and resume
behave as on the other executors. Ray missing is a failure under CI=true, a shown skip elsewhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _flow_project import FlowProject

from mloop.pipelines import PipelineFailedError, RayExecutor, resume, sweep

if os.environ.get("CI") != "true":
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'mloop[ray]')")
import ray

FLOW = """
import os
import time
from pathlib import Path

import mloop
from mloop.pipelines import pipeline, step

BARRIER = Path(__file__).with_name("barrier")


@step
def side(name: str) -> dict:
    # Each side waits for the other: run one after the other, they would time out.
    BARRIER.mkdir(exist_ok=True)
    (BARRIER / name).touch()
    deadline = time.monotonic() + 60
    while len(list(BARRIER.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the other side never ran at the same time")
        time.sleep(0.02)
    return {"name": name, "pid": os.getpid()}


@step
def join(a: dict, b: dict) -> list:
    return [a["pid"], b["pid"], os.getpid()]


@pipeline
def together():
    return join(side("a"), side("b"))


@step(resources={"cpus": 2, "memory": "64MiB"})
def assigned() -> dict:
    import ray
    return dict(ray.get_runtime_context().get_assigned_resources())


@pipeline
def sized():
    return assigned()


@step(resources={"cpus": 64})
def greedy() -> int:
    return 1


@pipeline
def too_big():
    return greedy()


FLAG = Path(__file__).with_name("fail_once")


@step(retries=1)
def flaky(x: int) -> int:
    if FLAG.exists():
        FLAG.unlink()
        raise RuntimeError("transient")
    return x + 1


BROKEN = Path(__file__).with_name("broken")


@step
def fragile(y: int) -> int:
    if BROKEN.exists():
        raise ValueError("broken input")
    return y * 10


@pipeline
def chain(x: int = 1):
    return fragile(flaky(x))


@step
def crash() -> int:
    os._exit(3)  # the worker process dies under the task


@pipeline
def dies():
    return crash()


class Doubler:
    def predict(self, x):
        return [2 * v for v in x]


@step
def counts(n: int) -> int:
    mloop.log({"rows": n})
    mloop.log_model(Doubler(), "doubler")
    return os.getpid()


@pipeline
def logs(n: int = 3):
    return counts(n)


def fit(lr: float):
    if lr < 0:
        raise ValueError("negative learning rate")
    mloop.log({"pid": os.getpid()})
    return (lr - 0.3) ** 2
"""


def test_without_a_running_cluster_the_executor_starts_one_and_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First in this module, before the shared cluster starts.
    assert not ray.is_initialized()
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Project(tmp_path)
    try:
        r = p.run("sized", executor=RayExecutor(init_options={"num_cpus": 2}))
        assert r.output["CPU"] == 2.0 and not ray.is_initialized()
    finally:
        p.store.close()
        sys.modules.pop(p.name, None)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


class Project(FlowProject):
    def __init__(self, root: Path) -> None:
        super().__init__(root, FLOW, prefix="rayflow")


@pytest.fixture
def project(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Project(tmp_path)
    try:
        yield p
    finally:
        p.store.close()
        sys.modules.pop(p.name, None)


def test_independent_steps_run_at_once_in_ray_workers_and_hit_the_cache_locally(
    project: Project,
) -> None:
    before = project.store.last_event_id()
    r = project.run("together", executor="ray")
    pid_a, pid_b, pid_join = r.output
    assert os.getpid() not in (pid_a, pid_b, pid_join) and pid_a != pid_b
    assert sorted(r.executed) == ["join", "side", "side_2"]
    types = [e.type for e in project.store.read_events(after_id=before)]
    assert types == ["pipeline_run_started"] + ["step_finished"] * 3 + ["pipeline_run_finished"]
    # The outputs Ray workers stored are the cache of a local run: nothing executes again.
    again = project.run("together", executor="local")
    assert sorted(again.cached) == ["join", "side", "side_2"] and again.output == r.output
    assert again.steps["join"].outputs == r.steps["join"].outputs


def test_a_steps_resources_are_the_ray_tasks_and_an_infeasible_one_fails_clearly(
    project: Project,
) -> None:
    r = project.run("sized", executor=RayExecutor())
    assert r.output["CPU"] == 2.0 and r.output["memory"] == 64 * 2**20
    assert r.steps["assigned"].resources == {"cpus": 2, "memory": 64 * 2**20}
    with pytest.raises(PipelineFailedError, match="asks for 64 CPU") as info:
        project.run("too_big", executor="ray")
    (failed,) = project.store.list_step_runs(info.value.run_id)
    assert failed.status == "failed" and failed.resources == {"cpus": 64}
    assert failed.attempts == 0  # the function never ran
    assert "no node of the Ray cluster has that much (the largest has 2 CPU" in (failed.error or "")
    # Waiting for a node that never joins is bounded too.
    with pytest.raises(PipelineFailedError, match="asks for 64 CPU"):
        project.run("too_big", executor=RayExecutor(resource_wait_s=0.2))


def test_a_worker_that_dies_fails_its_step_with_rays_reason(project: Project) -> None:
    with pytest.raises(PipelineFailedError, match="crash") as info:
        project.run("dies", executor="ray")
    (step_run,) = project.store.list_step_runs(info.value.run_id)
    assert step_run.status == "failed" and "the Ray task failed" in (step_run.error or "")
    assert step_run.attempts == 1  # it ran, and its worker died under it
    assert project.store.get_pipeline_run(info.value.run_id).status == "failed"


def test_retries_and_resume_behave_as_on_the_local_executors(project: Project) -> None:
    (project.root / "fail_once").touch()
    (project.root / "broken").touch()
    with pytest.raises(PipelineFailedError, match="broken input") as info:
        project.run("chain", params={"x": 1}, executor="ray")
    steps = {s.name: s for s in project.store.list_step_runs(info.value.run_id)}
    assert steps["flaky"].status == "finished" and steps["flaky"].attempts == 2
    assert steps["fragile"].status == "failed" and steps["fragile"].attempts == 1
    (project.root / "broken").unlink()
    done = resume(info.value.run_id, pipeline=project.module.chain, store=project.store,
                  blobs=project.blobs, settings=project.settings, executor="ray",
                  track=False)  # fmt: skip
    assert done.output == 20 and done.cached == ["flaky"] and done.executed == ["fragile"]


def test_a_step_on_ray_logs_and_registers_in_the_pipelines_run(project: Project) -> None:
    # The Ray workers do not see this process's MLOOP_* (there are none): they reach the store
    # through the pipeline's settings, and log and register into its tracking run.
    r = project.run("logs", params={"n": 3}, executor="ray", track=True)
    assert r.output != os.getpid()
    store = project.store
    tracking = store.get_run(r.run.tracking_run_id)  # type: ignore[arg-type]
    assert tracking.status == "finished" and tracking.metrics["rows"].last == 3.0
    assert r.steps["counts"].tracking_run_id == tracking.id
    # What it registered comes from that run too: lineage as with the local executor.
    assert r.steps["counts"].models == ("models:/doubler/1",)
    mv = store.get_model_version("doubler", 1)
    assert mv.source_run_id == tracking.id and mv.tags["mloop.pipeline_step"] == "counts"
    (only,) = store.search_runs(tracking.project_id).items
    assert only.id == tracking.id  # no run of its own for the step


def test_a_sweep_on_ray_nests_each_trial_and_survives_a_failing_one(project: Project) -> None:
    r = sweep(project.module.fit, configs=[{"lr": 0.1}, {"lr": -1.0}, {"lr": 0.25}],
              metric="loss", executor="ray", max_parallel=2, project="ray-sweep",
              settings=project.settings, store=project.store)  # fmt: skip
    assert [t.config for t in r.trials] == [{"lr": 0.25}, {"lr": 0.1}, {"lr": -1.0}]
    assert r.best_config == {"lr": 0.25} and r.trials[-1].status == "failed"
    assert "negative learning rate" in (r.trials[-1].error or "")
    for t in r.trials:
        nested = project.store.get_run(t.run_id)  # type: ignore[arg-type]
        assert nested.parent_run_id == r.parent_run_id and nested.status == t.status
    pids = {t.metrics["pid"] for t in r.trials if t.status == "finished"}
    assert os.getpid() not in pids  # the trials ran in Ray workers
