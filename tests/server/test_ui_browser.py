"""The web UI in a real Chromium (Playwright, Debian's browser) against ``mloop server`` as a real
process: every page loads without console errors; sorting, filtering (and a filter's syntax error
with its position), the column picker, grouping, comparing, zooming and artifact previews work;
and a 10,000-run project and a 1,000,000-point metric stay fast. The figures are measured in the
browser with ``performance.now()`` and printed; the bounds asserted are generous (5x the goals),
so a loaded machine does not fail the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ui_data import long_metric, many_runs, rich_project
from _ui_page import Page

from _server_process import ServerProcess
from mloop.artifacts import BlobStore
from mloop.store import create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]

N_RUNS = 10_000
N_POINTS = 1_000_000
FILTER = "params.opt = 'adam' and metrics.acc > 0.5"
# Broad filters: one matching ~99% of the runs, one ~25% (their ids are most of the answer).
BROAD = {"~all": "metrics.acc > 0.01", "~25%": "metrics.acc < 0.25"}
_READY = "() => window.__mloopPerf && window.__mloopPerf.tableReadyNavMs !== undefined"
_VISIBLE_NAMES = """n => [...document.querySelectorAll('.vt-row[data-row]')]
  .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
  .slice(0, n).map(r => r.querySelector('a').textContent)"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-browser")
    uri, art = f"sqlite:///{root / 'm.db'}", str(root / "artifacts")
    store = create_store(uri)
    ids = rich_project(store, BlobStore(art))
    big = many_runs(store, N_RUNS)
    long_id = long_metric(store, N_POINTS)
    runs = list(store.iter_runs(big))
    by_acc = sorted(runs, key=lambda r: r.metrics["acc"].last)
    matched = store.search_runs(big, filter=FILTER, max_results=N_RUNS).items
    store.close()
    with ServerProcess(root, store_uri=uri, artifact_uri=art) as server:
        yield {
            "url": server.url,
            "ids": ids,
            "big": big,
            "long": long_id,
            "acc_desc": [r.name for r in by_acc[::-1][:5]],
            "acc_asc": [r.name for r in by_acc[:5]],
            "matched": len(matched),
            "broad": {
                "~all": sum(r.metrics["acc"].last > 0.01 for r in runs),
                "~25%": sum(r.metrics["acc"].last < 0.25 for r in runs),
            },
        }


def perf(page: Any, name: str) -> float:
    return float(page.evaluate(f"window.__mloopPerf.{name}"))


# The goals (ms). Each figure is checked where it is measured, against 5x its goal (the
# machines are shared; benchmarks are not timed tests), and printed for the closing note (-s).
GOALS = {
    "table ready after navigation (10k runs)": 1000,
    "sort 10k runs (max of 3)": 300,
    "filter 10k runs (request + render)": 300,
    "filter 10k runs, ~all match (request + render)": 300,
    "filter 10k runs, ~25% match (request + render)": 300,
    "1M-point metric chart (request + render)": 1000,
}


def record(name: str, ms: float) -> None:
    print(f"UI figure: {name}: {ms:.0f} ms (goal {GOALS[name]} ms)")
    assert ms <= 5 * GOALS[name], f"{name}: {ms:.0f} ms, more than 5x the {GOALS[name]} ms goal"


def test_every_page_loads_without_console_errors(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/")
    page.wait_for_selector("table.projects")
    assert page.locator("table.projects tbody tr").count() == 3  # demo, big, long
    page = ui.open("/projects/1")
    page.wait_for_function(_READY)
    assert page.locator(".count").text_content() == "3 of 3 runs"
    run_id = world["ids"]["run-adam-0.1"]
    page = ui.open(f"/runs/{run_id}")
    page.wait_for_selector("#charts .uplot")
    page.wait_for_selector("#system-charts .uplot")
    assert page.locator("#charts .uplot").count() == 2  # acc, loss
    assert page.locator("#params tbody tr").count() == 3
    assert page.locator("#datasets tbody tr").count() == 1
    page.wait_for_selector("#artifacts .artifact")
    assert page.locator("#artifacts .folder").count() == 3
    page = ui.open(f"/compare/{','.join(world['ids'].values())}")
    page.wait_for_selector("#parcoords")
    page = ui.open("/projects/999")
    page.wait_for_selector(".error-box")  # a missing project is an error on the page, not a crash
    assert "999" in page.locator(".error-box").text_content()
    ui.expected_http_errors(404, 2)  # the project and its table


def test_10k_runs_sort_filter_columns_and_grouping(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/projects/{world['big']}")
    page.wait_for_function(_READY)
    record("table ready after navigation (10k runs)", perf(page, "tableReadyNavMs"))
    assert page.locator(".count").text_content() == "10,000 of 10,000 runs"
    assert page.locator(".vt-row").count() < 100  # virtualized: only what is in view

    sort_ms = []
    page.click('.vt-th[data-col="metrics.acc"]')  # metrics sort highest first
    sort_ms.append(perf(page, "sortMs"))
    assert page.evaluate(_VISIBLE_NAMES, 5) == world["acc_desc"]
    page.click('.vt-th[data-col="metrics.acc"]')
    sort_ms.append(perf(page, "sortMs"))
    assert page.evaluate(_VISIBLE_NAMES, 5) == world["acc_asc"]
    page.click('.vt-th[data-col="params.lr"]')
    sort_ms.append(perf(page, "sortMs"))
    record("sort 10k runs (max of 3)", max(sort_ms))

    page.fill("#filter", FILTER)
    page.press("#filter", "Enter")
    expected = f"{world['matched']:,} of 10,000 runs"
    page.wait_for_function("t => document.querySelector('.count').textContent === t", arg=expected)
    record("filter 10k runs (request + render)", perf(page, "filterMs"))
    assert page.locator("#filter-error").is_hidden()
    for name, flt in BROAD.items():
        page.fill("#filter", flt)
        page.press("#filter", "Enter")
        want = f"{world['broad'][name]:,} of 10,000 runs"
        page.wait_for_function("t => document.querySelector('.count').textContent === t", arg=want)
        record(f"filter 10k runs, {name} match (request + render)", perf(page, "filterMs"))
    page.fill("#filter", FILTER)
    page.press("#filter", "Enter")
    page.wait_for_function("t => document.querySelector('.count').textContent === t", arg=expected)

    page.fill("#filter", "metrics.acc >> 1")
    page.press("#filter", "Enter")
    error = page.locator("#filter-error")
    error.wait_for(state="visible")
    assert error.get_attribute("data-position") == "13"
    assert "position 13" in error.text_content()
    caret = page.locator("#filter-error pre").text_content().split("\n")
    assert caret[0] == "metrics.acc >> 1" and caret[1].index("^") == 13
    assert page.locator(".count").text_content() == expected  # the last good filter stands
    ui.expected_http_errors(400, 1)

    page.fill("#filter", "")
    page.press("#filter", "Enter")
    page.wait_for_function(
        "() => document.querySelector('.count').textContent.startsWith('10,000')"
    )
    assert page.locator("#filter-error").is_hidden()

    page.click("#columns-button")
    assert page.locator('.vt-th[data-col="tags.team"]').count() == 0
    page.check('#column-picker input[data-col="tags.team"]')
    assert page.locator('.vt-th[data-col="tags.team"]').count() == 1
    page.uncheck('#column-picker input[data-col="params.lr"]')
    assert page.locator('.vt-th[data-col="params.lr"]').count() == 0

    page.select_option("#group-by", "params.opt")
    groups = page.locator(".vt-group")
    assert groups.count() == 1  # the second is 5,000 rows down, out of the DOM
    assert groups.nth(0).text_content().strip().startswith("▼ opt = adam")
    assert "(5000)" in groups.nth(0).text_content()
    groups.nth(0).click()  # collapse: the other group moves up
    assert page.locator(".vt-group").count() == 2
    assert page.locator(".vt-group").nth(1).get_attribute("data-group") == "opt = sgd"
    assert float(page.locator(".vt-group").nth(1).evaluate("r => parseFloat(r.style.top)")) == 28

    page.locator(".vt-body").evaluate("b => { b.scrollTop = 100000; }")
    page.wait_for_function("() => document.querySelector('.vt-row[data-row]') !== null")
    assert page.locator(".vt-row").count() < 100


def test_compare_from_the_table(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/projects/1")
    page.wait_for_function(_READY)
    button = page.locator("#compare")
    assert button.is_disabled()
    boxes = page.locator(".vt-row input.sel")
    for i in range(3):
        boxes.nth(i).check()
    assert button.text_content() == "Compare (3)"
    button.click()
    page.wait_for_selector("#parcoords")
    assert page.locator("#parcoords").get_attribute("data-lines") == "3"
    assert page.locator("#parcoords").get_attribute("data-axes") == "4"  # lr, optimizer, acc, loss
    assert page.locator(".legend .legend-item").count() == 3
    diff = page.locator("#param-diff tbody tr")
    assert [diff.nth(i).get_attribute("data-key") for i in range(diff.count())] == [
        "lr",
        "optimizer",
    ]  # epochs is the same everywhere
    page.locator(".only-diff").first.uncheck()
    assert page.locator("#param-diff tbody tr").count() == 3
    assert page.locator("#metric-diff tbody tr").count() == 2  # acc and loss (system apart)
    page.wait_for_selector("#overlay-charts .uplot")
    assert page.locator("#overlay-charts .uplot").count() == 2
    assert page.locator("#overlay-charts .uplot").first.locator(".u-legend .u-series").count() == 4


def test_a_million_point_chart_renders_and_zooms(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/runs/{world['long']}")
    page.wait_for_selector("#charts .uplot")
    record("1M-point metric chart (request + render)", perf(page, "lastChartMs"))
    note = page.locator("#charts .chart-note")
    assert note.text_content().startswith("1,000,000 points")
    box = page.locator("#charts .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.45, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => !document.querySelector('#charts .chart-foot button').hidden")
    zoomed = note.text_content()
    in_range = int(zoomed.split("min/max of ")[1].rstrip(")").replace(",", ""))
    assert 50_000 < in_range < 150_000  # about a tenth of the history, at finer detail
    page.click("#charts .chart-foot button")
    assert note.text_content().endswith("min/max of 1,000,000)")


def test_artifact_previews(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open(f"/runs/{world['ids']['run-adam-0.1']}")
    page.wait_for_selector("#artifacts .artifact")
    page.click("#artifacts .folder >> text=eval/")
    page.click('#artifacts .file[data-path="eval/confusion.csv"]')
    page.wait_for_selector("#preview table")
    assert page.locator("#preview tbody tr").count() == 3
    page.click('#artifacts .file[data-path="eval/importance.parquet"]')
    page.wait_for_selector("#preview >> text=First 3 rows of 3")
    assert page.locator("#preview thead th").all_text_contents() == ["feature", "importance"]
    page.click(".artifact-path >> text=artifacts")
    page.click("#artifacts .folder >> text=plots/")
    page.click('#artifacts .file[data-path="plots/curve.png"]')
    page.wait_for_function(
        "() => { const i = document.querySelector('#preview img'); return i && i.naturalWidth; }"
    )
    assert page.locator("#preview img").evaluate("i => i.naturalWidth") == 48
    page.click(".artifact-path >> text=artifacts")
    page.click('#artifacts .file[data-path="notes.txt"]')
    page.wait_for_selector("#preview pre")
    assert page.locator("#preview pre").text_content().startswith("best run so far")


def test_screenshots_for_review(browser: Any, world: dict[str, Any], tmp_path: Path) -> None:
    """Not a check of pixels: it writes the pages' screenshots where a reviewer can look."""
    page = Page(browser, world)
    for name, fragment in [
        ("runs", f"/projects/{world['big']}"),
        ("run", f"/runs/{world['ids']['run-adam-0.1']}"),
        ("compare", f"/compare/{','.join(world['ids'].values())}"),
    ]:
        p = page.open(fragment)
        p.wait_for_load_state("networkidle")
        p.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert page.errors == []
    page.close()
