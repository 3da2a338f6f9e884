"""Every route of the MLflow dialect under malformed input: wrong types, missing and unknown
arguments, ids that do not exist, broken JSON, path traversal. Never a 5xx; always MLflow's error
JSON with a 4xx (or the NOT_IMPLEMENTED of a refused call)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _asgi import in_process_client


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    from mloop.artifacts import BlobStore
    from mloop.server import create_app
    from mloop.server._mlflow import mount_mlflow
    from mloop.store import create_store

    root: Path = tmp_path_factory.mktemp("mlflow-fuzz")
    store = create_store(f"sqlite:///{root / 'm.db'}")
    app = create_app(store)
    if not any(getattr(r, "path", "").startswith("/api/2.0/mlflow/") for r in app.routes):
        mount_mlflow(app)
    app.state.artifacts = BlobStore(root / "a")
    project = store.create_project("fuzz")
    run = store.create_run(project.id)
    store.create_registered_model("fuzz-model")
    client = in_process_client(app)
    ids = {"experiment_id": project.id, "run_id": run.id, "name": "fuzz-model"}
    try:
        yield client, ids
    finally:
        client.close()
        store.close()


def _bodies(ids: dict[str, str]) -> list[Any]:
    good = {
        **ids,
        "run_uuid": ids["run_id"],
        "key": "k",
        "value": "v",
        "version": "1",
        "alias": "a",
        "source": f"runs:/{ids['run_id']}/model",
    }
    weird: list[Any] = [
        {},
        good,
        {k: 12345678901234567890 for k in good},
        {k: ["a", {"b": None}] for k in good},
        {k: {"nested": True} for k in good},
        {k: None for k in good},
        {k: "\x00" + "é" * 3 for k in good},
        {k: "x" * 70_000 for k in good},
        {
            **good,
            "metrics": [{"key": "m", "value": "nope", "timestamp": "t", "step": 1.5}],
            "params": "not-a-list",
            "tags": [{"key": None}],
            "datasets": [{"dataset": "x"}, {"tags": 5}],
            "models": [{"model_id": 3}],
            "experiment_ids": "0",
            "max_results": -4,
            "page_token": "%%%",
            "filter": "metrics.acc >>> 'x",
            "order_by": [{"field_name": 3}],
            "status": "EXPLODED",
            "start_time": "yesterday",
        },
        {**good, "experiment_ids": [ids["experiment_id"]], "max_results": 10**9},
        {**good, "experiment_id": "../../etc", "run_id": "../" * 5},
        [1, 2, 3],
        "just a string",
    ]
    return weird


def _query(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"junk": str(body)}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


def test_no_route_answers_5xx(setup: tuple[httpx.Client, dict[str, str]]) -> None:
    from mloop.server._mlflow import ROUTES
    from mloop.server._mlflow._artifacts import PROXY_ROUTES

    client, ids = setup
    paths = []
    for r in ROUTES:
        base = f"/api/{r.version}/mlflow{r.path}"
        for model_id in (f"m-{ids['run_id']}", "m-" + "0" * 32, "nope", "m-..%2F..%2Fx"):
            paths.append((r.method, base.replace("{model_id}", model_id).replace("{tag_key}", "t")))
    for r in PROXY_ROUTES:
        paths.append(
            (
                r.method,
                f"/api/2.0/mlflow-artifacts{r.path}".replace("{location:path}", "1/x/artifacts/f"),
            )
        )
    location = f"{ids['experiment_id']}/{ids['run_id']}/artifacts"
    for suffix in ("f.txt", "../../../etc/passwd", "%2e%2e/%2e%2e/x", "", "a//b/./c"):
        for method in ("GET", "PUT"):
            paths.append((method, f"/api/2.0/mlflow-artifacts/artifacts/{location}/{suffix}"))
    paths.append(("GET", "/api/2.0/mlflow-artifacts/artifacts/9/" + "f" * 32 + "/artifacts/x"))
    failures = []
    for (method, path), body in itertools.product(sorted(set(paths)), _bodies(ids)):
        if method == "GET":
            query = _query(body)
            if sum(len(v) for v in query.values()) > 60_000:
                continue  # past what a URL carries
            resp = client.request(method, path, params=query)
        elif method == "PUT":
            resp = client.request(method, path, content=json.dumps(body).encode())
        else:
            resp = client.request(method, path, content=json.dumps(body).encode())
        if resp.status_code >= 500 and resp.status_code != 501:
            failures.append(
                f"{method} {path} {str(body)[:80]} -> {resp.status_code} {resp.text[:200]}"
            )
        elif resp.status_code >= 400:
            doc = resp.json()
            assert set(doc) == {"error_code", "message"}, (path, doc)
    raw = client.post("/api/2.0/mlflow/runs/log-metric", content=b'{"run_id": ')
    assert raw.status_code == 400 and raw.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not failures, "\n".join(failures[:20])


def test_the_dialect_never_imports_mlflow(tmp_path: Path) -> None:
    """The server speaks MLflow's protocol from its own code: the mlflow package is a test tool."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mloop.server import create_app\n"
        "from mloop.server._mlflow import mount_mlflow\n"
        "from mloop.store import create_store\n"
        f"app = create_app(create_store('sqlite:///{tmp_path / 'm.db'}'))\n"
        "mount_mlflow(app) if not any(getattr(r, 'path', '').startswith('/api/2.0/mlflow/')"
        " for r in app.routes) else None\n"
        "loaded = sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
