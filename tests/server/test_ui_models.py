"""The Models and Deployments pages in a real Chromium against ``mloop server --auth`` as a process:
they show what the store holds, comparing two versions is one click, and promotion from the page
is refused for a read-only token (the server's message shown, the alias unchanged) and moves the
alias for an admin token; rollback moves it back. Screenshots go to the temp dir when
``MLOOP_UI_SHOTS`` names a folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _ui_models_data import model_registry
from _ui_page import Page, shot

from _server_process import ServerProcess
from mloop.store import create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-models")
    uri, art = f"sqlite:///{root / 'm.db'}", str(root / "artifacts")
    store = create_store(uri)
    built = model_registry(store)
    tokens = {r: store.create_token(f"{r}-token", role=r).secret for r in ("read", "admin")}
    store.close()
    with ServerProcess(root, store_uri=uri, artifact_uri=art, args=("--auth",)) as server:
        yield {"url": server.url, "uri": uri, "tokens": tokens, "built": built}


def sign_in(ui: Page, fragment: str, token: str) -> Any:
    """Open a page, which asks for a token (401), and give it one through the form."""
    page = ui.open(fragment)
    page.fill("#token", token)
    page.click("form.token button")
    ui.expected_http_errors(401, 1)
    return page


def champion(world: dict[str, Any]) -> int:
    store = create_store(world["uri"])
    try:
        return store.get_alias("churn", "champion").version
    finally:
        store.close()


def test_models_list_model_page_lineage_checks_and_diff(ui: Page, world: dict[str, Any]) -> None:
    page = sign_in(ui, "/models", world["tokens"]["read"])
    page.wait_for_selector("#models")
    rows = page.locator("#models tbody tr")
    assert rows.count() == 2
    listed = page.locator("#models").inner_text()
    assert "champion → v1" in listed and "challenger → v3" in listed and "empty-model" in listed
    shot(page, "models")
    page.click("#models a:text-is('churn')")
    page.wait_for_selector("#lineage")
    assert page.locator("#versions tbody tr").count() == 3
    v2 = page.locator("#versions tr[data-version='2']")
    assert "pass" in v2.locator("td.check").inner_text()
    assert "accuracy=0.912" in v2.inner_text()
    assert "fail" in page.locator("#versions tr[data-version='3'] td.check").inner_text()
    audit = page.locator("#audit").inner_text()
    assert "v2 was a mistake" in audit and "first release" in audit
    # the newest version is selected: its lineage and its failing report
    lineage = page.locator("#lineage").text_content()
    assert "run train-v3" in lineage and "dataset train" in lineage
    assert "significantly worse" in page.locator("#reports").inner_text()
    page.click("#versions tr[data-version='2'] a:text-is('v2')")
    page.wait_for_selector("#lineage .lin-node.pipeline")
    assert "step fit" in page.locator("#lineage").text_content()
    shot(page, "model")
    page.check("#versions tr[data-version='1'] input[type=checkbox]")
    page.check("#versions tr[data-version='3'] input[type=checkbox]")
    page.click("#compare-versions")
    page.wait_for_selector("#diff-params")
    params = page.locator("#diff-params").inner_text()
    assert "max_depth" in params and "12" in params
    assert "-0.044" in page.locator("#diff-metrics").inner_text()
    shot(page, "diff")


def test_promote_is_refused_read_only_then_moves_the_alias_as_admin(
    ui: Page, world: dict[str, Any]
) -> None:
    page = sign_in(ui, "/models/churn", world["tokens"]["read"])
    page.wait_for_selector("#promote")
    page.select_option("#promote-version", "2")
    page.fill("#reason", "v2 passed its check")
    page.click("#promote")
    refusal = page.wait_for_selector("#refusal")
    assert "needs 'admin'" in refusal.inner_text()
    ui.expected_http_errors(403, 1)
    assert champion(world) == 1
    shot(page, "refused")
    # an admin: the gate refuses v3 (its report failed), then v2 moves
    page.evaluate(f"sessionStorage.setItem('mloop-token', '{world['tokens']['admin']}')")
    page.select_option("#promote-version", "3")
    page.click("#promote")
    page.wait_for_function("document.querySelector('#refusal')?.textContent.includes('PROMOTION')")
    assert "significantly worse" in page.locator("#refusal").inner_text()
    ui.expected_http_errors(409, 1)
    assert champion(world) == 1
    page.select_option("#promote-version", "2")
    page.click("#promote")
    page.wait_for_selector(".action-result .ok")
    assert "churn@champion → v2 (was v1)" in page.locator(".action-result").inner_text()
    assert champion(world) == 2
    page.wait_for_function(
        "document.querySelector('#aliases tr[data-alias=champion]')?.textContent.includes('v2')"
    )
    shot(page, "promoted")
    page.fill("#reason", "alerts after the move")
    page.click("#aliases tr[data-alias='champion'] button.rollback")
    page.wait_for_selector(".action-result .ok")
    assert champion(world) == 1


def test_deployment_pages(ui: Page, world: dict[str, Any]) -> None:
    page = sign_in(ui, "/deployments", world["tokens"]["read"])
    page.wait_for_selector("#deployments")
    assert "90% main · 10% canary · shadow" in page.locator("#deployments").inner_text()
    page.click("#deployments a:text-is('churn-api')")
    page.wait_for_selector("#traffic-chart .uplot")
    resolved = {
        slot: page.locator(f"#resolved tr[data-slot={slot}] td").nth(2).inner_text()
        for slot in ("main", "canary", "shadow")
    }
    assert resolved == {"main": "v1", "canary": "v3", "shadow": "v2"}
    assert page.locator("#traffic-total").inner_text() == "50,000 requests logged"
    assert "watch v2 on live traffic" in page.locator("#revisions").inner_text()
    assert page.locator("#dep-events tbody tr").count() == 2
    updated = page.locator("#dep-events tbody tr").first.inner_text()
    assert "r2 shadow=models:/churn/2 · watch v2 on live traffic" in updated
    assert page.locator("#serving-total").inner_text() == (
        "50,000 answers, 50 errors (0.1%) from 2 server processes"
    )
    assert page.locator("#latency-chart .uplot").count() == 1
    assert page.locator("#errors-chart .uplot").count() == 1
    page.select_option("#traffic-window", "1")
    page.wait_for_function(
        "document.querySelector('#traffic-chart .u-title')?.textContent"
        " === 'logged requests per 1 min'"
    )
    assert "per 1 min" in page.locator("#latency-chart .u-title").inner_text()
    assert page.locator("#traffic-total").inner_text() == "50,000 requests logged"
    shot(page, "deployment")
