"""Deployments served for real: canary split, sticky keys, shadow, the inference log, feedback,
a crash, and a monitor over the log."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _harness import build_models, serve
from scipy import stats

pytestmark = pytest.mark.no_mutation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("serve-deploy") / "home"
    w = {**build_models(home), "home": home}
    from mloop.serving import Deployments

    w["deployments"] = Deployments(registry=w["reg"])
    return w


def _body(X: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(X.columns), "data": X.values.tolist()}}


def _binom_bounds(n: int, p: float, alpha: float = 1e-6) -> tuple[int, int]:
    return int(stats.binom.ppf(alpha / 2, n, p)), int(stats.binom.isf(alpha / 2, n, p))


def test_canary_split_sticky_keys_and_a_live_spec_change(world: dict) -> None:
    X, deps = world["X"], world["deployments"]
    deps.create(
        "split",
        model="models:/bc@champion",
        canary="models:/bc/2:30%",
        sticky_key="X-User",
        config={"log_sample": 0.0},
    )
    with serve(world["home"], "split") as server:
        n = 600
        versions = [
            server.post_json("/invocations", _body(X.iloc[[i % len(X)]])).headers[
                "x-mloop-model-version"
            ]
            for i in range(n)
        ]
        assert set(versions) == {"bc/1", "bc/2"}
        low, high = _binom_bounds(n, 0.30)
        assert low <= versions.count("bc/2") <= high

        # sticky: a user always gets the same version; users split 30/70 too
        by_user: dict[str, set[str]] = {}
        for round_ in range(3):
            for u in range(200):
                r = server.post_json("/invocations", _body(X.iloc[[round_]]), **{"X-User": f"u{u}"})
                by_user.setdefault(f"u{u}", set()).add(r.headers["x-mloop-model-version"])
        assert all(len(v) == 1 for v in by_user.values())
        canaried = sum(1 for v in by_user.values() if v == {"bc/2"})
        low, high = _binom_bounds(200, 0.30)
        assert low <= canaried <= high

        # the canary is withdrawn: the server follows the deployment's event
        deps.set("split", canary=None, reason="canary looked fine, promoting later")
        deadline = time.monotonic() + 30
        while True:
            seen = {
                server.post_json("/invocations", _body(X.iloc[[0]]), **{"X-User": f"u{u}"}).headers[
                    "x-mloop-model-version"
                ]
                for u in range(40)
            }
            if seen == {"bc/1"}:
                break
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        state = server.client.get("/serving").json()
        assert state["deployment"] == "split"
        assert state["spec"]["revision"] == 2
        assert set(state["models"]) == {"main"}


def _disagreeing_rows(world: dict) -> Any:
    X = world["X"]
    a, b = world["pipe"].predict(X), world["bare"].predict(X)
    rows = X[a != b]
    assert len(rows) >= 3, "the test needs rows where the champion and the shadow disagree"
    return rows


def test_shadow_is_logged_never_returned_and_feedback_is_joined(world: dict) -> None:
    from mloop.inference import read_inference_log

    X, deps, reg = world["X"], world["deployments"], world["reg"]
    rows = _disagreeing_rows(world)
    normal = X.sample(200, random_state=3)
    deps.create(
        "shadowed",
        model="models:/bc@champion",
        shadow="models:/bc/2",
        config={"log_flush_interval_s": 0.2},
    )
    sent: dict[str, Any] = {}
    with serve(world["home"], "shadowed") as server:
        for i in range(len(rows)):
            r = server.post_json("/invocations", _body(rows.iloc[[i]]), **{"X-Request-Id": f"d{i}"})
            assert r.headers["x-mloop-model-version"] == "bc/1"
            assert r.json()["predictions"] == world["pipe"].predict(rows.iloc[[i]]).tolist()
            sent[f"d{i}"] = rows.iloc[i]
        for j in range(0, len(normal), 10):
            part = normal.iloc[j : j + 10]
            r = server.post_json("/invocations", _body(part), **{"X-Request-Id": f"n{j}"})
            assert r.status_code == 200
        # labels: one at a time and in a batch
        assert server.post_json("/feedback", {"request_id": "d0", "label": 1}).json() == {
            "stored": 1
        }
        batch = {"labels": [{"request_id": f"d{i}", "label": i % 2} for i in range(1, len(rows))]}
        assert server.post_json("/feedback", batch).json() == {"stored": len(rows) - 1}
        bad = server.post_json("/feedback", {"label": 1})
        assert bad.status_code == 400 and "request_id" in bad.json()["message"]
        # a clean shutdown flushes the log (uvicorn re-raises SIGTERM after draining: exit -15)
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()

    log = read_inference_log("shadowed", store=reg.store, blobstore=reg.blobstore)
    assert log.num_rows == len(rows) + len(normal)  # complete
    by_id = log.to_pandas()
    d = by_id[by_id.request_id.str.startswith("d")].sort_values(
        "request_id", key=lambda s: s.str[1:].astype(int)
    )
    assert list(d.model_version.unique()) == ["bc/1"]
    assert list(d.shadow_version.unique()) == ["bc/2"]
    np.testing.assert_array_equal(d.prediction, world["pipe"].predict(rows))
    np.testing.assert_array_equal(d.shadow_prediction, world["bare"].predict(rows))
    np.testing.assert_allclose(d["mean radius"], rows["mean radius"])
    assert d.label.tolist() == [1, *[i % 2 for i in range(1, len(rows))]]
    n = by_id[by_id.request_id.str.startswith("n")]
    assert n.groupby("request_id").size().eq(10).all()
    assert n.label.isna().all()


def test_a_killed_server_loses_at_most_its_unflushed_rows(world: dict) -> None:
    from mloop.inference import read_inference_log

    X, deps, reg = world["X"], world["deployments"], world["reg"]
    deps.create("killed", model="models:/bc@champion", config={"log_flush_interval_s": 0.2})
    with serve(world["home"], "killed") as server:
        for i in range(40):
            server.post_json("/invocations", _body(X.iloc[[i]]), **{"X-Request-Id": f"a{i}"})
        time.sleep(1.5)  # several flush intervals: these are in the log
        for i in range(40):
            server.post_json("/invocations", _body(X.iloc[[i]]), **{"X-Request-Id": f"b{i}"})
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    ids = set(
        read_inference_log("killed", store=reg.store, blobstore=reg.blobstore)[
            "request_id"
        ].to_pylist()
    )
    assert {f"a{i}" for i in range(40)} <= ids
    assert ids <= {f"a{i}" for i in range(40)} | {f"b{i}" for i in range(40)}


def test_a_monitor_over_the_log_alerts_on_shifted_traffic_only(world: dict, tmp_path: Path) -> None:
    from mloop.monitoring import monitor_inference_log

    X, deps, reg = world["X"], world["deployments"], world["reg"]
    deps.create("drifting", model="models:/bc@champion", config={"log_flush_interval_s": 0.2})
    rng = np.random.default_rng(7)
    steady = X.sample(300, random_state=11)
    shifted = steady * rng.uniform(1.5, 2.0, size=len(X.columns))
    with serve(world["home"], "drifting") as server:
        for j in range(0, len(shifted), 25):
            assert (
                server.post_json("/invocations", _body(shifted.iloc[j : j + 25])).status_code == 200
            )
    deps.create("steady", model="models:/bc@champion", config={"log_flush_interval_s": 0.2})
    with serve(world["home"], "steady") as server:
        for j in range(0, len(steady), 25):
            assert (
                server.post_json("/invocations", _body(steady.iloc[j : j + 25])).status_code == 200
            )
    later = int(time.time() * 1000) + 2 * 86_400_000  # the day window is complete by then
    results = {}
    for name in ("drifting", "steady"):
        results[name] = monitor_inference_log(
            name,
            reference=X,
            window="1d",
            lateness="1s",
            until=later,
            store=reg.store,
            blobstore=reg.blobstore,
            columns=list(X.columns),
            rules=["share_drifted >= 0.5"],
            save_results=False,
        )
    # one window, or two when the traffic straddled midnight UTC
    drifting, steady_results = results["drifting"], results["steady"]
    assert sum(r.n_rows for r in drifting) == len(shifted)
    assert sum(r.n_rows for r in steady_results) == len(steady)
    assert any(a.rule == "share_drifted >= 0.5" for r in drifting for a in r.alerts)
    assert all(r.alerts == [] for r in steady_results)
