"""Serving records what a deployment answered per minute in the store (requests, errors, a
latency histogram), so latency and errors can be read over time once the process is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _harness import build_models, serve

from mloop.serving._minutes import MinuteRecorder
from mloop.store import LATENCY_BOUNDS_MS, SqlStore

T0 = 1_700_000_040.0  # seconds, a whole minute


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_answers_add_up_per_minute_and_a_minute_is_rewritten(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    clock = Clock()
    rec = MinuteRecorder(store, "api", replica="r1", interval_s=0, clock=clock)
    rec.observe(200, 0.004)  # 4 ms: the (2.5, 5] bucket
    rec.observe(200, 0.012)  # (10, 25]
    rec.observe(500, 20.0)  # slower than the last bound
    assert rec.flush()
    clock.now += 30
    rec.observe(400, 0.001)  # the same minute, later: its row is written again
    clock.now += 45
    rec.observe(200, 0.007)  # the next minute
    rec.close()
    first, second = store.list_serving_minutes("api")
    assert (first.minute_ms, first.requests, first.errors) == (int(T0 * 1000), 4, 2)
    assert first.latency_max_ms == pytest.approx(20_000)
    assert first.latency_sum_ms == pytest.approx(4 + 12 + 20_000 + 1)
    expected = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    expected[0], expected[2], expected[4], expected[-1] = 1, 1, 1, 1
    assert list(first.latency_counts) == expected
    assert (second.minute_ms - first.minute_ms, second.requests, second.errors) == (60_000, 1, 0)
    store.close()


def test_a_failed_write_is_kept_and_written_at_the_next_flush(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    clock = Clock()
    # a deployment name the store refuses, then a recorder over the same minutes that it accepts
    bad = MinuteRecorder(store, "bad name!", replica="r1", interval_s=0, clock=clock)
    bad.observe(200, 0.003)
    assert not bad.flush() and bad.write_errors == 1
    assert [m.requests for m in bad.snapshot()] == [1]  # kept for the next flush
    bad.deployment = "api"
    assert bad.flush()
    assert [m.requests for m in store.list_serving_minutes("api")] == [1]
    clock.now += 180  # an old, written minute is forgotten
    assert bad.flush() and bad.snapshot() == []
    store.close()


@pytest.mark.no_mutation
def test_a_served_deployment_records_its_minutes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    w: dict[str, Any] = build_models(home)
    from mloop.serving import Deployments

    Deployments(registry=w["reg"]).create(
        "minutes-api", model="models:/bc@champion", config={"log_sample": 0.0}
    )
    X = w["X"]
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.head(3).values.tolist()}}
    with serve(home, "minutes-api") as server:
        for _ in range(20):
            assert server.post_json("/invocations", body).status_code == 200
        bad = server.post_json("/invocations", {"dataframe_split": {"columns": ["x"]}})
        assert bad.status_code == 400
    # stopped: the last minutes were written on the way out
    minutes = w["reg"].store.list_serving_minutes("minutes-api")
    assert sum(m.requests for m in minutes) == 21
    assert sum(m.errors for m in minutes) == 1
    assert {m.replica.rsplit(":", 1)[0] for m in minutes} != {""}
    assert all(sum(m.latency_counts) == m.requests for m in minutes)
