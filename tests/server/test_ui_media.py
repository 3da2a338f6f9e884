"""The run page's Media section in a real Chromium against ``mloop server`` as a process (and its
data route in-process): the image slider shows the chosen step's picture (checked pixel by pixel),
a table sorts by a click on a column, a histogram is drawn as a heatmap and bars whose heights are
the logged counts, a figure is shown, and a run without media says so. Screenshots go to
``MLOOP_UI_SHOTS`` when it names a folder."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _ui_media_data import (
    HIST_BINS,
    HIST_STEPS,
    IMAGE_STEPS,
    TABLE,
    colour,
    hist_values,
    media_project,
)
from _ui_page import Page, shot

from _live_server import LiveServer
from _server_process import ServerProcess
from mloop.artifacts import BlobStore
from mloop.server import create_app
from mloop.server._ui_media import MAX_HISTOGRAM_STEPS, media_listing
from mloop.store import ArtifactEntry, MediaItem, create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]

_PIXEL = """([sel, want]) => {
  const img = document.querySelector(sel);
  if (!img || !img.complete || !img.naturalWidth) return false;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = Array.from(ctx.getImageData(3, 3, 1, 1).data.slice(0, 3));
  return px.every((v, i) => v === want[i]);
}"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-media")
    uri, art = f"sqlite:///{root / 'm.db'}", str(root / "artifacts")
    with ServerProcess(root, store_uri=uri, artifact_uri=art) as server:
        built = media_project(root, server.url)
        yield {"url": server.url, "uri": uri, "art": art, **built}


def test_the_route_lists_media_with_their_blobs(world: dict[str, Any]) -> None:
    store = create_store(world["uri"])
    app = create_app(store, artifacts=BlobStore(world["art"]))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        doc = c.get(f"/api/v1/ui/runs/{world['run']}/media").json()
        groups = {g["key"]: g for g in doc["keys"]}
        assert [g["key"] for g in doc["keys"]] == sorted(groups)
        samples = groups["samples"]
        assert samples["kind"] == "image" and [i["step"] for i in samples["items"]] == [
            0,
            1,
            2,
            3,
            4,
        ]
        files = {a.path: a for a in store.list_artifacts(world["run"])}
        for item in samples["items"] + groups["preds"]["items"]:
            assert item["sha256"] == files[item["path"]].sha256
        weights = groups["weights"]["items"]
        assert [i["step"] for i in weights] == [s * 10 for s in range(HIST_STEPS)]
        assert weights[2]["meta"]["counts"] == np.histogram(hist_values(2), HIST_BINS)[0].tolist()
        # The table's rows come from the artifact preview route, like any Parquet file.
        table = c.get(
            f"/api/v1/ui/runs/{world['run']}/preview",
            params={"path": groups["preds"]["items"][0]["path"]},
        ).json()
        assert table["columns"] == list(TABLE) and table["total_rows"] == 5
        assert c.get(f"/api/v1/ui/runs/{world['empty']}/media").json()["keys"] == []
        assert c.get(f"/api/v1/ui/runs/{'0' * 32}/media").status_code == 404
        assert c.get("/api/v1/ui/runs/nope/media").status_code == 400
        ops = c.get("/api/v1/openapi.json").json()["paths"]["/api/v1/ui/runs/{run_id}/media"]["get"]
        assert ops["operationId"] == "ui_run_media"
    with LiveServer(create_app(store, auth=True)) as server:
        r = httpx.get(f"{server.url}/api/v1/ui/runs/{world['run']}/media")
        assert r.status_code == 401
    store.close()


def test_a_long_histogram_is_thinned_evenly(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run(store.create_project("p").id, name="long")
    n = 1_201
    store.add_artifacts(run.id, [ArtifactEntry("media/h.json", 10, "ab" * 32)])
    meta = {"edges": [0.0, 1.0], "counts": [1], "total": 1, "nonfinite": 0}
    store.add_media(
        run.id, [MediaItem("h", s, "histogram", "media/h.json", meta) for s in range(n)]
    )
    store.add_media(run.id, [MediaItem("img", s, "image", "media/h.json") for s in range(n)])
    doc = {g["key"]: g for g in media_listing(store, run.id)["keys"]}
    steps = [i["step"] for i in doc["h"]["items"]]
    assert len(steps) == MAX_HISTOGRAM_STEPS and doc["h"]["logged_steps"] == n
    assert steps[0] == 0 and steps[-1] == n - 1 and steps == sorted(set(steps))
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    assert gaps <= {2, 3}  # evenly spaced: 1200 steps over 499 gaps
    assert len(doc["img"]["items"]) == n and "logged_steps" not in doc["img"]  # images all kept
    store.close()


def test_the_media_section(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/runs/{world['run']}")
    page.wait_for_selector("#media .media-card")
    keys = page.eval_on_selector_all("#media .media-card", "cs => cs.map(c => c.dataset.key)")
    assert keys == (["curve"] if world["figure"] else []) + [
        "interactive",
        "preds",
        "samples",
        "weights",
    ]

    # Images: the newest step first; the slider shows the chosen step's picture.
    img = ".media-card[data-key='samples'] img.media-image"
    last = IMAGE_STEPS - 1
    page.wait_for_function(_PIXEL, arg=[img, list(colour(last))])
    assert page.get_attribute(img, "data-step") == str(last)
    card = page.locator(".media-card[data-key='samples']")
    assert card.locator(".media-step").inner_text().startswith(f"step {last}")
    card.locator("input.media-slider").fill("1")
    page.wait_for_function(_PIXEL, arg=[img, list(colour(1))])
    assert page.get_attribute(img, "data-step") == "1"
    assert card.locator(".media-step").inner_text() == f"step 1  (2 of {IMAGE_STEPS})"
    card.locator("input.media-slider").fill("3")
    page.wait_for_function(_PIXEL, arg=[img, list(colour(3))])

    # Table: click a column to sort, again to reverse.
    table = page.locator(".media-card[data-key='preds'] table.media-table")
    table.wait_for()
    col = lambda i: table.locator(f"tbody tr td:nth-child({i})").all_inner_texts()  # noqa: E731
    assert col(1) == [str(v) for v in TABLE["id"]]  # as logged
    table.locator("th[data-col='score']").click()
    assert col(2) == ["0.1", "0.3", "0.5", "0.7", "0.9"]
    assert table.locator("th[data-col='score']").get_attribute("data-sort") == "asc"
    table.locator("th[data-col='score']").click()
    assert col(2) == ["0.9", "0.7", "0.5", "0.3", "0.1"]
    table.locator("th[data-col='label']").click()
    assert col(3) == ["bird", "cat", "cat", "dog", "dog"]

    # Histogram: a heatmap over the steps, and bars of one step whose heights are its counts.
    hist = page.locator(".media-card[data-key='weights']")
    painted = hist.locator("canvas.media-heatmap").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 100) n++; return n; }"
    )
    assert painted > 0
    assert hist.locator("canvas.media-heatmap").evaluate("c => c.height") >= HIST_STEPS * 2

    def bars() -> tuple[str | None, list[int], list[float]]:
        svg = hist.locator("svg.media-bars")
        counts = [
            int(x) for x in svg.locator("rect").evaluate_all("rs => rs.map(r => r.dataset.count)")
        ]
        heights = svg.locator("rect").evaluate_all("rs => rs.map(r => +r.getAttribute('height'))")
        return svg.get_attribute("data-step"), counts, heights

    step, counts, heights = bars()
    want = np.histogram(hist_values(HIST_STEPS - 1), HIST_BINS)[0].tolist()
    assert step == str((HIST_STEPS - 1) * 10) and counts == want and len(heights) == HIST_BINS
    assert heights.index(max(heights)) == want.index(max(want))
    hist.locator("input.media-slider").fill("0")
    step, counts, _ = bars()
    assert step == "0" and counts == np.histogram(hist_values(0), HIST_BINS)[0].tolist()

    if world["figure"]:
        fig = ".media-card[data-key='curve'] img.media-image"
        page.wait_for_function(f'() => document.querySelector("{fig}").naturalWidth > 100')

    # A plotly figure, drawn by the plotly.js of the server's own plotly install (no CDN: the
    # fixture checks every request went to the server): its two traces, interactive.
    plot = page.locator(".media-card[data-key='interactive'] .media-plotly")
    plot.locator(".main-svg").first.wait_for()
    assert plot.locator(".scatterlayer .trace").count() == 1
    assert plot.locator(".barlayer .trace").count() == 1
    assert "2 traces" in page.locator(".media-card[data-key='interactive']").inner_text()
    shot(page, "run-media")


def test_a_failing_media_read_shows_an_error_and_the_rest_of_the_page(
    ui: Page, world: dict[str, Any]
) -> None:
    body = '{"error_code": "INTERNAL_ERROR", "message": "the server failed: disk on fire"}'
    ui.page.route(
        "**/api/v1/ui/runs/*/media",
        lambda route: route.fulfill(status=500, body=body, content_type="application/json"),
    )
    page = ui.open(f"/runs/{world['run']}")
    page.wait_for_selector("#media .error-box")
    assert page.inner_text("#media .error-box") == "Media: the server failed: disk on fire"
    page.wait_for_selector("#charts .uplot")  # the rest of the run page is there
    ui.expected_http_errors(500, 1)


def test_a_run_without_media_says_so(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/runs/{world['empty']}")
    page.wait_for_selector("#media .empty")
    assert "No images, figures, tables or histograms logged." in page.inner_text("#media")
