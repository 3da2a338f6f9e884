"""Search over HTTP leaves the runs' captured contexts on the server until one is read; then the
page's contexts come in one request (the SQL store's lazy loading, carried over the wire)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from _asgi import SyncASGITransport
from mloop.server import create_app
from mloop.store import API_PREFIX, HttpStore, SqlStore


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[HttpStore, list[str], SqlStore, httpx.Client]]:
    backing = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    seen: list[str] = []
    client = httpx.Client(
        transport=SyncASGITransport(create_app(backing)),
        base_url="http://mloop.test",
        event_hooks={"request": [lambda r: seen.append(r.read().decode())]},
    )
    store = HttpStore("http://mloop.test", client=client)
    try:
        yield store, seen, backing, client
    finally:
        client.close()
        backing.close()


def test_a_page_of_results_fetches_its_contexts_once_when_one_is_read(remote) -> None:
    store, seen, backing, _ = remote
    p = backing.create_project("p")
    ids = [
        backing.create_run(p.id, name=f"r{i}", context={"packages": {"numpy": f"2.{i}"}}).id
        for i in range(5)
    ]
    seen.clear()
    page = store.search_runs(p.id, order_by=["attributes.run_name ASC"], max_results=4)
    assert len(seen) == 1 and '"include_context":false' in seen[0].replace(" ", "")
    assert [r.id for r in page.items] == ids[:4]
    assert page.items[2].context["packages"] == {"numpy": "2.2"}
    assert len(seen) == 2 and '"include_context":true' in seen[1].replace(" ", "")
    for i, run in enumerate(page.items):  # the rest of the page: no more requests
        assert dict(run.context) == {"packages": {"numpy": f"2.{i}"}}
        assert dict(run.context) == dict(backing.get_run(run.id).context)
    assert len(seen) == 2
    rest = store.search_runs(
        p.id, order_by=["attributes.run_name ASC"], page_token=page.next_page_token
    )
    assert [r.id for r in rest.items] == ids[4:]
    assert rest.items[0].context == {"packages": {"numpy": "2.4"}}


def test_a_run_deleted_after_the_search_still_reads_its_context(remote) -> None:
    store, _, backing, _ = remote
    p = backing.create_project("p")
    rid = backing.create_run(p.id, context={"host": "h1"}).id
    (run,) = store.search_runs(p.id).items
    backing.delete_run(rid)
    assert run.context == {"host": "h1"}


def test_a_run_without_a_context_reads_empty_and_results_pickle_without_the_store(remote) -> None:
    store, _, backing, _ = remote
    p = backing.create_project("p")
    backing.create_run(p.id, name="bare")
    backing.create_run(p.id, name="full", context={"git_commit": "abc"})
    runs = {r.name: r for r in store.search_runs(p.id).items}
    assert dict(runs["bare"].context) == {} and len(runs["bare"].context) == 0
    back = pickle.loads(pickle.dumps(runs["full"]))
    assert back == runs["full"] and type(back.context) is dict
    assert back.context == {"git_commit": "abc"}


def test_the_raw_api_leaves_contexts_out_unless_asked(remote) -> None:
    _, _, backing, client = remote
    p = backing.create_project("p")
    backing.create_run(p.id, context={"host": "h1"})
    body = {"project_ids": [p.id], "max_results": 10}
    (item,) = client.post(f"{API_PREFIX}/runs/search", json=body).json()["items"]
    assert item["context"] == {}
    (item,) = client.post(
        f"{API_PREFIX}/runs/search", json={**body, "include_context": True}
    ).json()["items"]
    assert item["context"] == {"host": "h1"}
