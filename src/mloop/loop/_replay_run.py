"""The body of a replay (see :mod:`mloop.loop._replay`): v1, the server, the windows, the agent."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd

from mloop.errors import MloopError
from mloop.loop._replay_data import (
    START_MS,
    ReplayData,
    ReplayResult,
    rows_as_bodies,
    wait_for,
)
from mloop.loop._replay_server import LoopbackServer

__all__ = ["run_replay"]

_DRIFT_LATENESS_MS = 1000


def _iso_ms(value: Any) -> int:
    return int(pd.Timestamp(value).value // 10**6)


class _Timeline:
    """Per-window entries, filled as the monitors, the agent and the registry report."""

    def __init__(self, n: int, start_ms: int, width_ms: int) -> None:
        self.start_ms, self.width_ms = start_ms, width_ms
        self.entries: list[dict[str, Any]] = [
            {
                "window": w, "data_drift": False, "drifted_columns": [], "quality_alert": False,
                "quality_columns": [], "accuracy": None, "estimated_accuracy": None,
                "performance_alert": False, "retrain_started": False, "retrain_blocked": False,
                "blocked_columns": [], "candidate_version": None, "check_passed": None,
                "check_reasons": [], "promoted_version": None, "serving_version": None,
                "requests": 0, "errors": 0, "drift_alert": False, "alerts": [],
            }
            for w in range(n)
        ]  # fmt: skip

    def index_of(self, start: Any) -> int | None:
        w = (_iso_ms(start) - self.start_ms) // self.width_ms
        return int(w) if 0 <= w < len(self.entries) else None

    def drift_result(self, result: Any) -> None:
        w = self.index_of(result.start)
        if w is None:
            return
        e = self.entries[w]
        if result.drift is not None:
            e["drifted_columns"] = sorted(
                str(c) for c, col in result.drift.columns.items() if col.drifted
            )
            e["data_drift"] = bool(e["drifted_columns"])
        if result.quality is not None and result.quality.n_failed:
            e["quality_alert"] = True
            e["quality_columns"] = sorted({str(c.column) for c in result.quality.failed})
        e["alerts"] += [a.message for a in result.alerts]
        e["drift_alert"] = any(a.metric == "n_drifted" for a in result.alerts)
        if result.estimated_performance is not None:
            e["estimated_accuracy"] = result.estimated_performance.metrics.get("accuracy")

    def performance_result(self, result: Any) -> None:
        w = self.index_of(result.start)
        if w is None or result.performance is None:
            return
        e = self.entries[w]
        e["accuracy"] = result.performance.metrics.get("accuracy")
        e["performance_alert"] = bool(result.alerts)
        e["alerts"] += [a.message for a in result.alerts]

    def registry_event(self, w: int, event: Any) -> None:
        e, p = self.entries[w], event.payload
        if event.type == "version_registered":
            e["candidate_version"] = p.get("version")
        elif event.type == "report_attached" and p.get("version") == e["candidate_version"]:
            after = p.get("after") or {}
            e["check_passed"] = after.get("status") == "pass"
        elif event.type == "promotion_refused":
            e["check_reasons"] = list(p.get("failed") or [])
        elif event.type == "alias_set" and p.get("alias") == "champion":
            e["promoted_version"] = p.get("version")
        elif event.type == "training_blocked":
            e["retrain_blocked"] = True
            e["blocked_columns"] = list(p.get("columns") or [])


def _train_v1(data: ReplayData, name: str, policy: str | None, seed: int) -> dict[str, Any]:
    from mloop.loop.templates.retrain import retrain
    from mloop.pipelines import run

    params = {
        "model": name, "deployment": name, "history": str(data.train_path),
        "until_ms": START_MS, "policy": policy, "seed": seed,
    }  # fmt: skip
    result = run(retrain, params=params, reason="replay: the first version")
    out = dict(result.output)
    if not out.get("promoted"):
        raise MloopError(f"replay: v1 of {name} did not pass its check; see `mloop models show`.")
    return out


def _reference(data: ReplayData, folder: Path, v1: Any) -> tuple[str, str | list[str] | None]:
    """The monitors' reference and the score column(s) served: the training features, their
    labels, and v1's scores on them (``prediction_<k>``, as the log names a served
    ``predict_proba``), so that CBPE can estimate accuracy before labels arrive. A model without
    ``predict_proba`` answers classes: no scores, no estimate."""
    path = folder / "reference.parquet"
    train = pd.read_parquet(data.train_path, columns=[*data.features, "label"])
    scores: str | list[str] | None = None
    if callable(getattr(v1.raw, "predict_proba", None)):
        proba = np.asarray(v1.predict(train[data.features], method="predict_proba"))
        columns = [f"prediction_{k}" for k in range(proba.shape[1])]
        train = train.assign(**{c: proba[:, k] for k, c in enumerate(columns)})
        scores = columns[1] if len(columns) == 2 else columns
    train.to_parquet(path, index=False)
    return str(path), scores


def run_replay(
    data: ReplayData,
    *,
    name: str,
    label_delay: int,
    policy: str | None,
    window_ms: int,
    accuracy_drop: float,
    drift_threshold: float,
    seed: int,
    progress: Callable[[str, int, int], None],
) -> ReplayResult:
    import mloop
    from mloop.loop import Agent, OnAlert, Trigger
    from mloop.loop.templates.retrain import retrain
    from mloop.monitoring import AlertRule, InferenceMonitor
    from mloop.serving import ServeOptions, ServeSpec, create_app

    n = len(data.windows)
    progress("train v1", 0, 1)
    v1 = _train_v1(data, name, policy, seed)
    progress("train v1", 1, 1)
    registry = mloop.Registry()
    store, blobs = registry.store, registry.blobstore
    v1_accuracy = float(v1.get("metrics", {}).get("holdout_accuracy", 0.0) or 0.0)
    work = Path(tempfile.mkdtemp(prefix="mloop-replay-"))
    reference, scores = _reference(data, work, registry.load(f"models:/{name}/{v1['version']}"))
    timeline = _Timeline(n, START_MS, window_ms)
    common: dict[str, Any] = {"store": store, "blobstore": blobs, "window": f"{window_ms}ms"}
    # Served scores give CBPE's estimate on the drift monitor's windows (before any label);
    # realized accuracy takes the predicted class from them.
    predicted: dict[str, Any] = (
        {"y_pred": None, "y_score": scores} if scores else {"y_pred": "prediction"}
    )
    drift = InferenceMonitor(
        name, reference=reference, name=f"{name}-drift", lateness=f"{_DRIFT_LATENESS_MS}ms",
        y_true="label" if scores else None, y_pred=None, y_score=scores, columns=data.features,
        drift_options={"thresholds": drift_threshold},
        quality_thresholds={"out_of_range": 1.0},  # leaving the range is drift, not breakage
        rules=["n_drifted >= 1", "quality.n_failed >= 1"], **common,
    )  # fmt: skip
    # Every window below the line fires (a drift alert fires once per episode): a retrain refused
    # for lack of post-change labels is tried again on the next window, until one is promoted.
    perf_rules = [
        AlertRule.parse(
            f"performance.accuracy < {max(v1_accuracy - accuracy_drop, 0.0):.4f}", repeat=True
        )
    ]
    perf = InferenceMonitor(
        name, reference=reference, name=f"{name}-performance",
        lateness=f"{label_delay * window_ms + _DRIFT_LATENESS_MS}ms", y_true="label",
        columns=data.features, drift=False, quality=False, cbpe=False, rules=perf_rules,
        **predicted, **common,
    )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)  # the monitors profiled the reference: done
    params = {
        "model": name, "deployment": name, "history": str(data.train_path),
        "recent_ms": (label_delay + 8) * window_ms, "policy": policy, "seed": seed,
        # Recent labelled traffic leads (a window's weight halves every window back); the
        # history only fills in where recent traffic is thin, so a changed concept is learned.
        "history_weight": 0.02, "half_life_ms": 2 * window_ms,
    }  # fmt: skip
    triggers = [
        Trigger(
            name=f"{name}-retrain-on-drift", pipeline=retrain, params=params,
            on=OnAlert(monitor=drift.name, kinds=("data_drift", "data_quality")),
        ),
        Trigger(
            name=f"{name}-retrain-on-performance", pipeline=retrain, params=params,
            on=OnAlert(monitor=perf.name, kinds=("performance",)),
        ),
    ]  # fmt: skip
    agent = Agent(monitors=[drift, perf], triggers=triggers, store=store, blobstore=blobs)
    now = [START_MS]
    options = ServeOptions(
        log_sample=1.0, log_flush_interval_s=0.2, clock=lambda: now[0],
        method="predict_proba" if scores else None,
    )  # fmt: skip
    app = create_app(
        ServeSpec(model=f"models:/{name}@champion"), registry=registry, options=options
    )
    state = app.state.mloop
    last_event = _latest_event_id(store)
    with LoopbackServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        for w, table in enumerate(data.windows):
            progress("windows", w, n)
            bodies = rows_as_bodies(table, data.features)
            start = START_MS + w * window_ms
            step = window_ms // (len(bodies) + 1)
            versions: Counter[str] = Counter()
            for i, (rid, body) in enumerate(bodies):
                now[0] = start + (i + 1) * step
                r = client.post(
                    "/invocations", content=body,
                    headers={"content-type": "application/json", "x-request-id": rid},
                )  # fmt: skip
                if r.status_code == 200:
                    versions[r.headers.get("x-mloop-model-version", "?")] += 1
                else:
                    timeline.entries[w]["errors"] += 1
            state.logger.flush()
            entry = timeline.entries[w]
            entry["requests"] = len(bodies)
            if versions:
                label = versions.most_common(1)[0][0]
                entry["serving_version"] = int(label.rsplit("/", 1)[-1])
            due = w - label_delay
            if due >= 0 and data.labels[due]:
                r = client.post("/feedback", content=orjson.dumps(
                    {"labels": [{"request_id": k, "label": v} for k, v in data.labels[due].items()]}
                ), headers={"content-type": "application/json"})  # fmt: skip
                if r.status_code != 200:
                    raise MloopError(f"replay: /feedback answered {r.status_code}: {r.text}")
            now[0] = start + window_ms + _DRIFT_LATENESS_MS
            seen_drift, seen_perf = len(drift.results), len(perf.results)
            firings = agent.run_once(now_ms=now[0])
            for result in list(drift.results)[seen_drift:]:
                timeline.drift_result(result)
            for result in list(perf.results)[seen_perf:]:
                timeline.performance_result(result)
            entry["retrain_started"] = bool(firings)
            for event in store.read_events(after_id=last_event, subject=f"models/{name}"):
                timeline.registry_event(w, event)
            last_event = _latest_event_id(store)
            promoted = entry["promoted_version"]
            if promoted is not None:
                wait_for(
                    functools.partial(_serves, state, promoted),
                    timeout_s=60,
                    what=f"the hot swap to version {promoted}",
                )
        progress("windows", n, n)
        # The labels still owed and the windows the performance monitor has not judged yet.
        for due in range(max(n - label_delay, 0), n):
            if data.labels[due]:
                client.post("/feedback", content=orjson.dumps(
                    {"labels": [{"request_id": k, "label": v} for k, v in data.labels[due].items()]}
                ), headers={"content-type": "application/json"})  # fmt: skip
        end = START_MS + (n + label_delay) * window_ms + _DRIFT_LATENESS_MS
        for result in perf.poll(until=end - perf.lateness_ms):
            timeline.performance_result(result)
    return ReplayResult(timeline.entries, _summary(timeline.entries, v1, accuracy_drop), name)


def _latest_event_id(store: Any) -> int:
    position = 0
    while True:
        page = store.read_events(after_id=position, limit=1000)
        if not page:
            return position
        position = page[-1].id


def _serves(state: Any, version: int) -> bool:
    return _serving(state) == version


def _serving(state: Any) -> int | None:
    controller = state.controller
    if controller is None:
        return None
    for slot, m in controller.traffic.served():
        if slot == "main":
            return int(m.version.version)
    return None


def _summary(entries: list[dict[str, Any]], v1: dict[str, Any], drop: float) -> dict[str, Any]:
    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    promoted = [e["promoted_version"] for e in entries if e["promoted_version"] is not None]
    final = entries[-1]["serving_version"] if entries else None
    first_swap = next(
        (e["window"] for e in entries if e["serving_version"] not in (None, v1["version"])), None
    )
    before = [e["accuracy"] for e in entries if e["accuracy"] is not None]
    if first_swap is not None:
        before = [e["accuracy"] for e in entries[:first_swap] if e["accuracy"] is not None]
    after = [
        e["accuracy"]
        for e in entries
        if e["accuracy"] is not None and first_swap is not None and e["window"] >= first_swap
    ]
    return {
        "windows": len(entries),
        "requests": sum(e["requests"] for e in entries),
        "errors": sum(e["errors"] for e in entries),
        "drift_windows": sum(e["data_drift"] for e in entries),
        "drift_alerts": sum(e["drift_alert"] for e in entries),
        "quality_windows": sum(e["quality_alert"] for e in entries),
        "quality_alerts": sum(any(a.startswith("quality") for a in e["alerts"]) for e in entries),
        "performance_alerts": sum(e["performance_alert"] for e in entries),
        "retrains": sum(e["retrain_started"] for e in entries),
        "blocked": sum(e["retrain_blocked"] for e in entries),
        "candidates": [e["candidate_version"] for e in entries if e["candidate_version"]],
        "promotions": promoted,
        "first_version": v1["version"],
        "final_serving_version": final,
        "final_champion": promoted[-1] if promoted else v1["version"],
        "v1_holdout_accuracy": v1.get("metrics", {}).get("holdout_accuracy"),
        "accuracy_before": mean(before),
        "accuracy_after": mean(after),
        "estimated_accuracy_mean": mean(
            [e["estimated_accuracy"] for e in entries if e["estimated_accuracy"] is not None]
        ),
    }
