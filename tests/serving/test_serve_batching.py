"""Micro-batching: concurrent requests share model calls, counted in rows, never past the size."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest
from _harness import build_models, serve

pytestmark = pytest.mark.no_mutation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("serve-batch") / "home"
    return {**build_models(home), "home": home}


def _body(X: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(X.columns), "data": X.values.tolist()}}


def _histogram(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count"):
            out["count"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_sum"):
            out["sum"] = float(line.rsplit(" ", 1)[1])
    return out


def test_concurrent_requests_are_predicted_together_each_getting_its_own_rows(
    world: dict,
) -> None:
    X, pipe = world["X"], world["pipe"]
    sizes = [1, 3, 1, 2, 5, 1, 1, 4] * 12  # 96 requests, 216 rows
    starts = [sum(sizes[:i]) % (len(X) - 5) for i in range(len(sizes))]
    with serve(
        world["home"], "models:/bc@champion", "--max-batch-size", "8", "--max-wait-ms", "30"
    ) as server:

        def call(i: int) -> tuple[int, list[int], str]:
            part = X.iloc[starts[i] : starts[i] + sizes[i]]
            with httpx.Client(base_url=server.url, timeout=30) as c:
                r = c.post("/invocations", json=_body(part))
            return r.status_code, r.json()["predictions"], r.headers["x-mloop-model-version"]

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(call, range(len(sizes))))
        for i, (status, predictions, version) in enumerate(answers):
            assert status == 200 and version == "bc/1"
            part = X.iloc[starts[i] : starts[i] + sizes[i]]
            assert predictions == pipe.predict(part).tolist(), i

        # a request larger than the batch is cut into batches and joined back in order
        big = X.iloc[100:120]
        r = server.post_json("/invocations", _body(big))
        assert r.json()["predictions"] == pipe.predict(big).tolist()

        hist = _histogram(server.client.get("/metrics").text, "mloop_predict_batch_rows")
    total_rows = sum(sizes) + len(big)
    assert hist["sum"] == total_rows  # every row predicted exactly once
    assert hist["8.0"] == hist["count"]  # no batch over the maximum
    assert hist["count"] < len(sizes)  # requests were merged: fewer calls than requests
    assert hist["count"] >= total_rows / 8


def test_load_past_the_queue_budget_gets_503_with_retry_after(world: dict) -> None:
    # the toy model stalls 3 s on a = -1; behind it, the queue holds at most 2 rows
    with serve(
        world["home"],
        "models:/toy@live",
        "--max-batch-size",
        "2",
        "--max-queue-rows",
        "2",
        "--max-wait-ms",
        "1",
    ) as server:

        def call(a: float) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                return c.post("/invocations", json={"dataframe_records": [{"a": a, "b": "k"}]})

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            stall = pool.submit(call, -1.0)
            import time

            time.sleep(0.5)  # the stalled request is in the model now
            rest = [pool.submit(call, float(i)) for i in range(10)]
            answers = [f.result() for f in rest]
        assert stall.result().status_code == 200
        refused = [r for r in answers if r.status_code == 503]
        served = [r for r in answers if r.status_code == 200]
        assert refused and served, [r.status_code for r in answers]
        assert len(refused) + len(served) == 10
        for r in refused:
            assert r.headers["retry-after"] == "1"
            assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        for r in served:
            (value,) = r.json()["predictions"]
            assert value in {2.0 * i for i in range(10)}
