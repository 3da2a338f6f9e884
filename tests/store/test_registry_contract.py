"""The registry part of the Store contract, on SQLite and PostgreSQL, including concurrent promotions."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

from mloop.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from mloop.store import SqlStore, Store


def register(store: Store, name: str = "churn", **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("artifact_uri", "runs:/x/model")
    kw.setdefault("flavor", "sklearn")
    return store.create_model_version(name, **kw)


def test_versions_are_numbered_and_snapshot_their_run(store: Store) -> None:
    p = store.create_project("p")
    run = store.create_run(p.id)
    v1 = register(
        store,
        source_run_id=run.id,
        metrics={"acc": 0.9},
        params={"depth": "8"},
        datasets=[{"sha256": "ab" * 32, "name": "train"}],
        git_commit="c" * 40,
        actor="ana",
        signature={"inputs": [{"name": "x", "type": "double"}]},
        manifest={"flavor": "sklearn"},
    )
    v2 = register(store, metrics={"acc": 0.95}, tags={"stage": "candidate"})
    assert (v1.version, v2.version) == (1, 2)
    got = store.get_model_version("churn", 1)
    assert (
        got.source_run_id == run.id and got.metrics == {"acc": 0.9} and got.params == {"depth": "8"}
    )
    assert (
        got.datasets[0]["name"] == "train"
        and got.git_commit == "c" * 40
        and got.created_by == "ana"
    )
    assert (
        got.signature == {"inputs": [{"name": "x", "type": "double"}]}
        and got.uri == "models:/churn/1"
    )
    assert store.get_latest_version("churn").version == 2
    assert store.get_registered_model("churn").latest_version == 2
    with pytest.raises(NotFoundError, match="run"):
        register(store, source_run_id="e" * 32)
    assert store.get_latest_version("churn").version == 2  # the failed registration left nothing
    with pytest.raises(NotFoundError, match="no version 9"):
        store.get_model_version("churn", 9)
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.get_model_version("nope", 1)
    with pytest.raises(NotFoundError, match="has no alias 'gone'"):
        store.get_alias("churn", "gone")
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.get_alias("nope", "gone")
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.get_latest_version("nope")
    store.create_registered_model("empty")
    with pytest.raises(NotFoundError, match="'empty' has no versions"):
        store.get_latest_version("empty")
    for bad in ("", "a/b", "x@y", "-x", "a" * 300):
        with pytest.raises(InvalidInputError, match="model name"):
            register(store, bad)


def test_search_models_and_versions(store: Store) -> None:
    register(store, "churn", metrics={"acc": 0.9}, flavor="sklearn")
    register(store, "churn", metrics={"acc": 0.97}, flavor="xgboost", tags={"stage": "candidate"})
    register(store, "fraud", metrics={"acc": 0.8})
    store.set_registered_model_tags("fraud", {"team": "risk"})
    assert [m.name for m in store.search_registered_models("name LIKE 'ch%'").items] == ["churn"]
    assert [m.name for m in store.search_registered_models("tags.team = 'risk'").items] == ["fraud"]
    found = store.search_model_versions("name = 'churn' and metrics.acc > 0.95")
    assert [(v.name, v.version) for v in found.items] == [("churn", 2)]
    assert [
        v.version
        for v in store.search_model_versions(
            "flavor = 'xgboost' and tags.stage = 'candidate'"
        ).items
    ] == [2]
    ordered = store.search_model_versions(order_by=["metrics.acc DESC"])
    assert [(v.name, v.version) for v in ordered.items] == [
        ("churn", 2),
        ("churn", 1),
        ("fraud", 1),
    ]
    assert [v.version for v in store.search_model_versions("version >= 2").items] == [2]
    with pytest.raises(InvalidInputError, match="params"):
        store.search_model_versions("params.x = '1'")


@pytest.mark.parametrize("bad", ["latest", "v1", "V12", "has space", "a/b", "", "x" * 256])
def test_alias_rules(store: Store, bad: str) -> None:
    register(store)
    with pytest.raises(InvalidInputError, match="alias"):
        store.set_alias("churn", bad, 1)


def test_alias_moves_conditional_protected_and_audited(store: Store) -> None:
    for _ in range(3):
        register(store)
    store.set_alias("churn", "champion", 1, actor="ana", expected_version=None)
    with pytest.raises(ConflictError, match="points at version 1, not nothing"):
        store.set_alias("churn", "champion", 2, expected_version=None)
    store.set_alias("churn", "champion", 2, actor="bob", reason="beats v1", expected_version=1)
    with pytest.raises(ConflictError, match="points at version 2, not version 1"):
        store.set_alias("churn", "champion", 3, expected_version=1)
    assert store.get_alias("churn", "champion").version == 2
    store.set_alias_protected("churn", "champion", True, actor="lead", reason="prod")
    with pytest.raises(InvalidInputError, match="protected"):
        store.set_alias("churn", "champion", 3)
    store.set_alias("churn", "champion", 3, reason="approved in review #12", report_id="rep-1")
    assert store.get_registered_model("churn").aliases == {"champion": 3}
    assert store.get_model_version("churn", 3).aliases == ("champion",)
    events = [e for e in store.list_events(model="churn", alias="champion")]
    assert [(e.type, e.before, e.after) for e in events] == [
        ("alias_set", None, 1),
        ("alias_set", 1, 2),
        ("alias_protected", False, True),
        ("alias_set", 2, 3),
    ]
    assert (
        events[1].actor == "bob"
        and events[1].reason == "beats v1"
        and events[3].report_id == "rep-1"
    )
    with pytest.raises(NotFoundError):
        store.set_alias("churn", "champion", 9, reason="x")
    with pytest.raises(InvalidInputError, match="protected"):
        store.delete_alias("churn", "champion")
    store.delete_alias("churn", "champion", reason="retire", expected_version=3)
    with pytest.raises(NotFoundError, match="no alias"):
        store.get_alias("churn", "champion")


def test_get_version_by_alias_is_the_version_the_alias_points_at(store: Store) -> None:
    p = store.create_project("p")
    run = store.create_run(p.id)
    register(
        store,
        source_run_id=run.id,
        metrics={"acc": 0.5, "nan": float("nan")},
        params={"depth": "8"},
        datasets=[{"sha256": "ab" * 32, "name": "train"}],
        git_commit="c" * 40,
        signature={"inputs": [{"name": "x", "type": "double"}]},
        manifest={"manifest_sha256": "f" * 64},
        tags={"stage": "candidate"},
        description="first",
        actor="ana",
    )
    register(store, metrics={"acc": 0.9})
    store.set_alias("churn", "champion", 1)
    store.set_alias("churn", "challenger", 1)
    got = store.get_version_by_alias("churn", "champion")
    want = store.get_model_version("churn", 1)
    assert got.version == 1 and got.aliases == ("challenger", "champion")
    assert got.metrics["acc"] == 0.5 and got.metrics["nan"] != got.metrics["nan"]  # NaN kept
    # every field equals get_model_version's (NaN compared by its text)
    assert repr(got) == repr(want)
    assert not got.deleted and got.manifest == {"manifest_sha256": "f" * 64}
    store.set_alias("churn", "champion", 2)  # a move is seen at once
    assert store.get_version_by_alias("churn", "champion").version == 2
    with pytest.raises(NotFoundError, match="has no alias 'gone'"):
        store.get_version_by_alias("churn", "gone")
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.get_version_by_alias("nope", "champion")
    with pytest.raises(InvalidInputError, match="alias"):
        store.get_version_by_alias("churn", "bad alias!")


def test_delete_version_refused_while_aliased(store: Store) -> None:
    register(store)
    register(store)
    store.set_alias("churn", "challenger", 2)
    with pytest.raises(ConflictError, match="challenger"):
        store.delete_model_version("churn", 2)
    assert not store.get_model_version("churn", 2).deleted  # unchanged
    store.delete_alias("churn", "challenger")
    deleted = store.delete_model_version("churn", 2, actor="ana", reason="leaked labels")
    assert deleted.deleted
    assert store.get_latest_version("churn").version == 1
    assert [v.version for v in store.search_model_versions("name = 'churn'").items] == [1]
    assert len(store.search_model_versions("name = 'churn'", include_deleted=True).items) == 2
    with pytest.raises(InvalidInputError, match="deleted"):
        store.set_alias("churn", "champion", 2)
    assert register(store).version == 3  # numbers are never reused


def test_event_log_is_ordered_and_followable_from_a_cursor(store: Store) -> None:
    register(store)
    first = store.list_events()
    assert [e.type for e in first] == ["model_created", "version_registered"]
    cursor = first[-1].id
    store.set_alias("churn", "champion", 1)
    store.set_model_version_tags("churn", 1, {"k": "v"}, actor="ana")
    new = store.list_events(after_id=cursor)
    assert [e.type for e in new] == ["alias_set", "tag_set"] and all(e.id > cursor for e in new)
    assert store.list_events(after_id=new[-1].id) == []
    assert store.list_events(newest_first=True, limit=1)[0].type == "tag_set"
    ev = store.add_event(
        "report_attached", "churn", version=1, report_id="gate-7", after={"passed": True}
    )
    assert store.list_events(types=["report_attached"])[0].id == ev.id


def test_webhook_registry(store: Store) -> None:
    register(store)
    hook = store.create_webhook(
        "http://127.0.0.1:9/hook", secret="s3cret-key", events=["alias_set"], model="churn"
    )
    assert store.list_webhooks() == [hook] and hook.cursor == store.list_events()[-1].id
    # A secret is never part of an answer, on any backend; only a store that holds the data
    # reads it back, to sign deliveries; a remote one is never sent it.
    assert "secret" not in hook.to_dict() and "s3cret-key" not in repr(store.list_webhooks())
    if store.can_sign_webhooks:
        assert store.get_webhook_secret(hook.id) == "s3cret-key"
    else:
        with pytest.raises(PermissionDeniedError, match="never served back"):
            store.get_webhook_secret(hook.id)
    d = store.record_delivery(
        hook.id, 5, attempt=1, ok=False, status_code=500, error="boom", duration_ms=3
    )
    assert store.list_deliveries(hook.id) == [d]
    store.advance_webhook_cursor(hook.id, 99)
    assert store.list_webhooks()[0].cursor == 99
    store.delete_webhook(hook.id)
    assert store.list_webhooks() == []
    for kwargs in (
        {"url": "ftp://x", "secret": "12345678"},
        {"url": "http://x", "secret": "short"},
        {"url": "http://x", "secret": "12345678", "events": ["nope"]},
    ):
        with pytest.raises(InvalidInputError):
            store.create_webhook(**kwargs)  # type: ignore[arg-type]


def test_concurrent_registrations_get_distinct_numbers(store: Store) -> None:
    versions: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                versions.append(register(store, "race").version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(versions) == list(range(1, 19))


def _promote(store: Store, version: int, barrier: threading.Barrier) -> str:
    barrier.wait()
    try:
        store.set_alias("churn", "champion", version, expected_version=1, reason="race")
        return "won"
    except ConflictError:
        return "conflict"


def test_concurrent_promotions_threads_exactly_one_wins(store: Store) -> None:
    for _ in range(6):
        register(store)
    store.set_alias("churn", "champion", 1)
    barrier = threading.Barrier(5)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda v=v: results.append(_promote(store, v, barrier)))
        for v in range(2, 7)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == ["conflict"] * 4 + ["won"]
    winner = store.get_alias("churn", "champion").version
    moves = [e for e in store.list_events(model="churn", types=["alias_set"]) if e.before == 1]
    assert len(moves) == 1 and moves[0].after == winner


def _promote_in_process(uri: str, version: int, start_at: float) -> str:
    import time

    s = SqlStore(uri)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        s.set_alias("churn", "champion", version, expected_version=1, reason="race")
        return "won"
    except ConflictError:
        return "conflict"
    finally:
        s.close()


def test_concurrent_promotions_processes_exactly_one_wins(sql_store_uri: str) -> None:
    """Processes racing on one database (over HTTP, one server serialises them: see the threads)."""
    import time

    store = SqlStore(sql_store_uri)
    for _ in range(5):
        register(store)
    store.set_alias("churn", "champion", 1)
    store.close()
    start_at = time.time() + 3.0  # let every process open its store first, then race
    with mp.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(
            _promote_in_process, [(sql_store_uri, v, start_at) for v in range(2, 6)]
        )
    assert sorted(results) == ["conflict"] * 3 + ["won"]


def test_lineage_datasets_need_a_valid_sha256(store: Store) -> None:
    store.create_registered_model("lin")
    good = "a" * 64
    for bad in ([{"name": "train"}], [{"sha256": good + "\n"}], [{"sha256": "XYZ"}], ["abc"]):
        with pytest.raises(InvalidInputError, match=r"datasets\[0\]"):
            store.create_model_version(
                "lin", artifact_uri="file:///m", flavor="sklearn", datasets=bad
            )
    assert store.search_model_versions("name = 'lin'").items == []
    mv = store.create_model_version(
        "lin", artifact_uri="file:///m", flavor="sklearn", datasets=[{"sha256": good, "name": "t"}]
    )
    assert list(mv.datasets) == [{"sha256": good, "name": "t"}]
