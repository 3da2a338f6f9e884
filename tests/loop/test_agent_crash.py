"""The agent's idempotency under real failures: an agent process killed (SIGKILL) while a pipeline
step runs is finished by the next agent once the lease runs out — one firing, the cut-off run
marked failed, the resumed run finished, finished steps not executed again — and two agents on one
PostgreSQL store that see the same alert start one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _traffic import MINUTE, T0, serve

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.loop import Agent
from mloop.store import SqlStore

# The project a user would have: steps, a pipeline, the monitor and the trigger the agent runs.
FLOW = """
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import mloop
from mloop.monitoring import InferenceMonitor
from mloop.pipelines import OnAlert, Trigger, pipeline, step

HERE = Path(__file__).parent


def _mark(name: str) -> None:
    with open(HERE / name, "a") as f:
        f.write("x\\n")


@step
def gather(n: int) -> list:
    _mark("gather.count")
    return list(range(n))


@step
def train(rows: list) -> int:
    _mark("train.count")
    mloop.log({"rows": len(rows)})
    mloop.active_run().flush()  # the tracking run is in the store before the agent dies
    (HERE / "train.started").touch()
    deadline = time.monotonic() + 120
    while not (HERE / "release").exists():  # the first agent is killed while it waits here
        if time.monotonic() > deadline:
            raise TimeoutError("nobody released the step")
        time.sleep(0.02)
    return sum(rows)


@pipeline
def retrain(n: int = 4):
    return train(gather(n))


def monitor(store, blobs):
    rng = np.random.default_rng(1)
    reference = pa.table({"x1": rng.normal(size=3000), "x2": rng.normal(size=3000)})
    return InferenceMonitor(
        "churn-api", reference=reference, window="1min", lateness=None, name="churn",
        store=store, blobstore=blobs, columns=["x1", "x2"], y_true=None, y_pred=None,
        rules=["columns.x1.statistic >= 0.3"],
    )


def trigger():
    return Trigger("on-drift", on=OnAlert(monitor="churn", kinds=("data_drift",)),
                   pipeline=retrain, params={"n": 4})
"""

AGENT = """
import sys

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.loop import Agent
from mloop.store import SqlStore

import {module} as flow

store_uri, artifacts, home, lease_s, now_ms = sys.argv[1:6]
settings = Settings(home=home, store_uri=store_uri, artifact_uri=artifacts)
store = SqlStore(store_uri)
blobs = BlobStore(artifacts)
agent = Agent(monitors=[flow.monitor(store, blobs)], triggers=[flow.trigger()], store=store,
              blobstore=blobs, settings=settings, lease_s=float(lease_s))
agent.run_once(now_ms=int(now_ms))
"""


class Project:
    def __init__(self, root: Path, store_uri: str) -> None:
        import importlib

        self.root = root
        self.name = f"crashflow_{uuid.uuid4().hex[:8]}"
        (root / f"{self.name}.py").write_text(FLOW)
        self.flow: ModuleType = importlib.import_module(self.name)
        self.settings = Settings(home=root / ".mloop", store_uri=store_uri,
                                 artifact_uri=str(root / "artifacts"))  # fmt: skip
        self.store = SqlStore(store_uri)
        self.blobs = BlobStore(root / "artifacts")

    def agent(self, *, store: Any = None, **kw: Any) -> Agent:
        store = store or self.store
        return Agent(monitors=[self.flow.monitor(store, self.blobs)],
                     triggers=[self.flow.trigger()], store=store, blobstore=self.blobs,
                     settings=self.settings, **kw)  # fmt: skip

    def count(self, name: str) -> int:
        path = self.root / name
        return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Project(tmp_path, f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        yield p
    finally:
        p.store.close()
        sys.modules.pop(p.name, None)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(
                f"the agent process ended ({proc.returncode}) before {what}:\n{out}"
            )
        assert time.monotonic() < deadline, f"the agent process never reached {what}"
        time.sleep(0.05)


def test_an_agent_killed_mid_step_is_finished_by_the_next_one(project: Project) -> None:
    serve(project.store, project.blobs, [(0.0, False), (2.0, False)])
    script = project.root / "run_agent.py"
    script.write_text(AGENT.format(module=project.name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project.root), *sys.path])}
    lease_s = 1.5
    proc = subprocess.Popen(
        [sys.executable, str(script), project.settings.store_uri, str(project.blobs.uri),
         str(project.settings.home), str(lease_s), str(T0 + 2 * MINUTE)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for(project.root / "train.started", proc, "the step `train`")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    store = project.store
    # What the killed agent left: one firing, held (its lease runs out), a run cut off midway.
    (left,) = store.list_trigger_firings()
    assert (left.status, left.kind, left.resumed_from) == ("running", "alert", None)
    cut = store.get_pipeline_run(left.run_id)
    assert cut.status == "running" and cut.trigger == "alert"
    assert [(s.name, s.status) for s in store.list_step_runs(cut.id)] == [("gather", "finished")]
    assert store.get_run(cut.tracking_run_id).status == "running"  # type: ignore[arg-type]
    assert (project.count("gather.count"), project.count("train.count")) == (1, 1)

    (project.root / "release").touch()
    again = project.agent(lease_s=lease_s)
    deadline = time.monotonic() + 60
    while True:  # the lease has to run out first; meanwhile the firing is someone else's
        (f,) = again.run_once(now_ms=T0 + 2 * MINUTE)
        if f.status not in ("pending", "running"):
            break
        assert f.run_id == cut.id and f.owner == left.owner
        assert time.monotonic() < deadline, "the firing was never taken over"
        time.sleep(0.1)

    # One firing, finished, by a new run resumed from the one cut off.
    assert (f.key, f.status, f.resumed_from, f.error) == (left.key, "finished", cut.id, None)
    assert f.run_id != cut.id and f.owner is None  # an ended firing is nobody's
    assert [x.key for x in store.list_trigger_firings()] == [left.key]
    (fired,) = store.read_events(types=["trigger_fired"])
    assert fired.payload["key"] == left.key and fired.payload["reason"] == left.reason
    failed = store.get_pipeline_run(cut.id)
    assert failed.status == "failed" and "lease ran out" in (failed.error or "")
    resumed = store.get_pipeline_run(f.run_id)
    assert (resumed.status, resumed.trigger, resumed.resumed_from) == ("finished", "resume", cut.id)
    assert resumed.reason == left.reason and "x1" in resumed.reason
    steps = {s.name: s for s in store.list_step_runs(resumed.id)}
    assert (steps["gather"].status, steps["train"].status) == ("cached", "finished")
    assert steps["gather"].cache_note == f"reused from run {cut.id}"
    # `gather` ran once (the cut-off run's output was reused); `train` ran again, to its end.
    assert (project.count("gather.count"), project.count("train.count")) == (1, 2)
    assert [r.id for r in store.list_pipeline_runs("retrain")] == [resumed.id, cut.id]
    # The tracking runs agree: the cut-off one was killed, the resumed one finished.
    assert store.get_run(cut.tracking_run_id).status == "killed"  # type: ignore[arg-type]
    assert store.get_run(resumed.tracking_run_id).status == "finished"  # type: ignore[arg-type]
    # The event log tells the same story, in order.
    story = [
        (e.type, e.payload.get("run_id") or e.subject.rpartition("/")[2], e.payload.get("status"))
        for e in store.read_events(types=["pipeline_run_started", "pipeline_run_finished"])
    ]
    assert story == [
        ("pipeline_run_started", cut.id, None),
        ("pipeline_run_finished", cut.id, "failed"),
        ("pipeline_run_started", resumed.id, None),
        ("pipeline_run_finished", resumed.id, "finished"),
    ]
    assert again.run_once(now_ms=T0 + 3 * MINUTE) == []
    assert project.count("train.count") == 2


@pytest.fixture
def pg_project(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Project(tmp_path, pg_database)
    try:
        yield p
    finally:
        p.store.close()
        sys.modules.pop(p.name, None)


def test_two_agents_on_postgresql_start_one_run_for_an_alert(pg_project: Project) -> None:
    p = pg_project
    serve(p.store, p.blobs, [(0.0, False), (0.0, False), (2.0, False)])
    (p.root / "release").touch()
    # Two replicas of one agent, each with its own connection pool and its own monitor over the
    # same deployment, polling at the same moment.
    stores = [SqlStore(p.settings.store_uri) for _ in range(2)]
    agents = [p.agent(store=s, name=n) for s, n in zip(stores, ("a", "b"), strict=True)]
    start = threading.Barrier(2)
    fired: dict[str, list[Any]] = {}
    errors: list[BaseException] = []

    def one_pass(agent: Agent) -> None:
        try:
            start.wait(timeout=60)
            fired[agent.name] = agent.run_once(now_ms=T0 + 3 * MINUTE)
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=one_pass, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        # Each replica evaluates the windows of its monitor (a window's result may be written
        # twice); whatever alerts they raised are about one window, and fire one run.
        alerts = p.store.read_events(types=["monitor_alert"])
        assert alerts and {e.payload["window_start"] for e in alerts} == {
            alerts[0].payload["window_start"]
        }
        (firing,) = p.store.list_trigger_firings()
        assert firing.status == "finished" and firing.details["window_index"] == 2
        assert len(p.store.read_events(types=["trigger_fired"])) == 1
        (only,) = p.store.list_pipeline_runs("retrain")
        assert only.id == firing.run_id and only.status == "finished"
        assert (p.count("gather.count"), p.count("train.count")) == (1, 1)
        # Each agent reports the firing: one ran it, the other saw it recorded or held.
        seen = [f.key for fs in fired.values() for f in fs]
        assert set(seen) == {firing.key}
        # Later passes of either agent fire nothing more.
        assert all(a.run_once(now_ms=T0 + 3 * MINUTE) == [] for a in agents)
        assert len(p.store.list_pipeline_runs("retrain")) == 1
    finally:
        for s in stores:
            s.close()
