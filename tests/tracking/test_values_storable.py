"""Everything ``log`` (and every other value path) accepts can be stored, on SQLite and PostgreSQL
(and over HTTP); what the store refuses anyway is kept, never dropped, and the rest of the run is
written."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mloop
from _asgi import http_store_over
from _locks import server_store_uri
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.store import SqlStore
from mloop.tracking import count_quarantined, quarantine_dir, retry_quarantined


@pytest.fixture
def settings(tmp_path: Path, store_uri: str) -> Settings:
    return Settings.from_env({}, home=tmp_path / "home", store_uri=store_uri, flush_interval_s=0.05)


def _start(settings: Settings, store: Any, **kw: Any) -> mloop.Run:
    return mloop.start_run(project="p", settings=settings, store=store, system_metrics=False, **kw)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


BAD_METRICS = [
    10**400,
    -(10**400),
    Fraction(10**400, 3),
    complex(1, 2),
    np.complex64(1 + 1j),
    np.array([1.0, 2.0]),
    "0.5",
    None,
    True,
    np.bool_(True),
]


@pytest.mark.parametrize("value", BAD_METRICS, ids=lambda v: type(v).__name__)
def test_log_refuses_what_a_float64_cannot_hold_and_loses_nothing_else(
    settings: Settings, store: Any, value: Any
) -> None:
    with _start(settings, store) as run:
        run.log({"loss": 0.5})
        with pytest.raises(InvalidInputError, match="'count'"):
            run.log({"ok": 1.0, "count": value})
        run.log({"loss": 0.25})
    got = store.get_run(run.id)
    assert got.status == "finished"
    assert store.get_metric_history(run.id, "loss").value.tolist() == [0.5, 0.25]
    assert "ok" not in got.metrics  # nothing of the refused call was buffered
    assert count_quarantined(settings.spool_dir) == 0
    assert not list(settings.spool_dir.glob("*.jsonl"))


def test_ints_that_fit_a_float64_are_stored_even_past_2_to_the_53(
    settings: Settings, store: Any
) -> None:
    big = int(np.finfo(np.float64).max)  # the largest int a float64 holds
    with _start(settings, store) as run:
        run.log({"n": 2**53 + 1})
        run.log({"n": big})
        run.log({"n": -big})
        run.log({"n": np.int64(7)})
        run.log({"n": Fraction(1, 4)})
    h = store.get_metric_history(run.id, "n").value.tolist()
    assert h == [float(2**53 + 1), float(big), -float(big), 7.0, 0.25]


def test_a_step_outside_int64_is_refused_at_log(settings: Settings, store: Any) -> None:
    with _start(settings, store) as run:
        with pytest.raises(InvalidInputError, match="64-bit"):
            run.log({"m": 1.0}, step=2**63)
        run.log({"m": 2.0}, step=2**63 - 1)
    assert store.get_metric_history(run.id, "m").step.tolist() == [2**63 - 1]


def test_summary_refuses_an_unstorable_number(settings: Settings, store: Any) -> None:
    with _start(settings, store) as run:
        run.log({"loss": 0.5})
        with pytest.raises(InvalidInputError, match="too large for a float64"):
            run.summary["count"] = 10**400
        with pytest.raises(InvalidInputError, match="NUL"):
            run.summary["note"] = "a\x00b"
        run.summary["best"] = 0.9
    got = store.get_run(run.id)
    assert got.metrics["best"].last == 0.9 and "count" not in got.metrics
    assert "summary.note" not in got.tags


BAD_TEXT = [
    ("a\x00b", "NUL"),
    ("a\ud800b", "lone surrogate"),
    (10**5000, "could not be turned into text"),
    (_Unprintable(), "no text for you"),
]


@pytest.mark.parametrize(("value", "why"), BAD_TEXT, ids=["nul", "surrogate", "hugeint", "str"])
def test_params_and_tags_refuse_text_no_backend_can_store(
    settings: Settings, store: Any, value: Any, why: str
) -> None:
    with _start(settings, store) as run:
        run.log({"loss": 0.5})
        with pytest.raises(InvalidInputError, match=why):
            run.log_params({"good": 1, "bad": value})
        with pytest.raises(InvalidInputError, match=why):
            run.set_tags({"good": 1, "bad": value})
        run.log_params({"lr": 0.1})
    got = store.get_run(run.id)
    assert got.status == "finished" and got.params == {"lr": "0.1"}
    assert "good" not in got.tags and got.metrics["loss"].last == 0.5
    assert (
        not list(settings.spool_dir.glob("*.jsonl")) and count_quarantined(settings.spool_dir) == 0
    )


@pytest.mark.parametrize("field", ["project", "name", "config", "tags"])
def test_start_run_refuses_unstorable_text_before_anything_is_written(
    settings: Settings, store: Any, field: str
) -> None:
    kw: dict[str, Any] = {
        "project": {"project": "p\x00"},
        "name": {"name": "n\ud800"},
        "config": {"config": {"opt": {"lr": "x\x00"}}},
        "tags": {"tags": {"t": "x\x00"}},
    }[field]
    kw.setdefault("project", "p")
    with pytest.raises(InvalidInputError):
        mloop.start_run(settings=settings, store=store, system_metrics=False, **kw)
    assert [r for p in store.list_projects() for r in store.search_runs(p.id).items] == []


def test_dataset_metadata_is_checked_before_the_upload(settings: Settings, store: Any) -> None:
    data = {"a": np.arange(5.0)}
    with _start(settings, store) as run:
        with pytest.raises(InvalidInputError, match="dataset name"):
            run.log_dataset(data, name="d\x00")
        with pytest.raises(InvalidInputError, match="source_uri"):
            run.log_dataset(data, name="d", source_uri="s3://b/\ud800")
        with pytest.raises(InvalidInputError, match="context"):
            run.log_dataset(data, name="d", context="train\x00")
        ds = run.log_dataset(data, name="d", source_uri="s3://b/k")
    assert [i.dataset_sha256 for i in store.get_run(run.id).inputs] == [ds.sha256]


def test_captured_context_text_is_made_storable_not_refused(settings: Settings, store: Any) -> None:
    project = store.get_or_create_project("p")
    run = store.create_run(project.id, user="r\udcffot", host="h\x00st", git_commit="abc")
    got = store.get_run(run.id)
    assert got.user == "r\ufffdot" and got.host == "h\ufffdst"


class _PickyStore(SqlStore):
    """A real store that refuses one tag value, as a backend with a stricter limit would."""

    picky = True

    def _do_log_batch(self, run_id: str, **kw: Any) -> bool:
        if self.picky and kw.get("tags", {}).get("team") == "refused":
            raise InvalidInputError("tag 'team' value 'refused' is not allowed here")
        return super()._do_log_batch(run_id, **kw)


def test_a_batch_the_store_refuses_is_written_but_for_the_refused_item_which_is_kept(
    settings: Settings, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server's own store is the picky one when the run writes over HTTP: its refusal comes
    # back as the same InvalidInputError.
    behind_server = server_store_uri(settings.store_uri)
    picky = _PickyStore(behind_server or settings.store_uri)
    store = picky if behind_server is None else http_store_over(picky)
    request.addfinalizer(store.close)
    with _start(settings, store) as run:
        for i in range(100):
            run.log({"loss": 1 / (i + 1), "acc": i / 100})
        run.log_params({"lr": 0.1})
        run.set_tags({"team": "refused", "owner": "ana"})
    got = store.get_run(run.id)
    assert got.status == "finished"
    assert got.metrics["loss"].count == 100 and got.metrics["acc"].count == 100
    assert got.params == {"lr": "0.1"} and got.tags.get("owner") == "ana"
    assert "team" not in got.tags
    w = run._writer  # the batch was written item by item: every point counted once
    assert (w.points_written, w.points_spooled, w.refused) == (200, 0, 1)
    assert got.end_ms is not None
    err = capsys.readouterr().err
    assert "refused" in err and "quarantine" in err
    assert count_quarantined(settings.spool_dir) == 1
    # Once the cause is fixed, the kept item is applied and leaves the quarantine.
    picky.picky = False
    result = retry_quarantined(store, settings.spool_dir)
    assert (result.applied, result.failed) == (1, 0)
    assert store.get_run(run.id).tags["team"] == "refused"
    assert count_quarantined(settings.spool_dir) == 0


def test_a_value_that_slips_past_log_costs_only_that_value(
    settings: Settings, store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defence in depth: the writer never loses a batch (or the run) over one unpackable value."""
    with _start(settings, store) as run:
        run.log({"loss": 0.5})
        run._queue.append((1, 0, {"loss": 0.25, "count": 10**400}))  # as if validation missed it
        run.log({"loss": 0.125})
    assert store.get_run(run.id).status == "finished"
    assert store.get_metric_history(run.id, "loss").value.tolist() == [0.5, 0.25, 0.125]
    kept = [
        json.loads(line)
        for f in quarantine_dir(settings.spool_dir).glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert len(kept) == 1 and "'count'" in kept[0]["error"]
    raw = json.loads(kept[0]["raw"])
    assert raw == {"key": "count", "step": 1, "timestamp": 0, "value": repr(10**400)}
    assert "count" in capsys.readouterr().err


def test_nan_and_infinities_are_still_kept(settings: Settings, store: Any) -> None:
    with _start(settings, store) as run:
        run.log({"m": math.nan})
        run.log({"m": math.inf})
        run.log({"m": -np.inf})
    v = store.get_metric_history(run.id, "m").value
    assert math.isnan(v[0]) and v[1] == math.inf and v[2] == -math.inf
