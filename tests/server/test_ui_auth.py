"""The token prompt and the run page's lineage, in a real Chromium against ``mloop server --auth``
as a process: a page opened without a token shows the sign-in form; a token the server does not
know is refused there with the server's own message (and forgotten); a read token entered there
loads the page. Signed in, a run page shows its parent run, its dataset and the model versions
registered from it, with their aliases, each a link to its model page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ui_page import Page

from _server_process import ServerProcess
from mloop.store import DatasetVersion, RunInput, create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]


def _foreign_token(root: Path) -> str:
    """A well-formed token secret made by another store: unknown to the server."""
    other = create_store(f"sqlite:///{root / 'other.db'}")
    try:
        return other.create_token("elsewhere", role="read").secret
    finally:
        other.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-auth")
    uri, art = f"sqlite:///{root / 'm.db'}", str(root / "artifacts")
    store = create_store(uri)
    p = store.create_project("lineage")
    parent = store.create_run(p.id, name="sweep")
    child = store.create_run(p.id, name="trial-3", parent_run_id=parent.id)
    other = store.create_run(p.id, name="trial-4", parent_run_id=parent.id)
    sha = "cd" * 32
    store.put_dataset(
        DatasetVersion(sha256=sha, name="train", schema={"x": "float64"}, num_rows=500,
                       source_uri="s3://b/train.parquet", storage_uri=f"datasets:/{sha}",
                       created_ms=1_700_000_000_000)
    )  # fmt: skip
    store.log_input(child.id, RunInput(sha, "train", "training"))
    store.create_registered_model("churn")
    store.create_registered_model("churn-small")
    for name, run in [("churn", child), ("churn", other), ("churn", child), ("churn-small", child)]:
        store.create_model_version(
            name, artifact_uri=f"runs:/{run.id}/model", flavor="sklearn", source_run_id=run.id
        )
    store.set_alias("churn", "champion", 1)
    store.set_alias("churn", "challenger", 3)
    read = store.create_token("reader", role="read").secret
    store.close()
    with ServerProcess(root, store_uri=uri, artifact_uri=art, args=("--auth",)) as server:
        yield {
            "url": server.url,
            "read": read,
            "foreign": _foreign_token(root),
            "parent": parent.id,
            "child": child.id,
            "project": p.id,
        }


@pytest.fixture
def ui(browser: Any, world: dict[str, Any]) -> Iterator[Page]:
    page = Page(browser, world)
    yield page
    assert page.errors == []
    page.close()


def refused_requests(ui: Page) -> int:
    """Drop the 401s Chromium logs (one per request a page made without a good token)."""
    mine = [e for e in ui.errors if "the server responded with a status of 401 " in e]
    ui.errors = [e for e in ui.errors if e not in mine]
    return len(mine)


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("form.token button")


def test_without_a_token_the_page_asks_for_one(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/projects/{world['project']}")
    page.wait_for_selector("form.token")
    assert page.inner_text("form.token h2") == "This server needs a token"
    assert page.locator("#token").get_attribute("type") == "password"
    assert page.locator("#token-refused").count() == 0  # nothing was refused: none was sent
    assert page.locator(".vt-row").count() == 0
    assert refused_requests(ui) >= 1


def test_an_unknown_token_is_refused_with_the_servers_message(
    ui: Page, world: dict[str, Any]
) -> None:
    page = ui.open("/")
    page.wait_for_selector("form.token")
    sign_in(page, world["foreign"])
    refused = page.wait_for_selector("#token-refused")
    assert refused.inner_text() == (
        "Refused: the bearer token is unknown to this server; ask its admin for one "
        "(`mloop token create` on the server host)."
    )
    assert page.evaluate("sessionStorage.getItem('mloop-token')") is None  # forgotten
    sign_in(page, "not-a-token")
    page.wait_for_function(
        "() => (document.querySelector('#token-refused') || {}).textContent?.includes('not an mloop token')"
    )
    assert page.locator("table.projects").count() == 0
    assert refused_requests(ui) >= 3


def test_a_read_token_entered_in_the_form_loads_the_page(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/projects/{world['project']}")
    page.wait_for_selector("form.token")
    sign_in(page, world["read"])
    page.wait_for_selector(".vt-row[data-row]")
    assert page.locator(".count").text_content() == "3 of 3 runs"
    page.goto(f"{world['url']}/ui/#/")  # kept for the session: the next page needs no form
    page.wait_for_selector("table.projects")
    assert page.locator("form.token").count() == 0
    assert refused_requests(ui) >= 1


def test_run_page_lineage(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/runs/{world['child']}")
    page.wait_for_selector("form.token")
    sign_in(page, world["read"])
    page.wait_for_selector("#run-models")
    lineage = page.locator("#run-lineage")
    parent = lineage.locator(".lineage-parent a")
    assert parent.get_attribute("href") == f"#/runs/{world['parent']}"
    assert parent.inner_text() == world["parent"][:12]
    rows = page.locator("#run-models tbody tr")
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == [
        "churn-small v1",
        "churn v3",
        "churn v1",
    ]  # newest first; v2 came from another run
    assert rows.nth(1).locator("td").nth(1).inner_text() == "@challenger"
    assert rows.nth(2).locator("td").nth(1).inner_text() == "@champion"
    assert "train" in page.locator("#datasets").inner_text()  # the input beside it
    rows.nth(2).locator("a").click()
    page.wait_for_selector("#versions")
    assert page.url.endswith("#/models/churn/v/1")
    page.goto(f"{world['url']}/ui/#/runs/{world['parent']}")
    page.wait_for_selector("#run-lineage .empty")
    text = page.locator("#run-lineage").inner_text()
    assert "none (a top-level run)" in text
    assert "No model version was registered from this run." in text
    assert refused_requests(ui) >= 1
