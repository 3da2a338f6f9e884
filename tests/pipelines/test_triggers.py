"""Trigger types on their own: cron due times at the edges (bounds, missed times, leap days, time
zones and daylight-saving changes) with an injected clock; new data under a local folder and an
fsspec ``memory://`` prefix; the kind of every alert metric; and the errors bad arguments give."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fsspec
import pytest

from mloop.errors import InvalidInputError
from mloop.pipelines import (
    ALERT_KINDS,
    OnAlert,
    OnManual,
    OnNewData,
    OnSchedule,
    Trigger,
    alert_kind,
    pipeline,
    snapshot_key,
    step,
)

MINUTE = 60_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: Any = None) -> int:
    when = datetime(year, month, day, hour, minute, tzinfo=tz or timezone.utc)
    return int(when.timestamp() * 1000)


def dues(on: OnSchedule, start_ms: int, end_ms: int, tick_ms: int) -> list[int]:
    """What an agent polling every ``tick_ms`` (the injected clock) fires between two times."""
    out, last = [], start_ms
    for now in [*range(start_ms + tick_ms, end_ms, tick_ms), end_ms]:
        due = on.latest_due(last, now)
        if due is not None:
            out.append(due)
        last = now
    return out


# ---------------------------------------------------------------------------------- cron


def test_a_due_time_is_in_the_half_open_interval() -> None:
    q = OnSchedule("*/15 * * * *")
    t = ms(2026, 3, 2, 10, 15)
    assert q.latest_due(t - MINUTE, t) == t  # exactly on time: due
    assert q.latest_due(t, t + 14 * MINUTE) is None  # already fired at t: not again
    assert q.latest_due(t - MINUTE, t - 1) is None  # a millisecond early
    assert q.latest_due(t - 1, t + 1) == t  # sub-minute clocks
    assert q.latest_due(t, t + 15 * MINUTE + 59_999) == t + 15 * MINUTE


def test_missed_times_collapse_into_the_latest() -> None:
    nightly = OnSchedule("0 3 * * *")
    down_from = ms(2026, 3, 2, 2, 0)
    assert nightly.latest_due(down_from, ms(2026, 3, 5, 12, 0)) == ms(2026, 3, 5, 3, 0)


def test_every_due_time_fires_once_whatever_the_polling_interval() -> None:
    q = OnSchedule("*/15 * * * *")
    start, end = ms(2026, 3, 2), ms(2026, 3, 2, 3)
    every = list(range(start + 15 * MINUTE, end + 1, 15 * MINUTE))
    assert dues(q, start, end, MINUTE) == every
    assert dues(q, start, end, 7 * MINUTE + 13_000) == every  # ticks off the grid
    # Polling slower than the schedule: one firing per poll, at the latest time missed.
    assert dues(q, start, end, 40 * MINUTE) == [
        ms(2026, 3, 2, 0, 30), ms(2026, 3, 2, 1, 15), ms(2026, 3, 2, 2, 0), ms(2026, 3, 2, 2, 30),
        ms(2026, 3, 2, 3, 0),
    ]  # fmt: skip


def test_a_leap_day_schedule_waits_for_the_next_leap_year() -> None:
    leap = OnSchedule("0 12 29 2 *")
    assert leap.latest_due(ms(2026, 1, 1), ms(2027, 12, 31)) is None
    assert leap.latest_due(ms(2026, 1, 1), ms(2028, 3, 1)) == ms(2028, 2, 29, 12)


def test_a_schedule_in_a_time_zone_follows_its_summer_time() -> None:
    ny = ZoneInfo("America/New_York")
    nightly = OnSchedule("0 3 * * *", timezone="America/New_York")
    # 03:00 in New York is 08:00 UTC in winter and 07:00 UTC in summer.
    assert nightly.latest_due(ms(2026, 1, 14), ms(2026, 1, 15, 12)) == ms(2026, 1, 15, 8)
    assert nightly.latest_due(ms(2026, 7, 14), ms(2026, 7, 15, 12)) == ms(2026, 7, 15, 7)
    # A week across the spring change (8 March 2026): one firing a day, each at 03:00 local.
    fired = dues(nightly, ms(2026, 3, 5), ms(2026, 3, 12), 5 * MINUTE)
    local = [datetime.fromtimestamp(d / 1000, tz=ny) for d in fired]
    assert [(t.day, t.hour, t.minute) for t in local] == [(d, 3, 0) for d in range(5, 12)]
    assert fired[3] - fired[2] == 23 * 3600_000  # 7 to 8 March, the short day
    assert OnSchedule("0 3 * * *").latest_due(0, ms(2026, 7, 15, 12)) == ms(2026, 7, 15, 3)


def test_local_times_in_a_daylight_saving_gap_or_overlap_fire_once_a_day() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 02:30 does not exist in Paris on 29 March 2026 and occurs twice on 25 October 2026.
    half_past_two = OnSchedule("30 2 * * *", timezone="Europe/Paris")
    spring = dues(half_past_two, ms(2026, 3, 27), ms(2026, 3, 31), 5 * MINUTE)
    autumn = dues(half_past_two, ms(2026, 10, 23), ms(2026, 10, 27), 5 * MINUTE)
    for fired, days in ((spring, [27, 28, 29, 30]), (autumn, [23, 24, 25, 26])):
        local = [datetime.fromtimestamp(d / 1000, tz=paris) for d in fired]
        assert [t.day for t in local] == days, local
        assert len(set(fired)) == len(fired)
    # On the gap day it fires after the gap (03:xx local), once.
    gap_day = datetime.fromtimestamp(spring[2] / 1000, tz=paris)
    assert gap_day.hour == 3 and gap_day.utcoffset() == timedelta(hours=2)
    # An hourly schedule runs in both of the repeated hours: 25 firings on the long day.
    hourly = OnSchedule("0 * * * *", timezone="Europe/Paris")
    day = dues(hourly, ms(2026, 10, 25, tz=paris) - 1, ms(2026, 10, 26, tz=paris) - 1, MINUTE)
    assert len(day) == 25 and len(set(day)) == 25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "`cron` must be a cron expression"),
        ({"cron": "every day"}, "`cron` must be a cron expression"),
        ({"cron": 5}, "`cron` must be a cron expression"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "`timezone` must be an IANA"),
        ({"cron": "0 3 * * *", "timezone": ""}, "`timezone` must be an IANA"),
        ({"cron": "0 3 * * *", "timezone": "../etc/passwd"}, "`timezone` must be an IANA"),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        OnSchedule(**kwargs)


# ---------------------------------------------------------------------------------- new data


def test_new_data_in_a_local_folder(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    on = OnNewData(str(landing), pattern="*.parquet")
    assert on.snapshot() == {}  # not there yet: nothing, no error
    (landing / "2026" / "03").mkdir(parents=True)
    (landing / "a.parquet").write_bytes(b"aaaa")
    (landing / "notes.txt").write_text("not data")
    (landing / "2026" / "03" / "b.parquet").write_bytes(b"bb")
    first = on.snapshot()
    # fnmatch's '*' crosses '/': files in sub-folders match, folders themselves never do.
    assert sorted(first) == ["2026/03/b.parquet", "a.parquet"]
    assert first["a.parquet"].startswith("4:")
    assert on.snapshot() == first and snapshot_key("t", on.snapshot()) == snapshot_key("t", first)
    (landing / "a.parquet").write_bytes(b"aaaaaa")
    changed = on.snapshot()
    assert (
        changed["a.parquet"] != first["a.parquet"]
        and changed["2026/03/b.parquet"] == first["2026/03/b.parquet"]
    )
    assert snapshot_key("t", changed) != snapshot_key("t", first)
    assert sorted(OnNewData(str(landing), pattern="2026/*").snapshot()) == ["2026/03/b.parquet"]


def test_new_data_under_an_fsspec_prefix() -> None:
    root = f"memory://landing-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    try:
        on = OnNewData(root + "/", pattern="*.csv")
        assert on.snapshot() == {}
        with fsspec.open(f"{root}/day1.csv", "wb") as f:
            f.write(b"a,b\n1,2\n")
        with fsspec.open(f"{root}/skip.json", "wb") as f:
            f.write(b"{}")
        first = on.snapshot()
        assert list(first) == ["day1.csv"]
        # Rewritten with the same size: still a change (memory:// has a creation time only).
        fs.rm(f"{root}/day1.csv")
        with fsspec.open(f"{root}/day1.csv", "wb") as f:
            f.write(b"a,b\n3,4\n")
        assert on.snapshot()["day1.csv"] != first["day1.csv"]
        with fsspec.open(f"{root}/day2.csv", "wb") as f:
            f.write(b"a\n")
        assert sorted(on.snapshot()) == ["day1.csv", "day2.csv"]
    finally:
        fs.rm(root.removeprefix("memory://"), recursive=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": ""}, "`path` must be a folder or URL prefix"),
        ({"path": None}, "`path` must be a folder or URL prefix"),
        ({"path": "x", "pattern": ""}, "`pattern` must be a glob"),
    ],
)
def test_bad_data_triggers_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        OnNewData(**kwargs)


# ---------------------------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("drifted", "data_drift"),
        ("share_drifted", "data_drift"),
        ("n_drifted", "data_drift"),
        ("columns.age.statistic", "data_drift"),
        ("columns.age.drifted", "data_drift"),
        ("quality.n_failed", "data_quality"),
        ("quality.columns.age.missing_share", "data_quality"),
        ("performance.accuracy", "performance"),
        ("performance.rmse", "performance"),
        ("estimated.roc_auc", "estimated_performance"),
        ("estimated.accuracy", "estimated_performance"),
        ("n_rows", None),
        ("index", None),
        ("columnsx", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_the_kind_of_each_alert_metric(metric: object, kind: str | None) -> None:
    assert alert_kind(metric) == kind


def test_an_alert_trigger_matches_its_monitor_kinds_and_severities() -> None:
    def payload(metric: str, monitor: str = "churn", severity: str = "warning") -> dict[str, Any]:
        return {"monitor": monitor, "metric": metric, "severity": severity}

    every = OnAlert()
    assert every.kinds == ALERT_KINDS
    assert all(every.matches(payload(m)) for m in
               ("share_drifted", "quality.n_failed", "performance.f1", "estimated.f1"))  # fmt: skip
    assert not every.matches(payload("n_rows"))
    perf = OnAlert(monitor="churn", kinds=["performance"], severities=["critical"])
    assert perf.kinds == ("performance",) and perf.severities == ("critical",)
    assert perf.matches(payload("performance.accuracy", severity="critical"))
    assert not perf.matches(payload("performance.accuracy"))  # a warning
    assert not perf.matches(payload("performance.accuracy", "fraud", "critical"))
    assert not perf.matches(payload("estimated.accuracy", severity="critical"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"monitor": ""}, "`monitor` must be a monitor's name"),
        ({"kinds": ()}, "`kinds` must be a non-empty list"),
        ({"kinds": ("drift",)}, "`kinds` must be a non-empty list of"),
        ({"kinds": "data_drift"}, "`kinds` must be a list of str"),
        ({"severities": ("fatal",)}, "`severities` must be a non-empty list"),
        ({"severities": ()}, "`severities` must be a non-empty list"),
    ],
)
def test_bad_alert_triggers_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        OnAlert(**kwargs)


# ---------------------------------------------------------------------------------- Trigger


@step
def noop() -> int:
    return 1


@pipeline
def flow():
    return noop()


def test_a_trigger_knows_its_kind_and_loads_its_pipeline() -> None:
    kinds = [
        Trigger("a", on=OnSchedule("0 3 * * *"), pipeline=flow).kind,
        Trigger("b", on=OnAlert(), pipeline=flow).kind,
        Trigger("c", on=OnNewData("/tmp/x"), pipeline=flow).kind,
        Trigger("d", on=OnManual(), pipeline=flow).kind,
    ]
    assert kinds == ["schedule", "alert", "data", "manual"]
    by_name = Trigger("e", on=OnManual(), pipeline=f"{__name__}:flow")
    assert by_name.load() is flow and by_name.pipeline_name == flow.name
    missing = Trigger("f", on=OnManual(), pipeline=f"{__name__}:nothing_here")
    with pytest.raises(InvalidInputError, match="cannot import the pipeline"):
        missing.load()
    not_a_pipeline = Trigger("g", on=OnManual(), pipeline=f"{__name__}:noop")
    with pytest.raises(InvalidInputError, match="is not a @pipeline function"):
        not_a_pipeline.load()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "no spaces"}, "trigger name"),
        ({"name": ""}, "trigger name"),
        ({"on": "0 3 * * *"}, "`on` must be OnSchedule, OnAlert, OnNewData or OnManual"),
        ({"pipeline": "flows.retrain"}, "`pipeline` must be a @pipeline function or"),
        ({"pipeline": noop}, "`pipeline` must be a @pipeline function or"),
        ({"params": {"x": object()}}, "`params` must be JSON values"),
        ({"params": {"x": float("nan")}}, "`params` must be JSON values"),
        ({"params": {1: 2}}, "`params` must be a mapping of names"),
        ({"executor": "dask"}, "`executor` must be 'local', 'process' or 'ray'"),
    ],
)
def test_bad_triggers_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "t", "on": OnManual(), "pipeline": flow, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        Trigger(**args)


def test_an_agent_file_gives_a_schedule_its_time_zone(tmp_path: Path) -> None:
    from mloop.loop import load_agent_config

    path = tmp_path / "agent.yaml"
    path.write_text(
        "triggers:\n"
        "  - name: nightly\n"
        f"    pipeline: {__name__}:flow\n"
        "    on: {schedule: '0 3 * * *', timezone: Europe/Paris}\n"
        "  - name: utc\n"
        f"    pipeline: {__name__}:flow\n"
        "    on: {schedule: '0 3 * * *'}\n"
    )
    nightly, utc = load_agent_config(path).build_triggers()
    assert nightly.on == OnSchedule("0 3 * * *", timezone="Europe/Paris")
    assert utc.on == OnSchedule("0 3 * * *", timezone="UTC")
    path.write_text(
        f"triggers:\n  - name: x\n    pipeline: {__name__}:flow\n"
        "    on: {alert: {monitor: churn}, timezone: Europe/Paris}\n"
    )
    with pytest.raises(InvalidInputError, match=r"line 4.*`timezone` goes with `schedule` only"):
        load_agent_config(path)
    path.write_text(
        f"triggers:\n  - name: x\n    pipeline: {__name__}:flow\n"
        "    on: {schedule: '0 3 * * *', timezone: Paris}\n"
    )
    with pytest.raises(InvalidInputError, match="`timezone` must be an IANA"):
        load_agent_config(path).build_triggers()
