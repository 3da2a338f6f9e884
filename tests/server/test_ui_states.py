"""Every page's empty state and error state, in a real Chromium against ``mloop server`` as a
process: on an empty store each list page says there is nothing yet (and how to make some); a
page for an unknown id shows the server's message; pages of entities that hold nothing (a run
with no metrics, a model with no version, a deployment with no traffic, a pipeline run with no
step) say so section by section. No page logs a console error beyond the refused requests the
unknown ids provoke."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ui_page import Page

from _server_process import ServerProcess
from mloop.store import PipelineRun, create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]

UNKNOWN_RUN = "f" * 32
_REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")


def _serve(root: Path) -> ServerProcess:
    uri = f"sqlite:///{root / 'm.db'}"
    create_store(uri).close()
    return ServerProcess(root, store_uri=uri, artifact_uri=str(root / "artifacts"))


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-empty")
    with _serve(root) as server:
        yield {"url": server.url}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A project without runs, runs that logged nothing, a model without versions, a deployment
    that served nothing and a pipeline run that recorded no step."""
    root = tmp_path_factory.mktemp("ui-bare")
    server = _serve(root)
    store = create_store(server.store_uri)
    empty_project = store.create_project("no-runs")
    p = store.create_project("bare")
    runs = [store.create_run(p.id, name=f"nothing-{i}").id for i in range(2)]
    store.create_registered_model("bare-model")
    store.create_deployment("bare-dep", model="models:/bare-model@champion")
    store.start_pipeline_run(
        PipelineRun(id="e" * 32, pipeline="bare-flow", status="running", trigger="manual",
                    code_ref="flows:bare", start_ms=1_000, reason="by hand")
    )  # fmt: skip
    store.close()
    with server:
        yield {"url": server.url, "project": p.id, "no_runs": empty_project.id, "runs": runs}


def _open(chromium: Any, world: dict[str, Any], fragment: str, ready: str) -> tuple[Page, Any]:
    ui = Page(chromium, world)
    page = ui.open(fragment)
    page.wait_for_selector(ready)
    return ui, page


def _main(page: Any) -> str:
    return str(page.inner_text("#main"))


@pytest.mark.parametrize(
    ("fragment", "heading", "says"),
    [
        ("/", "Projects", "No projects yet."),
        ("/models", "Models", "No registered models yet."),
        ("/deployments", "Deployments", "No deployments yet."),
        ("/monitors", "Monitors", "No monitor has stored a window yet."),
        ("/pipelines", "Pipelines", "No pipeline has run yet."),
        ("/timeline", "Loop timeline", "No registered model yet"),
    ],
)
def test_list_pages_on_an_empty_store(
    browser: Any,
    empty: dict[str, Any],
    fragment: str,
    heading: str,
    says: str,
) -> None:
    ui, page = _open(browser, empty, fragment, "#main .empty")
    assert page.inner_text("#main h1") == heading
    assert says in page.inner_text("#main .empty")
    assert page.locator("#main .error-box").count() == 0
    assert ui.errors == []
    ui.close()


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("/projects/999", "project id '999' does not exist."),
        (f"/runs/{UNKNOWN_RUN}", f"run {UNKNOWN_RUN} does not exist."),
        ("/runs/not-a-run", "run id must be 32 lowercase hex characters; got 'not-a-run'."),
        (
            f"/compare/{UNKNOWN_RUN},{'e' * 32}",
            f"run {UNKNOWN_RUN} does not exist. run {'e' * 32} does not exist.",
        ),
        (
            f"/compare/{UNKNOWN_RUN},{UNKNOWN_RUN}",
            "Compare needs two or more runs: select them in a runs table.",
        ),
        ("/models/nope", "registered model 'nope' does not exist."),
        ("/models/nope/v/3", "registered model 'nope' does not exist."),
        ("/models/nope/diff/1/2", "registered model 'nope' does not exist."),
        ("/deployments/nope", "deployment 'nope' does not exist."),
        ("/monitors/nope", "monitor 'nope' has stored no window."),
        ("/pipelines/nope", "pipeline 'nope' does not exist (it has never run)."),
        (f"/pipeline-runs/{UNKNOWN_RUN}", f"pipeline run {UNKNOWN_RUN} does not exist."),
        ("/timeline/nope", "registered model 'nope' does not exist."),
    ],
)
def test_unknown_ids_show_the_servers_message(
    browser: Any,
    empty: dict[str, Any],
    fragment: str,
    message: str,
) -> None:
    ui, page = _open(browser, empty, fragment, "#main .error-box")
    assert page.inner_text("#main .error-box") == f"Error: {message}"
    refused = [e for e in ui.errors if _REFUSED.match(e)]  # the failed requests Chromium logs
    assert [e for e in ui.errors if e not in refused] == []
    ui.close()


def test_pages_of_entities_that_hold_nothing(browser: Any, bare: dict[str, Any]) -> None:
    checks: list[tuple[str, str, list[str]]] = [
        (f"/projects/{bare['no_runs']}", "#main .empty", ["No runs in this project yet."]),
        (f"/runs/{bare['runs'][0]}", "#run-lineage .empty", [
            "No metrics logged.", "No images, figures, tables or histograms logged.",
            "No artifacts logged.", "No dataset inputs logged.", "none (a top-level run)",
            "No model version was registered from this run.",
        ]),
        (f"/compare/{','.join(bare['runs'])}", "#main .empty", [
            "Parallel coordinates need two or more params or metrics.", "No params.", "No metrics.",
        ]),
        ("/models/bare-model", "#main .empty", ["No versions yet.", "No aliases.",
                                                 "No alias has moved yet."]),
        ("/deployments/bare-dep", "#main .empty", [
            "model 'bare-model' has no alias 'champion'.",
            "No answers recorded in this period", "No request logged in this period",
        ]),
        ("/pipelines/bare-flow", "#main table", ["running"]),
        (f"/pipeline-runs/{'e' * 32}", "#main .empty", ["No step has finished yet."]),
    ]  # fmt: skip
    for fragment, ready, texts in checks:
        ui, page = _open(browser, bare, fragment, ready)
        page.wait_for_load_state("networkidle")
        shown = _main(page)
        for text in texts:
            assert text in shown, (fragment, text, shown)
        assert ui.errors == [], fragment
        ui.close()
    ui, page = _open(browser, bare, "/deployments/bare-dep", "#main .title-row")
    assert "by ?" not in page.inner_text("#main .title-row")  # nobody is named when none is known
    ui.close()
    ui, page = _open(browser, bare, "/timeline/bare-model", "svg.timeline")
    ticks = page.locator("svg.timeline text.axis-label").all_text_contents()
    assert len(ticks) == 5 and len(set(ticks)) == 5, ticks  # events in one second: a minute's axis
    assert ui.errors == []
    ui.close()
    ui, page = _open(browser, bare, f"/projects/{bare['project']}", ".vt-row[data-row]")
    page.fill("#filter", "params.nothing = 'x'")
    page.press("#filter", "Enter")
    page.wait_for_function("() => document.querySelector('.count').textContent === '0 of 2 runs'")
    assert (
        page.locator(".vt-row[data-row]").count() == 0 and page.locator("#filter-error").is_hidden()
    )
    assert ui.errors == []
    ui.close()
