"""The web UI's data routes (``/api/v1/ui/...``) and its static pages, in-process: the columnar
runs table, filter matches and their position-aware errors, metric step ranges, artifact previews
and what ``--auth`` guards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _ui_data import long_metric, many_runs, rich_project

from _live_server import LiveServer
from mloop.artifacts import BlobStore
from mloop.server import create_app
from mloop.store import Store, create_store


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ui")
    store = create_store(f"sqlite:///{root / 'm.db'}")
    blobs = BlobStore(str(root / "artifacts"))
    ids = rich_project(store, blobs)
    big = many_runs(store, 300)
    long_id = long_metric(store, 100_000)
    server = LiveServer(create_app(store, artifacts=blobs))
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield {"store": store, "client": client, "ids": ids, "big": big, "long": long_id}
    store.close()


def test_the_pages_are_served_and_root_redirects(world: dict[str, Any]) -> None:
    c = world["client"]
    r = c.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    page = c.get("/ui/")
    assert page.status_code == 200 and '<script type="module" src="js/app.js">' in page.text
    assert "cdn" not in page.text.lower() and "http" not in page.text.replace("http-equiv", "")
    for asset in ("js/app.js", "js/runs.js", "style.css", "vendor/uplot/uPlot.iife.min.js"):
        assert c.get(f"/ui/{asset}").status_code == 200, asset


def test_the_table_is_one_columnar_answer(world: dict[str, Any]) -> None:
    store: Store = world["store"]
    doc = world["client"].get(f"/api/v1/ui/projects/{world['big']}/table").json()
    assert doc["count"] == 300 and not doc["truncated"] and len(doc["id"]) == 300
    assert doc["start_ms"] == sorted(doc["start_ms"], reverse=True)  # newest first
    assert set(doc["params"]) == {"lr", "depth", "opt"} and set(doc["metrics"]) == {"acc", "loss"}
    i = 17
    run = store.get_run(doc["id"][i])
    assert doc["name"][i] == run.name and doc["tags"]["team"][i] == run.tags["team"]
    assert doc["params"]["lr"][i] == run.params["lr"]
    assert doc["metrics"]["acc"][i] == run.metrics["acc"].last


def test_a_filter_answers_ids_or_an_error_with_its_position(world: dict[str, Any]) -> None:
    c, store = world["client"], world["store"]
    text = "params.opt = 'adam' and metrics.acc > 0.5"
    ids = c.get(f"/api/v1/ui/projects/{world['big']}/match", params={"filter": text}).json()
    expected = {r.id for r in store.search_runs(world["big"], filter=text, max_results=1000).items}
    assert set(ids["ids"]) == expected and 0 < len(expected) < 300
    bad = c.get(f"/api/v1/ui/projects/{world['big']}/match", params={"filter": "metrics.acc >> 1"})
    assert bad.status_code == 400
    err = bad.json()
    assert err["details"]["position"] == 13 and "position 13" in err["message"]
    missing = c.get("/api/v1/ui/projects/999/table")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_metric_range_is_sliced_then_downsampled(world: dict[str, Any]) -> None:
    c = world["client"]
    url = f"/api/v1/ui/runs/{world['long']}/metric"
    whole = c.get(url, params={"key": "signal", "max_points": 1000}).json()
    assert whole["total"] == 100_000 and whole["downsampled"] and len(whole["step"]) <= 1000
    assert max(whole["value"]) == 5.0  # the spike survives min/max downsampling
    zoom = c.get(url, params={"key": "signal", "max_points": 1000, "min_step": 49_900,
                              "max_step": 50_200}).json()  # fmt: skip
    assert zoom["in_range"] == 301 and not zoom["downsampled"]
    assert zoom["step"] == list(range(49_900, 50_201))  # every point of the range
    h = world["store"].get_metric_history(world["long"], "signal")
    assert np.array_equal(zoom["value"], h.value[49_900:50_201])
    bad = c.get(url, params={"key": "signal", "max_points": 1})
    assert bad.status_code == 400 and "`max_points` must be an int in [2, 100000]" in bad.text
    assert c.get(url).status_code == 400  # no key


def test_previews_of_text_image_csv_parquet_and_binary(world: dict[str, Any]) -> None:
    c = world["client"]
    run_id = world["ids"]["run-adam-0.1"]

    def preview(path: str) -> dict[str, Any]:
        r = c.get(f"/api/v1/ui/runs/{run_id}/preview", params={"path": path})
        assert r.status_code == 200, r.text
        return r.json()

    assert preview("notes.txt")["text"].startswith("best run so far")
    image = preview("plots/curve.png")
    assert image["kind"] == "image" and image["mime"] == "image/png"
    assert c.get(f"/api/v1/blobs/{image['sha256']}").content.startswith(b"\x89PNG")
    csv = preview("eval/confusion.csv")
    assert csv["columns"] == ["label", "predicted", "count"] and len(csv["rows"]) == 3
    pq = preview("eval/importance.parquet")
    assert pq["columns"] == ["feature", "importance"] and pq["total_rows"] == 3
    assert pq["rows"][0] == ["a", 0.5]
    assert preview("model/weights.bin")["kind"] == "binary"
    gone = c.get(f"/api/v1/ui/runs/{run_id}/preview", params={"path": "nope.txt"})
    assert gone.status_code == 404


def test_under_auth_the_pages_are_open_and_the_data_is_not(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    p = store.get_or_create_project("p")
    with LiveServer(create_app(store, auth=True)) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/ui/js/app.js").status_code == 200
        assert c.get(f"/api/v1/ui/projects/{p.id}/table").status_code == 401
        assert c.get("/api/v1/projects").status_code == 401
    store.close()


@pytest.mark.slow
@pytest.mark.no_mutation
def test_mloop_ui_serves_the_local_store_on_loopback(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from _live_server import free_port
    from _server_process import clean_env

    home = tmp_path / "home"
    store = create_store(f"sqlite:///{home / 'mloop.db'}")
    store.get_or_create_project("local-project")
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mloop", "ui", "--no-open", "--port", str(port)],
        env=clean_env(MLOOP_HOME=str(home)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mloop ui did not start"
            time.sleep(0.05)
        assert httpx.get(f"{url}/ui/").status_code == 200
        names = [p["name"] for p in httpx.get(f"{url}/api/v1/projects").json()]
        assert names == ["local-project"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert f"open http://127.0.0.1:{port}/ui/" in out
