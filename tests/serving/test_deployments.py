"""The deployments service: URIs checked against the registry, canary specs, serve options, status."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import mloop
from mloop.codec import dumps
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.registry import Registry
from mloop.serving import Deployments, DeploymentStatus, ResolvedModel, parse_canary
from mloop.serving._deployments import CONFIG_KEYS
from mloop.store._open import clear_store_cache

CHAMPION = "models:/iris@champion"
CHALLENGER = "models:/iris@challenger"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """Two registered versions of ``iris``: champion -> 1, challenger -> 2."""
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    settings = Settings.from_env()
    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 2):
        with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
            m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            mloop.log_model(m, "iris", run=run, input_example=X[:3])
    reg = Registry(settings=settings, actor="ana")
    reg.set_alias("iris", "champion", 1)
    reg.set_alias("iris", "challenger", 2)
    yield reg
    clear_store_cache()


@pytest.fixture
def deployments(registry: Registry) -> Deployments:
    return Deployments(registry)


# ---------------------------------------------------------------------------------------- canary


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("models:/churn@challenger:10%", ("models:/churn@challenger", 10.0)),
        ("models:/churn/4:2.5%", ("models:/churn/4", 2.5)),
        ("models:/churn/latest:50", ("models:/churn/latest", 50.0)),
        ("models:/churn@c:0.01%", ("models:/churn@c", 0.01)),
    ],
)
def test_a_canary_spec_is_a_uri_and_a_share(spec: str, expected: tuple[str, float]) -> None:
    assert parse_canary(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("models:/churn@challenger", "URI:PERCENT%"),
        ("models:/churn@challenger:ten%", "URI:PERCENT%"),
        ("models:/churn@challenger:-5%", "URI:PERCENT%"),
        ("churn:10%", "URI:PERCENT%"),
        ("models:/churn@challenger:0%", r"must be in \(0, 100\) percent; got 0%"),
        ("models:/churn@challenger:100%", r"must be in \(0, 100\) percent; got 100%"),
        ("models:/churn@challenger:150%", r"must be in \(0, 100\) percent"),
    ],
)
def test_malformed_canary_specs_are_refused(spec: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_canary(spec)


# ---------------------------------------------------------------------------------------- create


def test_create_checks_every_uri_and_keeps_aliases_as_aliases(
    deployments: Deployments, registry: Registry
) -> None:
    d = deployments.create(
        "iris-api",
        model=CHAMPION,
        canary=f"{CHALLENGER}:10%",
        shadow="models:/iris/v2",
        sticky_key="X-User",
        config={"log_sample": 0.5, "max_batch_size": 32},
    )
    assert (d.model, d.canary, d.canary_percent) == (CHAMPION, CHALLENGER, 10.0)
    assert d.shadow == "models:/iris/2"  # canonical form
    assert (d.sticky_key, d.config, d.revision) == (
        "X-User",
        {"log_sample": 0.5, "max_batch_size": 32},
        1,
    )
    assert d.created_by == "ana"  # the registry's actor
    # the alias is not frozen: moving it changes what the deployment resolves to, not the record
    registry.set_alias("iris", "champion", 2)
    assert deployments.get("iris-api") == d
    main = deployments.resolve(d)[0]
    assert main == ResolvedModel("main", CHAMPION, 2, None)
    assert [x.name for x in deployments.list()] == ["iris-api"]


def test_a_canary_with_its_share_apart(deployments: Deployments) -> None:
    d = deployments.create("a", model=CHAMPION, canary=CHALLENGER, canary_percent=25)
    assert (d.canary, d.canary_percent) == (CHALLENGER, 25.0)
    d = deployments.create("b", model=CHAMPION, canary=f"{CHALLENGER}:25%", canary_percent=25)
    assert d.canary_percent == 25.0
    with pytest.raises(InvalidInputError, match="the canary's share is given twice"):
        deployments.create("c", model=CHAMPION, canary=f"{CHALLENGER}:25%", canary_percent=5)
    with pytest.raises(InvalidInputError, match="needs its share of the traffic: URI:PERCENT%"):
        deployments.create("c", model=CHAMPION, canary=CHALLENGER)
    with pytest.raises(InvalidInputError, match="`canary_percent` needs a canary"):
        deployments.create("c", model=CHAMPION, canary_percent=5)


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"model": "models:/nope@champion"}, NotFoundError, "main model models:/nope@champion"),
        ({"model": "models:/iris@prod"}, NotFoundError, "does not resolve to a registered version"),
        ({"model": "models:/iris/9"}, NotFoundError, "main model models:/iris/9 does not resolve"),
        ({"canary": "models:/iris/9:5%"}, NotFoundError, "the canary model models:/iris/9"),
        (
            {"shadow": "models:/other/latest"},
            NotFoundError,
            "the shadow model models:/other/latest",
        ),
        ({"model": "runs:/" + "a" * 32 + "/model"}, InvalidInputError, "is a run artifact"),
        ({"model": "iris"}, InvalidInputError, "model URI must be models:/<name>/<version>"),
        ({"model": 3}, InvalidInputError, "the main model URI must be a str"),
        ({"config": {"workers": 4}}, InvalidInputError, "unknown serve option 'workers'"),
        (
            {"config": {"log_sample": 2}},
            InvalidInputError,
            r"`log_sample` must be a number in \[0, 1\]",
        ),
        (
            {"config": {"max_batch_size": 0}},
            InvalidInputError,
            "`max_batch_size` must be an int >= 1",
        ),
        (
            {"config": {"timeout_s": 0}},
            InvalidInputError,
            r"`timeout_s` must be a number in \(0, inf\]",
        ),
        ({"config": {"verify": "yes"}}, InvalidInputError, "`verify` must be true or false"),
        ({"config": ["log_sample"]}, InvalidInputError, "`config` must be a mapping"),
    ],
)
def test_create_refuses_what_would_not_serve(
    deployments: Deployments, fields: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        deployments.create("iris-api", **{"model": CHAMPION, **fields})  # type: ignore[arg-type]
    assert deployments.list() == []
    assert deployments.store.read_events(types=["deployment_created"]) == []


def test_the_name_is_checked_before_the_registry(deployments: Deployments) -> None:
    with pytest.raises(InvalidInputError, match="a deployment name must be"):
        deployments.create("bad name", model="models:/nope/1")  # not "does not resolve"
    with pytest.raises(InvalidInputError, match="a deployment name must be"):
        deployments.set("bad name", model="models:/nope/1")


# ---------------------------------------------------------------------------------------- set


def test_set_changes_what_is_given(deployments: Deployments) -> None:
    deployments.create("a", model=CHAMPION, config={"log_sample": 1.0, "max_wait_ms": 5})
    d = deployments.set("a", canary=f"{CHALLENGER}:20%", reason="try v2")
    assert (d.model, d.canary, d.canary_percent, d.revision) == (CHAMPION, CHALLENGER, 20.0, 2)
    d = deployments.set("a", canary_percent=40)  # the share alone
    assert (d.canary, d.canary_percent) == (CHALLENGER, 40.0)
    d = deployments.set("a", canary="models:/iris/v2")  # a URI alone keeps the share
    assert (d.canary, d.canary_percent) == ("models:/iris/2", 40.0)
    d = deployments.set("a", canary=None, shadow=CHALLENGER)
    assert (d.canary, d.canary_percent, d.shadow) == (None, 0.0, CHALLENGER)
    # config entries merge; None removes one
    d = deployments.set("a", config={"log_sample": 0.1, "max_wait_ms": None, "max_batch_size": 8})
    assert d.config == {"log_sample": 0.1, "max_batch_size": 8}
    revs = deployments.revisions("a")
    assert [r.revision for r in revs] == [1, 2, 3, 4, 5, 6]
    assert revs[1].reason == "try v2" and revs[1].actor == "ana"


def test_set_checks_new_uris_and_revisions(deployments: Deployments) -> None:
    deployments.create("a", model=CHAMPION)
    with pytest.raises(NotFoundError, match="the main model models:/iris/7 does not resolve"):
        deployments.set("a", model="models:/iris/7")
    with pytest.raises(InvalidInputError, match="unknown serve option 'nope'"):
        deployments.set("a", config={"nope": 1})
    with pytest.raises(InvalidInputError, match=r"`canary_percent` must be in \(0, 100\)"):
        deployments.set("a", canary=CHALLENGER)  # a new canary needs its share
    with pytest.raises(InvalidInputError, match="nothing to change"):
        deployments.set("a")
    deployments.set("a", model="models:/iris/1", expected_revision=1)
    with pytest.raises(ConflictError, match="is at revision 2, not the expected 1"):
        deployments.set("a", model="models:/iris/2", expected_revision=1)
    with pytest.raises(NotFoundError, match="deployment 'b' does not exist"):
        deployments.set("b", config={"log_sample": 1})
    assert deployments.get("a").revision == 2


def test_rollback_and_delete(deployments: Deployments) -> None:
    deployments.create("a", model=CHAMPION)
    deployments.set("a", model="models:/iris/2")
    d = deployments.rollback("a", reason="v2 is worse")
    assert (d.model, d.revision, d.updated_by) == (CHAMPION, 3, "ana")
    assert deployments.rollback("a", to_revision=2).model == "models:/iris/2"
    deployments.delete("a", reason="done")
    assert deployments.list() == []
    (e,) = deployments.store.read_events(types=["deployment_deleted"])
    assert (e.actor, e.payload["reason"], e.subject) == ("ana", "done", "deployments/a")


# ---------------------------------------------------------------------------------------- status


def test_status_shows_what_the_uris_resolve_to_and_the_last_swaps(
    deployments: Deployments, registry: Registry
) -> None:
    deployments.create("a", model=CHAMPION, canary=f"{CHALLENGER}:10%", shadow="models:/iris/1")
    store = deployments.store
    for i in range(4):
        store.append_event(
            "serving_swapped",
            "deployments/a",
            payload={"slot": "main", "from": f"iris/{i}", "to": f"iris/{i + 1}", "pid": 7},
        )
    store.append_event("serving_swapped", "deployments/other", payload={})
    store.append_event(
        "serving_swap_failed", "deployments/a", payload={"kept": "iris/4", "error": "boom"}
    )
    registry.delete_alias("iris", "challenger")
    st = deployments.status("a", last_events=3)
    assert isinstance(st, DeploymentStatus) and st.deployment == deployments.get("a")
    assert st.resolved[0] == ResolvedModel("main", CHAMPION, 1, None)
    canary = st.resolved[1]
    assert (canary.slot, canary.version) == ("canary", None) and "challenger" in str(canary.error)
    assert st.resolved[2] == ResolvedModel("shadow", "models:/iris/1", 1, None)
    assert [e.type for e in st.events] == [
        "serving_swapped",
        "serving_swapped",
        "serving_swap_failed",
    ]
    assert [e.payload.get("to") for e in st.events[:2]] == ["iris/3", "iris/4"]
    assert deployments.status("a", last_events=0).events == ()
    assert len(deployments.status("a").events) == 5
    # the status is JSON in the codec's form (what `mloop deploy status --json` prints)
    wire = json.loads(dumps(st))
    assert wire["deployment"]["name"] == "a" and wire["resolved"][0]["version"] == 1
    with pytest.raises(InvalidInputError, match="`last_events` must be an int >= 0"):
        deployments.status("a", last_events=-1)
    with pytest.raises(NotFoundError, match="deployment 'zzz' does not exist"):
        deployments.status("zzz")


def test_status_pages_through_many_swap_events(deployments: Deployments) -> None:
    deployments.create("a", model=CHAMPION)
    for i in range(1203):
        deployments.store.append_event("serving_swapped", "deployments/a", payload={"i": i})
    st = deployments.status("a", last_events=2)
    assert [e.payload["i"] for e in st.events] == [1201, 1202]


# ---------------------------------------------------------------------------------------- serving


def test_config_keys_are_serve_options() -> None:
    pytest.importorskip("fastapi")
    from mloop.serving import ServeOptions

    fields = {f.name for f in dataclasses.fields(ServeOptions)}
    assert set(CONFIG_KEYS) <= fields, set(CONFIG_KEYS) - fields


def test_a_server_reads_what_the_service_wrote(deployments: Deployments) -> None:
    pytest.importorskip("fastapi")
    from mloop.serving import ServeSpec, resolve_target

    deployments.create("a", model=CHAMPION, canary=f"{CHALLENGER}:10%", config={"log_sample": 0.25})
    spec, options = resolve_target("a", registry=deployments.registry)
    assert spec == ServeSpec(
        model=CHAMPION,
        canary=CHALLENGER,
        canary_percent=10.0,
        deployment="a",
        revision=1,
    )
    assert options == {"log_sample": 0.25}
    deployments.create("b", model=CHAMPION, config={"max_batch_size": 16})
    assert resolve_target("b", registry=deployments.registry)[1] == {
        "log_sample": 1.0,
        "max_batch_size": 16,
    }
    assert resolve_target(CHAMPION, registry=deployments.registry)[1] == {"log_sample": 0.0}
