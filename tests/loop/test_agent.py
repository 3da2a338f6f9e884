"""The agent over a real inference log and real monitors: an alert fires exactly one run (also
after a restart, with two agents, and when the agent dies between firing and running), drift and
quality alerts are told apart, schedules fire at their times, new files fire once, manual
requests fire once, and each firing is an event with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _recording import CALLS, retrain
from _traffic import MINUTE, T0, serve

from mloop.artifacts import BlobStore
from mloop.loop import Agent, OnAlert, OnNewData, OnSchedule, Trigger
from mloop.monitoring import InferenceMonitor
from mloop.pipelines import OnManual
from mloop.store import SqlStore


def _reference(rng: np.random.Generator) -> pa.Table:
    return pa.table({"x1": rng.normal(size=3000), "x2": rng.normal(size=3000)})


def _monitor(store: Any, blobs: BlobStore, **kw: Any) -> InferenceMonitor:
    return InferenceMonitor(
        "churn-api", reference=_reference(np.random.default_rng(1)), window="1min",
        lateness=None, name="churn", store=store, blobstore=blobs, columns=["x1", "x2"],
        y_true=None, y_pred=None,
        rules=["columns.x1.statistic >= 0.3", "quality.n_failed >= 1"], **kw,
    )  # fmt: skip


def _agent(store: Any, blobs: BlobStore, triggers: list[Trigger], **kw: Any) -> Agent:
    kw.setdefault("monitors", [_monitor(store, blobs)])
    return Agent(triggers=triggers, store=store, blobstore=blobs, track=False, **kw)


def drift_only() -> Trigger:
    return Trigger("on-drift", on=OnAlert(monitor="churn", kinds=("data_drift",)),
                   pipeline=retrain, params={"label": "drift"})  # fmt: skip


def quality_only() -> Trigger:
    return Trigger("on-quality", on=OnAlert(monitor="churn", kinds=("data_quality",)),
                   pipeline=retrain, params={"label": "quality"})  # fmt: skip


def test_a_drift_alert_fires_one_run_with_its_reason(store: Any, blobs: BlobStore) -> None:
    serve(store, blobs, [(0.0, False), (0.0, False), (2.0, False)])
    agent = _agent(store, blobs, [drift_only(), quality_only()])
    fired = agent.run_once(now_ms=T0 + 3 * MINUTE)
    assert [(f.trigger, f.status) for f in fired] == [("on-drift", "finished")]
    (f,) = fired
    assert f.details["monitor"] == "churn" and f.details["window_index"] == 2
    # KS of a 2 sd shift is ~0.68; of no shift at these sizes < 0.1 (any seed)
    assert "x1" in f.details["drifted_columns"] and "x1" in f.details["columns"]
    assert f.details["window_start_ms"] == T0 + 2 * MINUTE
    assert f.details["window_end_ms"] == T0 + 3 * MINUTE
    assert [a["kind"] for a in f.details["alerts"]] == ["data_drift"]
    assert "drifted columns" in f.reason and "columns.x1.statistic" in f.reason
    # The pipeline run records the same trigger and reason, and got the firing.
    run = store.get_pipeline_run(f.run_id)
    assert (run.trigger, run.reason, run.status) == ("alert", f.reason, "finished")
    assert len(CALLS) == 1 and CALLS[0]["label"] == "drift"
    assert CALLS[0]["trigger"]["key"] == f.key and "x1" in CALLS[0]["trigger"]["columns"]
    # The firing is an event about the pipeline, with its reason.
    (e,) = store.read_events(types=["trigger_fired"])
    assert e.subject == "pipelines/retrain" and e.payload["reason"] == f.reason
    assert e.payload["run_id"] == f.run_id
    # Nothing new: nothing fires again.
    assert agent.run_once(now_ms=T0 + 4 * MINUTE) == []
    assert len(CALLS) == 1


def test_quality_and_drift_alerts_are_told_apart(store: Any, blobs: BlobStore) -> None:
    serve(store, blobs, [(0.0, False), (0.0, True)])
    agent = _agent(store, blobs, [drift_only(), quality_only()])
    fired = agent.run_once(now_ms=T0 + 2 * MINUTE)
    assert [f.trigger for f in fired] == ["on-quality"]
    assert fired[0].details["quality_columns"] == ["x2"]
    assert fired[0].details["alert_kinds"] == ["data_quality"]
    assert [c["label"] for c in CALLS] == ["quality"]


def test_an_alert_fires_once_across_a_restart(store: Any, blobs: BlobStore) -> None:
    serve(store, blobs, [(0.0, False), (2.0, False)])
    first = _agent(store, blobs, [drift_only()])
    assert len(first.run_once(now_ms=T0 + 2 * MINUTE)) == 1
    # A new agent process: same name, same cursor; the event log is replayed from the start.
    store.set_cursor("agent-agent", 0)
    again = _agent(store, blobs, [drift_only()])
    assert again.run_once(now_ms=T0 + 2 * MINUTE) == []
    assert len(CALLS) == 1 and len(store.list_pipeline_runs("retrain")) == 1


def test_two_agents_fire_an_alert_once(store: Any, blobs: BlobStore, tmp_path: Path) -> None:
    serve(store, blobs, [(0.0, False), (2.0, False)])
    a = _agent(store, blobs, [drift_only()], name="a")
    other = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    b = _agent(other, blobs, [drift_only()], name="b", monitors=[])
    a_fired = a.run_once(now_ms=T0 + 2 * MINUTE)
    b_fired = b.run_once(now_ms=T0 + 2 * MINUTE)
    assert len(a_fired) == 1 and b_fired == []
    assert len(CALLS) == 1
    other.close()


def test_an_agent_dying_between_firing_and_running_is_finished_by_the_next(
    store: Any, blobs: BlobStore
) -> None:
    serve(store, blobs, [(0.0, False), (2.0, False)])
    clock = [1000.0]
    dying = _agent(store, blobs, [drift_only()], lease_s=30, clock=lambda: clock[0])

    class Died(BaseException):
        pass

    def die(f: Any) -> None:
        raise Died

    dying._after_firing = die
    with pytest.raises(Died):
        dying.run_once(now_ms=T0 + 2 * MINUTE)
    (left,) = store.list_trigger_firings(open_only=True)
    assert left.status == "pending" and store.list_pipeline_runs() == []
    # A restarted agent: the lease still runs, so it waits; once it ran out, it runs the firing.
    restarted = _agent(store, blobs, [drift_only()], lease_s=30, clock=lambda: clock[0])
    (waiting,) = restarted.run_once(now_ms=T0 + 2 * MINUTE)
    assert waiting.status == "pending" and CALLS == []
    clock[0] += 31
    (done,) = restarted.run_once(now_ms=T0 + 2 * MINUTE)
    assert (done.key, done.status, done.run_id) == (left.key, "finished", left.run_id)
    assert len(CALLS) == 1 and len(store.list_pipeline_runs("retrain")) == 1


def test_a_schedule_fires_at_its_times(store: Any, blobs: BlobStore) -> None:
    nightly = Trigger("q", on=OnSchedule("*/15 * * * *"), pipeline=retrain)
    agent = _agent(store, blobs, [nightly], monitors=[])
    t = T0 - (T0 % (15 * MINUTE))  # a quarter hour
    assert agent.run_once(now_ms=t + 1) == []  # a new schedule starts now
    assert agent.run_once(now_ms=t + 14 * MINUTE) == []
    (f,) = agent.run_once(now_ms=t + 15 * MINUTE)
    assert f.details["due_ms"] == t + 15 * MINUTE and f.kind == "schedule"
    assert agent.run_once(now_ms=t + 16 * MINUTE) == []
    # Down for an hour: the missed times collapse into one firing, at the latest.
    (late,) = agent.run_once(now_ms=t + 77 * MINUTE)
    assert late.details["due_ms"] == t + 75 * MINUTE
    assert [c["trigger"]["due_ms"] for c in CALLS] == [t + 15 * MINUTE, t + 75 * MINUTE]


def test_new_files_fire_once(store: Any, blobs: BlobStore, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    t = Trigger("landing", on=OnNewData(str(landing), pattern="*.parquet"), pipeline=retrain)
    agent = _agent(store, blobs, [t], monitors=[])
    assert agent.run_once(now_ms=T0) == []  # nothing there yet
    pq.write_table(pa.table({"a": [1]}), landing / "a.parquet")
    (landing / "notes.txt").write_text("ignored")
    (f,) = agent.run_once(now_ms=T0)
    assert f.details["new"] == ["a.parquet"] and f.status == "finished"
    assert agent.run_once(now_ms=T0) == []
    # A restarted agent remembers what was seen (it is kept with the firing).
    assert _agent(store, blobs, [t], monitors=[]).run_once(now_ms=T0) == []
    pq.write_table(pa.table({"a": [1, 2, 3]}), landing / "a.parquet")
    pq.write_table(pa.table({"b": [1]}), landing / "b.parquet")
    (g,) = agent.run_once(now_ms=T0)
    assert (g.details["new"], g.details["changed"]) == (["b.parquet"], ["a.parquet"])
    assert len(CALLS) == 2


def test_a_manual_request_fires_once(store: Any, blobs: BlobStore) -> None:
    t = Trigger("by-hand", on=OnManual(), pipeline=retrain, params={"label": "m"})
    agent = _agent(store, blobs, [t], monitors=[])
    event = agent.request("by-hand", reason="new labels from the audit")
    (f,) = agent.run_once(now_ms=T0)
    assert (f.kind, f.reason, f.details["event_id"]) == (
        "manual",
        "new labels from the audit",
        event.id,
    )
    assert store.get_pipeline_run(f.run_id).reason == "new labels from the audit"
    assert agent.run_once(now_ms=T0) == []
    direct = agent.fire("by-hand", reason="now")
    assert direct.status == "finished" and len(CALLS) == 2
