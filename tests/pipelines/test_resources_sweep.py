"""Step resources (validated, recorded, no over-subscribed process pool), the sweep helper on the
local executors, lineage from a pipeline run to the model version a step registers, and the error
that names ``pip install 'mloop[ray]'`` when Ray is missing. Ray itself: test_ray.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _flow_project import FlowProject

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.pipelines import step, sweep
from mloop.store import StepRun

FLOW = """
import os
import time

import mloop
from mloop.pipelines import pipeline, step


@step(resources={"cpus": 2})
def wide(tag: str) -> list:
    start = time.time()
    time.sleep(0.3)
    return [start, time.time(), os.getpid()]


@pipeline
def two_wide():
    return [wide("a"), wide("b")]


class Doubler:
    def predict(self, x):
        return [2 * v for v in x]


@step
def prepare(n: int) -> list:
    return list(range(n))


@step(resources={"memory": "256MiB"})
def train(rows: list) -> int:
    mloop.log({"rows": len(rows)})
    version = mloop.log_model(Doubler(), "doubler")
    return version.version


@pipeline
def train_flow(n: int = 3):
    return train(prepare(n))


@step
def count(rows: list) -> int:
    mloop.log({"counted": len(rows)})
    return os.getpid()


@pipeline
def count_flow(n: int = 3):
    return count(prepare(n))


def fit(lr: float, depth: int):
    if depth == 0:
        raise ValueError("depth 0 cannot fit")
    mloop.log({"train_loss": lr * depth})
    return {"val_loss": abs(lr - 0.1) + depth / 10}


def logs_only(lr: float):
    mloop.log({"val_loss": lr * 2})


def dies(lr: float):
    mloop.log({"started": 1})
    mloop.active_run().flush()  # the nested run is in the store when its worker dies
    os._exit(3)


@step
def scored(lr: float) -> float:
    return abs(lr - 0.4)
"""


class Project(FlowProject):
    def __init__(self, root: Path) -> None:
        super().__init__(root, FLOW, prefix="rflow")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    for key, value in (("MLOOP_HOME", tmp_path / ".mloop"),
                       ("MLOOP_STORE_URI", f"sqlite:///{tmp_path / 'm.db'}"),
                       ("MLOOP_ARTIFACT_URI", tmp_path / "artifacts")):  # fmt: skip
        monkeypatch.setenv(key, str(value))
    p = Project(tmp_path)
    try:
        yield p
    finally:
        p.store.close()
        sys.modules.pop(p.name, None)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": 2}, "keys must be among cpus, memory, gpus; got 'cpu'"),
        ({"cpus": 0}, r"resources\['cpus'\]` must be a number > 0"),
        ({"cpus": True}, r"resources\['cpus'\]` must be a number > 0"),
        ({"gpus": -1}, r"resources\['gpus'\]` must be a number >= 0"),
        ({"memory": "2 lots"}, "must be bytes .* or a size such as '2GB'"),
        ({"memory": 0}, "at least 1 byte"),
        ({"memory": 1.5}, "must be bytes"),
        ([("cpus", 2)], "must be a mapping"),
    ],
)
def test_bad_resources_are_refused_when_the_step_is_declared(resources: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        step(resources=resources, name="s")(lambda: 1)


def test_resources_are_normalised() -> None:
    s = step(resources={"cpus": 2.0, "memory": "1.5GiB", "gpus": 0.5}, name="s")(lambda: 1)
    assert s.resources == {"cpus": 2, "memory": 1_610_612_736, "gpus": 0.5}
    assert step(resources={"memory": "2GB"}, name="s")(lambda: 1).resources == {
        "memory": 2_000_000_000
    }
    assert step(name="s")(lambda: 1).resources == {}


def test_the_process_pool_runs_no_more_cpus_than_it_has_workers(project: Project) -> None:
    # Two steps that each ask for 2 CPUs on a 2-worker pool run one after the other, in workers.
    r = project.run("two_wide", executor="process", max_workers=2)
    (_, e1, pid1), (s2, _, pid2) = sorted(r.output)
    assert e1 <= s2, "the second step started before the first one ended"
    assert sys.modules[project.name].os.getpid() not in (pid1, pid2)
    assert all(s.resources == {"cpus": 2} for s in r.steps.values())
    stored = project.store.list_step_runs(r.run.id)
    assert [s.resources for s in stored] == [{"cpus": 2}, {"cpus": 2}]


def test_a_registered_version_and_its_pipeline_step_point_at_each_other(project: Project) -> None:
    result = project.run("train_flow", params={"n": 3}, track=True)
    step_run: StepRun = result.steps["train"]
    assert step_run.models == ("models:/doubler/1",) and result.output == 1
    assert step_run.resources == {"memory": 256 * 2**20}
    store, blobs = project.store, project.blobs
    # step run -> inputs (the upstream output, by content hash) -> outputs -> tracking run
    again = {s.name: s for s in store.list_step_runs(result.run.id)}
    assert again["train"].models == ("models:/doubler/1",) and again["prepare"].models == ()
    assert again["train"].inputs["rows"] == again["prepare"].outputs["output"]
    assert all(blobs.exists(sha) for sha in again["train"].outputs.values())
    tracking = store.get_run(again["train"].tracking_run_id)
    assert tracking.metrics["rows"].last == 3.0
    # -> the model version, whose tags and lineage name the pipeline run and the step
    mv = store.get_model_version("doubler", 1)
    assert mv.source_run_id == tracking.id == result.run.tracking_run_id
    assert mv.tags["mloop.pipeline_run"] == result.run.id
    assert mv.tags["mloop.pipeline_step"] == "train"
    lineage = mloop.Registry(settings=project.settings, store=store).lineage("doubler", 1)
    assert lineage.pipeline == {"pipeline": "train-flow", "run_id": result.run.id,
                                "step": "train"}  # fmt: skip
    # A version registered outside a pipeline names none.
    with mloop.start_run(project="p", system_metrics=False) as plain:
        mloop.log_model(project.module.Doubler(), "doubler", run=plain)
    assert mloop.Registry(store=store).lineage("doubler", 2).pipeline is None
    assert "mloop.pipeline_run" not in store.get_model_version("doubler", 2).tags
    # A cache hit registers nothing again and records no version.
    hit = project.run("train_flow", params={"n": 3}, track=True)
    assert hit.steps["train"].cache_hit and hit.steps["train"].models == ()


def test_a_step_in_a_worker_process_logs_and_registers_in_the_pipelines_run(
    project: Project,
) -> None:
    result = project.run("train_flow", params={"n": 3}, track=True, executor="process",
                         max_workers=1)  # fmt: skip
    store = project.store
    train = result.steps["train"]
    assert train.status == "finished" and train.models == ("models:/doubler/1",)
    # Lineage as with the local executor: the step's run, the version's source run and the
    # pipeline's tracking run are one, which holds what the worker logged and stays finished.
    tracking = store.get_run(result.run.tracking_run_id)  # type: ignore[arg-type]
    assert train.tracking_run_id == tracking.id and tracking.status == "finished"
    assert tracking.metrics["rows"].last == 3.0
    mv = store.get_model_version("doubler", 1)
    assert mv.source_run_id == tracking.id and mv.tags["mloop.pipeline_run"] == result.run.id
    lineage = mloop.Registry(settings=project.settings, store=store).lineage("doubler", 1)
    assert lineage.pipeline == {"pipeline": "train-flow", "run_id": result.run.id,
                                "step": "train"}  # fmt: skip
    (only,) = store.search_runs(tracking.project_id).items
    assert only.id == tracking.id  # no run of its own for the step


def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the environment at another, empty store: a worker must use the pipeline's."""
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "elsewhere"))
    return tmp_path / "elsewhere"


def test_a_worker_step_reaches_the_pipelines_store_without_the_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = _elsewhere(tmp_path, monkeypatch)
    result = project.run("count_flow", params={"n": 4}, track=True, executor="process",
                         max_workers=1)  # fmt: skip
    assert result.output != os.getpid()  # it ran in a worker
    tracking = project.store.get_run(result.run.tracking_run_id)  # type: ignore[arg-type]
    assert tracking.metrics["counted"].last == 4.0 and tracking.status == "finished"
    assert not elsewhere.exists()


def test_a_worker_step_registers_in_the_pipelines_store_without_the_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _elsewhere(tmp_path, monkeypatch)
    result = project.run("train_flow", params={"n": 3}, track=True, executor="process",
                         max_workers=1)  # fmt: skip
    mv = project.store.get_model_version("doubler", 1)
    assert mv.source_run_id == result.run.tracking_run_id


def test_a_local_sweep_nests_a_run_per_config_and_ranks_them(project: Project) -> None:
    r = sweep(project.module.fit, grid={"lr": [0.1, 0.5], "depth": [0, 1, 2]},
              metric="val_loss", settings=project.settings, store=project.store)  # fmt: skip
    assert len(r.trials) == 6 and len(r.failed) == 2
    assert r.best_config == {"lr": 0.1, "depth": 1}
    values = [t.metrics["val_loss"] for t in r.trials if t.status == "finished"]
    assert values == sorted(values) and values[0] == pytest.approx(0.1)
    assert [t.status for t in r.trials[-2:]] == ["failed", "failed"]
    assert all("depth 0 cannot fit" in (t.error or "") for t in r.failed)
    store = project.store
    parent = store.get_run(r.parent_run_id)
    assert parent.status == "finished" and parent.metrics["best_val_loss"].last == pytest.approx(
        0.1
    )
    assert parent.tags["mloop.sweep.best_run"] == r.best.run_id  # type: ignore[union-attr]
    for t in r.trials:
        nested = store.get_run(t.run_id)  # type: ignore[arg-type]
        assert nested.parent_run_id == r.parent_run_id and nested.status == t.status
        assert nested.params == {"lr": str(t.config["lr"]), "depth": str(t.config["depth"])}
        if t.status == "finished":  # what it logged and what it returned
            assert nested.metrics["val_loss"].last == t.metrics["val_loss"]
            assert nested.metrics["train_loss"].last == t.config["lr"] * t.config["depth"]
    mode_max = sweep(project.module.logs_only, configs=[{"lr": 0.1}, {"lr": 0.3}],
                     metric="val_loss", mode="max", settings=project.settings,
                     store=project.store)  # fmt: skip
    assert mode_max.best_config == {"lr": 0.3} and mode_max.trials[0].metrics["val_loss"] == 0.6
    a_step = sweep(project.module.scored, grid={"lr": [0.1, 0.5, 0.9]}, metric="gap",
                   settings=project.settings, store=project.store)  # fmt: skip
    assert a_step.best_config == {"lr": 0.5}
    assert store.get_run(a_step.parent_run_id).name == "sweep-scored"


def test_a_process_sweep_runs_trials_in_workers(project: Project) -> None:
    r = sweep(project.module.fit, configs=[{"lr": 0.2, "depth": 1}, {"lr": 0.1, "depth": 0}],
              metric="val_loss", executor="process", max_parallel=2,
              settings=project.settings, store=project.store)  # fmt: skip
    assert [t.status for t in r.trials] == ["finished", "failed"]
    assert r.best_config == {"lr": 0.2, "depth": 1}
    nested = project.store.get_run(r.trials[1].run_id)  # type: ignore[arg-type]
    assert nested.status == "failed" and nested.parent_run_id == r.parent_run_id


def test_a_trial_whose_worker_dies_leaves_no_running_run(project: Project) -> None:
    r = sweep(project.module.dies, configs=[{"lr": 0.1}], metric="val_loss",
              executor="process", settings=project.settings, store=project.store)  # fmt: skip
    (trial,) = r.trials
    assert trial.status == "failed" and "the worker running the trial died" in (trial.error or "")
    assert trial.run_id is not None
    nested = project.store.get_run(trial.run_id)
    assert nested.parent_run_id == r.parent_run_id and nested.status == "failed"
    assert nested.end_ms is not None and "died" in nested.tags["mloop.error"]
    assert nested.metrics["started"].last == 1.0
    assert project.store.get_run(r.parent_run_id).status == "failed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of `configs`"),
        ({"configs": [{"lr": 1}], "grid": {"lr": [1]}}, "exactly one of `configs`"),
        ({"grid": {"lr": []}}, r"`grid\['lr'\]` must be a non-empty list"),
        ({"configs": [1]}, r"`configs\[0\]` must be a dict"),
        ({"configs": [{}], "mode": "best"}, "`mode` must be 'min' or 'max'"),
        ({"configs": [{}], "executor": "dask"}, "`executor` must be 'local', 'process' or 'ray'"),
        ({"configs": [{}], "max_parallel": 0}, "`max_parallel` must be an int >= 1"),
        ({"configs": [{}], "resources": {"cpus": -1}}, "must be a number > 0"),
    ],
)
def test_bad_sweep_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        sweep(lambda: 1.0, metric="loss", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": 6379}, "`address` must be a str or None"),
        ({"init_options": ["num_cpus"]}, "`init_options` must be a mapping"),
        ({"resource_wait_s": -1}, "`resource_wait_s` must be a number >= 0"),
        ({"resource_wait_s": float("nan")}, "`resource_wait_s` must be a number >= 0"),
    ],
)
def test_bad_ray_executor_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    from mloop.pipelines import RayExecutor

    with pytest.raises(InvalidInputError, match=message):
        RayExecutor(**kwargs)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from mloop.pipelines import RayExecutor

    with pytest.raises(MloopError, match=r"pip install 'mloop\[ray\]'"):
        RayExecutor()
    from mloop.pipelines._engine import _executor  # what run(executor="ray") calls

    with pytest.raises(MloopError, match=r"pip install 'mloop\[ray\]'"):
        _executor("ray", None, lambda s: None)


def test_the_pipelines_package_and_its_local_executors_do_not_load_ray(tmp_path: Path) -> None:
    from _fresh_python import run_fresh

    code = (
        "import sys\n"
        "import mloop.pipelines as p\n"
        "p.ProcessPoolExecutor(max_workers=1).close(); p.InProcessExecutor(); p.sweep\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "assert p.RayExecutor.__name__ == 'RayExecutor' and 'ray' not in sys.modules\n"
    )
    run_fresh(code, tmp_path)


def test_a_spooled_registration_keeps_its_pipeline_tags(project: Project, tmp_path: Path) -> None:
    from mloop.tracking import registration_context, replay_spool

    offline = Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "off",
                                flush_interval_s=0.05)  # fmt: skip
    tags = {"mloop.pipeline_run": "a" * 32, "mloop.pipeline_step": "train"}
    r = mloop.start_run(project="p", settings=offline, system_metrics=False)
    with r, registration_context(tags) as registered:
        pending = mloop.log_model(project.module.Doubler(), "spooled", run=r, tags={"k": "v"})
    assert pending.pending and registered == []  # nothing is registered until the spool replays
    assert pending.tags == {**tags, "k": "v"}
    result = replay_spool(project.store, offline.spool_dir)
    assert result.failed == 0, result.errors
    mv = project.store.get_model_version("spooled", 1)
    assert {k: mv.tags[k] for k in (*tags, "k")} == {**tags, "k": "v"}
