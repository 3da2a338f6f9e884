"""Changing a project after it is made (its tags, its name) and removing a run's tag: MLflow's
set/delete experiment tag, rename experiment and delete tag, identically on every backend."""

from __future__ import annotations

import time

import pytest

from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.store import Store


def test_project_tags_set_overwrite_and_delete(store: Store) -> None:
    p = store.create_project("tagged", tags={"owner": "ana"})
    time.sleep(0.002)
    store.set_project_tags(p.id, {"owner": "bo", "team": "growth"})
    got = store.get_project(p.id)
    assert got.tags == {"owner": "bo", "team": "growth"}
    assert got.updated_ms > p.updated_ms and got.created_ms == p.created_ms
    store.delete_project_tag(p.id, "owner")
    assert store.get_project(p.id).tags == {"team": "growth"}
    assert store.get_project_by_name("tagged").tags == {"team": "growth"}
    store.set_project_tags(p.id, {})  # nothing to set: nothing changes
    with pytest.raises(NotFoundError, match="owner"):
        store.delete_project_tag(p.id, "owner")
    with pytest.raises(NotFoundError):
        store.set_project_tags("424242", {"a": "b"})
    with pytest.raises(NotFoundError):
        store.delete_project_tag("424242", "team")
    with pytest.raises(InvalidInputError):
        store.set_project_tags(p.id, {"bad key!": "x"})
    with pytest.raises(InvalidInputError):
        store.set_project_tags(p.id, {"k": "x" * 8001})
    assert store.get_project(p.id).tags == {"team": "growth"}


def test_rename_project(store: Store) -> None:
    p = store.create_project("old-name")
    store.create_project("taken")
    renamed = store.rename_project(p.id, "new-name")
    assert (renamed.id, renamed.name) == (p.id, "new-name")
    assert store.get_project_by_name("old-name") is None
    assert store.get_project_by_name("new-name").id == p.id  # type: ignore[union-attr]
    with pytest.raises(AlreadyExistsError, match="taken"):
        store.rename_project(p.id, "taken")
    with pytest.raises(InvalidInputError):
        store.rename_project(p.id, "")
    with pytest.raises(NotFoundError):
        store.rename_project("424242", "whatever")
    assert store.get_project(p.id).name == "new-name"


def test_delete_run_tag(store: Store) -> None:
    p = store.create_project("runs")
    run = store.create_run(p.id, tags={"a": "1", "b": "2"})
    store.delete_run_tag(run.id, "a")
    assert store.get_run(run.id).tags == {"b": "2"}
    page = store.search_runs([p.id], filter="tags.a = '1'")
    assert page.items == []
    with pytest.raises(NotFoundError, match="'a'"):
        store.delete_run_tag(run.id, "a")
    with pytest.raises(NotFoundError):
        store.delete_run_tag("f" * 32, "b")
    with pytest.raises(InvalidInputError):
        store.delete_run_tag("not-a-run-id", "b")
    store.log_batch(run.id, tags={"a": "3"})  # a removed tag can be set again
    assert store.get_run(run.id).tags == {"a": "3", "b": "2"}
