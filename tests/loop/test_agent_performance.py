"""The two performance kinds through the whole path: served predictions in a real inference log,
labels posted as feedback, monitors over the log, alerts as events, the agent firing the trigger
of the matching kind. Realized performance drops when the label function changes (concept drift);
CBPE's estimate drops, before any label, when traffic moves to where the model is unsure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from _recording import CALLS, retrain

from mloop.artifacts import BlobStore
from mloop.inference import InferenceLogger, log_labels
from mloop.loop import Agent, OnAlert, Trigger
from mloop.monitoring import InferenceMonitor

MINUTE = 60_000
T0 = 28_333_333 * MINUTE  # a window boundary
N = 400


def _proba(x: np.ndarray) -> np.ndarray:
    """The served model: P(y=1 | x), calibrated on the reference (labels drawn from it)."""
    return 1.0 / (1.0 + np.exp(-6.0 * x))


def _reference() -> pa.Table:
    rng = np.random.default_rng(1)
    x = rng.normal(size=4000)
    p = _proba(x)
    y = (rng.random(4000) < p).astype(np.int64)
    return pa.table({"x1": x, "label": y, "prediction": (p >= 0.5).astype(np.int64),
                     "prediction_1": p})  # fmt: skip


def _serve(
    store: Any, blobs: BlobStore, deployment: str, windows: list[dict[str, Any]], *, scores: bool
) -> None:
    """One window of N rows per entry: x ~ N(0, ``sd``); labels (if ``labelled``) drawn from the
    model's probabilities, or from their complement when ``flipped`` (concept drift)."""
    rng = np.random.default_rng(5)
    logger = InferenceLogger(deployment, store=store, blobstore=blobs, flush_interval_s=0.05)
    labels: dict[str, int] = {}
    for w, spec in enumerate(windows):
        x = rng.normal(scale=spec.get("sd", 1.0), size=N)
        p = _proba(x)
        y = (rng.random(N) < (1 - p if spec.get("flipped") else p)).astype(int)
        ids = [f"{deployment}-w{w}-{i}" for i in range(N)]
        for b in range(10):
            rows = slice(b * (N // 10), (b + 1) * (N // 10))
            logger.log(
                request_ids=ids[rows],
                ts_ms=T0 + w * MINUTE + b * (MINUTE // 10),
                model_version=f"{deployment}/1",
                features=pa.table({"x1": x[rows]}),
                predictions=np.column_stack([1 - p[rows], p[rows]])
                if scores
                else (p[rows] >= 0.5).astype(np.int64),
            )
        if spec.get("labelled"):
            labels.update(zip(ids, y.tolist(), strict=True))
    logger.close()
    if labels:
        log_labels(deployment, labels, store=store, ts_ms=T0)


def _monitors(store: Any, blobs: BlobStore) -> list[InferenceMonitor]:
    common: dict[str, Any] = {"reference": _reference(), "window": "1min", "lateness": None,
                              "store": store, "blobstore": blobs, "columns": ["x1"]}  # fmt: skip
    realized = InferenceMonitor("labelled-api", name="realized", y_true="label",
                                y_pred="prediction", rules=["performance.accuracy < 0.7"],
                                **common)  # fmt: skip
    estimated = InferenceMonitor("scored-api", name="estimated", y_true="label", y_pred=None,
                                 y_score="prediction_1", rules=["estimated.accuracy < 0.7"],
                                 **common)  # fmt: skip
    return [realized, estimated]


def _triggers() -> list[Trigger]:
    def on(name: str, kind: str, monitor: str | None = None) -> Trigger:
        return Trigger(name, on=OnAlert(monitor=monitor, kinds=(kind,)), pipeline=retrain,
                       params={"label": name})  # fmt: skip

    return [
        on("on-performance", "performance"),
        on("on-estimate", "estimated_performance"),
        on("on-drift", "data_drift"),  # neither monitor watches drift: never fires
        on("on-realized-estimate", "estimated_performance", monitor="realized"),
    ]


def test_a_realized_drop_and_an_estimated_drop_each_fire_their_trigger(
    store: Any, blobs: BlobStore
) -> None:
    # Labelled traffic: two good windows, then the label function flips (concept drift).
    _serve(store, blobs, "labelled-api", [{"labelled": True}, {"labelled": True},
                                          {"labelled": True, "flipped": True}],
           scores=False)  # fmt: skip
    # Scored traffic, no labels yet: two windows like the reference, then a window where every
    # x is near 0, where the model's probabilities are near 0.5.
    _serve(store, blobs, "scored-api", [{}, {}, {"sd": 0.1}], scores=True)
    agent = Agent(monitors=_monitors(store, blobs), triggers=_triggers(), store=store,
                  blobstore=blobs, track=False)  # fmt: skip
    fired = {f.trigger: f for f in agent.run_once(now_ms=T0 + 3 * MINUTE)}
    assert sorted(fired) == ["on-estimate", "on-performance"]
    assert all(f.status == "finished" for f in fired.values())

    # Realized: from the labels of the third window, on the labelled deployment's monitor.
    perf = fired["on-performance"]
    assert (perf.details["monitor"], perf.details["window_start_ms"]) == (
        "realized",
        T0 + 2 * MINUTE,
    )
    assert perf.details["alert_kinds"] == ["performance"]
    (alert,) = perf.details["alerts"]
    assert alert["metric"] == "performance.accuracy" and alert["value"] < 0.5
    assert perf.reason.startswith("monitor 'realized' window")
    assert "performance: performance.accuracy = " in perf.reason
    # The good windows were measured, with labels, and did not alert.
    results = store.list_monitor_results("realized")
    accuracy = [r.result["performance"]["metrics"]["accuracy"] for r in results]
    assert len(accuracy) == 3 and min(accuracy[:2]) > 0.8 and accuracy[2] < 0.5
    assert all(r.result.get("estimated_performance") is None for r in results)

    # Estimated: CBPE on the scored deployment's unlabelled windows.
    est = fired["on-estimate"]
    assert (est.details["monitor"], est.details["window_start_ms"]) == (
        "estimated",
        T0 + 2 * MINUTE,
    )
    assert est.details["alert_kinds"] == ["estimated_performance"]
    (alert,) = est.details["alerts"]
    assert alert["metric"] == "estimated.accuracy" and alert["value"] < 0.7
    assert "estimated performance: estimated.accuracy = " in est.reason
    estimates = [r.result["estimated_performance"]["metrics"]["accuracy"]
                 for r in store.list_monitor_results("estimated")]  # fmt: skip
    assert min(estimates[:2]) > 0.8 and estimates[2] < 0.7
    assert all(r.result.get("performance") is None for r in store.list_monitor_results("estimated"))

    # Each pipeline run got its own firing, with the alert that caused it.
    assert sorted(c["label"] for c in CALLS) == ["on-estimate", "on-performance"]
    for f in fired.values():
        run = store.get_pipeline_run(f.run_id)
        assert (run.trigger, run.reason, run.status) == ("alert", f.reason, "finished")
    assert {e.payload["trigger"] for e in store.read_events(types=["trigger_fired"])} == set(fired)
    # The alerts are events of their kind; nothing fires twice.
    metrics = sorted(e.payload["metric"] for e in store.read_events(types=["monitor_alert"]))
    assert metrics == ["estimated.accuracy", "performance.accuracy"]
    assert agent.run_once(now_ms=T0 + 4 * MINUTE) == [] and len(CALLS) == 2
