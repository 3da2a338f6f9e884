"""Check reports as records: one contract, every backend; each report written with its event."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from mloop.codec import to_wire
from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.store import EVENT_TYPES, CheckReport, CheckResult, SqlStore, Store

POLICY = "5" * 64
OTHER_POLICY = "6" * 64


def rid(i: int) -> str:
    return f"{i:032x}"


def report(i: int = 1, **changes: Any) -> CheckReport:
    """A failing report on churn v2 against v1, with nested checks and numbers."""
    base = CheckReport(
        id=rid(i),
        model="churn",
        version=2,
        kind="check",
        status="fail",
        candidate_uri="models:/churn/2",
        baseline_uri="models:/churn/1",
        baseline_version=1,
        policy_hash=POLICY,
        policy={"checks": [{"kind": "non_regression", "metric": "roc_auc", "margin": 0.01}]},
        data={"uri": "data/holdout.parquet", "rows": 5000, "sha256": "7" * 64, "target": "y"},
        checks=(
            CheckResult(
                name="non_regression:roc_auc",
                kind="non_regression",
                status="fail",
                summary="roc_auc fell by 0.031 (95% CI -0.05 to -0.012): worse than v1.",
                compared="models:/churn/2 vs models:/churn/1 on 5,000 rows",
                numbers={
                    "candidate": 0.812,
                    "baseline": 0.843,
                    "delta": -0.031,
                    "ci": [-0.05, -0.012],
                    "p_value": 1.5e-4,
                    "n": 5000,
                    "big": 2**60,
                    "zero": -0.0,
                },
                details=({"slice": "plan=basic", "delta": -0.05}, {"slice": "plan=pro"}),
                duration_ms=12.5,
            ),
            CheckResult(
                name="signature",
                kind="signature",
                status="warn",
                summary="input 'age' became nullable.",
                numbers={"problems": 1},
            ),
            CheckResult(name="budget:latency", kind="budget", status="skip", summary="no GPU."),
        ),
        created_ms=1_700_000_000_000,
        duration_ms=140.25,
        actor="ci-bot",
        extra={"predictions": {"mean": 0.21, "histogram": [1, 5, 9, 2]}},
    )
    return dataclasses.replace(base, **changes)


def passing(i: int, **changes: Any) -> CheckReport:
    ok = CheckResult(name="threshold:accuracy", kind="threshold", status="pass", summary="ok.")
    return report(i, **{"status": "pass", "checks": (ok,), **changes})


@pytest.fixture
def registered(store: Store) -> Store:
    """``churn`` with versions 1, 2 and 3."""
    for _ in range(3):
        store.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    return store


def attached(store: Store) -> list[Any]:
    return store.list_events(types=["report_attached"])


# ---------------------------------------------------------------------------------------- round trip


def test_a_report_round_trips_with_its_checks_and_numbers(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    for _ in range(2):
        store.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    r = report()
    stored = store.put_check_report(r)
    assert stored == r
    assert store.get_check_report(r.id) == r
    got = store_factory().get_check_report(r.id)  # another client reads the same report
    assert got == r and got.check("non_regression:roc_auc").numbers["big"] == 2**60
    zero = got.checks[0].numbers["zero"]
    assert zero == 0.0 and math.copysign(1.0, zero) == -1.0
    assert type(got.checks) is tuple and type(got.checks[0].details) is tuple
    assert not got.passed and [c.blocking for c in got.checks] == [True, False, False]


def test_stored_reports_are_read_back_in_the_codecs_form(registered: Store) -> None:
    """Sequences become tuples and lists as the codec reads them; ``put`` returns that form."""
    r = passing(1, checks=[CheckResult("t", "threshold", "pass", "ok.", details=[{"a": 1}])])
    stored = registered.put_check_report(r)
    assert type(stored.checks) is tuple and stored.checks[0].details == ({"a": 1},)
    assert registered.get_check_report(r.id) == stored


def test_non_finite_numbers_read_back_as_the_codec_spells_them(registered: Store) -> None:
    """``numbers`` is free-form, so the codec keeps NaN and infinities in their wire spelling."""
    numbers = {"p_value": math.nan, "ratio": math.inf, "low": -math.inf, "n": 3, "x": 0.5}
    c = CheckResult("data:drift", "data", "warn", "p-value undefined.", numbers=numbers)
    stored = registered.put_check_report(passing(1, checks=(c,)))
    got = registered.get_check_report(rid(1))
    assert got == stored
    assert got.checks[0].numbers == to_wire(numbers)
    assert got.checks[0].numbers == {
        "p_value": "NaN",
        "ratio": "Infinity",
        "low": "-Infinity",
        "n": 3,
        "x": 0.5,
    }


# ---------------------------------------------------------------------------------------- immutability


def test_reports_are_immutable(registered: Store) -> None:
    first = registered.put_check_report(report())
    with pytest.raises(AlreadyExistsError, match=f"check report {rid(1)} already exists"):
        registered.put_check_report(passing(1, version=3))
    with pytest.raises(AlreadyExistsError, match="immutable"):
        registered.put_check_report(report())
    assert registered.get_check_report(rid(1)) == first
    assert len(attached(registered)) == 1
    assert registered.list_check_reports("churn") == [first]


def test_concurrent_puts_of_one_id_store_it_once(
    registered: Store, store_factory: Callable[..., Store]
) -> None:
    clients = [store_factory() for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(clients))

    def put(s: Store) -> None:
        barrier.wait()
        try:
            s.put_check_report(report())
            outcomes.append("stored")
        except AlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=put, args=(s,)) for s in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["exists"] * 3 + ["stored"]
    assert len(attached(registered)) == 1


def test_a_missing_report_is_not_found(registered: Store) -> None:
    with pytest.raises(NotFoundError, match=f"check report {rid(9)} does not exist"):
        registered.get_check_report(rid(9))
    with pytest.raises(InvalidInputError, match="`report_id` must be 32 lowercase hex"):
        registered.get_check_report("A" * 32)


# ---------------------------------------------------------------------------------------- the event


def test_the_report_attached_event_is_written_with_the_report(registered: Store) -> None:
    before = registered.last_event_id()
    r = registered.put_check_report(report())
    (e,) = attached(registered)
    assert e.id > before
    assert (e.type, e.model, e.version, e.alias, e.actor, e.report_id) == (
        "report_attached",
        "churn",
        2,
        None,
        "ci-bot",
        r.id,
    )
    assert e.after == {
        "status": "fail",
        "kind": "check",
        "policy_hash": POLICY,
        "baseline_version": 1,
    }
    (logged,) = registered.read_events(after_id=before, types=["report_attached"])
    assert (logged.id, logged.subject, logged.actor) == (e.id, "models/churn", "ci-bot")
    assert logged.payload["report_id"] == r.id and logged.payload["after"] == e.after
    registered.put_check_report(passing(2, baseline_uri=None, baseline_version=None, actor=None))
    e2 = attached(registered)[-1]
    assert (e2.actor, e2.after["status"], e2.after["baseline_version"]) == (None, "pass", None)


def test_a_refused_report_writes_no_event(registered: Store) -> None:
    registered.put_check_report(report())
    registered.delete_model_version("churn", 3)
    head = registered.last_event_id()
    refused: list[tuple[type[Exception], CheckReport]] = [
        (AlreadyExistsError, report()),
        (NotFoundError, report(2, version=9)),
        (NotFoundError, report(3, version=3)),
        (NotFoundError, report(4, model="fraud")),
        (InvalidInputError, report(5, status="pass")),
    ]
    for error, r in refused:
        with pytest.raises(error):
            registered.put_check_report(r)
    assert registered.last_event_id() == head
    assert [x.id for x in registered.list_check_reports("churn")] == [rid(1)]


# ---------------------------------------------------------------------------------------- versions


def test_a_report_needs_an_existing_version(registered: Store) -> None:
    with pytest.raises(NotFoundError, match="registered model 'fraud' does not exist"):
        registered.put_check_report(report(model="fraud"))
    with pytest.raises(NotFoundError, match="model 'churn' has no version 9"):
        registered.put_check_report(report(version=9))
    with pytest.raises(NotFoundError):
        registered.get_check_report(rid(1))


def test_a_deleted_version_takes_no_new_report_and_keeps_its_old_ones(registered: Store) -> None:
    kept = registered.put_check_report(report(1, version=3))
    registered.delete_model_version("churn", 3)
    with pytest.raises(NotFoundError, match="model 'churn' version 3 is deleted"):
        registered.put_check_report(report(2, version=3))
    assert registered.get_check_report(rid(1)) == kept
    assert registered.list_check_reports("churn", version=3) == [kept]


# ---------------------------------------------------------------------------------------- listing


def test_list_is_newest_first_with_filters(registered: Store) -> None:
    t0 = 1_700_000_000_000
    written = [
        registered.put_check_report(r)
        for r in (
            report(1, created_ms=t0),
            passing(2, created_ms=t0 + 10, version=3),
            passing(3, created_ms=t0 + 5, kind="post_deploy"),
            report(4, created_ms=t0 + 10, policy_hash=OTHER_POLICY),  # same ms as 2, written later
            passing(5, created_ms=t0 + 1, version=1),
        )
    ]
    by_id = {r.id: r for r in written}

    def ids(**filters: Any) -> list[int]:
        found = registered.list_check_reports("churn", **filters)
        assert all(by_id[r.id] == r for r in found)
        return [int(r.id, 16) for r in found]

    assert ids() == [4, 2, 3, 5, 1]
    assert ids(limit=2) == [4, 2]
    assert ids(version=2) == [4, 3, 1]
    assert ids(version=1) == [5]
    assert ids(kind="post_deploy") == [3]
    assert ids(kind="check", status="pass") == [2, 5]
    assert ids(status="fail") == [4, 1]
    assert ids(policy_hash=OTHER_POLICY) == [4]
    assert ids(version=2, kind="check", status="fail", policy_hash=POLICY) == [1]
    assert ids(version=2, status="pass", kind="check") == []


def test_list_of_a_model_without_reports(registered: Store) -> None:
    assert registered.list_check_reports("churn") == []
    with pytest.raises(NotFoundError, match="registered model 'fraud' does not exist"):
        registered.list_check_reports("fraud")


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"version": 0}, "model version must be an int >= 1; got 0"),
        ({"kind": "nightly"}, r"`kind` must be one of \['check', 'post_deploy'\]; got 'nightly'"),
        ({"status": "warn"}, r"`status` must be one of \['pass', 'fail'\]; got 'warn'"),
        ({"policy_hash": "ABC"}, "`policy_hash` must be 64 lowercase hex characters; got 'ABC'"),
        ({"limit": 0}, r"`limit` must be an int in \[1, 50000\]; got 0"),
    ],
)
def test_list_refuses_bad_filters(registered: Store, filters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        registered.list_check_reports("churn", **filters)


def test_every_backend_refuses_a_bad_report_alike(registered: Store) -> None:
    """The store validates before it writes (the cases are in test_check_report_validation)."""
    bad = CheckResult("x", "nightly", "pass", "ok.")
    with pytest.raises(InvalidInputError, match=r"`report.checks\[0\].kind` must be one of"):
        registered.put_check_report(passing(1, checks=(bad,)))
    with pytest.raises(InvalidInputError, match=r"`report.status` must be 'fail' when a check"):
        registered.put_check_report(report(2, status="pass"))
    assert registered.list_check_reports("churn") == [] and attached(registered) == []


# ---------------------------------------------------------------------------------------- event types


def test_promotion_overridden_is_an_event_type(registered: Store) -> None:
    assert "promotion_overridden" in EVENT_TYPES
    e = registered.add_event(
        "promotion_overridden",
        "churn",
        version=2,
        alias="champion",
        actor="lead",
        reason="hotfix: the holdout is stale",
        report_id=rid(1),
        after={"report_status": "fail"},
    )
    assert registered.list_events(types=["promotion_overridden"]) == [e]
    assert registered.read_events(types=["promotion_overridden"])[0].payload["alias"] == "champion"
    hook = registered.create_webhook(
        "http://127.0.0.1:9/hook", secret="s3cret-key", events=["promotion_overridden"]
    )
    assert hook.events == ("promotion_overridden",)


# ---------------------------------------------------------------------------------------- migration


def test_migration_from_0006_adds_check_reports_to_a_store_with_versions(
    sql_store_uri: str,
) -> None:
    store_uri = sql_store_uri
    import sqlalchemy as sa
    from alembic import command

    from mloop.store._sql._engine import HEAD_REVISION, _alembic_config

    engine = sa.create_engine(store_uri)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0006")
        assert not sa.inspect(conn).has_table("check_reports")
        conn.execute(
            sa.text(
                "INSERT INTO registered_models (name, description, created_ms, updated_ms) "
                "VALUES ('churn', '', 1, 1)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_versions (name, version, artifact_uri, flavor, created_ms, "
                "updated_ms, description, manifest, params, datasets, deleted) VALUES "
                "('churn', 1, 'file:///m', 'sklearn', 1, 1, '', '{}', '{}', '[]', false), "
                "('churn', 2, 'file:///m', 'sklearn', 2, 2, '', '{}', '{}', '[]', false)"
            )
        )
    s = SqlStore(store_uri)  # upgrades on open
    try:
        with s.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            assert version == HEAD_REVISION
        r = s.put_check_report(report())
        assert s.get_check_report(r.id) == r and s.list_check_reports("churn") == [r]
        assert s.get_model_version("churn", 1).version == 1
    finally:
        s.close()
    with engine.begin() as conn:  # and back: the table goes, the registry stays
        command.downgrade(_alembic_config(conn), "0006")
        assert not sa.inspect(conn).has_table("check_reports")
        n = conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar()
        assert n == 2
    engine.dispose()
