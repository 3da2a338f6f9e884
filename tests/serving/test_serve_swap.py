"""Hot swap: the server follows the alias it serves, under load, without a failed request."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from _harness import build_models, serve
from sklearn.linear_model import LogisticRegression

import mloop

pytestmark = pytest.mark.no_mutation


class Load:
    """Threads posting single rows as fast as they are answered; every answer is kept."""

    def __init__(self, url: str, body: dict[str, Any], threads: int = 4) -> None:
        self.url, self.body = url, body
        self.results: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    r = client.post("/invocations", json=self.body)
                    item = (time.monotonic(), r.status_code, r.headers.get("x-mloop-model-version"))
                except httpx.HTTPError as exc:
                    item = (time.monotonic(), -1, repr(exc))
                with self._lock:
                    self.results.append(item)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def wait_for_version(self, version: str, timeout: float = 60.0) -> float:
        """Seconds from now until a response came from ``version``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self._lock:
                if any(v == version and ts > start for ts, _, v in self.results[-20:]):
                    return time.monotonic() - start
            time.sleep(0.01)
        raise AssertionError(f"{version} never answered; last: {self.results[-5:]}")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "home"
    return {**build_models(home), "home": home}


def test_alias_moves_swap_the_model_under_load_with_no_failed_request(world: dict) -> None:
    reg, X = world["reg"], world["X"]
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:1].values.tolist()}}
    with serve(world["home"], "models:/bc@champion") as server, Load(server.url, body) as load:
        load.wait_for_version("bc/1")
        for target in (2, 1, 2):
            reg.set_alias("bc", "champion", target)
            load.wait_for_version(f"bc/{target}")
        reg.rollback("bc", "champion")  # back to 1
        load.wait_for_version("bc/1")
        time.sleep(0.3)
    statuses = {code for _, code, _ in load.results}
    assert statuses == {200}, [r for r in load.results if r[1] != 200][:5]
    assert len(load.results) > 50
    versions = [v for _, _, v in load.results]
    assert {"bc/1", "bc/2"} <= set(versions)
    # the version only changes at a swap: answers come in runs, not interleaved at random
    changes = sum(1 for a, b in itertools.pairwise(versions) if a != b)
    assert changes <= 4 * 4 + 4  # 4 moves, 4 client threads each seeing at most a few overlaps
    swaps = reg.store.read_events(types=["serving_swapped"])
    assert [e.payload["to"] for e in swaps] == ["bc/2", "bc/1", "bc/2", "bc/1"]
    assert all(e.subject == "models/bc" and e.payload["from"] for e in swaps)


def test_a_version_that_fails_to_load_is_not_swapped_in(world: dict) -> None:
    reg, X = world["reg"], world["X"]
    # version 3: the same package, with its model file corrupted in the artifact store
    v3 = reg.register(world["v2"].artifact_uri, "bc")
    package = reg.download(v3)
    model_file = next(p for p in package.iterdir() if p.name.startswith("model."))
    folder = v3.artifact_uri.split(f"{v3.source_run_id}/", 1)[1]
    blob = reg.store.get_artifact(v3.source_run_id, f"{folder}/{model_file.name}").sha256
    blob_path = next((world["home"] / "artifacts").rglob(blob))
    blob_path.chmod(0o644)
    blob_path.write_bytes(b"not a model")
    shutil.rmtree(package)  # the server would otherwise find the verified copy in the cache
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:1].values.tolist()}}
    with serve(world["home"], "models:/bc@champion") as server:
        reg.set_alias("bc", "champion", v3.version)
        deadline = time.monotonic() + 30
        while not reg.store.read_events(types=["serving_swap_failed"]):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        r = server.post_json("/invocations", body)
        assert r.status_code == 200
        assert r.headers["x-mloop-model-version"] == "bc/1"
        (failed,) = reg.store.read_events(types=["serving_swap_failed"])
        assert failed.payload["kept"] == "bc/1"
        assert failed.payload["uri"] == "models:/bc@champion"
        # a good version after the bad one is taken (not v2: it shares v3's corrupted blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other = LogisticRegression(C=0.5, max_iter=300).fit(X, world["y"])
        v4 = mloop.log_model(other, "bc", input_example=X.head(5), registry=reg)
        reg.set_alias("bc", "champion", v4.version)
        deadline = time.monotonic() + 30
        while server.post_json("/invocations", body).headers["x-mloop-model-version"] != "bc/4":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = server.client.get("/metrics").text
        assert 'mloop_model_swaps_total{result="failed",slot="main"} 1.0' in metrics


def test_every_worker_follows_the_alias_and_metrics_add_up_across_workers(world: dict) -> None:
    reg, X = world["reg"], world["X"]
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:1].values.tolist()}}
    # uvicorn's workers share the socket; keep-alive off so requests spread over both
    with (
        serve(world["home"], "models:/bc@champion", "--workers", "2") as server,
        httpx.Client(base_url=server.url, headers={"Connection": "close"}) as c,
    ):
        for _ in range(40):
            assert c.post("/invocations", json=body).status_code == 200
        # both workers are up (each reports the version it serves) before the alias moves
        deadline = time.monotonic() + 60
        while len(_serving_pids(c.get("/metrics").text, "1")) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        reg.set_alias("bc", "champion", 2)
        deadline = time.monotonic() + 30
        while True:
            seen = [
                c.post("/invocations", json=body).headers["x-mloop-model-version"]
                for _ in range(20)
            ]
            if set(seen) == {"bc/2"}:
                break
            assert time.monotonic() < deadline, (
                seen,
                [
                    (e.type, e.payload)
                    for e in reg.store.read_events(types=["serving_swapped", "serving_swap_failed"])
                ],
                server.output(),
            )
            time.sleep(0.1)
        # 20 answers in a row from bc/2 may all have come from one worker (the kernel picks who
        # accepts): wait until every worker reports bc/2 itself
        while len(_serving_pids(metrics := c.get("/metrics").text, "2")) < 2:
            assert time.monotonic() < deadline, (metrics, server.output())
            time.sleep(0.1)
    lines = [ln for ln in metrics.splitlines() if ln.startswith("mloop_requests_total{")]
    ok = [ln for ln in lines if 'code="200"' in ln and 'endpoint="invocations"' in ln]
    assert len(ok) == 1 and float(ok[0].rsplit(" ", 1)[1]) >= 60  # summed over the workers
    serving = [
        ln
        for ln in metrics.splitlines()
        if ln.startswith("mloop_model_version{") and ln.endswith(" 1.0")
    ]
    pids = {ln.split('pid="', 1)[1].split('"', 1)[0] for ln in serving}
    assert len(pids) == 2  # both workers report
    assert all('version="2"' in ln for ln in serving), serving
    swaps = reg.store.read_events(types=["serving_swapped"])
    assert len({e.payload["pid"] for e in swaps}) == 2  # each worker swapped on its own


def _serving_pids(metrics: str, version: str) -> set[str]:
    return {
        ln.split('pid="', 1)[1].split('"', 1)[0]
        for ln in metrics.splitlines()
        if ln.startswith("mloop_model_version{")
        and f'version="{version}"' in ln
        and ln.endswith(" 1.0")
    }
