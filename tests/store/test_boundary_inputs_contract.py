"""Inputs the API fuzzing (tests/server/test_api_fuzzing.py) found answered with a 500 or accepted
silently: every backend refuses them the same way, with a message naming the problem."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import ArtifactEntry, DatasetVersion, RunInput, Store

SHA = hashlib.sha256(b"content").hexdigest()


@pytest.fixture
def run(store: Store):  # type: ignore[no-untyped-def]
    return store.create_run(store.create_project("p").id)


@pytest.mark.parametrize("prefix", ["..", "a/../..", "a\x00b", "a\\b", "\x01"])
def test_an_artifact_prefix_obeys_the_rules_of_a_path(store: Store, run, prefix: str) -> None:
    with pytest.raises(InvalidInputError, match="prefix"):
        store.list_artifacts(run.id, prefix=prefix)


def test_a_valid_prefix_still_lists_under_it(store: Store, run) -> None:
    store.add_artifacts(run.id, [ArtifactEntry("model/w.bin", 3, SHA), ArtifactEntry("x", 1, SHA)])
    for prefix in ("model", "/model/", "model//", ""):
        paths = [e.path for e in store.list_artifacts(run.id, prefix=prefix)]
        assert paths == (["model/w.bin"] if prefix else ["model/w.bin", "x"])


@pytest.mark.parametrize("size", [-1, 1.5, "3", None, True])
def test_an_artifact_size_is_a_non_negative_int(store: Store, run, size: object) -> None:
    with pytest.raises(InvalidInputError, match="size"):
        store.add_artifacts(run.id, [ArtifactEntry("a.txt", size, SHA)])  # type: ignore[arg-type]
    assert store.list_artifacts(run.id) == []


@pytest.mark.parametrize("context", ["", "x" * 101, "a\x00b", "\ud800"])
def test_an_input_context_is_short_storable_text(store: Store, run, context: str) -> None:
    store.put_dataset(DatasetVersion(SHA, "d", {}, 1, None, "file:///d", 1))
    with pytest.raises(InvalidInputError, match="context"):
        store.log_input(run.id, RunInput(SHA, "train", context))
    store.log_input(run.id, RunInput(SHA, "train", "x" * 100))


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"filter": "params.a = 'x\x00'"}, "filter"),
        ({"filter": "params.a = '\ud800'"}, "filter"),
        ({"order_by": ["params.a\x00"]}, "order_by"),
        ({"order_by": ["metrics.\udfff"]}, "order_by"),
    ],
)
def test_search_text_with_nul_or_a_lone_surrogate_is_refused(
    store: Store, run, kwargs: dict[str, object], what: str
) -> None:
    with pytest.raises(InvalidInputError, match=what):
        store.search_runs(run.project_id, **kwargs)  # type: ignore[arg-type]


def test_a_page_token_past_any_offset_is_refused_not_overflowing(store: Store, run) -> None:
    for offset in ("9" * 19, "9" * 40, "9" * 5000):
        token = base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")
        with pytest.raises(InvalidInputError, match="page_token"):
            store.search_runs(run.project_id, page_token=token)
    token = base64.urlsafe_b64encode(b"o:" + b"9" * 18).decode().rstrip("=")
    assert store.search_runs(run.project_id, page_token=token).items == []


def test_setting_no_tags_is_a_no_op_that_still_needs_the_model(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.set_registered_model_tags("missing", {})
    with pytest.raises(NotFoundError):
        store.set_model_version_tags("missing", 1, {})
    store.create_model_version("m", artifact_uri="runs:/x/model", flavor="sklearn")
    events = len(store.list_events(model="m"))
    store.set_registered_model_tags("m", {})
    store.set_model_version_tags("m", 1, {})
    with pytest.raises(NotFoundError):
        store.set_model_version_tags("m", 2, {})
    assert len(store.list_events(model="m")) == events  # nothing set, nothing recorded


def test_a_delivery_to_a_webhook_that_never_existed_is_not_found(store: Store) -> None:
    hook = store.create_webhook("http://127.0.0.1:9/h", secret="s" * 16)
    store.record_delivery(
        hook.id, 1, attempt=1, ok=False, status_code=None, error="a\x00b", duration_ms=3
    )
    assert store.list_deliveries(hook.id)[0].error == "a\ufffdb"  # captured text, made storable
    with pytest.raises(NotFoundError, match=f"webhook {hook.id + 1000} does not exist"):
        store.record_delivery(
            hook.id + 1000, 1, attempt=1, ok=True, status_code=200, error=None, duration_ms=3
        )


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"attempt": -1}, "attempt"),
        ({"duration_ms": -5}, "duration_ms"),
        ({"duration_ms": 1.5}, "duration_ms"),
        ({"status_code": 99}, "status_code"),
        ({"status_code": 600}, "status_code"),
        ({"error": 5}, "error"),
    ],
)
def test_a_delivery_record_is_validated(store: Store, kwargs: dict[str, object], what: str) -> None:
    hook = store.create_webhook("http://127.0.0.1:9/h", secret="s" * 16)
    args: dict[str, object] = {
        "attempt": 1,
        "ok": True,
        "status_code": 200,
        "error": None,
        "duration_ms": 3,
    }
    with pytest.raises(InvalidInputError, match=what):
        store.record_delivery(hook.id, 1, **{**args, **kwargs})  # type: ignore[arg-type]
    assert store.list_deliveries(hook.id) == []


@pytest.mark.parametrize("project_id", ["12345678901234567890", "-99999999999999999999", "9" * 40])
def test_a_project_id_past_int64_names_no_project(store: Store, project_id: str) -> None:
    """Found through the MLflow dialect: such an id overflowed SQLite's INTEGER (a 500)."""
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_project(project_id)
    with pytest.raises(NotFoundError, match="does not exist"):
        store.delete_project(project_id)
