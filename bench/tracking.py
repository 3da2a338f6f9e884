"""Tracking benchmark: the same work through mloop and through MLflow, in one invocation.

    .venv/bin/python bench/tracking.py [--repeat 3] [--quick] [--postgres] [--sections abcde]

Cases (issue 2, section 6): (a) per-call cost of logging one step of two metrics; (b) sustained
ingest until durable; (c) reading a 100k- and a 1M-point metric history, full and downsampled to
1,000 points; (d) creating 2,000 runs with 10 params and 5 metrics, then a filtered, ordered search;
(e) uploading and downloading a 100 MB artifact.

Each (engine, case) runs in its own worker process: mloop in the interpreter running this script,
MLflow in ``bench/.venv-mlflow`` (created on first use; MLflow never enters the project's ``.venv``).
Every repetition uses a fresh store (a new temp dir for SQLite, a new database for PostgreSQL), except
(c), where the expensive fill happens once per worker and the reads are repeated. Prints medians and
mloop/MLflow ratios and writes ``bench/results/tracking.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from _workloads import artifact_file, per_call, runs_data

# MLflow 3.18.0 is on PyPI but its mlflow-skinny wheel is not installable here; bump deliberately.
MLFLOW_REQUIREMENTS = ["mlflow==3.17.2", "psycopg[binary]>=3.1.18"]

# Workload (multiplied by --scale, a development aid; the numbers use --scale 1).
LOG_CALLS = {"mloop": 100_000, "mlflow_sync": 300, "mlflow_async": 3_000}
INGEST_STEPS = 100_000  # x 2 keys = 200,000 points for every ingest path
COLUMNAR_STEPS_PER_CALL = 50_000  # mloop store.log_batch: 100,000 points per transaction
MLFLOW_BATCH = 1_000  # MLflow's log_batch limit (metrics per call)
HISTORY = {"100k": 100_000, "1M": 1_000_000}
DOWNSAMPLE_TO = 1_000
N_RUNS = 2_000  # each with 10 params and 5 metrics (runs_data)
SEARCH_FILTER = "metrics.m0 > 0.33 and params.p0 = 'x'"
SEARCH_ORDER = ["metrics.m1 DESC"]
ARTIFACT_MB = 100

SECTIONS = "abcde"


# ============================================================================================ workers
class Ctx:
    """What a worker needs: the backend, the repetitions, a scale factor, a results dict."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.engine: str = args.worker
        self.section: str = args.section
        self.backend: str = args.backend  # "sqlite" or a PostgreSQL server URL
        self.repeat: int = args.repeat
        self.quick: bool = args.quick
        self.scale: float = args.scale
        self.results: dict[str, list[float]] = {}
        self.info: dict[str, Any] = {}
        self._db_seq = 0

    def n(self, x: int) -> int:
        return max(int(x * self.scale), 10)

    def add(self, name: str, value: float) -> None:
        self.results.setdefault(name, []).append(float(value))

    @contextlib.contextmanager
    def fresh(self) -> Iterator[tuple[Path, str | None]]:
        """A fresh temp dir and, on PostgreSQL, a fresh database URL (None on SQLite)."""
        with tempfile.TemporaryDirectory(prefix=f"bench-{self.engine}-") as tmp:
            url = None
            if self.backend != "sqlite":
                self._db_seq += 1
                url = c.recreate_database(
                    self.backend, f"{self.engine}_{self.section}_{self._db_seq}"
                )
            yield Path(tmp), url


def ingest_data(steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    step = np.arange(steps, dtype=np.int64)
    ts = 1_700_000_000_000 + step
    return step, ts, rng.random(steps), rng.random(steps)


# -------------------------------------------------------------------------------------------- mloop
def mloop_settings(tmp: Path, url: str | None) -> Any:
    from mloop.config import Settings

    return Settings.from_env(env={}, home=str(tmp / "mloop"), store_uri=url)


def mloop_release() -> None:
    from mloop.store._open import clear_store_cache

    clear_store_cache()


def mloop_worker(ctx: Ctx) -> None:
    import mloop
    from mloop.store import MetricSeries, open_store

    ctx.info["version"] = mloop.__version__ if hasattr(mloop, "__version__") else "editable"

    def start(settings: Any, name: str, **kw: Any) -> Any:
        return mloop.start_run(
            project="bench", name=name, settings=settings, system_metrics=False, **kw
        )

    if ctx.section == "a":
        n = ctx.n(LOG_CALLS["mloop"])
        vals = [{"loss": 1.0 / (i + 1), "acc": i / n} for i in range(n)]
        for _ in range(ctx.repeat):
            with ctx.fresh() as (tmp, url):
                settings = mloop_settings(tmp, url)
                with start(settings, "a") as run:
                    for i in range(1000):  # warm-up
                        run.log({"loss": 0.5, "acc": 0.5}, step=i)
                    run.flush()
                    times = per_call(lambda i: run.log(vals[i], step=1000 + i), n)
                    t0 = time.perf_counter()
                    run.flush()
                    ctx.add("log_drain_s", time.perf_counter() - t0)
                ctx.add("log_us", np.median(times) * 1e6)
                ctx.add("log_us_p99", np.percentile(times, 99) * 1e6)
                mloop_release()

    elif ctx.section == "b":
        steps = ctx.n(INGEST_STEPS)
        step, ts, loss, acc = ingest_data(steps)
        lossl, accl = loss.tolist(), acc.tolist()
        for _ in range(ctx.repeat):
            with ctx.fresh() as (tmp, url):
                settings = mloop_settings(tmp, url)
                with start(settings, "warm-up") as run:
                    run.log({"loss": 0.0, "acc": 0.0})
                with start(settings, "log") as run:
                    t0 = time.perf_counter()
                    for i in range(steps):
                        run.log({"loss": lossl[i], "acc": accl[i]}, step=i)
                    run.flush()
                    ctx.add("ingest_log", 2 * steps / (time.perf_counter() - t0))
                with start(settings, "columnar") as run:
                    store = open_store(settings)
                    t0 = time.perf_counter()
                    for s in range(0, steps, COLUMNAR_STEPS_PER_CALL):
                        e = s + COLUMNAR_STEPS_PER_CALL
                        store.log_batch(
                            run.id,
                            metrics={
                                "loss": MetricSeries(step[s:e], ts[s:e], loss[s:e]),
                                "acc": MetricSeries(step[s:e], ts[s:e], acc[s:e]),
                            },
                        )
                    ctx.add("ingest_columnar", 2 * steps / (time.perf_counter() - t0))
                mloop_release()

    elif ctx.section == "c":
        with ctx.fresh() as (tmp, url):
            settings = mloop_settings(tmp, url)
            with start(settings, "history") as run:
                store = open_store(settings)
                for label, size in {"w": 10, **HISTORY}.items():
                    step, ts, v, _ = ingest_data(ctx.n(size) if label != "w" else size)
                    store.log_batch(run.id, metrics={label: MetricSeries(step, ts, v)})
            client = mloop.Client(settings=settings)
            client.get_metric_history(run.id, "w")  # warm-up
            client.get_metric_history(run.id, "w", max_points=4)
            for _ in range(ctx.repeat):
                for label in HISTORY:
                    for mode, mp in (("full", None), ("ds", DOWNSAMPLE_TO)):
                        t0 = time.perf_counter()
                        h = client.get_metric_history(run.id, label, max_points=mp)
                        ctx.add(f"read_{label}_{mode}", time.perf_counter() - t0)
                        ctx.info[f"read_{label}_{mode}_points"] = len(h)
            mloop_release()

    elif ctx.section == "d":
        params, metrics = runs_data(ctx.n(N_RUNS))
        for _ in range(ctx.repeat):
            with ctx.fresh() as (tmp, url):
                settings = mloop_settings(tmp, url)
                client = mloop.Client(settings=settings)
                with start(settings, "warm-up", config=params[0]) as run:
                    run.log(metrics[0], step=0)
                client.search_runs("bench", SEARCH_FILTER, order_by=SEARCH_ORDER)
                t0 = time.perf_counter()
                for i, (p, m) in enumerate(zip(params, metrics, strict=True)):
                    with mloop.start_run(
                        project="runs", name=f"r{i}", config=p, settings=settings,
                        system_metrics=False,
                    ) as run:  # fmt: skip
                        run.log(m, step=0)
                ctx.add("create_runs", time.perf_counter() - t0)
                t0 = time.perf_counter()
                page = client.search_runs(
                    "runs", SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=2 * N_RUNS
                )
                ctx.add("search", time.perf_counter() - t0)
                ctx.info["search_hits"] = len(page.items)
                ctx.info["search_first"] = [r.name for r in page.items[:3]]
                mloop_release()

    elif ctx.section == "e":
        with tempfile.TemporaryDirectory(prefix="bench-src-") as src_dir:
            for rep in range(ctx.repeat):
                # new content each repetition: every upload is a real transfer
                src = artifact_file(Path(src_dir) / str(rep), ARTIFACT_MB, seed=rep)
                os.sync()  # no writeback of earlier files inside the timing
                with ctx.fresh() as (tmp, url):
                    settings = mloop_settings(tmp, url)
                    with start(settings, "warm-up") as run:
                        run.log_text("warm-up", "w.txt")
                    with start(settings, "artifact") as run:
                        t0 = time.perf_counter()
                        run.log_artifact(src)
                        ctx.add("upload", time.perf_counter() - t0)
                    client = mloop.Client(settings=settings)
                    t0 = time.perf_counter()
                    out = client.download_artifacts(run.id, "file.bin", dest=tmp / "dl")
                    ctx.add("download", time.perf_counter() - t0)
                    ctx.info["download_bytes"] = out.stat().st_size
                    mloop_release()


# ------------------------------------------------------------------------------------------- mlflow
@contextlib.contextmanager
def mlflow_store(tmp: Path, url: str | None) -> Iterator[str]:
    """Point MLflow at a fresh store; yield the id of an experiment whose artifacts are in ``tmp``."""
    import mlflow

    mlflow.set_tracking_uri(url or f"sqlite:///{tmp / 'mlflow.db'}")
    exp = mlflow.create_experiment("bench", artifact_location=(tmp / "mlartifacts").as_uri())
    try:
        yield exp
    finally:
        if mlflow.active_run() is not None:
            mlflow.end_run()


def mlflow_fill_history(client: Any, run_id: str, key: str, size: int) -> None:
    """Untimed setup for (c): bulk-insert rows into MLflow's ``metrics`` table (log_batch would take
    minutes per million points, and only reads are measured)."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    step, ts, v, _ = ingest_data(size)
    engine = client._tracking_client.store.engine
    with engine.begin() as conn:
        for s in range(0, size, 50_000):
            rows = [
                {"key": key, "value": val, "timestamp": t, "step": st, "is_nan": False,
                 "run_uuid": run_id}
                for st, t, val in zip(step[s : s + 50_000].tolist(), ts[s : s + 50_000].tolist(),
                                      v[s : s + 50_000].tolist(), strict=True)
            ]  # fmt: skip
            conn.execute(SqlMetric.__table__.insert(), rows)
        conn.execute(
            SqlLatestMetric.__table__.insert(),
            {**rows[-1], "run_uuid": run_id},
        )


def mlflow_worker(ctx: Ctx) -> None:
    import mlflow
    import mlflow.artifacts
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx.info["version"] = mlflow.__version__

    if ctx.section == "a":
        n_sync, n_async = ctx.n(LOG_CALLS["mlflow_sync"]), ctx.n(LOG_CALLS["mlflow_async"])
        vals = [{"loss": 1.0 / (i + 1), "acc": i / n_async} for i in range(n_async)]
        for _ in range(ctx.repeat):
            with (
                ctx.fresh() as (tmp, url),
                mlflow_store(tmp, url) as exp,
                mlflow.start_run(experiment_id=exp),
            ):
                for i in range(20):  # warm-up, both paths
                    mlflow.log_metrics({"loss": 0.5, "acc": 0.5}, step=i)
                    mlflow.log_metrics({"loss": 0.5, "acc": 0.5}, step=i, synchronous=False)
                mlflow.flush_async_logging()
                times = per_call(lambda i: mlflow.log_metrics(vals[i], step=100 + i), n_sync)
                ctx.add("log_us_sync", np.median(times) * 1e6)
                times = per_call(
                    lambda i: mlflow.log_metrics(vals[i], step=100 + n_sync + i, synchronous=False),
                    n_async,
                )
                ctx.add("log_us_async", np.median(times) * 1e6)
                t0 = time.perf_counter()
                mlflow.flush_async_logging()
                ctx.add("log_async_drain_s", time.perf_counter() - t0)

    elif ctx.section == "b":
        steps = ctx.n(INGEST_STEPS)
        step, ts, loss, acc = ingest_data(steps)
        stepl, tsl, lossl, accl = step.tolist(), ts.tolist(), loss.tolist(), acc.tolist()
        half = MLFLOW_BATCH // 2  # two keys per step
        for _ in range(ctx.repeat):
            with ctx.fresh() as (tmp, url), mlflow_store(tmp, url) as exp:
                client = MlflowClient()
                run_id = client.create_run(exp).info.run_id
                client.log_batch(run_id, metrics=[Metric("w", 0.0, 0, 0)])  # warm-up
                t0 = time.perf_counter()
                for s in range(0, steps, half):
                    r = range(s, min(s + half, steps))
                    batch = [Metric("loss", lossl[i], tsl[i], stepl[i]) for i in r]
                    batch += [Metric("acc", accl[i], tsl[i], stepl[i]) for i in r]
                    client.log_batch(run_id, metrics=batch)
                ctx.add("ingest_batch", 2 * steps / (time.perf_counter() - t0))

    elif ctx.section == "c":
        sizes = {k: ctx.n(v) for k, v in HISTORY.items() if not (ctx.quick and k == "1M")}
        if ctx.quick:
            ctx.info["skipped"] = "1M (--quick)"
        with ctx.fresh() as (tmp, url), mlflow_store(tmp, url) as exp:
            client = MlflowClient()
            run_id = client.create_run(exp).info.run_id
            for label, size in {"w": 10, **sizes}.items():
                mlflow_fill_history(client, run_id, label, size)
            store = client._tracking_client.store

            def sampled(key: str) -> list[Any]:
                # The server's get-history-bulk-interval endpoint (what MLflow's UI charts use);
                # MlflowClient has no downsampled read, so call the store method behind it.
                return store.get_metric_history_bulk_interval(
                    [run_id], key, DOWNSAMPLE_TO, None, None
                )

            client.get_metric_history(run_id, "w")  # warm-up
            sampled("w")
            for _ in range(ctx.repeat):
                for label in sizes:
                    for mode, read in (
                        ("full", lambda k: client.get_metric_history(run_id, k)),
                        ("ds", sampled),
                    ):
                        t0 = time.perf_counter()
                        h = read(label)
                        ctx.add(f"read_{label}_{mode}", time.perf_counter() - t0)
                        ctx.info[f"read_{label}_{mode}_points"] = len(h)

    elif ctx.section == "d":
        params, metrics = runs_data(ctx.n(N_RUNS))
        for _ in range(ctx.repeat):
            with ctx.fresh() as (tmp, url), mlflow_store(tmp, url) as exp:
                client = MlflowClient()
                with mlflow.start_run(experiment_id=exp, run_name="warm-up"):
                    mlflow.log_params(params[0])
                    mlflow.log_metrics(metrics[0], step=0)
                runs_exp = mlflow.create_experiment(
                    "runs", artifact_location=(tmp / "mlartifacts-runs").as_uri()
                )
                client.search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER)
                t0 = time.perf_counter()
                for i, (p, m) in enumerate(zip(params, metrics, strict=True)):
                    with mlflow.start_run(experiment_id=runs_exp, run_name=f"r{i}"):
                        mlflow.log_params(p)
                        mlflow.log_metrics(m, step=0)
                ctx.add("create_runs", time.perf_counter() - t0)
                t0 = time.perf_counter()
                found = client.search_runs(
                    [runs_exp], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=2 * N_RUNS
                )
                ctx.add("search", time.perf_counter() - t0)
                ctx.info["search_hits"] = len(found)
                ctx.info["search_first"] = [r.info.run_name for r in found[:3]]

    elif ctx.section == "e":
        with tempfile.TemporaryDirectory(prefix="bench-src-") as src_dir:
            for rep in range(ctx.repeat):
                src = artifact_file(Path(src_dir) / str(rep), ARTIFACT_MB, seed=rep)
                os.sync()  # no writeback of earlier files inside the timing
                with ctx.fresh() as (tmp, url), mlflow_store(tmp, url) as exp:
                    with mlflow.start_run(experiment_id=exp, run_name="warm-up"):
                        mlflow.log_text("warm-up", "w.txt")
                    with mlflow.start_run(experiment_id=exp, run_name="artifact") as run:
                        t0 = time.perf_counter()
                        mlflow.log_artifact(str(src))
                        ctx.add("upload", time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    out = mlflow.artifacts.download_artifacts(
                        run_id=run.info.run_id, artifact_path="file.bin", dst_path=str(tmp / "dl")
                    )
                    ctx.add("download", time.perf_counter() - t0)
                    ctx.info["download_bytes"] = Path(out).stat().st_size


# ====================================================================================== orchestration
# (section, label, mloop key, MLflow key, unit, better)
ROWS = [
    ("a", "log 1 step of 2 metrics, per call", "log_us", "log_us_sync", "us", "lower"),
    ("a", "  same, vs MLflow synchronous=False", "log_us", "log_us_async", "us", "lower"),
    ("b", "ingest until durable: run.log + flush", "ingest_log", "ingest_batch", "pts/s", "higher"),
    ("b", "ingest until durable: store.log_batch", "ingest_columnar", "ingest_batch", "pts/s", "higher"),
    ("c", "read 100k-point history, full", "read_100k_full", "read_100k_full", "s", "lower"),
    ("c", "read 100k-point history, 1,000 points", "read_100k_ds", "read_100k_ds", "s", "lower"),
    ("c", "read 1M-point history, full", "read_1M_full", "read_1M_full", "s", "lower"),
    ("c", "read 1M-point history, 1,000 points", "read_1M_ds", "read_1M_ds", "s", "lower"),
    ("d", "create 2,000 runs (10 params, 5 metrics)", "create_runs", "create_runs", "s", "lower"),
    ("d", "search: filter + order, ~1,000 of 2,000", "search", "search", "s", "lower"),
    ("e", "upload 100 MB artifact", "upload", "upload", "s", "lower"),
    ("e", "download 100 MB artifact", "download", "download", "s", "lower"),
]  # fmt: skip


def goal(mloop_key: str, mlflow_key: str, ours: float | None, ratio: float | None) -> tuple[str, bool | None]:  # fmt: skip
    """The issue's goal for a row and whether it is met (None: no goal, or not measured)."""

    def check(text: str, *conds: bool | None) -> tuple[str, bool | None]:
        return text, None if any(x is None for x in conds) else all(conds)  # type: ignore[arg-type]

    r = ratio
    if mloop_key == "log_us" and mlflow_key == "log_us_sync":
        return check("<= 10 us, >= 100x", ours is not None and ours <= 10, r and r >= 100)
    if mloop_key.startswith("ingest"):
        return check(">= 300k pts/s, >= 30x", ours is not None and ours >= 300_000, r and r >= 30)
    if mloop_key == "read_1M_full":
        return check("<= 0.3 s", ours is not None and ours <= 0.3)
    if mloop_key == "read_100k_full":
        return check(">= 50x", r and r >= 50)
    if mloop_key in ("create_runs", "search"):
        return check(">= 10x", r and r >= 10)
    return "", None


def orchestrate(args: argparse.Namespace) -> int:
    if not c.mloop_importable():
        return 2
    mlflow_python = c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS)
    versions = c.peer_versions(mlflow_python)
    script = str(Path(__file__).resolve())
    env = c.quiet_env()
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    with c.postgres_server() if args.postgres else contextlib.nullcontext(None) as pg:
        backends = {"sqlite": "sqlite", **({"postgresql": pg} if pg else {})}
        for backend, target in backends.items():
            for section in args.sections:
                for engine, python in (("mloop", sys.executable), ("mlflow", mlflow_python)):
                    print(
                        f"[bench] {backend} ({section}) {engine} ...", file=sys.stderr, flush=True
                    )
                    worker_args = [script, "--worker", engine, "--section", section, "--backend",
                                   target, "--repeat", str(args.repeat), "--scale", str(args.scale)]  # fmt: skip
                    if args.quick:
                        worker_args.append("--quick")
                    t0 = time.perf_counter()
                    res = c.run_worker(python, worker_args, env=env)
                    res["wall_s"] = time.perf_counter() - t0
                    raw.setdefault(backend, {}).setdefault(section, {})[engine] = res

    table, records = [], []
    for backend, sections in raw.items():
        for section, label, mk, fk, unit, better in ROWS:
            if section not in sections:
                continue
            ours_all = sections[section]["mloop"]["results"].get(mk)
            theirs_all = sections[section]["mlflow"]["results"].get(fk)
            ours = c.median(ours_all) if ours_all else None
            theirs = c.median(theirs_all) if theirs_all else None
            ratio = None
            if ours and theirs:
                ratio = theirs / ours if better == "lower" else ours / theirs
            text, met = goal(mk, fk, ours, ratio)
            mark = "" if met is None else (" (met)" if met else " (MISSED)")
            table.append([backend, f"({section}) {label}", c.fmt_value(ours, unit),
                          c.fmt_value(theirs, unit), c.fmt_ratio(ratio), text + mark])  # fmt: skip
            records.append({"backend": backend, "section": section, "case": label.strip(),
                            "unit": unit, "mloop": ours, "mlflow": theirs, "ratio": ratio,
                            "mloop_runs": ours_all, "mlflow_runs": theirs_all,
                            "goal": text, "goal_met": met})  # fmt: skip

    print()
    print(f"mloop {versions['mloop']} vs MLflow {versions['mlflow']}; Python {versions['python']}, "
          f"SQLite {versions['sqlite']}; medians of {args.repeat}; ratio = mloop speed / MLflow speed"
          + (f"; WORKLOAD SCALED x{args.scale} (labels show scale 1)" if args.scale != 1 else ""))  # fmt: skip
    c.print_table(["store", "case", "mloop", "MLflow", "mloop vs MLflow", "goal"], table)
    notes = [
        "(a) per-call median; mloop's call returns once buffered, run.flush() drains it (drain not in the call).",
        f"(b) {2 * int(INGEST_STEPS * args.scale):,} points (2 keys) per path, until the last write "
        f"committed; MLflow: MlflowClient.log_batch, {MLFLOW_BATCH} Metric objects per call "
        f"(built inside the timing); mloop store.log_batch: {2 * COLUMNAR_STEPS_PER_CALL:,} points/call.",
        "(c) MLflow full = MlflowClient.get_metric_history; MLflow downsampled = the store method behind "
        "the server's get-history-bulk-interval endpoint (MlflowClient has no downsampled read). "
        "Reads repeat on one store per worker; MLflow's history is bulk-inserted untimed.",
        f"(d) search filter {SEARCH_FILTER!r}, order_by {SEARCH_ORDER}.",
        "(e) new file content (seed) in every repetition, each into a fresh store: every upload "
        "and download moves all the bytes.",
    ]
    for backend, sections in raw.items():
        if "c" in sections and sections["c"]["mlflow"]["info"].get("skipped"):
            notes.append(f"{backend}: MLflow skipped the 1M-point reads (--quick).")
        if "d" in sections:
            hits = {e: sections["d"][e]["info"].get("search_hits") for e in ("mloop", "mlflow")}
            notes.append(
                f"{backend} (d) search hits: mloop {hits['mloop']}, MLflow {hits['mlflow']}."
            )
    print()
    for note in notes:
        print("  " + note)

    # A subset or scaled run must not overwrite the full results.
    full = args.sections == SECTIONS and args.scale == 1
    c.write_results(
        "tracking.json" if full else "tracking.partial.json",
        "tracking",
        {
            "versions": versions,
            "repeat": args.repeat,
            "scale": args.scale,
            "quick": args.quick,
            "rows": records,
            "notes": notes,
            "raw": raw,
        },
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="repetitions per case (median reported)")
    p.add_argument("--quick", action="store_true", help="skip MLflow's 1M-point reads (slow)")
    p.add_argument("--postgres", action="store_true", help="also run on a throwaway PostgreSQL")
    p.add_argument("--sections", default=SECTIONS, help="subset of 'abcde' (default: all)")
    p.add_argument("--scale", type=float, default=1.0, help="workload multiplier (development)")
    p.add_argument("--worker", choices=["mloop", "mlflow"], help=argparse.SUPPRESS)
    p.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)
    p.add_argument("--backend", default="sqlite", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not set(args.sections) <= set(SECTIONS):
        p.error(f"--sections must be letters of {SECTIONS!r}; got {args.sections!r}.")
    if args.worker is None:
        return orchestrate(args)
    ctx = Ctx(args)
    (mloop_worker if args.worker == "mloop" else mlflow_worker)(ctx)
    Path(args.out).write_text(json.dumps({"results": ctx.results, "info": ctx.info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
