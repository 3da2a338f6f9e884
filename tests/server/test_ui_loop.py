"""The Monitoring, Pipelines and Loop timeline pages in a real Chromium against ``mloop server`` as
a process, over the history of a real seeded replay (``mloop loop scenario`` + ``mloop loop
replay``: 7 windows, a covariate shift from window 3, two retrains, one refused and one promoted
candidate) plus a pipeline run written through the store API with a cached, a failed and a
skipped step. Every value the tests compare comes from the store. Screenshots go to the folder
``MLOOP_UI_SHOTS`` names, when it is set."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ui_page import Page, shot

from _server_process import ServerProcess
from mloop.store import PipelineRun, StepRun, create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]

BUSY = 520  # the timeline page reads 500 events at a time
SHA = {
    k: c * 64 for k, c in {"raw": "a", "clean": "b", "feat": "c", "model": "d", "lit": "e"}.items()
}


def _mloop(*args: str, home: Path, cwd: Path) -> None:
    env = {**os.environ, "MLOOP_HOME": str(home)}
    for k in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_SERVER_URL", "MLOOP_TOKEN"):
        env.pop(k, None)
    subprocess.run(
        [sys.executable, "-m", "mloop", *args], cwd=cwd, env=env, check=True, capture_output=True
    )


def _synthetic_run(store: Any) -> str:
    """A run of 4 steps: load (cache hit) -> clean (finished) -> fit (failed after 3 attempts) ->
    report (skipped)."""
    rid = "f" * 32
    store.start_pipeline_run(
        PipelineRun(id=rid, pipeline="synthetic", status="running", trigger="manual",
                    code_ref="tests.flows:synthetic", start_ms=1_000, reason="by hand")
    )  # fmt: skip
    steps = [
        ("load", "cached", {"path": SHA["lit"]}, {"output": SHA["raw"]}, True, 0, None),
        ("clean", "finished", {"frame": SHA["raw"]}, {"output": SHA["clean"]}, False, 1, None),
        ("fit", "failed", {"frame": SHA["clean"], "seed": SHA["lit"]}, {}, False, 3,
         "ValueError: the label column is constant"),
        ("report", "skipped", {"model": SHA["model"], "frame": SHA["clean"]}, {}, False, 0, None),
    ]  # fmt: skip
    for i, (name, status, inputs, outputs, hit, attempts, error) in enumerate(steps):
        store.put_step_run(
            StepRun(run_id=rid, name=name, step=f"tests.flows:{name}", status=status,
                    inputs=inputs, outputs=outputs, output_formats={k: "json" for k in outputs},
                    cache_hit=hit, attempts=attempts,
                    start_ms=1_000 + 10 * i, end_ms=1_005 + 10 * i, error=error)
        )  # fmt: skip
    store.finish_pipeline_run(rid, status="failed", error="step fit failed", end_ms=1_100)
    return rid


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui-loop")
    home = root / "home"
    _mloop("loop", "scenario", "covariate_shift", "scen", "--windows", "7", "--change", "3",
           "--seed", "0", home=home, cwd=root)  # fmt: skip
    _mloop("loop", "replay", "scen", "--model", "churn", home=home, cwd=root)
    uri, art = f"sqlite:///{home / 'mloop.db'}", str(home / "artifacts")
    store = create_store(uri)
    synthetic = _synthetic_run(store)
    store.create_registered_model("busy")  # more history than one page of the timeline
    for i in range(BUSY):
        store.append_event("promotion_refused", "models/busy", payload={"version": i + 1})
    facts = {
        "drift": store.list_monitor_results("churn-drift"),
        "alerts": store.list_monitor_alerts(),
        "runs": store.list_pipeline_runs("retrain"),
        "firings": store.list_trigger_firings(),
        "champion": store.get_alias("churn", "champion").version,
        "events": store.read_events(after_id=0, limit=1000),
    }
    store.close()
    with ServerProcess(root, store_uri=uri, artifact_uri=art) as server:
        yield {"url": server.url, "synthetic": synthetic, **facts}


def test_monitors_heatmap_charts_alerts_and_report(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/monitors")
    page.wait_for_selector("table.monitors")
    assert sorted(page.locator("table.monitors tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.monitor)")) == ["churn-drift", "churn-performance"]  # fmt: skip
    shot(page, "monitors")
    page.click("table.monitors a:text-is('churn-drift')")
    page.wait_for_selector(".report-frame[data-window]")
    cells = page.locator("td.hm-cell").evaluate_all(
        "cs => cs.map(c => [c.dataset.col, +c.dataset.window, c.dataset.drifted, c.dataset.stat])"
    )
    expected = []
    for r in world["drift"]:
        for name, col in r.result["drift"]["columns"].items():
            stat = col["p_value"] if col["p_value"] is not None else col["statistic"]
            expected.append([name, r.window_index, str(col["drifted"]).lower(), str(stat)])
    assert sorted(cells) == sorted(expected)  # every cell is the stored verdict and score
    drifted = {(c[0], c[1]) for c in cells if c[2] == "true"}
    assert ("x0", 3) in drifted and all(w >= 3 for _, w in drifted)
    assert page.locator(".chart[data-key='accuracy'] canvas").count() >= 1  # CBPE estimates
    alerts = [a for a in world["alerts"] if a.monitor == "churn-drift"]
    assert page.locator("table.alerts tbody tr").count() == len(alerts) == 1
    assert alerts[0].payload["rule"] in page.locator("table.alerts").inner_text()
    last = world["drift"][-1].window_index
    assert page.locator(".report-frame").get_attribute("data-window") == str(last)
    page.click("td.hm-cell[data-col='x0'][data-window='3']")
    page.wait_for_function("() => document.querySelector('.report-frame').dataset.window === '3'")
    assert "#/monitors/churn-drift/3" in page.url
    report = page.frame_locator(".report-frame")
    assert "x0" in report.locator("body").inner_text()
    shot(page, "monitor")


def test_pipeline_runs_dag_steps_and_trigger(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/pipelines")
    page.wait_for_selector("table.pipelines")
    assert "retrain" in page.locator("table.pipelines").inner_text()
    page.click("table.pipelines a:text-is('retrain')")
    page.wait_for_selector("table.pipeline-runs")
    assert page.locator("table.pipeline-runs tbody tr").count() == len(world["runs"]) == 3
    firing = next(f for f in world["firings"] if f.details.get("monitor") == "churn-drift")
    page.click(f"a[href='#/pipeline-runs/{firing.run_id}']")
    page.wait_for_selector("svg.dag")
    nodes = page.locator(".dag-node").evaluate_all(
        "ns => ns.map(n => [n.dataset.step, n.dataset.status])"
    )
    steps = ["gather", "validate", "train", "check", "promote_if_passed"]
    assert sorted(nodes) == sorted([s, "finished"] for s in steps)
    edges = page.locator(".dag-edge").evaluate_all(
        "es => es.map(e => e.dataset.from + '>' + e.dataset.to)"
    )
    assert {"gather>validate", "gather>train", "train>check", "check>promote_if_passed"} <= set(
        edges
    )
    card = page.locator(".firing").inner_text()
    assert "churn-drift, window 3" in card and "x0" in card and firing.trigger in card
    page.click(".dag-node[data-step='train']")
    details = page.locator(".step-details[data-step='train']").inner_text()
    assert "models:/churn/2" in details  # the candidate this run registered
    shot(page, "pipeline-run")
    page = ui.open(f"/pipeline-runs/{world['synthetic']}")
    page.wait_for_selector("svg.dag")
    status = dict(page.locator(".dag-node").evaluate_all(
        "ns => ns.map(n => [n.dataset.step, n.dataset.status + (n.dataset.cacheHit === 'true' ? '+hit' : '')])"))  # fmt: skip
    assert status == {
        "load": "cached+hit",
        "clean": "finished",
        "fit": "failed",
        "report": "skipped",
    }
    assert page.locator(".dag-node.cache-hit .dag-badge").count() == 1
    page.click(".dag-node[data-step='fit']")
    assert "the label column is constant" in page.locator(".step-error").inner_text()
    assert "attempts 3" in page.locator(".dag-node[data-step='fit']").text_content()
    shot(page, "pipeline-run-failed")


def test_timeline_shows_the_promotion_and_the_alert_behind_it(
    ui: Page, world: dict[str, Any]
) -> None:
    page = ui.open("/timeline")
    page.click("a[href='#/timeline/churn']")
    page.wait_for_selector("svg.timeline")
    rows = page.locator("table.tl-list tbody tr")
    types = rows.evaluate_all("rs => rs.map(r => r.dataset.type)")
    assert "step_finished" not in types and types.count("monitor_result") == 14
    champion = world["champion"]
    promoted = page.locator(f"tr[data-type='alias_set']:has-text('champion -> v{champion}')")
    assert promoted.count() == 1
    # the alert that led to it: the firing of the run that registered the champion
    events = world["events"]
    reg = next(
        e for e in events if e.type == "version_registered" and e.payload["version"] == champion
    )
    start = max(
        (e for e in events if e.type == "trigger_fired" and e.id < reg.id), key=lambda e: e.id
    )
    alert_event = start.payload["details"]["event_id"]
    alert_row = page.locator(f"tr[data-event='{alert_event}']")
    assert alert_row.get_attribute("data-type") == "monitor_alert"
    assert "performance.accuracy" in alert_row.inner_text()
    assert page.locator(f".tl-mark[data-event='{alert_event}']").count() == 1
    assert page.locator(f"tr[data-event='{start.id}'] a").get_attribute("href") == (
        f"#/pipeline-runs/{start.payload['run_id']}"
    )
    assert page.locator("tr[data-type='promotion_refused']").count() == 1
    shot(page, "timeline")
    page.select_option("#tl-lane", "alerts")
    assert page.locator("table.tl-list tbody tr").count() == 2
    page.click(f"tr[data-event='{alert_event}'] a")
    page.wait_for_selector(".report-frame[data-window]")
    assert page.locator(".report-frame").get_attribute("data-window") == str(
        start.payload["details"]["window_index"]
    )


def test_empty_and_error_states(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/monitors/nope")
    page.wait_for_selector(".error-box")
    assert "has stored no window" in page.locator(".error-box").inner_text()
    page = ui.open("/pipeline-runs/" + "0" * 32)
    page.wait_for_selector(".error-box")
    page = ui.open("/timeline/nope")
    page.wait_for_selector(".error-box")
    ui.expected_http_errors(404, 4)  # the run page asks for the run and its steps at once


def test_timeline_reads_older_events_page_by_page(ui: Page, world: dict[str, Any]) -> None:
    page = ui.open("/timeline/busy")
    page.wait_for_selector("svg.timeline")
    rows = page.locator("table.tl-list tbody tr")
    assert rows.count() == 500 and "v520 not promoted" in rows.first.inner_text()
    assert "older ones not loaded" in page.locator(".title-row .count").inner_text()
    page.click("#tl-older")
    total = BUSY + 1  # and the model's creation
    page.wait_for_function(
        f"() => document.querySelectorAll('table.tl-list tbody tr').length === {total}"
    )
    assert "model busy created" in rows.last.inner_text()
    assert "v1 not promoted" in rows.nth(total - 2).inner_text()
    page.wait_for_selector("#tl-older", state="hidden")
