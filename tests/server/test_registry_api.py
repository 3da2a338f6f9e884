"""The registry, webhooks and check reports over the REST API: what the HTTP store and the server
agree on beyond the store contract (which runs over HTTP too): secrets never served, actors taken
from the caller's identity, conflicts with their details, names that need quoting, and the whole
registry path of the SDK (``log_model``, aliases, ``load_model``) against an ``HttpStore``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import mloop
from _asgi import in_process_client
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from mloop.registry import Registry, WebhookDispatcher
from mloop.server import create_app
from mloop.server._context import AUTHENTICATED
from mloop.store import ENDPOINTS, CheckReport, CheckResult, HttpStore, SqlStore
from mloop.store._http._checks import CHECK_ENDPOINTS
from mloop.store._http._registry import REGISTRY_ENDPOINTS
from mloop.store._open import clear_store_cache

SECRET = "hunter2-hunter2"
# The registry's and check reports' changes that record who made them.
_REGISTRY_WRITES_WITH_ACTOR = sorted(
    e.name
    for e in (*REGISTRY_ENDPOINTS, *CHECK_ENDPOINTS)
    if e.method != "GET"
    and ("actor" in e.args or e.name in ("create_model_version", "put_check_report"))
)


@pytest.fixture
def backing(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'server.db'}")
    yield s
    s.close()


def _as(principal: str | None, app: Any) -> Any:
    """The app with every request authenticated as ``principal`` (what the auth layer sets)."""

    async def authenticated(scope: Any, receive: Any, send: Any) -> None:
        token = AUTHENTICATED.set(principal)
        try:
            await app(scope, receive, send)
        finally:
            AUTHENTICATED.reset(token)

    return authenticated


@pytest.fixture
def client(backing: SqlStore) -> Iterator[httpx.Client]:
    c = in_process_client(create_app(backing))
    yield c
    c.close()


@pytest.fixture
def remote(client: httpx.Client) -> Iterator[HttpStore]:
    s = HttpStore("http://mloop.test", client=client)
    yield s
    s.close()


def _report(model: str, version: int, *, actor: str | None = None) -> CheckReport:
    return CheckReport(
        id="ab" * 16,
        model=model,
        version=version,
        kind="check",
        status="pass",
        candidate_uri=f"models:/{model}/{version}",
        baseline_uri=None,
        baseline_version=None,
        policy_hash="c" * 64,
        policy={},
        data={"rows": 10},
        checks=(
            CheckResult(
                name="threshold:accuracy",
                kind="threshold",
                status="pass",
                summary="ok",
                numbers={"value": float("nan"), "n": 2**60},
            ),
        ),
        created_ms=1,
        duration_ms=2.5,
        actor=actor,
    )


# ---------------------------------------------------------------------------------------- secrets


def _keys(doc: Any) -> set[str]:
    """Every key of every object in a JSON document."""
    if isinstance(doc, dict):
        return set(doc).union(*(_keys(v) for v in doc.values()))
    if isinstance(doc, list):
        return set().union(*(_keys(v) for v in doc))
    return set()


def test_a_webhook_secret_is_never_served_back(
    client: httpx.Client, remote: HttpStore, backing: SqlStore
) -> None:
    hook = remote.create_webhook("http://127.0.0.1:9/hook", secret=SECRET, events=["alias_set"])
    assert backing.get_webhook_secret(hook.id) == SECRET  # the server has it, to sign with
    with pytest.raises(PermissionDeniedError, match="never served back"):
        remote.get_webhook_secret(hook.id)
    # No answer of any webhook endpoint holds it, and no route reads it.
    answers = [
        client.post("/api/v1/webhooks", json={"url": "http://x.test/h", "secret": SECRET,
                                              "events": ["*"], "model": None}),
        client.get("/api/v1/webhooks"),
        client.get(f"/api/v1/webhooks/{hook.id}/deliveries", params={"limit": 10}),
        client.get(f"/api/v1/webhooks/{hook.id}"),
        client.get(f"/api/v1/webhooks/{hook.id}/secret"),
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200, 405, 404]
    for a in answers:
        assert SECRET not in a.text and "secret" not in _keys(a.json())
    assert not any("secret" in e.path for e in ENDPOINTS.values())
    spec = client.get("/api/v1/openapi.json").text
    assert "get_webhook_secret" not in spec
    assert not remote.can_sign_webhooks and backing.can_sign_webhooks


def test_the_dispatcher_refuses_a_store_that_is_never_sent_secrets(remote: HttpStore) -> None:
    with pytest.raises(PermissionDeniedError, match="never sent their secrets"):
        WebhookDispatcher(remote)


def test_webhook_endpoints_need_the_admin_role() -> None:
    hooks = [e for e in ENDPOINTS.values() if e.path.startswith("/webhooks")]
    assert len(hooks) == 6 and {e.required_role for e in hooks} == {"admin"}
    writes = [ENDPOINTS[n] for n in _REGISTRY_WRITES_WITH_ACTOR]
    assert {e.required_role for e in writes} == {"write"}
    reads = [
        e
        for e in ENDPOINTS.values()
        if e.method == "GET" and e.path.startswith(("/models", "/registry", "/check-reports"))
    ]
    assert reads and {e.required_role for e in reads} == {"read"}


# ---------------------------------------------------------------------------------------- actors


def test_every_change_records_the_callers_identity_not_the_claimed_actor(
    backing: SqlStore,
) -> None:
    """Each endpoint that records an actor takes the authenticated principal over the claim."""
    client = in_process_client(_as("ana@tokens", create_app(backing)))
    remote = HttpStore("http://mloop.test", client=client)
    claim = {"actor": "mallory"}
    try:
        remote.create_registered_model("churn", description="d", **claim)
        remote.update_registered_model("churn", description="e", **claim)
        remote.set_registered_model_tags("churn", {"team": "growth"}, **claim)
        remote.delete_registered_model_tag("churn", "team", **claim)
        v1 = remote.create_model_version(
            "churn", artifact_uri="file:///m", flavor="sklearn", **claim
        )
        remote.create_model_version("churn", artifact_uri="file:///m2", flavor="sklearn", **claim)
        remote.update_model_version("churn", 1, description="first", **claim)
        remote.set_model_version_tags("churn", 1, {"k": "v"}, **claim)
        remote.delete_model_version_tag("churn", 1, "k", **claim)
        remote.set_alias("churn", "champion", 1, expected_version=None, **claim)
        remote.set_alias_protected("churn", "champion", True, reason="prod", **claim)
        remote.set_alias("churn", "challenger", 2, **claim)
        remote.delete_alias("churn", "challenger", reason="done", expected_version=2, **claim)
        remote.delete_model_version("churn", 2, reason="leak", **claim)
        remote.add_event("promotion_overridden", "churn", version=1, reason="forced", **claim)
        stored = remote.put_check_report(_report("churn", 1, actor="mallory"))
    finally:
        remote.close()
        client.close()
    assert v1.created_by == "ana@tokens" and stored.actor == "ana@tokens"
    assert backing.get_check_report(stored.id).actor == "ana@tokens"
    events = backing.list_events()
    assert len(events) >= 15
    assert {e.actor for e in events} == {"ana@tokens"}, [(e.type, e.actor) for e in events]
    # Every endpoint that takes an actor is exercised above (a new one must join this test).
    assert (
        sorted(
            [
                "add_event",
                "create_model_version",
                "create_registered_model",
                "delete_alias",
                "delete_model_version",
                "delete_model_version_tag",
                "delete_registered_model_tag",
                "put_check_report",
                "set_alias",
                "set_alias_protected",
                "set_model_version_tags",
                "set_registered_model_tags",
                "update_model_version",
                "update_registered_model",
            ]
        )
        == _REGISTRY_WRITES_WITH_ACTOR
    )


def test_without_auth_the_claimed_actor_is_recorded(remote: HttpStore, backing: SqlStore) -> None:
    remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn", actor="ana")
    remote.set_alias("churn", "champion", 1, actor="bob")
    assert [(e.type, e.actor) for e in backing.list_events()] == [
        ("model_created", "ana"),
        ("version_registered", "ana"),
        ("alias_set", "bob"),
    ]


# ---------------------------------------------------------------------------------------- conflicts


def test_a_lost_race_comes_back_as_a_conflict_with_its_details(
    remote: HttpStore, backing: SqlStore
) -> None:
    for _ in range(3):
        remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    remote.set_alias("churn", "champion", 1, expected_version=None)
    with pytest.raises(ConflictError) as remote_error:
        remote.set_alias("churn", "champion", 3, expected_version=2)
    with pytest.raises(ConflictError) as local_error:
        backing.set_alias("churn", "champion", 3, expected_version=2)
    assert remote_error.value.details == local_error.value.details
    assert remote_error.value.details == {"current_version": 1, "expected_version": 2}
    assert str(remote_error.value) == str(local_error.value)
    with pytest.raises(ConflictError) as gone:
        remote.delete_alias("churn", "champion", expected_version=None)
    assert gone.value.details == {"current_version": 1, "expected_version": None}
    # Unset, None and a version stay three different conditions on the wire.
    remote.set_alias("churn", "champion", 2)  # unconditional
    remote.delete_alias("churn", "champion", expected_version=2)
    remote.set_alias("churn", "champion", 3, expected_version=None)
    assert remote.get_alias("churn", "champion").version == 3


def test_names_that_need_quoting_travel_in_the_path(remote: HttpStore, backing: SqlStore) -> None:
    name = "Café_v2.0-ü"  # letters beyond ASCII, dots and dashes: all allowed in a model name
    remote.create_model_version(name, artifact_uri="file:///m", flavor="sklearn")
    remote.set_model_version_tags(name, 1, {"team/a b:c": "1"})
    assert remote.get_model_version(name, 1).tags == {"team/a b:c": "1"}
    remote.delete_model_version_tag(name, 1, "team/a b:c")
    assert backing.get_model_version(name, 1).tags == {}
    remote.set_alias(name, "prod-1_x", 1)
    assert remote.get_alias(name, "prod-1_x").version == 1
    assert remote.get_registered_model(name).aliases == {"prod-1_x": 1}
    page = remote.search_model_versions(name=name)
    assert [(v.name, v.version) for v in page.items] == [(name, 1)]
    for bad in ("a/b", "../x", "x?y"):
        with pytest.raises(InvalidInputError, match="model name"):
            remote.get_registered_model(bad)


def test_searches_are_parsed_on_the_server_and_keep_positions(remote: HttpStore) -> None:
    remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    for search in (remote.search_registered_models, remote.search_model_versions):
        with pytest.raises(InvalidInputError, match="position") as exc:
            search("name = 'churn' or name = 'x'")
        assert "position" in str(exc.value)
    with pytest.raises(InvalidInputError, match="max_results"):
        remote.search_model_versions(max_results=0)
    first = remote.search_model_versions(max_results=1)
    assert len(first.items) == 1 and first.next_page_token is None


def test_a_long_reason_travels_in_a_body(remote: HttpStore, backing: SqlStore) -> None:
    remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    reason = "why " * 2000  # 8,000 characters: no request line holds that
    remote.set_alias("churn", "champion", 1, reason=reason)
    remote.delete_alias("churn", "champion", reason=reason)
    remote.delete_model_version("churn", 2, reason=reason)
    assert [e.reason for e in backing.list_events(types=["alias_deleted", "version_deleted"])] == [
        reason,
        reason,
    ]


def test_check_reports_and_their_events_over_http(remote: HttpStore, backing: SqlStore) -> None:
    remote.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    r = _report("churn", 1)
    stored = remote.put_check_report(r)
    assert stored == backing.get_check_report(r.id) == remote.get_check_report(r.id)
    assert stored.checks[0].numbers == {"value": "NaN", "n": 2**60}  # the codec's spelling
    assert remote.list_check_reports("churn", version=1, status="pass") == [stored]
    assert remote.list_check_reports("churn", status="fail") == []
    with pytest.raises(NotFoundError):
        remote.get_check_report("cd" * 16)
    with pytest.raises(NotFoundError):
        remote.list_check_reports("nope")


# ---------------------------------------------------------------------------------------- the SDK


@pytest.fixture
def http_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, Path]]:
    """The SDK's store is an HttpStore (the in-process app over SQLite); artifacts in a folder."""
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "server.db"
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOOP_STORE_URI", f"asgi+sqlite:///{db}")
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(tmp_path / "artifacts"))
    yield Settings.from_env(flush_interval_s=0.05), db
    clear_store_cache()


def test_log_model_aliases_and_load_model_through_an_http_store(
    http_settings: tuple[Settings, Path],
) -> None:
    settings, db = http_settings
    X, y = load_iris(return_X_y=True, as_frame=True)
    trees = [DecisionTreeClassifier(max_depth=d, random_state=0).fit(X, y) for d in (1, 4)]
    with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
        run.log({"acc": 0.9})
        versions = [
            mloop.log_model(t, "iris", run=run, input_example=X[:5], tags={"k": "v"}) for t in trees
        ]
    reg = Registry(settings=settings)
    assert isinstance(reg.store, HttpStore)
    assert [v.version for v in versions] == [1, 2]
    reg.set_alias("iris", "champion", 1, expected_version=None)
    with pytest.raises(ConflictError) as lost:
        reg.set_alias("iris", "champion", 2, expected_version=None)
    assert lost.value.details["current_version"] == 1
    reg.set_alias("iris", "champion", 2, expected_version=1, reason="deeper tree")
    loaded = mloop.load_model("models:/iris@champion")
    assert np.array_equal(loaded.predict(X), trees[1].predict(X))
    assert np.array_equal(mloop.load_model("models:/iris/1").predict(X), trees[0].predict(X))
    # What the server stored, read without HTTP.
    with SqlStore(f"sqlite:///{db}") as local:
        mv = local.get_model_version("iris", 2)
        assert mv.source_run_id == run.id and mv.metrics == {"acc": 0.9} and mv.tags["k"] == "v"
        moves = local.list_events(model="iris", types=["alias_set"])
        assert [(e.before, e.after, e.reason) for e in moves] == [
            (None, 1, None),
            (1, 2, "deeper tree"),
        ]


# ---------------------------------------------------------------------------------------- raw API


def test_a_client_without_mloop_sends_only_what_it_needs(client: httpx.Client) -> None:
    """Optional arguments may be left out (curl, another language); bad ones are 4xx, never 5xx."""
    from mloop.store._http._registry import NewVersion
    from mloop.store._registry_base import VersionFields

    assert set(NewVersion.__annotations__) == set(VersionFields.__annotations__)
    v1 = client.post(
        "/api/v1/models/churn/versions",
        json={"fields": {"artifact_uri": "file:///m", "flavor": "sklearn"}},
    )
    assert v1.status_code == 200 and v1.json()["version"] == 1
    moved = client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    assert moved.status_code == 200 and moved.json()["version"] == 1
    events = client.get("/api/v1/registry/events", params={"types": "alias_set,model_created"})
    assert [e["type"] for e in events.json()] == ["model_created", "alias_set"]
    assert client.post("/api/v1/model-versions/search", json={}).json()["items"][0]["version"] == 1
    assert client.get("/api/v1/check-reports", params={"model": "churn"}).json() == []
    bad = [
        client.post("/api/v1/models/churn/versions", json={"fields": {"artifact_uri": "x"}}),
        client.put("/api/v1/models/churn/aliases/champion", json={"version": "1"}),
        client.put("/api/v1/models/churn/aliases/latest", json={"version": 1}),
        client.get("/api/v1/models/churn/versions/zero"),
        client.get("/api/v1/models/x%20y"),
        client.put(f"/api/v1/check-reports/{'a' * 32}", json={"report": {"id": "b" * 32}}),
        client.post("/api/v1/registry/events", json={"type": "nope", "model": "churn"}),
        client.post("/api/v1/models/search", json={"filter": "name = "}),
    ]
    assert [b.status_code for b in bad] == [400] * len(bad), [b.text for b in bad]
    assert all(b.json()["error_code"] == "INVALID_PARAMETER_VALUE" for b in bad)
