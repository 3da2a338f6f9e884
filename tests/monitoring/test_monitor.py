"""Monitor: row and time windows over streamed batches, alert rules, sinks and the persistence hook."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mloop.errors import InvalidInputError
from mloop.monitoring import AlertRule, Monitor, MonitorRecord
from mloop.monitoring._alerts import resolve_metric


def _reference(n: int = 4000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return {
        "row": np.arange(n, dtype=np.float64),
        "x": rng.normal(size=n),
        "plan": rng.choice(["a", "b"], n),
        "proba": p,
        "pred": (p >= 0.5).astype(int),
        "label": (rng.random(n) < p).astype(int),
    }


def _batch(
    start: int, n: int, *, seed: int, flip: float = 0.0, labels: bool = True
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    label = (rng.random(n) < p).astype(int)
    wrong = rng.random(n) < flip  # degrade the model: flip some labels
    label = np.where(wrong, 1 - label, label)
    df = pd.DataFrame(
        {
            "row": np.arange(start, start + n, dtype=np.float64),
            "x": rng.normal(size=n),
            "plan": rng.choice(["a", "b"], n),
            "proba": p,
            "pred": (p >= 0.5).astype(int),
        }
    )
    if labels:
        df["label"] = label
    return df


def test_row_windows_cut_batches_exactly() -> None:
    mon = Monitor(_reference(), window_rows=5000, drift=False, y_true="label", y_pred="pred")
    sizes = [2500, 7000, 500, 12000, 1234]
    results, start = [], 0
    for i, n in enumerate(sizes):
        results += mon.update(_batch(start, n, seed=i))
        start += n
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [(r.start, r.end, r.n_rows) for r in results] == [
        (0, 5000, 5000),
        (5000, 10000, 5000),
        (10000, 15000, 5000),
        (15000, 20000, 5000),
    ]
    for r in results:  # each window holds exactly its rows, in order
        assert r.quality is not None
        assert r.quality.current["row"]["min"] == r.start
        assert r.quality.current["row"]["max"] == r.end - 1
        assert r.performance is not None and r.performance.n == 5000
    tail = mon.flush()
    assert [(r.index, r.start, r.end, r.n_rows) for r in tail] == [(4, 20000, 23234, 3234)]
    assert mon.flush() == []
    assert len(mon.results) == 5
    json.loads(tail[0].to_json())


def test_time_windows_align_to_the_clock_and_drop_late_rows() -> None:
    ref = _reference()
    ref["ts"] = np.arange(4000).astype("datetime64[s]")
    mon = Monitor(ref, window="1h", timestamp_column="ts", drift=False)
    t0 = np.datetime64("2024-05-01T09:30:00", "s")
    # 3.5 hours of rows, one every 10 s, streamed in uneven batches
    ts = t0 + np.arange(0, 3.5 * 3600, 10).astype("timedelta64[s]")
    df = pd.DataFrame({"ts": ts, "row": np.arange(len(ts), dtype=float), "x": 0.0, "plan": "a"})
    results = []
    for chunk in np.array_split(np.arange(len(ts)), 7):
        results += mon.update(df.iloc[chunk])
    assert [(r.start, r.n_rows) for r in results] == [
        ("2024-05-01T09:00:00+00:00", 180),  # 09:30-10:00
        ("2024-05-01T10:00:00+00:00", 360),
        ("2024-05-01T11:00:00+00:00", 360),
    ]
    assert results[0].end == "2024-05-01T10:00:00+00:00"
    # a late row (for a closed window) and one without a timestamp are dropped and reported
    late = pd.DataFrame(
        {
            "ts": [t0, pd.NaT, t0 + np.timedelta64(195, "m")],
            "row": [0.0, 1, 2],
            "x": 0.0,
            "plan": "a",
        }
    )
    assert mon.update(late) == []
    (last,) = mon.update(
        pd.DataFrame({"ts": [t0 + np.timedelta64(6, "h")], "row": [9.0], "x": 0.0, "plan": "a"})
    )
    assert last.start == "2024-05-01T12:00:00+00:00" and last.n_rows == 361
    assert any("2 rows arrived after their window closed" in n for n in last.notes)


def test_time_window_accepts_unix_seconds_and_timedelta() -> None:
    mon = Monitor(
        {"x": np.arange(10.0)}, window=timedelta(minutes=1), timestamp_column="t", drift=False
    )
    out = mon.update({"t": np.arange(0, 150, 1.0), "x": np.arange(150.0)})
    assert [(r.start, r.n_rows) for r in out] == [
        ("1970-01-01T00:00:00+00:00", 60),
        ("1970-01-01T00:01:00+00:00", 60),
    ]
    assert mon.flush()[0].n_rows == 30


def test_alert_rule_needs_n_consecutive_windows_and_rearms() -> None:
    got: list = []
    rule = AlertRule.parse("performance.accuracy < 0.7", consecutive=2, severity="critical")
    mon = Monitor(
        _reference(),
        window_rows=2000,
        drift=False,
        y_true="label",
        y_pred="pred",
        rules=[rule, "quality.n_failed >= 1"],
        sinks=[got.append],
    )
    # accuracy ≈ 0.75 when healthy; flipping 40% of labels takes it to ≈ 0.5
    flips = [0.0, 0.4, 0.0, 0.4, 0.4, 0.4, 0.4, 0.0, 0.4, 0.4]
    fired_at = []
    for i, flip in enumerate(flips):
        (res,) = mon.update(_batch(i * 2000, 2000, seed=100 + i, flip=flip))
        assert res.performance is not None
        assert (res.performance["accuracy"] < 0.7) == (flip > 0)
        fired_at += [res.index for a in res.alerts if a.name == rule.name]
    # streaks of bad windows: [1], [3,4,5,6], [8,9] -> fires once per streak, on its 2nd window
    assert fired_at == [4, 9]
    alert = next(a for a in got if a.window_index == 4)
    assert alert.severity == "critical" and alert.consecutive == 2
    assert alert.metric == "performance.accuracy" and alert.value < 0.7
    assert "for 2 consecutive windows" in alert.message
    json.dumps(alert.to_dict())


def test_rule_parsing_and_metric_paths() -> None:
    r = AlertRule.parse("columns.a.b.statistic > 0.2")
    assert (r.metric, r.op, r.threshold) == ("columns.a.b.statistic", ">", 0.2)
    ns = {"columns": {"a.b": {"statistic": 0.3}, "a": {"b": 1}}, "drifted": True}
    assert resolve_metric(ns, "columns.a.b.statistic") == 0.3
    assert resolve_metric(ns, "columns.nope.statistic") is None
    assert r.evaluate(ns) == (True, 0.3)
    assert AlertRule.parse("drifted == true").evaluate(ns) == (True, 1.0)
    missing = AlertRule.parse("performance.accuracy < 0.8")
    assert missing.evaluate(ns) == (False, None)
    for bad in ("accuracy", "x < high", "x ~ 1"):
        with pytest.raises(InvalidInputError, match=r"(?i)alert rule"):
            AlertRule.parse(bad)
    with pytest.raises(InvalidInputError, match="consecutive"):
        AlertRule("n_rows", ">", 1, consecutive=0)
    r = AlertRule.parse("n_rows > 1", consecutive=2, repeat=True)
    fires = [r.evaluate({"n_rows": v})[0] for v in (2, 2, 2, 0, 2)]
    assert fires == [False, True, True, False, False]


def test_log_and_callback_sinks(caplog: pytest.LogCaptureFixture) -> None:
    seen: list = []

    def two_args(alert, result) -> None:
        seen.append((alert.window_index, result.index))

    mon = Monitor(
        {"x": np.arange(100.0)},
        window_rows=50,
        drift=False,
        rules=["quality.n_failed >= 1"],
        sinks=["log", two_args],
    )
    with caplog.at_level(logging.WARNING, logger="mloop.monitoring.alerts"):
        mon.update({"x": np.r_[np.arange(40.0), np.full(10, 1e6)]})  # 20% out of range
        mon.update({"x": np.arange(50.0)})
    assert seen == [(0, 0)]
    assert len(caplog.records) == 1
    assert "quality.n_failed = 1" in caplog.records[0].getMessage()


@pytest.fixture
def http_server() -> Iterator[tuple[str, list, list]]:
    received: list = []  # (path, Authorization, JSON body, raw body, headers, arrival time)
    # what to answer, in order (default 200): a status, or (status, headers, seconds to wait)
    statuses: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.monotonic()
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            auth = self.headers.get("Authorization")
            received.append((self.path, auth, json.loads(raw), raw, dict(self.headers), at))
            reply = statuses.pop(0) if statuses else 200
            status, headers, delay = reply if isinstance(reply, tuple) else (reply, {}, 0.0)
            time.sleep(delay)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received, statuses
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_webhook_sink_posts_json_to_a_real_server(http_server) -> None:
    from mloop.monitoring import WebhookSink

    url, received, statuses = http_server
    statuses.append(503)  # first attempt fails with a 5xx: retried
    sink = WebhookSink(url + "/hook", headers={"Authorization": "Bearer t"})
    mon = Monitor(
        {"x": np.arange(100.0)}, window_rows=10, drift=False, rules=["n_rows >= 10"], sinks=[sink]
    )
    (res,) = mon.update({"x": np.arange(10.0)})
    assert sink.flush(timeout=30)
    sink.close()
    assert len(received) == 2
    path, auth, body, *_ = received[-1]
    assert path == "/hook" and auth == "Bearer t"
    assert body["alert"]["rule"] == "n_rows >= 10" and body["alert"]["value"] == 10
    assert body["window"]["index"] == 0 and body["window"]["n_rows"] == 10
    assert res.notes == []


def test_a_slow_retrying_endpoint_does_not_delay_the_stream(http_server) -> None:
    from mloop.monitoring import WebhookSink

    url, received, statuses = http_server
    statuses.extend([(503, {"Retry-After": "1"}, 0.5), (200, {}, 0.5)])
    sink = WebhookSink(url, retries=3)
    mon = Monitor({"x": np.arange(100.0)}, window_rows=10, drift=False, rules=["n_rows >= 1"])
    mon.sinks.append(sink)
    t0 = time.monotonic()
    (res,) = mon.update({"x": np.arange(10.0)})
    returned = time.monotonic() - t0
    assert len(res.alerts) == 1 and res.notes == []
    assert sink.close(timeout=30)
    delivered = time.monotonic() - t0
    assert len(received) == 2
    assert delivered >= 2.0  # 0.5 s answer, >= 1 s Retry-After, 0.5 s answer ...
    assert returned < delivered / 4  # ... and the stream waited for none of it
    assert received[1][5] - received[0][5] >= 1.0


def test_failing_webhook_never_breaks_the_stream(
    http_server, caplog: pytest.LogCaptureFixture
) -> None:
    url, received, statuses = http_server
    statuses.extend([400])
    mon = Monitor(
        {"x": np.arange(100.0)},
        window_rows=10,
        drift=False,
        rules=[AlertRule.parse("n_rows >= 1", repeat=True)],
        sinks=[url, "http://127.0.0.1:9/unreachable"],
    )
    (res,) = mon.update({"x": np.arange(10.0)})
    assert len(res.alerts) == 1 and res.notes == []  # delivered in the background
    (res2,) = mon.update({"x": np.arange(10.0)})
    assert all(sink.close(timeout=30) for sink in mon.sinks)
    assert res2.index == 1 and len(received) == 2  # the stream carries on; the server saw both
    failures = [r.getMessage() for r in caplog.records if r.name == "mloop.delivery"]
    assert len(failures) == 3  # the 400 once (not retried), the unreachable endpoint twice
    assert sum("HTTP 400" in m for m in failures) == 1
    assert sum("ConnectError" in m and "after 3 attempt(s)" in m for m in failures) == 2
    assert all("alert 'n_rows >= 1' of monitor 'monitor'" in m for m in failures)


def test_synchronous_webhook_failures_are_noted_on_the_result(http_server) -> None:
    from mloop.delivery import RetryPolicy
    from mloop.monitoring import WebhookSink

    url, received, statuses = http_server
    statuses.extend([400, 503, 503])
    fast = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01)
    sink = WebhookSink(url, policy=fast, background=False)
    mon = Monitor(
        {"x": np.arange(100.0)},
        window_rows=10,
        drift=False,
        rules=[AlertRule.parse("n_rows >= 1", repeat=True)],
        sinks=[sink],
    )
    (res,) = mon.update({"x": np.arange(10.0)})  # 400: refused, not retried
    (res2,) = mon.update({"x": np.arange(10.0)})  # 503 twice: gave up after 2 attempts
    (res3,) = mon.update({"x": np.arange(10.0)})  # delivered
    assert len(received) == 4
    (note,) = res.notes
    assert note.startswith("alert sink WebhookSink failed") and "HTTP 400" in note
    assert "after 2 attempt(s)" in res2.notes[0] and "HTTP 503" in res2.notes[0]
    assert res3.notes == []
    assert "synchronous" in repr(sink) and "127.0.0.1" in repr(sink)


def test_webhook_sink_signs_its_body(http_server) -> None:
    from mloop.delivery import verify_signature
    from mloop.monitoring import WebhookSink

    url, received, _ = http_server
    sink = WebhookSink(url, secret="s3cret")
    mon = Monitor({"x": np.arange(100.0)}, window_rows=10, drift=False, rules=["n_rows >= 1"])
    mon.sinks.append(sink)
    mon.update({"x": np.arange(10.0)})
    assert sink.close(timeout=30)
    (_, _, body, raw, headers, _) = received[0]
    assert body["alert"]["monitor"] == "monitor"
    assert verify_signature("s3cret", raw, headers["X-Mloop-Signature"])


def test_webhook_sink_options_are_checked() -> None:
    from mloop.delivery import RetryPolicy
    from mloop.monitoring import WebhookSink

    with pytest.raises(InvalidInputError, match="http"):
        WebhookSink("ftp://x")
    with pytest.raises(InvalidInputError, match=r"`retries` must be an int >= 0; got -1"):
        WebhookSink("http://x", retries=-1)
    with pytest.raises(InvalidInputError, match="either `policy` or `timeout`/`retries`"):
        WebhookSink("http://x", retries=1, policy=RetryPolicy())
    with pytest.raises(InvalidInputError, match="`timeout_s` must be a finite number > 0"):
        WebhookSink("http://x", timeout=0)
    sink = WebhookSink("http://x/?token=abc", timeout=2.5, retries=4)
    assert sink.policy.max_attempts == 5 and sink.policy.timeout_s == 2.5
    assert "abc" not in repr(sink) and "background" in repr(sink)


def test_persist_hook_receives_json_safe_records() -> None:
    records: list[MonitorRecord] = []
    mon = Monitor(
        _reference(),
        window_rows=1000,
        drift=False,
        y_true="label",
        y_pred="pred",
        y_score="proba",
        rules=["performance.accuracy < 2"],
        persist=records.append,
        name="churn",
    )
    mon.update(pl.DataFrame(_batch(0, 2500, seed=1)))
    assert [r.window_index for r in records] == [0, 1]
    rec = records[0]
    assert rec.monitor == "churn" and rec.n_rows == 1000 and rec.window_end == 1000
    text = json.dumps({"result": rec.result, "alerts": rec.alerts}, allow_nan=False)
    assert "performance" in json.loads(text)["result"]
    assert rec.alerts[0]["rule"] == "performance.accuracy < 2"

    class Store:
        def __init__(self) -> None:
            self.got: list = []

        def log_monitor_result(self, record: MonitorRecord) -> None:
            self.got.append(record)

    store = Store()
    mon = Monitor({"x": np.arange(5.0)}, window_rows=5, drift=False, store=store)
    mon.update({"x": np.arange(5.0)})
    assert len(store.got) == 1 and store.got[0].n_rows == 5
    with pytest.raises(InvalidInputError, match="log_monitor_result"):
        Monitor({"x": [1.0]}, window_rows=5, drift=False, store=object())


def test_cbpe_estimates_performance_of_unlabelled_windows() -> None:
    mon = Monitor(
        _reference(20_000),
        window_rows=5000,
        drift=False,
        y_true="label",
        y_pred="pred",
        y_score="proba",
        rules=["estimated.accuracy < 0.5"],
    )
    (res,) = mon.update(_batch(0, 5000, seed=3, labels=False))
    assert res.performance is None and res.estimated_performance is not None
    # scores are calibrated: expected accuracy is E[max(p, 1-p)] = 0.75 for uniform p
    assert res.estimated_performance["accuracy"] == pytest.approx(0.75, abs=0.02)
    assert res.alerts == []
    assert "estimated" in res.metrics()


def test_bad_configuration() -> None:
    ref = {"x": np.arange(10.0)}
    with pytest.raises(InvalidInputError, match="exactly one"):
        Monitor(ref, drift=False)
    with pytest.raises(InvalidInputError, match="exactly one"):
        Monitor(ref, window_rows=5, window="1h", drift=False)
    with pytest.raises(InvalidInputError, match="timestamp_column"):
        Monitor(ref, window="1h", drift=False)
    with pytest.raises(InvalidInputError, match="duration"):
        Monitor(ref, window="soon", timestamp_column="t", drift=False)
    with pytest.raises(InvalidInputError, match="window_rows"):
        Monitor(ref, window_rows=0, drift=False)
    with pytest.raises(InvalidInputError, match="not in the reference"):
        Monitor(ref, window_rows=5, columns=["y"], drift=False)
    with pytest.raises(InvalidInputError, match="sink"):
        Monitor(ref, window_rows=5, sinks=[42], drift=False)
    mon = Monitor(ref, window="1h", timestamp_column="t", drift=False)
    with pytest.raises(InvalidInputError, match="no timestamp column"):
        mon.update({"x": [1.0]})
    assert mon.update({"x": np.array([]), "t": np.array([])}) == []


def test_drift_per_window_against_the_reference_profile() -> None:
    from mloop import monitoring as mon

    rng = np.random.default_rng(0)
    n = 20_000
    ref = {
        "age": rng.normal(40, 10, n),
        "plan": rng.choice(["a", "b", "c"], n),
        "label": np.ones(n),
    }
    alerts: list = []
    monitor = mon.Monitor(
        ref,
        window_rows=5000,
        y_true="label",
        rules=["share_drifted >= 0.5", "columns.age.statistic > 0.2"],
        sinks=[alerts.append],
    )
    same = {"age": rng.normal(40, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
    shifted = {"age": rng.normal(50, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
    (r0,) = monitor.update(same)
    (r1,) = monitor.update(shifted)
    # the label column is not monitored for drift; the reference is a compact profile, so drift
    # equals drift_report on the raw data within the sketch's error bound
    assert set(r0.drift.columns) == {"age", "plan"}
    direct = mon.drift_report({k: ref[k] for k in ("age", "plan")}, shifted)
    age = r1.drift.columns["age"]
    assert age.error_bound is not None and 0 < age.error_bound < 0.05
    assert abs(age.statistic - direct.columns["age"].statistic) <= age.error_bound  # type: ignore[operator]
    assert r1.drift.columns["plan"].statistic == direct.columns["plan"].statistic
    assert not r0.drift.columns["age"].drifted and r1.drift.columns["age"].drifted
    assert [a.rule for a in alerts] == ["share_drifted >= 0.5", "columns.age.statistic > 0.2"]
    assert all(a.window_index == 1 for a in alerts)
    d = r1.to_dict()
    assert d["drift"]["columns"]["age"]["drifted"] is True
    json.dumps(d, allow_nan=False)
    page = r1.to_html()
    assert "Column drift" in page and "Data quality" in page


def test_monitor_from_a_profile_reference() -> None:
    from mloop import monitoring as mon

    rng = np.random.default_rng(1)
    ref = {"x": rng.normal(size=10_000), "c": rng.choice(["u", "v"], 10_000)}
    monitor = mon.Monitor(
        mon.Profile.from_data(ref), window_rows=2000, rules=["quality.n_failed > 0"]
    )
    (res,) = monitor.update({"x": rng.normal(size=2000) + 10, "c": rng.choice(["u", "w"], 2000)})
    assert res.drift.columns["x"].drifted
    assert res.quality is not None
    assert res.quality.column("x")["out_of_range"].verdict == "fail"
    assert res.quality.column("c")["unseen_categories"].verdict == "fail"
    assert len(res.alerts) == 1


def test_an_alert_on_an_infinite_value_is_delivered_in_wire_form(http_server) -> None:
    from dataclasses import replace

    from mloop.monitoring import WebhookSink

    url, received, _ = http_server
    mon = Monitor({"x": np.arange(100.0)}, window_rows=10, drift=False, rules=["n_rows >= 1"])
    (res,) = mon.update({"x": np.arange(10.0)})
    alert = replace(res.alerts[0], value=float("inf"), threshold=float("nan"))
    assert alert.to_dict()["value"] == "Infinity" and alert.to_dict()["threshold"] == "NaN"
    WebhookSink(url, background=False).send(alert, res)
    body = received[-1][2]
    assert body["alert"]["value"] == "Infinity" and body["alert"]["threshold"] == "NaN"
