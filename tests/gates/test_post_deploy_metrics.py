"""What the post-deploy check reads from /metrics: the exposition parsed, counter deltas, and the
p95 computed as Prometheus' histogram_quantile does (checked by hand and on prometheus_client's
own output)."""

from __future__ import annotations

import math

import pytest

from mloop.gates._live import LiveServer, Traffic
from mloop.gates._prometheus import Scrape, counter_delta, histogram_quantile, parse_metrics


def test_parse_reads_labels_values_and_escapes() -> None:
    text = (
        "# HELP mloop_requests_total Requests.\n"
        "# TYPE mloop_requests_total counter\n"
        'mloop_requests_total{code="200",endpoint="invocations"} 12.0\n'
        'mloop_requests_total{endpoint="infer", code="500"} 3\n'
        '\nweird{path="a\\"b\\\\c\\nd"} +Inf 1712000000000\n'
        "bare 7e-3\n"
    )
    s = parse_metrics(text).samples
    assert [x.name for x in s] == ["mloop_requests_total"] * 2 + ["weird", "bare"]
    assert s[0].labels == {"code": "200", "endpoint": "invocations"} and s[0].value == 12.0
    assert s[1].labels == {"endpoint": "infer", "code": "500"} and s[1].value == 3.0
    assert s[2].labels == {"path": 'a"b\\c\nd'} and s[2].value == math.inf
    assert s[3].labels == {} and s[3].value == 0.007


@pytest.mark.parametrize("line", ['x{code="200" 1', "x{a=b} 1", "x 1 2 3", "x one"])
def test_a_line_that_is_not_a_sample_is_named(line: str) -> None:
    with pytest.raises(ValueError, match=r"metrics line|sample line"):
        parse_metrics(line)


def test_the_serving_metrics_are_read_as_exported() -> None:
    from mloop.serving._metrics import ServingMetrics

    m = ServingMetrics()
    for seconds, code in [(0.0004, 200), (0.003, 200), (0.003, 500), (0.2, 400), (20.0, 200)]:
        m.observe("invocations", code, seconds)
    m.observe("infer", 200, 0.003)
    m.set_models([("main", "churn", 3)], [])
    scrape = parse_metrics(m.render()[0].decode())
    assert scrape.requests_by_code() == {"200": 4.0, "500": 1.0, "400": 1.0}
    assert scrape.requests_by_code(["infer"]) == {"200": 1.0}
    buckets = scrape.latency_buckets()
    assert buckets[0.0005] == 1 and buckets[0.005] == 4 and buckets[0.25] == 5
    assert buckets[math.inf] == 6
    assert scrape.served_versions("churn", ["main"]) == {"3"}
    assert scrape.served_versions("churn", ["canary"]) == set()
    m.set_models([("main", "churn", 4)], [("main", "churn", 3)])
    assert parse_metrics(m.render()[0].decode()).served_versions("churn", ["main"]) == {"4"}


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    # 10 in (0, 0.1], 20 in (0.1, 0.2], 10 in (0.2, 0.5], none above: rank 0.95 * 40 = 38 is
    # the 8th of the 10 in (0.2, 0.5]: 0.2 + 0.3 * 8/10
    b = {0.1: 10.0, 0.2: 30.0, 0.5: 40.0, math.inf: 40.0}
    assert histogram_quantile(0.95, b) == pytest.approx(0.2 + 0.3 * 0.8)
    # rank 20 is the 10th of 20 in (0.1, 0.2]
    assert histogram_quantile(0.5, b) == pytest.approx(0.15)
    # the first bucket starts at 0
    assert histogram_quantile(0.1, b) == pytest.approx(0.1 * 4 / 10)
    # a rank in +Inf answers the largest finite bound (Prometheus' rule)
    assert histogram_quantile(0.95, {0.1: 1.0, 0.2: 2.0, math.inf: 100.0}) == 0.2
    assert math.isnan(histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}))
    assert math.isnan(histogram_quantile(0.5, {0.1: 3.0}))  # no +Inf bucket
    # scrape jitter (a cumulative count going down) is repaired, not fatal
    assert histogram_quantile(0.5, {0.1: 10.0, 0.2: 9.0, math.inf: 20.0}) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="q must be"):
        histogram_quantile(1.5, b)


def test_counter_deltas_survive_a_restart() -> None:
    assert counter_delta({"200": 15.0, "500": 2.0}, {"200": 10.0}) == {"200": 5.0, "500": 2.0}
    assert counter_delta({"200": 3.0}, {"200": 10.0}) == {"200": 3.0}  # reset: 3 since


def test_traffic_between_the_swap_and_now_sums_over_servers() -> None:
    def scrape(ok: int, err: int, client: int, fast: int, slow: int) -> Scrape:
        lines = [
            f'mloop_requests_total{{code="200",endpoint="invocations"}} {ok}',
            f'mloop_requests_total{{code="500",endpoint="invocations"}} {err}',
            f'mloop_requests_total{{code="400",endpoint="invocations"}} {client}',
            f'mloop_requests_total{{code="200",endpoint="ping"}} {ok * 9}',  # not scoring
            f'mloop_request_duration_seconds_bucket{{endpoint="invocations",le="0.01"}} {fast}',
            f'mloop_request_duration_seconds_bucket{{endpoint="invocations",le="0.1"}} {fast + slow}',
            f'mloop_request_duration_seconds_bucket{{endpoint="invocations",le="+Inf"}} {fast + slow}',
        ]
        return parse_metrics("\n".join(lines))

    a = LiveServer("http://a", ("main",), None, None, start=scrape(10, 0, 0, 10, 0))
    a.last = scrape(100, 5, 7, 90, 22)
    b = LiveServer("http://b", ("main",), None, None, start=scrape(0, 0, 0, 0, 0))
    b.last = scrape(50, 0, 0, 50, 0)
    idle = LiveServer("http://c", ("main",), None, None)  # never swapped: not counted
    t = Traffic.between([a, b, idle])
    assert t.by_code == {"200": 140.0, "500": 5.0, "400": 7.0}
    assert (t.total, t.client_errors, t.server_errors, t.judged) == (152.0, 7.0, 5.0, 145.0)
    assert t.buckets == {0.01: 130.0, 0.1: 152.0, math.inf: 152.0}


def test_reference_predictions_name_the_log_columns_they_compare_with() -> None:
    from mloop.gates._live import _reference_columns

    one = _reference_columns([1, 0, 1])
    assert list(one) == ["prediction"] and one["prediction"].tolist() == [1, 0, 1]
    assert list(_reference_columns([[0.1], [0.2]])) == ["prediction"]  # one column is 1-D
    two = _reference_columns([[0.1, 0.9], [0.7, 0.3]])
    assert list(two) == ["prediction_0", "prediction_1"]
    assert two["prediction_1"].tolist() == [0.9, 0.3]
    named = _reference_columns({"score": [0.5], "prediction_label": ["a"]})
    assert list(named) == ["prediction_score", "prediction_label"]
    assert "must be 1-D or 2-D" in str(_reference_columns([[[1]]]))
