"""Monitor results and alerts persist in the store (both backends), end to end from a Monitor."""

from __future__ import annotations

import numpy as np
import pytest

from mloop import monitoring as mon
from mloop.errors import InvalidInputError
from mloop.store import Store


def test_monitor_windows_and_alerts_are_persisted_and_followable(store: Store) -> None:
    rng = np.random.default_rng(0)
    reference = {"x": rng.normal(size=5000), "y": rng.normal(size=5000)}
    m = mon.Monitor(
        reference, window_rows=2000, rules=["share_drifted >= 0.5"], store=store, name="churn-prod"
    )
    m.update({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})  # healthy window
    m.update({"x": rng.normal(3, 1, size=2000), "y": rng.normal(3, 1, size=2000)})  # drifted window
    results = store.list_monitor_results("churn-prod")
    assert [r.window_index for r in results] == [0, 1]
    assert (
        results[0].window_start == 0 and results[0].window_end == 2000 and results[0].n_rows == 2000
    )
    assert (
        results[1].result["drift"]["drifted"] is True
        and results[0].result["drift"]["drifted"] is False
    )
    alerts = store.list_monitor_alerts(monitor="churn-prod")
    assert [a.window_index for a in alerts] == [1]
    assert (
        alerts[0].payload["rule"] == "share_drifted >= 0.5" and "share_drifted" in alerts[0].message
    )
    # a consumer (the retraining trigger) follows alerts from a cursor
    assert store.list_monitor_alerts(after_id=alerts[-1].id) == []
    assert store.list_monitor_results("churn-prod", after_id=results[0].id)[0].window_index == 1
    assert store.list_monitor_results("other") == []


def test_malformed_monitor_record_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="malformed"):
        store.log_monitor_result({"monitor": "m"})


def test_a_stored_window_stays_small_whatever_the_labels_it_brings(store: Store) -> None:
    rng = np.random.default_rng(1)
    plans = np.array([f"plan{i}" for i in range(8)], dtype=object)
    reference = {"plan": plans[rng.integers(0, 8, 5000)]}
    m = mon.Monitor(reference, window_rows=6000, store=store, name="ids", quality=False)
    for n_new in (10, 5000):  # a window with 10 labels the reference lacks, then one with 5000
        new = np.array([f"user{i:05d}" for i in range(n_new)], dtype=object)
        (result,) = m.update(
            {
                "plan": np.concatenate(
                    (plans[rng.integers(0, 8, 1000)], new[rng.integers(0, n_new, 5000)])
                )
            }
        )
    few, many = store.list_monitor_results("ids")
    hist = many.result["drift"]["columns"]["plan"]["histogram"]
    assert len(hist["categories"]) == 8 + 20 + 1 and hist["categories"][-1] == "(other new labels)"
    assert len(str(many.result)) <= len(str(few.result)) + 1000
    # read back, the window carries the verdict the monitor computed over every label
    back = mon.WindowResult.from_dict(many.result).drift.columns["plan"]
    assert back.statistic == result.drift.columns["plan"].statistic and back.drifted
    assert int(back.histogram.current.sum()) == back.n_current == 6000


def test_list_monitors_gives_each_monitors_newest_window(store: Store) -> None:
    assert store.list_monitors() == []
    for name, windows in (("b/prod", 3), ("a-drift", 2)):
        for w in range(windows):
            store.log_monitor_result(
                {"monitor": name, "window_index": w, "window_start": w * 10,
                 "window_end": w * 10 + 10, "n_rows": 10 + w, "result": {"w": w}, "alerts": []}
            )  # fmt: skip
    newest = store.list_monitors()
    assert [(r.monitor, r.window_index, r.window_end, r.result) for r in newest] == [
        ("a-drift", 1, 20, {"w": 1}),
        ("b/prod", 2, 30, {"w": 2}),
    ]
    assert [r.monitor for r in store.list_monitors(limit=1)] == ["a-drift"]
    with pytest.raises(InvalidInputError, match="limit"):
        store.list_monitors(limit=0)
