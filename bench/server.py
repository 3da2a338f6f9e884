"""Team-server benchmark: ``mloop server`` vs ``mlflow server``, both real processes on loopback.

    .venv/bin/python bench/server.py [--repeat 3] [--quick] [--postgres] [--load-s 10]

Issue 13, point 6. Both servers run on the same store kind (SQLite in a temp dir; with
``--postgres`` also a throwaway PostgreSQL) with artifacts proxied through them. Workloads:

1. through mloop's own client (the SDK and ``HttpStore``, ``MLOOP_SERVER_URL``) against
   ``mloop server``: the per-call cost of ``run.log``, run creation, ingest over HTTP, a 100k-point
   history read, a search of ~1,000 of 2,000 runs, a 100 MB artifact up and down;
2. through the unmodified ``mlflow`` client (``MlflowClient``, MLflow 3.17.2 in
   ``bench/.venv-mlflow``) against both servers: the same workloads;
3. requests/s that ``mloop server`` holds at concurrency 32 for the search and for history reads
   (``wrk`` when installed, else an asyncio HTTP/1.1 load generator).

Every worker runs in its own process: mloop's client in the interpreter running this script, the
MLflow client in ``bench/.venv-mlflow``. Prints medians and ratios and writes
``bench/results/server.json`` (``server-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import _load
from _workloads import artifact_file, per_call, runs_data

MLFLOW_REQUIREMENTS = ["mlflow==3.17.2", "psycopg[binary]>=3.1.18"]  # as bench/tracking.py

# Workload sizes (``--quick`` divides them, for a smoke run).
LOG_CALLS = 100_000  # run.log calls timed one by one
CREATE_RUNS = {"mloop": 500, "mlflow": 60}  # runs created per repetition, per client
INGEST_POINTS = 100_000  # one metric, also the history that is read back
MLFLOW_BATCH = 1_000  # MLflow's log_batch limit (metrics per call)
MLOOP_BATCH = 50_000  # HttpStore.log_batch: points per request
N_RUNS = 2_000  # each with 10 params and 5 metrics (runs_data)
SEARCH_FILTER = "metrics.m0 > 0.33 and params.p0 = 'x'"
SEARCH_ORDER = ["metrics.m1 DESC"]
ARTIFACT_MB = 100
LOAD_CONNECTIONS = 32
CORPUS = "corpus"


# ============================================================================================ data


def history_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = np.arange(n, dtype=np.int64)
    return step, 1_700_000_000_000 + step, np.random.default_rng(0).random(n)


class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.server: str = args.server
        self.repeat: int = args.repeat
        self.div: int = 20 if args.quick else 1
        self.fill_db: str | None = args.fill_db
        self.results: dict[str, list[float]] = {}
        self.info: dict[str, Any] = {}

    def n(self, x: int) -> int:
        return max(x // self.div, 10)

    def add(self, name: str, value: float) -> None:
        self.results.setdefault(name, []).append(float(value))


# ============================================================================ worker: mloop's client
def mloop_worker(ctx: Ctx) -> None:
    """mloop's SDK and HttpStore, pointed at the server by MLOOP_SERVER_URL alone."""
    import mloop
    from mloop.store import MetricSeries, create_store

    store = create_store(ctx.url)
    client = mloop.Client()

    def start(project: str, name: str, **kw: Any) -> Any:
        return mloop.start_run(project=project, name=name, system_metrics=False, **kw)

    with start("warm-up", "w", config={"a": 1}) as run:  # connections, imports
        run.log({"w": 0.0}, step=0)
    client.search_runs("warm-up", SEARCH_FILTER, order_by=SEARCH_ORDER)

    # run.log per call (the SDK buffers; a background writer sends batches)
    n = ctx.n(LOG_CALLS)
    vals = [{"loss": 1.0 / (i + 1), "acc": i / n} for i in range(n)]
    for rep in range(ctx.repeat):
        with start("log", f"log-{rep}") as run:
            for i in range(1000):
                run.log({"loss": 0.5, "acc": 0.5}, step=i)
            run.flush()
            times = per_call(lambda i: run.log(vals[i], step=1000 + i), n)
            t0 = time.perf_counter()
            run.flush()
            ctx.add("log_drain_s", time.perf_counter() - t0)
        ctx.add("log_us", float(np.median(times)) * 1e6)
        ctx.add("log_us_p99", float(np.percentile(times, 99)) * 1e6)

    # run creation: start_run(config=10 params) + run.log(5 metrics) + end, as one user would
    n_create = ctx.n(CREATE_RUNS["mloop"])
    params, metrics = runs_data(max(n_create, ctx.n(N_RUNS)))
    for rep in range(ctx.repeat):
        t0 = time.perf_counter()
        for i in range(n_create):
            with start(f"create-{rep}", f"r{i}", config=params[i]) as run:
                run.log(metrics[i], step=0)
        ctx.add("create_runs_per_s", n_create / (time.perf_counter() - t0))

    # ingest over HTTP, until durable: run.log + flush, and HttpStore.log_batch(MetricSeries)
    npts = ctx.n(INGEST_POINTS)
    step, ts, value = history_data(npts)
    valuel = value.tolist()
    history_run = ""
    for rep in range(ctx.repeat):
        with start("ingest", f"sdk-{rep}") as run:
            t0 = time.perf_counter()
            for i in range(npts):
                run.log({"h": valuel[i]}, step=i)
            run.flush()
            ctx.add("ingest_sdk", npts / (time.perf_counter() - t0))
        with start("ingest", f"batch-{rep}") as run:
            run.flush()
            t0 = time.perf_counter()
            for s in range(0, npts, MLOOP_BATCH):
                e = s + MLOOP_BATCH
                store.log_batch(run.id, metrics={"h": MetricSeries(step[s:e], ts[s:e], value[s:e])})
            ctx.add("ingest_batch", npts / (time.perf_counter() - t0))
            history_run = run.id

    # the history just written, read back in full (and downsampled, for the load section)
    client.get_metric_history(history_run, "h", max_points=10)
    for _ in range(ctx.repeat):
        t0 = time.perf_counter()
        h = client.get_metric_history(history_run, "h", max_points=None)
        ctx.add("history", time.perf_counter() - t0)
        ctx.info["history_points"] = len(h)

    # the search corpus (untimed: run creation is measured above), then the search
    n_corpus = ctx.n(N_RUNS)
    for i in range(n_corpus):
        with start(CORPUS, f"r{i}", config=params[i]) as run:
            run.log(metrics[i], step=0)
    for _ in range(ctx.repeat):
        t0 = time.perf_counter()
        page = client.search_runs(
            CORPUS, SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=2 * N_RUNS
        )
        ctx.add("search", time.perf_counter() - t0)
        ctx.info["search_hits"] = len(page.items)

    # a 100 MB artifact up (run.log_artifact) and down (Client.download_artifacts)
    mb = max(ARTIFACT_MB // ctx.div, 1)
    with tempfile.TemporaryDirectory(prefix="bench-art-") as tmp:
        with start("artifact", "warm-up") as run:
            run.log_text("warm-up", "w.txt")
        for rep in range(ctx.repeat):
            # new content each time: a blob the server already has is not sent again
            src = artifact_file(Path(tmp) / f"up{rep}", mb, seed=rep)
            with start("artifact", f"a{rep}") as run:
                t0 = time.perf_counter()
                run.log_artifact(src)
                ctx.add("upload_mb_s", mb / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            out = client.download_artifacts(run.id, "file.bin", dest=Path(tmp) / f"dl{rep}")
            ctx.add("download_mb_s", mb / (time.perf_counter() - t0))
            ctx.info["download_ok"] = out.stat().st_size == src.stat().st_size

    corpus = store.get_project_by_name(CORPUS)
    ctx.info.update(
        history_run=history_run, corpus_project=corpus.id if corpus else None, artifact_mb=mb
    )


# ============================================================================ worker: MLflow's client
def mlflow_fill_corpus_direct(db_uri: str, exp_name: str, n: int) -> None:
    """Untimed setup on ``mlflow server``: the search corpus written into its database by MLflow's
    own store (through the server, 2,000 runs take minutes at ~100 ms a request)."""
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, "mlflow-artifacts:/")
    exp = store.get_experiment_by_name(exp_name)
    exp_id = exp.experiment_id if exp else store.create_experiment(exp_name)
    params, metrics = runs_data(n)
    now = int(time.time() * 1000)
    for i in range(n):
        run = store.create_run(exp_id, "bench", now, [], f"r{i}")
        store.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics[i].items()],
            params=[Param(k, v) for k, v in params[i].items()],
            tags=[],
        )
        store.update_run_info(run.info.run_id, RunStatus.FINISHED, now, None)


def mlflow_worker(ctx: Ctx) -> None:
    import mlflow
    import mlflow.artifacts
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx.info["version"] = mlflow.__version__
    mlflow.set_tracking_uri(ctx.url)
    client = MlflowClient(ctx.url)
    tag = f"mlflow-client-{int(time.time())}"

    def experiment(name: str) -> str:
        exp = client.get_experiment_by_name(name)
        return exp.experiment_id if exp else client.create_experiment(name)

    warm = experiment(f"{tag}-warm-up")
    client.search_runs([warm], SEARCH_FILTER, order_by=SEARCH_ORDER)

    # run creation: create_run + log_batch(10 params, 5 metrics) + set_terminated
    n_create = ctx.n(CREATE_RUNS["mlflow"])
    params, metrics = runs_data(max(n_create, ctx.n(N_RUNS)))
    now = int(time.time() * 1000)
    for rep in range(ctx.repeat):
        exp = experiment(f"{tag}-create-{rep}")
        t0 = time.perf_counter()
        for i in range(n_create):
            run_id = client.create_run(exp, run_name=f"r{i}").info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics[i].items()],
                params=[Param(k, v) for k, v in params[i].items()],
            )
            client.set_terminated(run_id)
        ctx.add("create_runs_per_s", n_create / (time.perf_counter() - t0))

    # ingest: log_batch with 1,000 Metric objects per call (MLflow's limit)
    npts = ctx.n(INGEST_POINTS)
    step, ts, value = history_data(npts)
    stepl, tsl, valuel = step.tolist(), ts.tolist(), value.tolist()
    exp = experiment(f"{tag}-ingest")
    history_run = ""
    for _ in range(ctx.repeat):
        run_id = client.create_run(exp).info.run_id
        client.log_batch(run_id, metrics=[Metric("w", 0.0, 0, 0)])
        t0 = time.perf_counter()
        for s in range(0, npts, MLFLOW_BATCH):
            r = range(s, min(s + MLFLOW_BATCH, npts))
            client.log_batch(run_id, metrics=[Metric("h", valuel[i], tsl[i], stepl[i]) for i in r])
        ctx.add("ingest_batch", npts / (time.perf_counter() - t0))
        history_run = run_id

    client.get_metric_history(history_run, "w")
    for _ in range(ctx.repeat):
        t0 = time.perf_counter()
        h = client.get_metric_history(history_run, "h")
        ctx.add("history", time.perf_counter() - t0)
        ctx.info["history_points"] = len(h)

    # search: on mloop server the corpus the mloop client wrote (a project is an experiment); on
    # mlflow server, written untimed by MLflow's store into the server's database
    n_corpus = ctx.n(N_RUNS)
    if client.get_experiment_by_name(CORPUS) is None:
        if ctx.fill_db:
            mlflow_fill_corpus_direct(ctx.fill_db, CORPUS, n_corpus)
        else:
            raise RuntimeError(f"no {CORPUS!r} experiment on {ctx.url} and no --fill-db")
    corpus = experiment(CORPUS)
    for _ in range(ctx.repeat):
        t0 = time.perf_counter()
        found = client.search_runs(
            [corpus], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=2 * N_RUNS
        )
        ctx.add("search", time.perf_counter() - t0)
        ctx.info["search_hits"] = len(found)

    # a 100 MB artifact: log_artifact up, download_artifacts down (proxied: mlflow-artifacts:/)
    mb = max(ARTIFACT_MB // ctx.div, 1)
    exp = experiment(f"{tag}-artifact")
    with tempfile.TemporaryDirectory(prefix="bench-art-") as tmp:
        warm_run = client.create_run(exp).info.run_id
        client.log_text(warm_run, "warm-up", "w.txt")
        for rep in range(ctx.repeat):
            # new content each time, as for mloop's client (mloop's server keeps one copy of a blob)
            src = artifact_file(Path(tmp) / f"up{rep}", mb, seed=1000 + rep)
            run_id = client.create_run(exp).info.run_id
            t0 = time.perf_counter()
            client.log_artifact(run_id, str(src))
            ctx.add("upload_mb_s", mb / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            out = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="file.bin", dst_path=str(Path(tmp) / f"dl{rep}")
            )
            ctx.add("download_mb_s", mb / (time.perf_counter() - t0))
            ctx.info["download_ok"] = Path(out).stat().st_size == src.stat().st_size
    ctx.info["artifact_mb"] = mb


# ============================================================================================ load
WRK_SCRIPT = (
    """
wrk.method = "{method}"
{body}
wrk.headers["Content-Type"] = "application/json"
"""
    + _load.WRK_DONE
)


def load(url: str, body: bytes | None, *, seconds: float) -> dict[str, Any]:
    """``LOAD_CONNECTIONS`` keep-alive connections sending one request (GET, or POST ``body``)."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        if not _load.have_wrk():
            if body is None:  # the asyncio client POSTs; GET reads go through wrk only
                raise RuntimeError("history load needs wrk (apt-get install wrk)")
            path = Path(tmp) / "body.json"
            path.write_bytes(body)
            return _load.asyncio_load(url, path, connections=LOAD_CONNECTIONS, seconds=seconds)
        out, script = Path(tmp) / "summary.json", Path(tmp) / "req.lua"
        lua_body = ""
        if body is not None:
            path = Path(tmp) / "body.json"
            path.write_bytes(body)
            lua_body = (
                f'local f = assert(io.open("{path}", "rb"))\nwrk.body = f:read("*a")\nf:close()'
            )
        script.write_text(
            WRK_SCRIPT.format(method="GET" if body is None else "POST", body=lua_body, out=out)
        )
        cmd = ["wrk", "-t1", f"-c{LOAD_CONNECTIONS}", f"-d{max(1, round(seconds))}s",
               "--timeout=30s", "-s", str(script), url]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
        return _load._summary(json.loads(out.read_text()))


def check_request(port: int, method: str, path: str, body: bytes | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def load_section(port: int, info: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Requests/s at c=32 for the search and for history reads, on mloop's REST API v1."""
    base = f"http://127.0.0.1:{port}/api/v1"
    search = json.dumps(
        {"project_ids": [info["corpus_project"]], "filter": SEARCH_FILTER,
         "order_by": SEARCH_ORDER, "max_results": 2 * N_RUNS, "page_token": None,
         "include_deleted": False}
    ).encode()  # fmt: skip
    hist = f"/runs/{info['history_run']}/metric-history?key=h"
    cases = {
        "search": ("/runs/search", search),
        "history_full": (hist, None),
        "history_1000": (hist + "&max_points=1000", None),
    }
    out: dict[str, Any] = {}
    for name, (path, body) in cases.items():
        status = check_request(port, "GET" if body is None else "POST", "/api/v1" + path, body)
        if status != 200:
            raise RuntimeError(f"load case {name}: {path} answered {status}")
        load(base + path, body, seconds=1)  # warm-up
        out[name] = load(base + path, body, seconds=seconds)
    return out


# ==================================================================================== orchestration
def wait_ready(server: _load.Server, path: str, timeout_s: float = 180.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if check_request(server.port, "GET", path, None) == 200:
                return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} was not ready after {timeout_s:.0f} s:\n{server.tail()}")


@contextlib.contextmanager
def server_process(
    kind: str, root: Path, store_uri: str, mlflow_python: Path
) -> Iterator[_load.Server]:
    port = c.free_port()
    if kind == "mloop":
        cmd = [sys.executable, "-m", "mloop", "server", "--port", str(port), "--store-uri",
               store_uri, "--artifact-uri", str(root / "artifacts"), "--log-level", "warning"]  # fmt: skip
        env = c.quiet_env(MLOOP_HOME=str(root / "home"))
        ready = "/api/v1/health"
    else:  # MLflow 3's default server (uvicorn), artifacts proxied (mlflow-artifacts:/)
        mlflow_bin = mlflow_python.parent / "mlflow"
        cmd = [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", store_uri, "--artifacts-destination",
               str(root / "mlartifacts")]  # fmt: skip
        env = c.quiet_env()
        ready = "/health"
    server = _load.Server(kind, cmd, env, port, root / f"{kind}-server.log")
    try:
        wait_ready(server, ready)
        yield server
    finally:
        server.stop()


def store_uris(backend: str, target: str, root: Path, kind: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{root / f'{kind}.db'}"
    return c.recreate_database(target, f"server_{kind}")  # psycopg 3 for both (SQLAlchemy 2)


def orchestrate(args: argparse.Namespace) -> int:
    if not c.mloop_importable():
        return 2
    mlflow_python = c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS)
    versions = {
        **c.peer_versions(mlflow_python),
        "load": _load.wrk_version() or "asyncio (wrk not installed)",
    }
    script = str(Path(__file__).resolve())
    common = ["--repeat", str(args.repeat), *(["--quick"] if args.quick else [])]
    raw: dict[str, dict[str, Any]] = {}
    with c.postgres_server() if args.postgres else contextlib.nullcontext(None) as pg:
        backends = {"sqlite": "sqlite", **({"postgresql": pg} if pg else {})}
        for backend, target in backends.items():
            res: dict[str, Any] = {}
            for kind in ("mloop", "mlflow"):
                with tempfile.TemporaryDirectory(prefix=f"bench-server-{kind}-") as tmp:
                    root = Path(tmp)
                    uri = store_uris(backend, target, root, kind)
                    with server_process(kind, root, uri, mlflow_python) as srv:
                        if kind == "mloop":
                            print(
                                f"[bench] {backend}: mloop client -> mloop server", file=sys.stderr
                            )
                            env = c.quiet_env(
                                MLOOP_SERVER_URL=srv.url, MLOOP_HOME=str(root / "client")
                            )
                            res["mloop_client"] = c.run_worker(
                                sys.executable, [script, "--worker", "mloop", "--url", srv.url,
                                                 "--server", kind, *common], env=env)  # fmt: skip
                            print(
                                f"[bench] {backend}: load at c={LOAD_CONNECTIONS}", file=sys.stderr
                            )
                            res["load"] = load_section(
                                srv.port, res["mloop_client"]["info"], args.load_s
                            )
                        print(f"[bench] {backend}: mlflow client -> {kind} server", file=sys.stderr)
                        fill = ["--fill-db", uri] if kind == "mlflow" else []
                        res[f"mlflow_client_{kind}"] = c.run_worker(
                            mlflow_python, [script, "--worker", "mlflow", "--url", srv.url,
                                            "--server", kind, *fill, *common], env=c.quiet_env())  # fmt: skip
            raw[backend] = res
    return report(args, versions, raw)


# (label, key, unit, better)
ROWS = [
    ("run creation (10 params, 5 metrics, ended)", "create_runs_per_s", "runs/s", "higher"),
    ("ingest 100k points, HTTP batches", "ingest_batch", "pts/s", "higher"),
    ("read a 100k-point history", "history", "s", "lower"),
    ("search ~1,000 of 2,000 runs", "search", "s", "lower"),
    ("upload a 100 MB artifact", "upload_mb_s", "MB/s", "higher"),
    ("download a 100 MB artifact", "download_mb_s", "MB/s", "higher"),
]


def _med(res: dict[str, Any], key: str) -> float | None:
    vals = res["results"].get(key)
    return c.median(vals) if vals else None


def _fmt(value: float | None, unit: str) -> str:
    if value is not None and unit == "runs/s":
        return f"{value:,.1f} runs/s"
    return c.fmt_value(value, unit)


def _ratio(ours: float | None, theirs: float | None, better: str) -> float | None:
    if not ours or not theirs:
        return None
    return theirs / ours if better == "lower" else ours / theirs


def report(args: argparse.Namespace, versions: dict[str, str], raw: dict[str, Any]) -> int:
    table, records = [], []
    for backend, res in raw.items():
        peer = res["mlflow_client_mlflow"]
        for label, key, unit, better in ROWS:
            mloop_c = _med(res["mloop_client"], key)
            on_mloop = _med(res["mlflow_client_mloop"], key)
            on_mlflow = _med(peer, key)
            r_own = _ratio(mloop_c, on_mlflow, better)
            r_same = _ratio(on_mloop, on_mlflow, better)
            goal_own = r_own is not None and r_own >= 10
            if key == "ingest_batch":
                goal_own = goal_own and mloop_c is not None and mloop_c >= 100_000
            if key == "history":
                goal_own = goal_own and mloop_c is not None and mloop_c <= 0.05
            goal_same = r_same is not None and r_same > 1
            table.append([backend, label, _fmt(mloop_c, unit), _fmt(on_mloop, unit),
                          _fmt(on_mlflow, unit), c.fmt_ratio(r_own) + (" ok" if goal_own else " MISSED"),
                          c.fmt_ratio(r_same) + (" ok" if goal_same else " MISSED")])  # fmt: skip
            records.append({"backend": backend, "case": label, "unit": unit,
                            "mloop_client_on_mloop": mloop_c, "mlflow_client_on_mloop": on_mloop,
                            "mlflow_client_on_mlflow": on_mlflow, "ratio_own_client": r_own,
                            "ratio_same_client": r_same, "goal_own_met": goal_own,
                            "goal_same_met": goal_same})  # fmt: skip
        ingest_sdk = _med(res["mloop_client"], "ingest_sdk")
        r_sdk = _ratio(ingest_sdk, _med(peer, "ingest_batch"), "higher")
        table.append([backend, "ingest 100k points, SDK run.log + flush", _fmt(ingest_sdk, "pts/s"),
                      "-", _fmt(_med(peer, "ingest_batch"), "pts/s"), c.fmt_ratio(r_sdk), "-"])  # fmt: skip
        log_us = _med(res["mloop_client"], "log_us")
        table.append([backend, "run.log, one step of 2 metrics, per call", c.fmt_value(log_us, "us"),
                      "-", "-", "<= 10 us " + ("ok" if log_us and log_us <= 10 else "MISSED"), "-"])  # fmt: skip
        records.append({"backend": backend, "case": "ingest, SDK run.log + flush", "unit": "pts/s",
                        "mloop_client_on_mloop": ingest_sdk, "ratio_own_client": r_sdk})  # fmt: skip
        records.append({"backend": backend, "case": "run.log per call", "unit": "us",
                        "mloop_client_on_mloop": log_us,
                        "p99_us": _med(res["mloop_client"], "log_us_p99"),
                        "goal_own_met": bool(log_us and log_us <= 10)})  # fmt: skip

    print()
    print(f"mloop {versions['mloop']} server vs MLflow {versions['mlflow']} server; Python "
          f"{versions['python']}, SQLite {versions['sqlite']}; medians of {args.repeat}"
          + ("; QUICK (workloads / 20)" if args.quick else ""))  # fmt: skip
    c.print_table(["store", "workload", "mloop client->mloop", "mlflow client->mloop",
                   "mlflow client->mlflow", "own client vs mlflow (goal >= 10x)",
                   "same client (goal > 1x)"], table)  # fmt: skip

    load_rows = []
    for backend, res in raw.items():
        for name, s in res["load"].items():
            load_rows.append([backend, name, f"{s['rps']:,.1f}", f"{s['p50_ms']:,.1f}",
                              f"{s['p99_ms']:,.1f}", str(s["errors"])])  # fmt: skip
    print(f"\nmloop server at c={LOAD_CONNECTIONS} ({versions['load']}, {args.load_s:g} s each, "
          "one uvicorn worker, client and server on the same CPUs)")  # fmt: skip
    c.print_table(["store", "request", "req/s", "p50 ms", "p99 ms", "errors"], load_rows)
    notes = [
        "mloop client: the SDK (mloop.start_run, run.log, Client) and HttpStore with "
        "MLOOP_SERVER_URL; ingest batches are HttpStore.log_batch with a MetricSeries of "
        f"{MLOOP_BATCH:,} points; MLflow client: MlflowClient.log_batch with {MLFLOW_BATCH} Metrics.",
        "run creation: mloop start_run(config) + run.log + end; MLflow create_run + log_batch + "
        "set_terminated (what mlflow.start_run/log_params/log_metrics/end_run send).",
        f"search: {SEARCH_FILTER!r} ordered by {SEARCH_ORDER}; corpus on mloop server written "
        "by the mloop SDK, on mlflow server by MLflow's SqlAlchemyStore into its database "
        "(untimed).",
        "history load: GET /api/v1/runs/{id}/metric-history, full (100k points) and with "
        "max_points=1000; search load: POST /api/v1/runs/search, the same search.",
    ]
    for backend, res in raw.items():
        hits = {k: res[k]["info"].get("search_hits") for k in
                ("mloop_client", "mlflow_client_mloop", "mlflow_client_mlflow")}  # fmt: skip
        notes.append(f"{backend}: search hits {hits}")
    print()
    for note in notes:
        print("  " + note)
    c.write_results(
        "server-quick.json" if args.quick else "server.json",
        "server",
        {"versions": versions, "repeat": args.repeat, "quick": args.quick,
         "load_s": args.load_s, "rows": records, "notes": notes, "raw": raw},
    )  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="repetitions per workload (median)")
    p.add_argument("--quick", action="store_true", help="smoke run: workloads divided by 20")
    p.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL")
    p.add_argument("--load-s", type=float, default=10.0, help="seconds of load per request kind")
    p.add_argument("--worker", choices=["mloop", "mlflow"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--server", help=argparse.SUPPRESS)
    p.add_argument("--fill-db", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is None:
        return orchestrate(args)
    ctx = Ctx(args)
    if args.worker == "mloop":
        mloop_worker(ctx)
    else:  # MlflowClient prints a "View run ... at" line per ended run
        with contextlib.redirect_stdout(io.StringIO()):
            mlflow_worker(ctx)
    Path(args.out).write_text(json.dumps({"results": ctx.results, "info": ctx.info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
