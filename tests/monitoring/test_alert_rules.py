"""Alert rules are checked when they are created: a rule that could never fire is an error.

A misspelled metric (``share_driftd``), a bad operator (``=>``), a threshold that is not a number, a
column the monitor does not watch, or a metric the monitor never computes (performance without
labels, drift with ``drift=False``...) used to be accepted and then silently never fire. Every way a
rule reaches the system is covered: ``AlertRule(...)``, ``AlertRule.parse``, and ``Monitor(rules=...)``
with strings or rule objects. (The CLI takes no rules, and the store keeps fired alerts, not rule
definitions, so nothing is reloaded from it.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mloop.errors import InvalidInputError
from mloop.monitoring import AlertRule, Monitor, Profile

N = 2000


def _reference(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return {
        "age": rng.normal(40, 10, n),
        "plan": rng.choice(["a", "b", "c"], n),
        "proba": p,
        "pred": (p >= 0.5).astype(int),
        "label": (rng.random(n) < p).astype(int),
    }


def _error(call: Any) -> str:
    with pytest.raises(InvalidInputError) as info:
        call()
    return info.value.message


# ------------------------------------------------------------------ unknown metrics


@pytest.mark.parametrize(
    ("rule", "suggestion"),
    [
        ("share_driftd >= 0.5", "share_drifted"),
        ("shared_drifted >= 0.5", "share_drifted"),
        ("n_drift > 2", "n_drifted"),
        ("nrows < 100", "n_rows"),
        ("performance.acuracy < 0.8", "performance.accuracy"),
        ("estimated.roc_acu < 0.7", "estimated.roc_auc"),
        ("quality.n_fail >= 1", "quality.n_failed"),
        ("columns.age.statistc > 0.2", "columns.age.statistic"),
        ("columns.age.pvalue < 0.05", "columns.age.p_value"),
        ("quality.columns.age.missing >= 0.1", "quality.columns.age.missing_share"),
    ],
)
def test_misspelled_metric_is_an_error_with_a_suggestion(rule: str, suggestion: str) -> None:
    for make in (
        lambda: AlertRule.parse(rule),
        lambda: AlertRule(*rule.rsplit(" ", 2)[:2], float(rule.rsplit(" ", 1)[1])),
        lambda: Monitor(_reference(), window_rows=500, rules=[rule]),
    ):
        msg = _error(make)
        metric = rule.split(" ")[0]
        assert repr(metric) in msg, msg
        assert f"did you mean '{suggestion}" in msg.lower() or f"'{suggestion}'" in msg, msg
        # the message lists what exists
        for known in ("share_drifted", "n_rows", "performance.<metric>", "columns.<column>."):
            assert known in msg, msg


def test_unknown_metric_without_a_close_match_lists_the_known_ones() -> None:
    msg = _error(lambda: AlertRule.parse("banana > 1"))
    assert "'banana'" in msg and "did you mean" not in msg.lower()
    for known in ("share_drifted", "drifted", "n_drifted", "n_rows", "quality.n_failed"):
        assert known in msg
    for known in ("accuracy", "rmse", "roc_auc"):
        assert known in msg


def test_metric_must_be_a_non_empty_string() -> None:
    assert "metric" in _error(lambda: AlertRule("", ">", 1))
    assert "metric" in _error(lambda: AlertRule(42, ">", 1))  # type: ignore[arg-type]
    assert "metric" in _error(lambda: AlertRule("columns..statistic", ">", 1))


# ------------------------------------------------------------------ malformed rules


@pytest.mark.parametrize(
    "rule", ["share_drifted => 0.5", "share_drifted =< 0.5", "share_drifted >> 0.5", "n_rows !== 1"]
)
def test_bad_operator_is_named(rule: str) -> None:
    op = rule.split(" ")[1]
    msg = _error(lambda: AlertRule.parse(rule))
    assert repr(op) in msg and ">=" in msg and "!=" in msg, msg
    msg = _error(lambda: Monitor(_reference(), window_rows=500, rules=[rule]))
    assert repr(op) in msg


@pytest.mark.parametrize(
    "rule", ["share_drifted = 0.5", "share_drifted ≥ 0.5", "share_drifted", ">= 0.5", ""]
)
def test_rule_without_an_operator_cannot_be_parsed(rule: str) -> None:
    msg = _error(lambda: AlertRule.parse(rule))
    assert "alert rule" in msg.lower() and "<metric> <op> <number>" in msg


def test_bad_operator_in_the_constructor() -> None:
    msg = _error(lambda: AlertRule("share_drifted", "=>", 0.5))  # type: ignore[arg-type]
    assert "'=>'" in msg and ">=" in msg


@pytest.mark.parametrize(
    "rule",
    [
        "share_drifted >= high",
        "share_drifted >= 0,5",
        "share_drifted >= 0.5.1",
        "share_drifted >= nan",
        "share_drifted >= 0.5 0.6",
    ],
)
def test_non_numeric_threshold_is_an_error(rule: str) -> None:
    msg = _error(lambda: AlertRule.parse(rule))
    assert "alert rule" in msg.lower()
    _error(lambda: Monitor(_reference(), window_rows=500, rules=[rule]))


@pytest.mark.parametrize("threshold", ["high", "0.5", None, math.nan, [0.5]])
def test_constructor_threshold_must_be_a_number(threshold: Any) -> None:
    msg = _error(lambda: AlertRule("share_drifted", ">=", threshold))
    assert "threshold" in msg


def test_valid_forms_still_parse() -> None:
    r = AlertRule.parse("  share_drifted>=0.5 ")
    assert (r.metric, r.op, r.threshold) == ("share_drifted", ">=", 0.5)
    assert AlertRule.parse("n_rows < -1e3").threshold == -1000.0
    assert AlertRule.parse("drifted == true").threshold == 1.0
    assert AlertRule.parse("columns.a.b.statistic > 0.2").metric == "columns.a.b.statistic"
    assert AlertRule.parse("columns.my col.p_value < 0.05").metric == "columns.my col.p_value"
    assert AlertRule("performance.rmse", ">", 3).expression == "performance.rmse > 3"
    assert AlertRule("columns.age.statistic", ">=", np.float32(0.5)).threshold == 0.5


# ------------------------------------------------------------------ what a monitor can compute


def test_rule_on_a_column_the_monitor_does_not_watch() -> None:
    for ref in (_reference(), Profile.from_data(_reference())):
        msg = _error(
            lambda ref=ref: Monitor(
                ref, window_rows=500, columns=["age", "plan"], rules=["columns.agee.statistic > 1"]
            )
        )
        assert "'agee'" in msg and "['age', 'plan']" in msg and "did you mean 'age'" in msg.lower()
        msg = _error(
            lambda ref=ref: Monitor(
                ref, window_rows=500, columns=["age"], rules=["quality.columns.plan.empty > 0"]
            )
        )
        assert "'plan'" in msg and "['age']" in msg


@pytest.mark.parametrize(
    ("rule", "kwargs", "words"),
    [
        ("share_drifted >= 0.5", {"drift": False}, ["drift=False"]),
        ("columns.age.statistic > 0.1", {"drift": False}, ["drift=False"]),
        ("quality.n_failed >= 1", {"quality": False}, ["quality=False"]),
        ("quality.columns.age.missing_share > 0.1", {"quality": False}, ["quality=False"]),
        ("performance.accuracy < 0.8", {}, ["y_true"]),
        ("performance.rmse > 1", {"y_true": "label", "y_pred": "pred"}, ["regression", "binary"]),
        (
            "performance.accuracy < 0.8",
            {"y_true": "label", "y_pred": "pred", "task": "regression"},
            ["classification", "regression"],
        ),
        ("estimated.accuracy < 0.7", {"y_true": "label", "y_pred": "pred"}, ["y_score"]),
        (
            "estimated.accuracy < 0.7",
            {"y_true": "label", "y_score": "proba", "cbpe": False},
            ["cbpe=False"],
        ),
    ],
)
def test_rule_on_a_metric_the_monitor_never_computes(
    rule: str, kwargs: dict[str, Any], words: list[str]
) -> None:
    msg = _error(lambda: Monitor(_reference(), window_rows=500, rules=[rule], **kwargs))
    assert repr(rule.split(" ")[0]) in msg, msg
    for word in words:
        assert word in msg, msg
    # the same rule as an object is checked too
    obj = AlertRule.parse(rule)
    _error(lambda: Monitor(_reference(), window_rows=500, rules=[obj], **kwargs))


def test_rules_must_be_rules_or_strings() -> None:
    msg = _error(lambda: Monitor(_reference(), window_rows=500, rules=[42]))
    assert "rules" in msg and "42" in msg
    # one rule given as a plain string is one rule, not a rule per character
    mon = Monitor(_reference(), window_rows=500, rules="share_drifted >= 0.5")
    assert [r.expression for r in mon.rules] == ["share_drifted >= 0.5"]


def test_every_metric_a_window_produces_is_accepted() -> None:
    """The rule checker and WindowResult.metrics() describe the same namespace."""

    def paths(ns: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in ns.items():
            if isinstance(value, dict):
                out += paths(value, f"{prefix}{key}.")
            else:
                out.append(f"{prefix}{key}")
        return out

    kwargs: list[dict[str, Any]] = [
        {"y_true": "label", "y_pred": "pred", "y_score": "proba"},
        {"y_true": "label", "y_pred": "pred", "task": "regression"},
    ]
    seen: set[str] = set()
    for kw in kwargs:
        mon = Monitor(_reference(), window_rows=500, **kw)
        current = _reference(1000, seed=1)
        windows = mon.update(current)
        unlabelled = {k: v for k, v in current.items() if k != "label"}
        windows += mon.update(unlabelled) if "y_score" in kw else []
        for window in windows:
            for path in paths(window.metrics()):
                seen.add(path)
                rule = f"{path} >= 0"
                AlertRule.parse(rule)
                Monitor(_reference(), window_rows=500, rules=[rule], **kw)
    for expected in (
        "share_drifted",
        "columns.age.statistic",
        "quality.columns.age.missing_share",
        "performance.roc_auc",
        "performance.rmse",
        "estimated.accuracy",
    ):
        assert expected in seen


def test_a_valid_rule_fires() -> None:
    got: list[Any] = []
    mon = Monitor(
        _reference(),
        window_rows=1000,
        columns=["age", "plan"],
        rules=["share_drifted >= 0.5"],
        sinks=[got.append],
    )
    shifted = _reference(1000, seed=2)
    shifted["age"] = shifted["age"] + 30
    shifted["plan"] = np.full(1000, "z")
    (res,) = mon.update(shifted)
    assert res.drift.drifted and [a.metric for a in got] == ["share_drifted"]
