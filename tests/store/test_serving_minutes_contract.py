"""Serving's per-minute aggregates: one contract, every backend. A minute written again replaces
its (deployment, replica, minute) row; reads come back by minute then replica within a range;
malformed minutes are refused identically, naming the field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mloop.errors import InvalidInputError
from mloop.store import LATENCY_BOUNDS_MS, ServingMinute, Store, latency_quantile

T0 = 1_700_000_040_000  # a whole minute


def minute(i: int = 0, *, replica: str = "host:1", requests: int = 10, **kw: Any) -> ServingMinute:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[3] = requests  # 5-10 ms
    base = ServingMinute(
        deployment="churn-api",
        replica=replica,
        minute_ms=T0 + i * 60_000,
        requests=requests,
        errors=min(1, requests),
        latency_sum_ms=7.5 * requests,
        latency_max_ms=9.0 if requests else 0.0,
        latency_counts=tuple(counts),
    )
    return dataclasses.replace(base, **kw)


def test_minutes_come_back_by_minute_then_replica(store: Store) -> None:
    store.record_serving_minutes([minute(1, replica="b:2"), minute(0), minute(1)])
    store.record_serving_minutes([minute(2, requests=4)])
    got = store.list_serving_minutes("churn-api")
    assert [(m.minute_ms - T0, m.replica) for m in got] == [
        (0, "host:1"),
        (60_000, "b:2"),
        (60_000, "host:1"),
        (120_000, "host:1"),
    ]
    assert got[0] == minute(0)
    assert got[-1].latency_counts[3] == 4 and got[-1].requests == 4
    ranged = store.list_serving_minutes("churn-api", since_ms=T0 + 60_000, until_ms=T0 + 120_000)
    assert [m.replica for m in ranged] == ["b:2", "host:1"]
    assert [m.minute_ms for m in store.list_serving_minutes("churn-api", limit=1)] == [T0]
    assert store.list_serving_minutes("other") == []


def test_a_minute_written_again_is_replaced_not_added(store: Store) -> None:
    store.record_serving_minutes([minute(0, requests=3)])
    store.record_serving_minutes([minute(0, requests=8)])  # the same minute, later in it
    store.record_serving_minutes([minute(0, requests=8)])  # a retried write
    (got,) = store.list_serving_minutes("churn-api")
    assert got.requests == 8 and sum(got.latency_counts) == 8
    store.record_serving_minutes([])  # nothing to do


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"minute_ms": T0 + 1}, "multiple of 60000"),
        ({"errors": 11}, "cannot exceed `requests`"),
        ({"latency_counts": (1, 2)}, "must hold 14 counts"),
        ({"latency_counts": (0,) * 13 + (9,)}, "add up to `requests` (10)"),
        ({"latency_sum_ms": float("nan")}, "`latency_sum_ms` must be a finite number"),
        ({"replica": ""}, "`replica` must be 1 to 128"),
        ({"deployment": "bad name!"}, "deployment name"),
        ({"requests": True}, "`requests` must be an int"),
    ],
)
def test_malformed_minutes_are_refused(store: Store, change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        store.record_serving_minutes([minute(0), minute(1, **change)])
    assert message in str(err.value)
    assert store.list_serving_minutes("churn-api") == []  # nothing of the call was stored


def test_reads_are_validated(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="`limit` must be an int"):
        store.list_serving_minutes("churn-api", limit=0)
    with pytest.raises(InvalidInputError, match="`since_ms` must be an int"):
        store.list_serving_minutes("churn-api", since_ms=-1)


def test_latency_quantile_interpolates_inside_the_bucket() -> None:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[3], counts[5] = 50, 50  # 50 in (5, 10] ms, 50 in (25, 50] ms
    assert latency_quantile(counts, 0.5) == pytest.approx(10.0)
    assert latency_quantile(counts, 0.25) == pytest.approx(7.5)
    assert latency_quantile(counts, 0.95) == pytest.approx(25 + 25 * 0.9)
    counts[-1] = 1000
    assert latency_quantile(counts, 0.99) == LATENCY_BOUNDS_MS[-1]
    assert latency_quantile([0] * len(counts), 0.5) is None


def test_migration_0012_adds_the_table_and_takes_it_back(sql_store_uri: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from mloop.store import SqlStore
    from mloop.store._sql._engine import _alembic_config

    engine = sa.create_engine(sql_store_uri)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0011")
        assert not sa.inspect(conn).has_table("serving_minutes")
    s = SqlStore(sql_store_uri)  # upgrades on open
    try:
        s.record_serving_minutes([minute(0)])
        assert s.list_serving_minutes("churn-api") == [minute(0)]
    finally:
        s.close()
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0011")
        assert not sa.inspect(conn).has_table("serving_minutes")
    engine.dispose()
