"""A monitor over the inference log: drift alerts on shifted traffic only, realized performance
where labels arrived and CBPE where they did not, and a position that survives a restart."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mloop.artifacts import BlobStore
from mloop.errors import InvalidInputError
from mloop.inference import InferenceLogger
from mloop.monitoring import InferenceMonitor, monitor_inference_log

MINUTE = 60_000
T0 = 28_333_333 * MINUTE  # a window boundary (2023-11-14T22:13Z)
N = 400  # requests per window


def _model(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = 1.0 / (1.0 + np.exp(-(x1 + x2)))
    return (score > 0.5).astype(np.int64), score


def _reference(rng: np.random.Generator) -> pa.Table:
    x1, x2 = rng.normal(size=3000), rng.normal(size=3000)
    pred, score = _model(x1, x2)
    label = (rng.random(3000) < score).astype(np.int64)
    return pa.table({"x1": x1, "x2": x2, "prediction": pred, "prediction_1": score, "label": label})


def _serve(logger: InferenceLogger, rng: np.random.Generator, window: int, shift: float) -> dict:
    """N single-row requests inside window ``window``; returns request id -> true label."""
    labels = {}
    for i in range(N):
        x1, x2 = rng.normal(size=1) + shift, rng.normal(size=1)
        _pred, score = _model(x1, x2)
        rid = f"w{window}-{i}"
        logger.log(
            request_ids=[rid],
            ts_ms=T0 + window * MINUTE + i * (MINUTE // N),
            model_version="churn/3",
            features=pa.table({"x1": x1, "x2": x2}),
            predictions=np.column_stack([1 - score, score]),  # predict_proba
        )
        labels[rid] = int(rng.random() < score[0])
    return labels


@pytest.fixture
def traffic(make_logger: Any, store: Any) -> tuple[pa.Table, list[dict]]:
    """Windows 0 and 1 like the training data, window 2 shifted; labels known for window 0."""
    rng = np.random.default_rng(7)
    reference = _reference(rng)
    logger = make_logger(flush_rows=150)
    labels = [_serve(logger, rng, w, shift) for w, shift in enumerate([0.0, 0.0, 1.5])]
    logger.close()
    store.log_labels("churn-api", labels[0])
    return reference, labels


def test_drift_alert_on_shifted_traffic_only(traffic, store: Any, blobs: BlobStore) -> None:
    reference, _ = traffic
    alerts: list[Any] = []
    mon = InferenceMonitor(
        "churn-api",
        reference=reference.drop_columns(["prediction"]),
        window="1min",
        store=store,
        blobstore=blobs,
        columns=["x1", "x2"],
        y_pred=None,
        y_score="prediction_1",
        rules=["share_drifted >= 0.5"],
        sinks=[lambda alert, result: alerts.append(alert)],
    )
    results = mon.poll(until=T0 + 3 * MINUTE)
    assert [r.n_rows for r in results] == [N, N, N]
    assert [r.start for r in results] == [
        "2023-11-14T22:13:00+00:00",
        "2023-11-14T22:14:00+00:00",
        "2023-11-14T22:15:00+00:00",
    ]
    assert [bool(r.alerts) for r in results] == [False, False, True]
    assert [a.window_index for a in alerts] == [2]
    assert results[2].drift.columns["x1"].drifted and not results[2].drift.columns["x2"].drifted
    # Labels arrived for window 0: realized performance; none yet for 1 and 2: CBPE's estimate.
    assert results[0].performance is not None and results[0].performance.n == N
    assert results[0].estimated_performance is None
    assert results[1].performance is None and results[1].estimated_performance is not None
    # The results are in the store, under the monitor's name.
    stored = store.list_monitor_results("churn-api")
    assert [r.n_rows for r in stored] == [N, N, N]


def test_realized_performance_matches_a_direct_computation(traffic, store, blobs) -> None:
    from sklearn.metrics import roc_auc_score

    reference, labels = traffic
    (result,) = monitor_inference_log(
        "churn-api",
        reference=reference,
        window="1min",
        store=store,
        blobstore=blobs,
        y_pred=None,
        y_score="prediction_1",
        until=T0 + MINUTE,
        save_results=False,
    )
    assert result.performance is not None
    from mloop.inference import read_inference_log

    log = read_inference_log("churn-api", store=store, blobstore=blobs, until=T0 + MINUTE)
    expected = roc_auc_score(log["label"].to_numpy(), log["prediction_1"].to_numpy())
    assert result.performance.metrics["roc_auc"] == pytest.approx(expected, abs=1e-9)
    assert len(labels[0]) == N


def test_a_restarted_monitor_resumes_where_it_stopped(traffic, store, blobs) -> None:
    reference, _ = traffic
    kwargs = dict(
        reference=reference,
        window="1min",
        store=store,
        blobstore=blobs,
        columns=["x1", "x2"],
        y_pred=None,
        y_score="prediction_1",
    )
    first = InferenceMonitor("churn-api", **kwargs).poll(until=T0 + 2 * MINUTE)
    assert len(first) == 2
    assert store.get_cursor("monitor-churn-api").position == T0 + 2 * MINUTE
    # A new process: the cursor in the store says where to go on; nothing is evaluated twice.
    again = InferenceMonitor("churn-api", **kwargs)
    assert again.poll(until=T0 + 2 * MINUTE + 30_000) == []  # window 2 not complete yet
    rest = again.poll(until=T0 + 10 * MINUTE)
    assert [r.start for r in rest] == ["2023-11-14T22:15:00+00:00"] and rest[0].n_rows == N
    assert store.get_cursor("monitor-churn-api").position == T0 + 10 * MINUTE
    # Without resume, a one-shot pass sees the whole log.
    assert (
        len(
            monitor_inference_log(
                "churn-api", **kwargs, resume=False, until=T0 + 3 * MINUTE, save_results=False
            )
        )
        == 3
    )


def test_monitor_options_it_sets_itself_are_refused(store, blobs) -> None:
    with pytest.raises(InvalidInputError, match="timestamp_column"):
        InferenceMonitor(
            "churn-api", reference={"x1": [1.0]}, store=store, blobstore=blobs, timestamp_column="t"
        )
    mon = InferenceMonitor(
        "empty-api", reference={"x1": [1.0, 2.0]}, store=store, blobstore=blobs, window="1min"
    )
    assert mon.poll() == []  # nothing logged yet
