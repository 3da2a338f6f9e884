"""A WindowResult is built complete (alerts, then a note per failed alert send) and never changes
after the monitor hands it to anyone: sinks, the persistence hook and the caller each see a whole
result that stays as it was."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from mloop.monitoring import Monitor, MonitorRecord, WindowResult


def test_a_result_handed_to_a_sink_does_not_change_afterwards() -> None:
    handed: list[tuple[WindowResult, dict[str, Any]]] = []

    def first(alert: Any, result: WindowResult) -> None:
        handed.append((result, result.to_dict()))

    def broken(alert: Any, result: WindowResult) -> None:
        raise RuntimeError("endpoint down")

    records: list[MonitorRecord] = []
    mon = Monitor(
        {"x": np.arange(100.0)},
        window_rows=10,
        drift=False,
        rules=["n_rows >= 10"],
        sinks=[first, broken],
        persist=records.append,
    )
    [result] = mon.update({"x": np.arange(10.0)})
    seen, snapshot = handed[0]
    assert seen.to_dict() == snapshot  # a later sink's failure did not rewrite it
    assert [a.rule for a in seen.alerts] == ["n_rows >= 10"]
    # the caller's result carries the alert and the failure note, as does the stored record
    assert [a.rule for a in result.alerts] == ["n_rows >= 10"]
    assert len(result.notes) == 1 and result.notes[0].endswith("failed: endpoint down")
    assert records[0].result["notes"] == result.notes
    assert records[0].alerts == records[0].result["alerts"] and len(records[0].alerts) == 1
    assert mon.results[-1] is result


def test_a_result_without_failures_is_the_one_sinks_saw() -> None:
    handed: list[WindowResult] = []
    mon = Monitor(
        {"x": np.arange(100.0)},
        window_rows=10,
        drift=False,
        rules=["n_rows >= 10"],
        sinks=[lambda alert, result: handed.append(result)],
    )
    [result] = mon.update({"x": np.arange(10.0)})
    assert handed == [result] and result.notes == [] and len(result.alerts) == 1


def test_window_results_are_frozen() -> None:
    mon = Monitor({"x": np.arange(100.0)}, window_rows=10, drift=False)
    [result] = mon.update({"x": np.arange(10.0)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alerts = []  # type: ignore[misc]
    assert result.alerts == [] and result.n_rows == 10
