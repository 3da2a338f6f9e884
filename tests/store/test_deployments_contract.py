"""Deployments as records: one contract, every backend; every change is a revision and an event."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.store import EVENT_TYPES, Deployment, DeploymentRevision, Store

CHAMPION = "models:/churn@champion"
CHALLENGER = "models:/churn@challenger"


def deployment_events(store: Store, name: str = "churn-api") -> list[Any]:
    return store.read_events(subject=f"deployments/{name}")


def test_the_six_deployment_event_types_are_known() -> None:
    assert {
        "deployment_created",
        "deployment_updated",
        "deployment_rollback",
        "deployment_deleted",
        "serving_swapped",
        "serving_swap_failed",
    } <= set(EVENT_TYPES)


def test_create_get_and_list(store_factory: Callable[..., Store]) -> None:
    store = store_factory()
    d = store.create_deployment(
        "churn-api",
        model=CHAMPION,
        canary=CHALLENGER,
        canary_percent=10,
        shadow="models:/churn/7",
        sticky_key="X-User-Id",
        config={"log_sample": 0.5, "max_batch_size": 64},
        actor="ana",
    )
    assert isinstance(d, Deployment)
    assert (d.name, d.model, d.canary, d.canary_percent, d.shadow, d.sticky_key) == (
        "churn-api",
        CHAMPION,
        CHALLENGER,
        10.0,
        "models:/churn/7",
        "X-User-Id",
    )
    assert type(d.canary_percent) is float
    assert d.config == {"log_sample": 0.5, "max_batch_size": 64}
    assert (d.revision, d.created_by, d.updated_by) == (1, "ana", "ana")
    assert d.created_ms == d.updated_ms > 0
    assert d.subject == "deployments/churn-api"
    # another client reads the same record
    other = store_factory()
    assert other.get_deployment("churn-api") == d
    store.create_deployment("alpha", model="models:/fraud/latest")
    assert [x.name for x in other.list_deployments()] == ["alpha", "churn-api"]


def test_a_minimal_deployment_has_defaults(store: Store) -> None:
    d = store.create_deployment("a", model="models:/churn/3")
    assert (d.canary, d.canary_percent, d.shadow, d.sticky_key, d.config) == (
        None,
        0.0,
        None,
        None,
        {},
    )
    assert (d.created_by, d.updated_by) == (None, None)


def test_create_appends_its_event_in_the_same_transaction(store: Store) -> None:
    d = store.create_deployment("churn-api", model=CHAMPION, actor="ana")
    (e,) = deployment_events(store)
    assert (e.type, e.subject, e.actor) == ("deployment_created", "deployments/churn-api", "ana")
    assert e.payload == {"name": "churn-api", **d.spec, "revision": 1}
    # a refused change leaves no event behind
    with pytest.raises(AlreadyExistsError, match="deployment 'churn-api' already exists"):
        store.create_deployment("churn-api", model=CHALLENGER)
    assert len(deployment_events(store)) == 1
    assert store.get_deployment("churn-api") == d


def test_update_changes_only_the_given_fields_as_a_new_revision(store: Store) -> None:
    store.create_deployment("churn-api", model=CHAMPION, config={"log_sample": 1.0})
    d = store.update_deployment(
        "churn-api", canary=CHALLENGER, canary_percent=25.5, actor="bo", reason="try v4"
    )
    assert (d.model, d.canary, d.canary_percent, d.revision) == (CHAMPION, CHALLENGER, 25.5, 2)
    assert d.config == {"log_sample": 1.0} and (d.created_by, d.updated_by) == (None, "bo")
    assert store.get_deployment("churn-api") == d
    e = deployment_events(store)[-1]
    assert (e.type, e.actor) == ("deployment_updated", "bo")
    assert e.payload == {
        "name": "churn-api",
        **d.spec,
        "revision": 2,
        "previous_revision": 1,
        "changed": ["canary", "canary_percent"],
        "reason": "try v4",
    }
    d = store.update_deployment("churn-api", canary_percent=50)  # the canary is kept
    assert (d.canary, d.canary_percent, d.revision) == (CHALLENGER, 50.0, 3)
    d = store.update_deployment("churn-api", config={"max_batch_size": 8})  # replaced whole
    assert d.config == {"max_batch_size": 8}


def test_removing_the_canary_resets_its_percentage(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION, canary=CHALLENGER, canary_percent=10)
    d = store.update_deployment("c", canary=None, shadow=CHALLENGER)
    assert (d.canary, d.canary_percent, d.shadow) == (None, 0.0, CHALLENGER)
    d = store.update_deployment("c", shadow=None, sticky_key="user")
    assert (d.shadow, d.sticky_key, d.revision) == (None, "user", 3)


def test_an_update_that_changes_nothing_makes_no_revision(store: Store) -> None:
    d = store.create_deployment("c", model=CHAMPION)
    assert store.update_deployment("c", model=CHAMPION, config={}) == d
    assert len(deployment_events(store, "c")) == 1
    assert len(store.list_deployment_revisions("c")) == 1
    with pytest.raises(InvalidInputError, match="nothing to change in deployment 'c'"):
        store.update_deployment("c", actor="x")


def test_a_stale_revision_is_a_conflict(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION)
    store.update_deployment("c", model="models:/churn/4", expected_revision=1)
    with pytest.raises(ConflictError, match="is at revision 2, not the expected 1"):
        store.update_deployment("c", model="models:/churn/5", expected_revision=1)
    assert store.get_deployment("c").model == "models:/churn/4"
    assert [e.type for e in deployment_events(store, "c")] == [
        "deployment_created",
        "deployment_updated",
    ]


def test_concurrent_updates_each_take_their_own_revision(
    store_factory: Callable[..., Store],
) -> None:
    store_factory().create_deployment("c", model=CHAMPION)
    stores = [store_factory() for _ in range(4)]
    errors: list[BaseException] = []

    def update(k: int) -> None:
        try:
            for i in range(5):
                stores[k].update_deployment("c", config={"writer": k, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=update, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    revisions = stores[0].list_deployment_revisions("c")
    assert [r.revision for r in revisions] == list(range(1, 22))
    assert stores[0].get_deployment("c").revision == 21
    events = deployment_events(stores[0], "c")
    assert [e.payload["revision"] for e in events] == list(range(1, 22))  # log order = revisions


def test_revisions_keep_the_history(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION, actor="ana")
    store.update_deployment("c", model="models:/churn/4", actor="bo", reason="pin v4")
    revs = store.list_deployment_revisions("c")
    assert all(isinstance(r, DeploymentRevision) for r in revs)
    assert [(r.name, r.revision, r.actor, r.reason) for r in revs] == [
        ("c", 1, "ana", None),
        ("c", 2, "bo", "pin v4"),
    ]
    assert revs[0].spec["model"] == CHAMPION and revs[1].spec["model"] == "models:/churn/4"
    assert revs[1].spec == store.get_deployment("c").spec
    assert revs[0].created_ms <= revs[1].created_ms


def test_rollback_restores_a_spec_as_a_new_revision(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION, config={"a": 1})
    store.update_deployment("c", canary=CHALLENGER, canary_percent=10)
    r3 = store.update_deployment("c", model="models:/churn/9", config={"b": 2})
    d = store.rollback_deployment("c", actor="ops", reason="v9 errors")
    assert d.revision == 4
    assert (d.model, d.canary, d.canary_percent, d.config) == (
        CHAMPION,
        CHALLENGER,
        10.0,
        {"a": 1},
    )
    assert store.get_deployment("c") == d
    e = deployment_events(store, "c")[-1]
    assert (e.type, e.actor) == ("deployment_rollback", "ops")
    assert e.payload == {
        "name": "c",
        **d.spec,
        "revision": 4,
        "previous_revision": 3,
        "restored_revision": 2,
        "reason": "v9 errors",
    }
    # a rollback is undone by another rollback (to revision 3, the one before the current)
    assert store.rollback_deployment("c").spec == r3.spec
    d = store.rollback_deployment("c", to_revision=1)
    assert (d.revision, d.model, d.canary, d.canary_percent) == (6, CHAMPION, None, 0.0)
    revs = store.list_deployment_revisions("c")
    assert [r.revision for r in revs] == [1, 2, 3, 4, 5, 6]


def test_refused_rollbacks(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION)
    with pytest.raises(InvalidInputError, match="first revision: there is nothing to roll back"):
        store.rollback_deployment("c")
    store.update_deployment("c", model="models:/churn/2")
    with pytest.raises(InvalidInputError, match=r"earlier revision .* \(1 to 1\); got 2"):
        store.rollback_deployment("c", to_revision=2)
    with pytest.raises(InvalidInputError, match="`to_revision` must be an int >= 1; got 0"):
        store.rollback_deployment("c", to_revision=0)
    store.update_deployment("c", model=CHAMPION)  # revision 3 has the spec of revision 1
    with pytest.raises(InvalidInputError, match="already has the spec of revision 1"):
        store.rollback_deployment("c", to_revision=1)
    with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
        store.rollback_deployment("nope")
    assert store.get_deployment("c").revision == 3
    assert len(deployment_events(store, "c")) == 3


def test_delete_removes_the_record_and_keeps_the_events(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION)
    store.update_deployment("c", shadow=CHALLENGER)
    store.delete_deployment("c", actor="ana", reason="retired")
    with pytest.raises(NotFoundError, match="deployment 'c' does not exist"):
        store.get_deployment("c")
    with pytest.raises(NotFoundError, match="deployment 'c' does not exist"):
        store.list_deployment_revisions("c")
    assert store.list_deployments() == []
    e = deployment_events(store, "c")[-1]
    assert (e.type, e.actor) == ("deployment_deleted", "ana")
    assert e.payload == {
        "name": "c",
        "model": CHAMPION,
        "canary": None,
        "canary_percent": 0.0,
        "shadow": CHALLENGER,
        "sticky_key": None,
        "config": {},
        "revision": 2,
        "reason": "retired",
    }
    with pytest.raises(NotFoundError, match="deployment 'c' does not exist"):
        store.delete_deployment("c")
    # the name can be used again: a new deployment, from revision 1
    assert store.create_deployment("c", model=CHALLENGER).revision == 1
    assert [r.revision for r in store.list_deployment_revisions("c")] == [1]


def test_missing_deployments_are_not_found(store: Store) -> None:
    for call in (
        lambda: store.get_deployment("nope"),
        lambda: store.update_deployment("nope", model=CHAMPION),
        lambda: store.list_deployment_revisions("nope"),
        lambda: store.delete_deployment("nope"),
    ):
        with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
            call()
    assert store.read_events() == []


# ---------------------------------------------------------------------------------------- validation
# The same messages on every backend: the contract validates before any backend hook runs.


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"model": "churn"}, "`model` must be a model URI, models:/<name>/<version>"),
        ({"model": "runs:/" + "a" * 32 + "/model"}, "`model` must be a model URI"),
        ({"model": "models:/churn/0"}, "`model` must name a version as an int >= 1"),
        ({"model": "models:/churn/v3"}, "`model` must name a version as an int >= 1"),
        ({"model": "models:/churn@latest"}, "alias 'latest' is reserved"),
        ({"model": "models:/-x@a"}, "model name must be 1 to 256 characters"),
        ({"model": None}, "`model` must be a model URI"),
        ({"canary": "nope", "canary_percent": 5}, "`canary` must be a model URI"),
        ({"shadow": "models:/x"}, "`shadow` must be a model URI"),
        ({"canary": CHALLENGER}, r"`canary_percent` must be in \(0, 100\) with a canary; got 0.0"),
        ({"canary": CHALLENGER, "canary_percent": 100}, r"must be in \(0, 100\).*got 100.0"),
        ({"canary": CHALLENGER, "canary_percent": -1}, r"must be in \(0, 100\).*got -1.0"),
        ({"canary_percent": 10}, "`canary_percent` must be 0 without a canary; got 10.0"),
        ({"canary": CHALLENGER, "canary_percent": float("nan")}, "must be a number in"),
        ({"canary": CHALLENGER, "canary_percent": True}, "must be a number in"),
        ({"canary": CHALLENGER, "canary_percent": "10%"}, "must be a number in"),
        ({"sticky_key": "user id"}, "`sticky_key` must be a request header or field name"),
        ({"sticky_key": ""}, "`sticky_key` must be a request header or field name"),
        ({"config": [1]}, "`config` must be a mapping of serve options; got list"),
        ({"config": {"a": float("nan")}}, "`config` must hold JSON values only"),
        ({"config": {"a": object()}}, "`config` must hold JSON values only"),
        ({"config": {1: 2}}, "`config` keys must be non-empty strings"),
        ({"config": {"a": "x" * 70_000}}, "`config` must be at most 65536 bytes"),
        ({"actor": "x" * 256}, "`actor` must be a str of at most 255 characters"),
    ],
)
def test_malformed_specs_are_refused_identically(
    store: Store, fields: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        store.create_deployment("c", **{"model": CHAMPION, **fields})
    store.create_deployment("ok", model=CHAMPION)
    update = {k: v for k, v in fields.items() if k != "actor"}
    if update:
        with pytest.raises(InvalidInputError, match=match):
            store.update_deployment("ok", **update)
    assert store.get_deployment("ok").revision == 1
    assert [d.name for d in store.list_deployments()] == ["ok"]
    assert [e.type for e in store.read_events()] == ["deployment_created"]


@pytest.mark.parametrize("name", ["", "-api", "a b", "a/b", "x" * 129, None, 7, "é"])
def test_deployment_names_are_validated(store: Store, name: Any) -> None:
    for call in (
        lambda: store.create_deployment(name, model=CHAMPION),
        lambda: store.get_deployment(name),
        lambda: store.update_deployment(name, model=CHAMPION),
        lambda: store.rollback_deployment(name),
        lambda: store.list_deployment_revisions(name),
        lambda: store.delete_deployment(name),
    ):
        with pytest.raises(InvalidInputError, match="a deployment name must be 1 to 128"):
            call()


def test_other_arguments_are_validated(store: Store) -> None:
    store.create_deployment("c", model=CHAMPION)
    with pytest.raises(InvalidInputError, match="`expected_revision` must be an int >= 1"):
        store.update_deployment("c", model=CHALLENGER, expected_revision=0)
    with pytest.raises(InvalidInputError, match="`reason` must be a str of at most 8000"):
        store.update_deployment("c", model=CHALLENGER, reason="x" * 8001)
    with pytest.raises(InvalidInputError, match="`reason` must not contain NUL"):
        store.delete_deployment("c", reason="a\x00")
    assert store.get_deployment("c").revision == 1


def test_valid_uri_forms_and_names(store: Store) -> None:
    for i, uri in enumerate(
        ["models:/churn/1", "models:/churn/latest", "models:/my.model_2@champion-v2", CHAMPION]
    ):
        assert store.create_deployment(f"d.{i}_x-Y", model=uri).model == uri
