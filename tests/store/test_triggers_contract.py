"""Trigger firings: one contract, every backend. A key fires once, a lease has one holder, only
the holder moves a firing on, and each firing is announced with its reason."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.store import EVENT_TYPES, Store, TriggerFiring

FAR = 2**62


def rid(i: int) -> str:
    return f"{i:032x}"


def firing(key: str = "alert:7:retrain", **changes: Any) -> TriggerFiring:
    base = TriggerFiring(
        key=key,
        trigger="retrain",
        pipeline="churn-retrain",
        kind="alert",
        status="pending",
        run_id=rid(1),
        reason="monitor churn: data drift on x1 (share_drifted 0.5 >= 0.5)",
        details={"monitor": "churn", "columns": ["x1"], "value": 0.5, "event_id": 7},
        owner="agent-a",
        lease_until_ms=FAR,
        actor="agent",
    )
    return dataclasses.replace(base, **changes)


def test_trigger_events_are_known_types() -> None:
    assert "trigger_fired" in EVENT_TYPES and "trigger_requested" in EVENT_TYPES


def test_a_key_fires_once_with_its_event(store: Store) -> None:
    before = store.last_event_id()
    f = store.fire_trigger(firing())
    assert (f.status, f.owner, f.run_id) == ("pending", "agent-a", rid(1))
    assert f.details == {"monitor": "churn", "columns": ["x1"], "value": 0.5, "event_id": 7}
    assert f.created_ms > 0 and f.updated_ms >= f.created_ms
    assert store.get_trigger_firing(f.key) == f
    (e,) = store.read_events(after_id=before)
    assert (e.type, e.subject) == ("trigger_fired", "pipelines/churn-retrain")
    assert e.payload["key"] == f.key and e.payload["run_id"] == rid(1)
    assert e.payload["reason"] == f.reason and e.payload["details"]["columns"] == ["x1"]
    # The same cause again, by anyone: refused, and nothing else is written.
    with pytest.raises(AlreadyExistsError):
        store.fire_trigger(firing(owner="agent-b", run_id=rid(2)))
    assert store.last_event_id() == e.id
    assert store.get_trigger_firing(f.key).run_id == rid(1)


def test_concurrent_firings_of_one_key_record_one(store_factory: Any) -> None:
    stores = [store_factory() for _ in range(4)]
    won: list[str] = []
    lost: list[str] = []
    barrier = threading.Barrier(len(stores))

    def fire(i: int) -> None:
        barrier.wait()
        try:
            stores[i].fire_trigger(firing(owner=f"agent-{i}", run_id=rid(i + 1)))
            won.append(f"agent-{i}")
        except AlreadyExistsError:
            lost.append(f"agent-{i}")

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 3
    assert stores[0].get_trigger_firing("alert:7:retrain").owner == won[0]
    fired = stores[0].read_events(types=["trigger_fired"])
    assert len(fired) == 1


def test_a_lease_has_one_holder_until_it_runs_out(store: Store) -> None:
    store.fire_trigger(firing(lease_until_ms=1000))
    # Another agent cannot take a lease that still runs; the holder renews its own.
    assert (
        store.claim_trigger_firing("alert:7:retrain", owner="agent-b", lease_ms=10, now_ms=999)
        is None
    )
    held = store.claim_trigger_firing("alert:7:retrain", owner="agent-a", lease_ms=500, now_ms=999)
    assert held is not None and held.lease_until_ms == 1499
    # Once it ran out, another takes it, and the old holder can no longer move it on.
    taken = store.claim_trigger_firing(
        "alert:7:retrain", owner="agent-b", lease_ms=100, now_ms=1500
    )
    assert taken is not None and (taken.owner, taken.lease_until_ms) == ("agent-b", 1600)
    with pytest.raises(ConflictError, match="held by 'agent-b'"):
        store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="running")
    with pytest.raises(NotFoundError):
        store.claim_trigger_firing("alert:8:retrain", owner="agent-a", lease_ms=1)


def test_a_firing_moves_on_and_ends_once(store: Store) -> None:
    store.fire_trigger(firing())
    r = store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="running")
    assert r.status == "running" and r.run_id == rid(1)
    # A take-over resumes the run under a new id and says which.
    r = store.update_trigger_firing(
        "alert:7:retrain", owner="agent-a", status="running", run_id=rid(2), resumed_from=rid(1)
    )
    assert (r.run_id, r.resumed_from) == (rid(2), rid(1))
    done = store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="finished")
    assert done.status == "finished" and done.owner is None and done.lease_until_ms == 0
    with pytest.raises(ConflictError, match="already finished"):
        store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="failed", error="x")
    # A finished firing is no one's to claim.
    assert store.claim_trigger_firing("alert:7:retrain", owner="agent-a", lease_ms=10) is None
    store.fire_trigger(firing("alert:9:retrain", run_id=rid(3)))
    failed = store.update_trigger_firing(
        "alert:9:retrain", owner="agent-a", status="failed", error="step 'train' failed"
    )
    assert failed.error == "step 'train' failed"


def test_firings_are_listed_newest_first_and_filtered(store: Store) -> None:
    store.fire_trigger(firing("schedule:nightly:1000", trigger="nightly", kind="schedule"))
    store.fire_trigger(firing("alert:7:retrain", run_id=rid(2)))
    store.fire_trigger(firing("alert:8:retrain", run_id=rid(3)))
    store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="finished")
    keys = [f.key for f in store.list_trigger_firings()]
    assert keys == ["alert:8:retrain", "alert:7:retrain", "schedule:nightly:1000"]
    assert [f.key for f in store.list_trigger_firings(trigger="retrain", limit=1)] == [
        "alert:8:retrain"
    ]
    assert [f.key for f in store.list_trigger_firings(open_only=True)] == [
        "alert:8:retrain",
        "schedule:nightly:1000",
    ]
    assert [f.key for f in store.list_trigger_firings(status="finished")] == ["alert:7:retrain"]
    assert store.list_trigger_firings(status="finished", open_only=True) == []


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"key": "has space"}, "key"),
        ({"key": ""}, "key"),
        ({"kind": "cron"}, "firing.kind"),
        ({"status": "running"}, "pending"),
        ({"run_id": "nothex"}, "firing.run_id"),
        ({"trigger": "-bad"}, "firing.trigger"),
        ({"details": ["x"]}, "firing.details"),
        ({"owner": ""}, "owner"),
    ],
)
def test_a_malformed_firing_is_refused(store: Store, changes: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        store.fire_trigger(firing(**changes))
    assert store.list_trigger_firings() == []


def test_bad_updates_are_refused(store: Store) -> None:
    store.fire_trigger(firing())
    with pytest.raises(InvalidInputError, match="`error` must be given"):
        store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="failed")
    with pytest.raises(InvalidInputError, match="status"):
        store.update_trigger_firing("alert:7:retrain", owner="agent-a", status="pending")
    with pytest.raises(InvalidInputError, match="resumed_from"):
        store.update_trigger_firing(
            "alert:7:retrain", owner="agent-a", status="running", resumed_from=rid(1)
        )
    with pytest.raises(InvalidInputError, match="lease_ms"):
        store.claim_trigger_firing("alert:7:retrain", owner="agent-a", lease_ms=0)
    with pytest.raises(NotFoundError):
        store.get_trigger_firing("alert:1:none")
    with pytest.raises(NotFoundError):
        store.update_trigger_firing("alert:1:none", owner="agent-a", status="running")


def test_an_alert_event_carries_its_rule(store: Store) -> None:
    """The monitor_alert event says what the rule read: a trigger tells its kind from it."""
    alert = {
        "rule": "quality.n_failed >= 1", "name": "quality", "severity": "critical",
        "metric": "quality.n_failed", "op": ">=", "threshold": 1.0, "value": 2.0,
        "consecutive": 1, "message": "2 checks failed", "monitor": "churn",
    }  # fmt: skip
    before = store.last_event_id()
    store.log_monitor_result(
        {
            "monitor": "churn",
            "window_index": 3,
            "window_start": "a",
            "window_end": "b",
            "n_rows": 10,
            "result": {},
            "alerts": [alert],
        }
    )
    (e,) = store.read_events(after_id=before, types=["monitor_alert"])
    assert e.payload["metric"] == "quality.n_failed" and e.payload["value"] == 2.0
    assert (e.payload["op"], e.payload["threshold"]) == (">=", 1.0)
    assert e.payload["rule"] == "quality.n_failed >= 1" and e.payload["window_index"] == 3


def test_migration_from_0009_adds_trigger_firings_and_goes_back(sql_store_uri: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from mloop.store import SqlStore
    from mloop.store._sql._engine import _alembic_config

    engine = sa.create_engine(sql_store_uri)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0009")
        assert not sa.inspect(conn).has_table("trigger_firings")
    s = SqlStore(sql_store_uri)  # upgrades on open
    try:
        s.fire_trigger(firing())
        assert s.get_trigger_firing("alert:7:retrain").run_id == rid(1)
    finally:
        s.close()
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0009")
        assert not sa.inspect(conn).has_table("trigger_firings")
        assert sa.inspect(conn).has_table("pipeline_runs")
    engine.dispose()
