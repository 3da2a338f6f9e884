"""The Monitoring and Loop timeline data routes over a SQLite store: a model's history read page by
page is exactly its events, newest first, without another model's; a monitor's summary is its
stored windows reduced to scores and verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.server._ui_loop import model_timeline, monitor_summary
from mloop.store import create_store


def _window(store, monitor: str, i: int, stat: float, alerts: int = 0) -> None:  # type: ignore[no-untyped-def]
    col = {
        "name": "x",
        "method": "wasserstein",
        "statistic": stat,
        "p_value": None,
        "threshold": 0.5,
        "drifted": stat >= 0.5,
        "status": "drift" if stat >= 0.5 else "ok",
    }
    store.log_monitor_result(
        {"monitor": monitor, "window_index": i, "window_start": i, "window_end": i + 1,
         "n_rows": 10, "result": {"drift": {"drifted": stat >= 0.5, "share_drifted": 1.0 * (stat >= 0.5),
                                            "columns": {"x": col}},
                                  "estimated_performance": {"metrics": {"accuracy": 0.9 - stat / 10}}},
         "alerts": [{"rule": "n_drifted >= 1", "metric": "n_drifted", "value": 1.0}] * alerts}
    )  # fmt: skip


def test_timeline_pages_cover_the_models_history_newest_first(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    store.create_registered_model("churn")
    store.create_registered_model("other")
    for i in range(60):  # interleaved: churn's monitor, another model's, a noise monitor
        _window(store, "churn-drift", i, 0.1 * (i % 7), alerts=int(i % 7 == 6))
        _window(store, "other-drift", i, 0.2)
        if i % 10 == 0:
            store.append_event("promotion_refused", "models/churn", payload={"version": i})
            store.append_event("promotion_refused", "models/other", payload={"version": i})
    mine = [e.id for e in store.read_events(after_id=0, limit=10_000)
            if e.subject in ("models/churn", "monitors/churn-drift")][::-1]  # fmt: skip
    for limit in (1, 7, 50, 500):
        got, before, pages = [], None, 0
        while True:
            page = model_timeline(store, "churn", before_id=before, limit=limit)
            assert len(page["events"]) <= limit
            got += [e["id"] for e in page["events"]]
            pages += 1
            before = page["next_before_id"]
            if before is None:
                break
        assert got == mine, limit
        assert pages >= len(mine) // limit
    assert model_timeline(store, "churn", before_id=None, limit=5)["subjects"] == [
        "models/churn",
        "monitors/churn-drift",
    ]
    with pytest.raises(NotFoundError):
        model_timeline(store, "nope", before_id=None, limit=5)
    store.close()


def test_monitor_summary_is_the_stored_windows(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    for i, stat in enumerate([0.1, 0.4, 0.9, 1.2]):
        _window(store, "prod/churn", i, stat, alerts=int(stat >= 0.5))
    doc = monitor_summary(store, "prod/churn", max_windows=3)
    assert doc["older"] is True and [w["index"] for w in doc["windows"]] == [1, 2, 3]
    (x,) = doc["columns"]
    assert x["statistic"] == [0.4, 0.9, 1.2] and x["drifted"] == [False, True, True]
    assert x["severity"] == pytest.approx([0.8, 1.8, 2.4])
    assert doc["estimated"]["accuracy"] == pytest.approx([0.86, 0.81, 0.78])
    assert [a["window_index"] for a in doc["alerts"]] == [2, 3]
    every = monitor_summary(store, "prod/churn", max_windows=10)
    assert every["older"] is False and [w["index"] for w in every["windows"]] == [0, 1, 2, 3]
    with pytest.raises(NotFoundError, match="stored no window"):
        monitor_summary(store, "nope", max_windows=3)
    store.close()


def test_bad_arguments_are_refused_with_the_range() -> None:
    from mloop.server._ui_common import int_arg

    with pytest.raises(InvalidInputError, match=r"`limit` must be an int in \[1, 2000\]; got '0'"):
        int_arg("0", "limit", lo=1, hi=2000, default=500)


def test_under_auth_the_routes_need_a_token_not_scoped_to_a_project(tmp_path: Path) -> None:
    import httpx

    from _live_server import LiveServer
    from mloop.server import create_app

    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    store.create_registered_model("churn")
    import numpy as np

    from mloop import monitoring as mon

    rng = np.random.default_rng(0)
    m = mon.Monitor({"x": rng.normal(size=2000)}, window_rows=500, rules=["n_drifted >= 1"],
                    store=store, name="churn-drift")  # fmt: skip
    m.update({"x": rng.normal(3, 1, size=500)})  # a drifted window, with its alert
    (rid,) = [r.id for r in store.list_monitor_results("churn-drift")]
    read = store.create_token("reader", role="read").secret
    p = store.get_or_create_project("p")
    scoped = store.create_token("scoped", role="read", project_id=p.id).secret
    urls = [
        ("/api/v1/ui/monitor-summary", {"monitor": "churn-drift"}),
        ("/api/v1/ui/monitor-report", {"monitor": "churn-drift", "result_id": rid}),
        ("/api/v1/ui/models/churn/timeline", {"limit": 10}),
        ("/api/v1/monitors", {}),
    ]
    with LiveServer(create_app(store, auth=True)) as server, httpx.Client(base_url=server.url) as c:
        for url, params in urls:
            assert c.get(url, params=params).status_code == 401, url
            who = {"Authorization": f"Bearer {scoped}"}
            assert c.get(url, params=params, headers=who).status_code == 403, url
            ok = c.get(url, params=params, headers={"Authorization": f"Bearer {read}"})
            assert ok.status_code == 200, (url, ok.text)
        page = c.get(urls[2][0], params=urls[2][1], headers={"Authorization": f"Bearer {read}"})
        assert [e["type"] for e in page.json()["events"]] == [
            "monitor_alert",
            "monitor_result",
            "model_created",
        ]
        report = c.get(urls[1][0], params=urls[1][1], headers={"Authorization": f"Bearer {read}"})
        assert report.json()["html"].startswith("<!DOCTYPE html>")
        bad = c.get(urls[2][0], params={"limit": 0}, headers={"Authorization": f"Bearer {read}"})
        assert bad.status_code == 400 and "`limit` must be an int in [1, 2000]" in bad.text
    store.close()
