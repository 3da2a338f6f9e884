"""``mloop server`` as a real process over a real socket, with clients in other processes pointed at
it by ``MLOOP_SERVER_URL`` alone: the tracking SDK, artifacts, datasets, the registry and the CLI end
to end, and a run that keeps logging while the server is killed (SIGKILL) and restarted: nothing
``log`` accepted is lost and nothing is written twice."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from _server_process import ServerProcess, clean_env
from mloop.artifacts import BlobStore
from mloop.store import create_store

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]


def _client(
    code: str, server: ServerProcess, cwd: Path, *args: str, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh process whose only mloop setting is the server's URL."""
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=clean_env(MLOOP_SERVER_URL=server.url, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _mloop(server: ServerProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mloop", *args],
        env=clean_env(MLOOP_SERVER_URL=server.url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


_SDK = """
import json
import blake3
import numpy as np, pandas as pd
import mloop

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
with open("model.pkl", "wb") as fh:
    fh.write(b"weights " * 1000)
with mloop.start_run(project="e2e", name="over-http", config={"C": 1.0}) as run:
    for step in range(500):
        run.log({"loss": 1 / (step + 1), "acc": step / 500}, step=step)
    run.set_tags({"team": "growth"})
    run.log_artifact("model.pkl", artifact_path="weights")
    ds = run.log_dataset(X, name="train")
client = mloop.Client()
history = client.get_metric_history(run.id, "loss")
with client.open_artifact(run.id, "weights/model.pkl") as fh:
    back = fh.read()
print(json.dumps({
    "run_id": run.id,
    "model_sha": "blake3-" + blake3.blake3(open("model.pkl", "rb").read()).hexdigest(),
    "read_back": back == open("model.pkl", "rb").read(),
    "dataset": ds.sha256,
    "history": len(history),
    "artifacts": sorted(e.path for e in client.list_artifacts(run.id)),
}))
"""


def test_tracking_artifacts_and_the_cli_against_a_server_process(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    with ServerProcess(
        srv,
        store_uri=f"sqlite:///{srv / 'server.db'}",
        artifact_uri=str(srv / "artifacts"),
        args=("--workers", "2"),  # the app factory path: each worker builds its own app
    ) as server:
        client_dir = tmp_path / "client"
        proc = _client(_SDK, server, client_dir)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["history"] == 500 and out["read_back"]
        assert out["artifacts"] == ["weights/model.pkl"]

        runs = _mloop(server, client_dir, "runs", "list", "e2e", "--json")
        assert runs.returncode == 0, runs.stderr
        assert out["run_id"] in runs.stdout
        shown = _mloop(server, client_dir, "runs", "show", out["run_id"][:10])
        assert shown.returncode == 0 and "over-http" in shown.stdout, shown.stderr
        assert _mloop(server, client_dir, "projects", "list").stdout.count("e2e") == 1
        # garbage collection through the server: what no run references, and only that
        orphan, _ = BlobStore(server.url).put_bytes(b"logged by nobody")
        dry = _mloop(server, client_dir, "gc", "--min-age-s", "0", "--json")
        assert dry.returncode == 0, dry.stderr
        assert [g["sha256"] for g in json.loads(dry.stdout)["unreferenced"]] == [orphan]
        assert _mloop(server, client_dir, "gc", "--min-age-s", "0", "--delete").returncode == 0
        assert not BlobStore(server.url).exists(orphan)
        assert BlobStore(server.url).exists(out["model_sha"])

    # Everything landed in the server's store and artifact folder; the client kept nothing.
    store = create_store(f"sqlite:///{srv / 'server.db'}")
    try:
        run = store.get_run(out["run_id"])
        assert run.status == "finished" and run.params == {"C": "1.0"}
        assert run.tags["team"] == "growth"
        assert len(store.get_metric_history(run.id, "loss")) == 500
        assert store.get_artifact(run.id, "weights/model.pkl").sha256 == out["model_sha"]
        assert store.get_dataset(out["dataset"]).num_rows == 200
        assert [i.dataset_sha256 for i in run.inputs] == [out["dataset"]]
    finally:
        store.close()
    assert BlobStore(srv / "artifacts").exists(out["model_sha"])
    assert (srv / "artifacts" / "datasets" / f"{out['dataset']}.parquet").is_file()
    assert not (client_dir / ".mloop").exists(), list((client_dir / ".mloop").rglob("*"))


_REGISTRY = """
import json
import numpy as np, pandas as pd
import mloop
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
y = (X["a"] + 0.1 * X["b"] > 0).astype(int)
with mloop.start_run(project="e2e", name="model") as run:
    run.log_dataset(X, name="train")
    model = LogisticRegression().fit(X, y)
    run.log({"acc": float(model.score(X, y))})
    mv = mloop.log_model(model, name="e2e-model", run=run, input_example=X[:5])
reg = mloop.Registry()
reg.set_alias("e2e-model", "champion", mv.version, reason="first release")
loaded = mloop.load_model("models:/e2e-model@champion")
print(json.dumps({
    "run_id": run.id,
    "version": mv.version,
    "predictions": [int(p) for p in loaded.predict(X[:5])],
    "expected": [int(p) for p in model.predict(X[:5])],
    "files": sorted(mv.manifest["files"]),
}))
"""


def test_the_registry_against_a_server_process(tmp_path: Path) -> None:
    """log_model packages and registers through the server (the package's files go up as blobs),
    an alias moves, and load_model("models:/...@alias") in a fresh process downloads and verifies
    the package from the server; `mloop models show` through the server shows it."""
    srv = tmp_path / "srv"
    srv.mkdir()
    with ServerProcess(
        srv, store_uri=f"sqlite:///{srv / 'server.db'}", artifact_uri=str(srv / "artifacts")
    ) as server:
        proc = _client(_REGISTRY, server, tmp_path / "client")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["predictions"] == out["expected"]
        again = _client(
            "import mloop; print(mloop.load_model('models:/e2e-model@champion').predict("
            "{'a': [0.5, -0.5], 'b': [0.1, 0.1]}).tolist())",
            server,
            tmp_path / "elsewhere",
        )
        assert again.returncode == 0 and again.stdout.strip() == "[1, 0]", again.stderr
        shown = _mloop(server, tmp_path / "client", "models", "show", "e2e-model")
        assert shown.returncode == 0, shown.stderr
        assert "champion" in shown.stdout and "v1" in shown.stdout
    store = create_store(f"sqlite:///{srv / 'server.db'}")
    try:
        version = store.get_model_version("e2e-model", out["version"])
        assert version.source_run_id == out["run_id"] and version.flavor == "sklearn"
        assert store.get_alias("e2e-model", "champion").version == out["version"]
        stored = {e.path: e.sha256 for e in store.list_artifacts(out["run_id"])}
    finally:
        store.close()
    blobs = BlobStore(srv / "artifacts")
    packaged = [p for p in stored if p.startswith("model/")]
    assert packaged and all(blobs.exists(stored[p]) for p in packaged)


_STEADY = """
import json, os, time
import mloop

# Logs two metrics at a steady ~5,000 steps/s until the test creates the file "stop".
with mloop.start_run(project="outage", name="steady", system_metrics=False) as run:
    print(json.dumps({"run_id": run.id}), flush=True)
    n = 0
    while not os.path.exists("stop"):
        for _ in range(50):
            run.log({"x": float(n), "y": float(-n)}, step=n)
            n += 1
        time.sleep(0.01)
    w = run._writer
print(json.dumps({
    "logged": n,
    "points_written": w.points_written,
    "points_spooled": w.points_spooled,
    "batches_written": w.batches_written,
    "refused": w.refused,
}), flush=True)
"""


def _start_steady(server: ServerProcess, client_dir: Path) -> tuple[subprocess.Popen[str], str]:
    client_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_STEADY)],
        env=clean_env(MLOOP_SERVER_URL=server.url, MLOOP_FLUSH_INTERVAL_S="0.1"),
        cwd=client_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["run_id"]


def _wait_for_more(server: ServerProcess, run_id: str, than: int, proc: Any) -> int:
    """Wait until the server holds more than ``than`` points of the run."""
    deadline = time.monotonic() + 60
    while True:
        got = _points(server.url, run_id)
        if got > than:
            return got
        assert time.monotonic() < deadline and proc.poll() is None, "the run stopped logging"
        time.sleep(0.05)


def _stop_steady(proc: subprocess.Popen[str], client_dir: Path) -> dict[str, int]:
    (client_dir / "stop").touch()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    spool = client_dir / ".mloop" / "spool"
    assert not list(spool.glob("*.jsonl")), f"the live run left its spool behind: {err}"
    assert not (spool / "quarantine").exists() or not any((spool / "quarantine").iterdir())
    stats: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return stats


def _check_every_point_once(store_uri: str, run_id: str, n: int) -> None:
    store = create_store(store_uri)
    try:
        for key, sign in (("x", 1.0), ("y", -1.0)):
            h = store.get_metric_history(run_id, key)
            steps = np.asarray(h.step)
            assert len(steps) == n, f"{key}: {len(steps)} points for {n} logged"
            assert len(np.unique(steps)) == n, f"{key}: {len(steps) - len(np.unique(steps))} twice"
            order = np.argsort(steps)
            assert np.array_equal(steps[order], np.arange(n))
            assert np.array_equal(np.asarray(h.value)[order], sign * np.arange(n, dtype=float))
        assert store.get_run(run_id).status == "finished"
    finally:
        store.close()


def test_a_server_killed_and_restarted_mid_run_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """SIGKILL three times while a run logs two metrics at ~5,000 steps/s in batches every 0.1 s:
    the client spools what the server could not take (a batch in flight when the server died may
    have been committed: its answer was lost) and replays it by batch id once the server is back,
    while the run is still live."""
    srv = tmp_path / "srv"
    srv.mkdir()
    server = ServerProcess(
        srv, store_uri=f"sqlite:///{srv / 'server.db'}", artifact_uri=str(srv / "artifacts")
    )
    server.start()
    client_dir = tmp_path / "client"
    try:
        proc, run_id = _start_steady(server, client_dir)
        stored_before_kill = [0]
        for _ in range(3):
            stored_before_kill.append(_wait_for_more(server, run_id, stored_before_kill[-1], proc))
            server.kill()
            time.sleep(0.7)  # the client keeps logging into its spool
            server.start()
        _wait_for_more(server, run_id, stored_before_kill[-1], proc)  # the spool is replayed
        stats = _stop_steady(proc, client_dir)
    finally:
        server.stop()
    n = stats["logged"]
    _check_every_point_once(server.store_uri, run_id, n)
    assert stats["refused"] == 0
    assert stats["points_spooled"] > 0, "the kills never reached a write: nothing was tested"
    print(
        f"outage: {n} steps x 2 metrics logged, {2 * n} points found, 0 twice; the server was "
        f"killed 3 times holding {stored_before_kill[1:]} points of x; "
        f"{stats['points_spooled']} points spooled and replayed, {stats['points_written']} "
        f"written directly in {stats['batches_written']} batches"
    )


_DIES_AFTER_COMMIT = """
import json, os, sys, uvicorn
from mloop.server import ServerConfig, build_app

store_uri, artifact_uri, port, nth = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = build_app(ServerConfig(store_uri=store_uri, artifact_uri=artifact_uri))
seen = 0

async def dies_after_commit(scope, receive, send):
    global seen
    if scope["type"] != "http" or not scope["path"].endswith("/batches"):
        return await app(scope, receive, send)
    seen += 1
    if seen != nth:
        return await app(scope, receive, send)
    body = []

    async def receive_body():
        message = await receive()
        body.append(message.get("body", b""))
        return message

    async def answer(message):
        # The batch is committed (the app is answering): die before a byte of the answer leaves.
        batch_id = json.loads(b"".join(body))["batch_id"]
        print("dying after batch", nth, batch_id, flush=True)
        os._exit(137)

    await app(scope, receive_body, answer)

uvicorn.run(dies_after_commit, host="127.0.0.1", port=port, log_level="warning")
"""


def test_a_batch_committed_by_a_server_that_died_before_answering_is_not_written_twice(
    tmp_path: Path,
) -> None:
    """The worst moment of an outage, made to happen: the server commits a batch and dies before
    its answer leaves. The client cannot know the batch landed, spools it under its batch id, and
    the restarted server recognises the replay."""
    srv = tmp_path / "srv"
    srv.mkdir()
    server = ServerProcess(
        srv, store_uri=f"sqlite:///{srv / 'server.db'}", artifact_uri=str(srv / "artifacts")
    )
    server.start()  # creates the store, then gives the port to the one that dies
    server.stop()
    client_dir = tmp_path / "client"
    dying = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_DIES_AFTER_COMMIT),
            server.store_uri,
            server.artifact_uri,
            str(server.port),
            "3",
        ],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{server.url}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and dying.poll() is None
                time.sleep(0.05)
        proc, run_id = _start_steady(server, client_dir)
        said, _ = dying.communicate(timeout=120)
        assert dying.returncode == 137 and "dying after batch 3" in said, said
        batch_id = said.split("dying after batch 3 ", 1)[1].split()[0]
        # The dead server committed that batch: its id is recorded, as its points are.
        with sqlite3.connect(srv / "server.db") as db:
            found = db.execute("SELECT run_id FROM batches WHERE batch_id = ?", (batch_id,))
            assert found.fetchall() == [(run_id,)]
        server.start()
        with sqlite3.connect(srv / "server.db") as db:
            before = db.execute("SELECT count(*) FROM batches").fetchone()[0]
        deadline = time.monotonic() + 60
        while True:  # the live run replays its spool, then writes on
            with sqlite3.connect(srv / "server.db") as db:
                if db.execute("SELECT count(*) FROM batches").fetchone()[0] > before + 2:
                    break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        stats = _stop_steady(proc, client_dir)
    finally:
        if dying.poll() is None:
            dying.kill()
        server.stop()
    _check_every_point_once(server.store_uri, run_id, stats["logged"])
    assert stats["points_spooled"] > 0 and stats["refused"] == 0


def _points(url: str, run_id: str) -> int:
    try:
        r = httpx.get(f"{url}/api/v1/runs/{run_id}/metric-history", params={"key": "x"}, timeout=5)
    except httpx.TransportError:
        return 0
    if r.status_code != 200:
        return 0
    return len(r.json().get("step", []))


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_several_clients_and_workers_at_once(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four client processes log, with artifacts, into a server of three workers at once, on
    SQLite and on PostgreSQL (what the README recommends for several workers)."""
    srv = tmp_path / "srv"
    srv.mkdir()
    store_uri = (
        f"sqlite:///{srv / 'server.db'}"
        if db == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    code = """
    import sys, mloop
    with open("weights.bin", "wb") as fh:
        fh.write(sys.argv[1].encode() * 10_000)
    with mloop.start_run(project="many", name=sys.argv[1], system_metrics=False) as run:
        for i in range(2000):
            run.log({"m": float(i)}, step=i)
        run.log_artifact("weights.bin")
    print(run.id)
    """
    with ServerProcess(
        srv, store_uri=store_uri, artifact_uri=str(srv / "artifacts"), args=("--workers", "3")
    ) as server:
        results: list[subprocess.CompletedProcess[str]] = []
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(
                    _client(code, server, tmp_path / f"c{i}", f"client-{i}")
                )
            )
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    store = create_store(store_uri)
    blobs = BlobStore(srv / "artifacts")
    try:
        runs = [store.get_run(r.stdout.strip()) for r in results]
        assert sorted(run.name for run in runs) == [f"client-{i}" for i in range(4)]
        for run in runs:
            assert len(store.get_metric_history(run.id, "m")) == 2000
            assert blobs.exists(store.get_artifact(run.id, "weights.bin").sha256)
    finally:
        store.close()


@pytest.mark.parametrize(("trusted", "scheme"), [("127.0.0.1", "https"), ("10.9.9.9", "http")])
def test_behind_a_tls_proxy_the_urls_it_hands_out_are_https(
    trusted: str, scheme: str, tmp_path: Path
) -> None:
    """--forwarded-allow-ips trusts a reverse proxy's X-Forwarded-Proto (here: the test, on
    loopback); from a proxy it does not trust, the header changes nothing."""
    srv = tmp_path / "srv"
    srv.mkdir()
    with ServerProcess(
        srv,
        store_uri=f"sqlite:///{srv / 'server.db'}",
        artifact_uri=str(srv / "artifacts"),
        args=("--forwarded-allow-ips", trusted),
    ) as server:
        sha, _ = BlobStore(server.url).put_bytes(b"behind the proxy")
        doc = httpx.get(
            f"{server.url}/api/v1/blobs/{sha}/url",
            headers={"Host": "mloop.example.com", "X-Forwarded-Proto": "https"},
        ).json()
    assert doc["url"] == f"{scheme}://mloop.example.com/api/v1/blobs/{sha}"
