"""Serving benchmark: ``mloop serve`` vs ``mlflow models serve`` vs a minimal endpoint, in one run.

    .venv/bin/python bench/serving.py [--quick] [--sections abcdef] [--duration 15] [--repeat 1]

Issue 11, section 8. Three models fitted on scikit-learn's breast-cancer DataFrame (30 float
columns): ``pipe`` = StandardScaler + LogisticRegression, ``lr`` = a bare LogisticRegression,
``rf`` = RandomForestClassifier(100). Each is served by

* mloop: ``mloop serve models:/bench-<model>@champion`` (validation against the signature and
  ``/metrics`` on; micro-batching and the inference log off unless a section turns them on);
* MLflow: ``mlflow models serve -m <dir> --env-manager local --workers 1`` from
  ``bench/.venv-mlflow`` (MLflow pinned in ``tracking.MLFLOW_REQUIREMENTS``), the same fitted
  estimator saved with ``mlflow.sklearn.save_model(input_example=...)``;
* minimal: ``bench/minimal_endpoint.py``, Starlette + uvicorn + orjson calling ``predict`` on the
  unpickled estimator: no validation, no metrics, no logging (the practical limit),

one server at a time, one uvicorn worker each (``--workers``), on a free loopback port, and driven
by the same load generator (``wrk -t1`` with a Lua script POSTing one body; an asyncio client
when wrk is missing) with MLflow's scoring protocol: ``POST /invocations``
``{"dataframe_split": {"columns": [...], "data": [[...]]}}``. Before the load, each server's
predictions are checked against the estimator's own. Sections:

a. the matrix: every model x server x concurrency (1, 8, 32) x rows per request (1, 100):
   requests/s and p99 latency; ratios mloop/MLflow and mloop/minimal;
b. micro-batching: mloop ``--max-batch-size 64 --max-wait-ms 2`` vs the minimal endpoint, bare
   LogisticRegression, single row, c=32;
c. inference logging of every request (``--log-sample 1``) vs none, pipeline, single row, c=32;
   the rows found in the log are counted against the rows served;
d. hot swap: ``--swap-moves`` alias moves (promotions and rollbacks, alternating) during
   ``--swap-duration`` seconds of load at c=32; failed requests, and the time from each move until
   a probe request is answered by the new version (its ``X-Mloop-Model-Version`` header);
e. batch scoring: ``predict_file`` over ``--batch-rows`` rows of Parquet (row groups of 100,000
   rows) vs a bare ``model.predict`` on the same rows read with ``pq.read_table().to_pandas()``;
   wall time (median of ``--repeat`` alternating runs) and peak memory (Arrow's pool + tracemalloc,
   each in a fresh process);
f. two workers: mloop vs the minimal endpoint with ``--workers 2``, bare LogisticRegression,
   single row, c=32.

Prints tables with the issue's goals; writes ``bench/results/serving.json``. ``--quick`` is a
smoke run (short loads, 200,000 rows for batch scoring, 4 alias moves in 10 s): its numbers are
not the issue's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import _load
from _serving_batch import section_batch, worker_batch_mem, worker_batch_time
from _serving_fmt import fmt_rps, goal_text, ratio
from _serving_setup import ALIAS, ROWS, Workspace, model_name, start, worker_mlflow_save

MODELS = {
    "pipe": "StandardScaler + LogisticRegression",
    "lr": "LogisticRegression",
    "rf": "RandomForest(100)",
}
SERVERS = ("mloop", "mlflow", "minimal")
CONCURRENCY = (1, 8, 32)
GOAL_MLFLOW = {"pipe": 20.0, "lr": None, "rf": 10.0}  # single row, c=32
GOAL_MLFLOW_100 = 5.0  # 100-row requests, c=32
GOAL_P99_MS = 50.0  # the pipeline, single row, c=32
GOAL_MINIMAL = 0.9  # mloop (batching off) / minimal, bare LogisticRegression
GOAL_LOG_COST = 0.10
GOAL_SWAP_S = 2.0


class Bench:
    """Measurements, memoised by (server kind, workers, model, rows, concurrency): a section
    reuses what an earlier one measured in the same invocation."""

    def __init__(self, ws: Workspace, args: argparse.Namespace) -> None:
        self.ws, self.args = ws, args
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.load = _load.wrk_load if args.client == "wrk" else _load.asyncio_load

    @staticmethod
    def key(kind: str, workers: int, model: str, rows: int, conc: int) -> str:
        return f"{kind}|w{workers}|{model}|{rows}|{conc}"

    def measure(
        self, kind: str, model: str, cases: list[tuple[int, int]], *, workers: int = 1, rep: int = 0
    ) -> None:
        """Start one server and load it with each (rows, concurrency) case not measured yet in
        repetition ``rep``."""
        todo = [
            (r, k)
            for r, k in cases
            if len(self.results.get(self.key(kind, workers, model, r, k), [])) <= rep
        ]
        if not todo:
            return
        print(
            f"[bench] {kind} x{workers} {model}: {len(todo)} load(s) ...",
            file=sys.stderr,
            flush=True,
        )
        with start(self.ws, kind, model, workers=workers, args=self.args) as server:
            for rows, conc in todo:
                url = f"{server.url}/invocations"
                body = self.ws.bodies[rows]
                warm = self.load(url, body, connections=conc, seconds=self.args.warmup)
                res = self.load(url, body, connections=conc, seconds=self.args.duration)
                res["warmup_requests"] = warm["requests"]
                self.results.setdefault(self.key(kind, workers, model, rows, conc), []).append(res)

    def get(
        self, kind: str, model: str, rows: int, conc: int, *, workers: int = 1
    ) -> dict[str, Any] | None:
        runs = self.results.get(self.key(kind, workers, model, rows, conc))
        if not runs:
            return None
        return {
            "rps": c.median([r["rps"] for r in runs]),
            "p99_ms": c.median([r["p99_ms"] for r in runs]),
            "p50_ms": c.median([r["p50_ms"] for r in runs]),
            "errors": sum(r["errors"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
        }


# ============================================================================================ sections
def section_matrix(b: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    cases = [(r, k) for r in args.rows for k in args.concurrency]
    for rep in range(args.repeat):
        for model in args.models:
            order = list(args.servers)
            order = order[rep % len(order) :] + order[: rep % len(order)]  # who goes first rotates
            for kind in order:
                b.measure(kind, model, cases, rep=rep)
    table, records = [], []
    for model in args.models:
        for rows in args.rows:
            for conc in args.concurrency:
                ours, mlf, mini = (b.get(k, model, rows, conc) for k in SERVERS)
                vs_mlflow, vs_min = ratio(ours, mlf), ratio(ours, mini)
                goals = []
                if conc == 32 and rows == 1 and GOAL_MLFLOW[model]:
                    goals.append("MLflow " + goal_text(vs_mlflow, GOAL_MLFLOW[model]))
                if conc == 32 and rows == 100:
                    goals.append("MLflow " + goal_text(vs_mlflow, GOAL_MLFLOW_100))
                if conc == 32 and rows == 1 and model == "pipe" and ours:
                    goals.append(
                        "p99 "
                        + goal_text(ours["p99_ms"], GOAL_P99_MS, at_least=False, fmt="{:g} ms")
                    )
                if model == "lr" and conc == 32:
                    goals.append("minimal " + goal_text(vs_min, GOAL_MINIMAL, fmt="{:.0%}"))
                table.append(
                    [
                        model,
                        str(rows),
                        str(conc),
                        fmt_rps(ours),
                        fmt_rps(mlf),
                        fmt_rps(mini),
                        "-" if vs_mlflow is None else f"{vs_mlflow:,.1f}x",
                        "-" if vs_min is None else f"{vs_min:.0%}",
                        "; ".join(g for g in goals if g),
                    ]
                )
                records.append(
                    {
                        "model": model,
                        "rows": rows,
                        "concurrency": conc,
                        "mloop": ours,
                        "mlflow": mlf,
                        "minimal": mini,
                        "mloop_vs_mlflow": vs_mlflow,
                        "mloop_vs_minimal": vs_min,
                    }
                )
    print("\n(a) requests/s and p99 latency, one worker each; ratios are of requests/s")
    c.print_table(
        [
            "model",
            "rows",
            "c",
            "mloop",
            "MLflow",
            "minimal",
            "mloop/MLflow",
            "mloop/minimal",
            "goal",
        ],
        table,
    )
    return records


def section_batching(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    for rep in range(args.repeat):
        for kind in (
            ("minimal", "mloop+batch", "mloop")
            if rep % 2 == 0
            else ("mloop", "mloop+batch", "minimal")
        ):
            b.measure(kind, "lr", [(1, 32), (1, 8)], rep=rep)
    rows = []
    out: dict[str, Any] = {}
    for conc in (8, 32):
        mini, plain, batched = (
            b.get(k, "lr", 1, conc) for k in ("minimal", "mloop", "mloop+batch")
        )
        r = ratio(batched, mini)
        rows.append(
            [
                str(conc),
                fmt_rps(batched),
                fmt_rps(plain),
                fmt_rps(mini),
                "-" if r is None else f"{r:.0%}",
                goal_text(r, 1.0, fmt="{:.0%}") if conc == 32 else "",
            ]
        )
        out[f"c{conc}"] = {
            "batched": batched,
            "plain": plain,
            "minimal": mini,
            "batched_vs_minimal": r,
        }
    print(
        f"\n(b) micro-batching (--max-batch-size {args.max_batch_size} --max-wait-ms "
        f"{args.max_wait_ms}), bare LogisticRegression, single row"
    )
    c.print_table(["c", "mloop batching", "mloop", "minimal", "batching/minimal", "goal"], rows)
    return out


def count_logged(ws: Workspace, model: str) -> int:
    store = ws.registry().store
    total, after = 0, 0
    while chunks := store.list_inference_chunks(model_name(model), after_id=after, limit=1000):
        total += sum(ch.n_rows for ch in chunks)
        after = chunks[-1].id
    return total


def section_logging(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    before = count_logged(b.ws, "pipe")
    for rep in range(args.repeat):
        for kind in ("mloop", "mloop+log") if rep % 2 == 0 else ("mloop+log", "mloop"):
            b.measure(kind, "pipe", [(1, 32)], rep=rep)
    logged = count_logged(b.ws, "pipe") - before
    runs = b.results.get(b.key("mloop+log", 1, "pipe", 1, 32), [])
    plain, logging = b.get("mloop", "pipe", 1, 32), b.get("mloop+log", "pipe", 1, 32)
    r = ratio(logging, plain)
    cost = None if r is None else 1 - r
    # what wrk counted as answered (load and warm-up) + the checks at start (1 + 100 rows); wrk
    # does not count the requests in flight when it stops, which were answered and logged too
    served = sum(x["requests"] + x["warmup_requests"] for x in runs) + len(runs) * sum(ROWS)
    print("\n(c) inference log of every request, pipeline, single row, c=32")
    c.print_table(
        ["log off", "log on (--log-sample 1)", "cost", "rows in the log", "goal"],
        [
            [
                fmt_rps(plain),
                fmt_rps(logging),
                "-" if cost is None else f"{cost:.1%}",
                f"{logged:,} of >= {served:,} served",
                goal_text(cost, GOAL_LOG_COST, at_least=False, fmt="{:.0%}"),
            ]
        ],
    )
    return {
        "plain": plain,
        "logging": logging,
        "cost": cost,
        "rows_logged": logged,
        "rows_served_measured": served,
    }


def section_swap(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    ws = b.ws
    reg = ws.registry()
    name = model_name("pipe")
    reg.set_alias(name, ALIAS, 1)
    moves, duration = args.swap_moves, args.swap_duration
    print(f"[bench] hot swap: {moves} alias moves in {duration:.0f} s at c=32 ...", file=sys.stderr)
    delays: list[float] = []
    probe_failures = 0
    load_result: dict[str, Any] = {}
    with start(ws, "mloop", "pipe", workers=1, args=args) as server:
        body = ws.bodies[1].read_bytes()
        url = f"{server.url}/invocations"

        def load() -> None:
            load_result.update(b.load(url, ws.bodies[1], connections=32, seconds=duration))

        thread = threading.Thread(target=load, daemon=True)
        started = time.monotonic()
        thread.start()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        interval = duration / (moves + 1)
        for i in range(moves):
            time.sleep(max(0.0, started + (i + 1) * interval - time.monotonic()))
            if i % 2 == 0:
                target = 2
                reg.set_alias(name, ALIAS, 2, reason="bench: promote")
            else:
                target = 1
                reg.rollback(name, ALIAS, reason="bench: roll back")
            moved = time.monotonic()
            while True:
                try:
                    status, headers, _ = _load.post(server.port, body, conn=conn)
                except (OSError, http.client.HTTPException):
                    probe_failures += 1
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    continue
                if status != 200:
                    probe_failures += 1
                if headers.get("x-mloop-model-version") == f"{name}/{target}":
                    delays.append(time.monotonic() - moved)
                    break
                if time.monotonic() - moved > 30:
                    delays.append(float("inf"))
                    break
                time.sleep(0.01)
        thread.join()
        conn.close()
    failures = load_result.get("errors", 0) + probe_failures
    worst = max(delays) if delays else None
    print(f"\n(d) hot swap, pipeline, single row, c=32: {moves} alias moves in {duration:.0f} s")
    c.print_table(
        ["requests", "failed", "new version answers after (median / max)", "goal"],
        [
            [
                f"{load_result.get('requests', 0):,} ({load_result.get('rps', 0):,.0f}/s, p99 "
                f"{load_result.get('p99_ms', 0):,.0f} ms)",
                str(failures),
                f"{c.median(delays):.2f} s / {worst:.2f} s" if delays else "-",
                ("0 failed, " + goal_text(worst, GOAL_SWAP_S, at_least=False, fmt="{:g} s"))
                if failures == 0
                else "0 failed (MISSED)",
            ]
        ],
    )
    return {
        "moves": moves,
        "duration_s": duration,
        "load": load_result,
        "probe_failures": probe_failures,
        "failed": failures,
        "delays_s": delays,
    }


def section_workers(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    for rep in range(args.repeat):
        for kind in ("mloop", "minimal") if rep % 2 == 0 else ("minimal", "mloop"):
            b.measure(kind, "lr", [(1, 32)], workers=2, rep=rep)
    ours, mini = b.get("mloop", "lr", 1, 32, workers=2), b.get("minimal", "lr", 1, 32, workers=2)
    r = ratio(ours, mini)
    print("\n(f) two workers, bare LogisticRegression, single row, c=32")
    c.print_table(
        ["mloop", "minimal", "mloop/minimal", "goal"],
        [
            [
                fmt_rps(ours),
                fmt_rps(mini),
                "-" if r is None else f"{r:.0%}",
                goal_text(r, GOAL_MINIMAL, fmt="{:.0%}"),
            ]
        ],
    )
    return {"mloop": ours, "minimal": mini, "mloop_vs_minimal": r}


# ============================================================================================ main
def orchestrate(args: argparse.Namespace) -> int:
    if not c.mloop_importable():
        return 2
    from tracking import MLFLOW_REQUIREMENTS  # one pinned MLflow env for every benchmark

    if args.client == "wrk" and not _load.have_wrk():
        print(
            "[bench] wrk not found (apt-get install wrk): using the asyncio client", file=sys.stderr
        )
        args.client = "asyncio"
    needs_mlflow = "a" in args.sections and "mlflow" in args.servers
    args.mlflow_python = str(c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS)) if needs_mlflow else None
    versions = {
        "mloop": c.package_version(sys.executable, "mloop"),
        "mlflow": c.package_version(args.mlflow_python, "mlflow") if args.mlflow_python else None,
        "scikit-learn": c.package_version(sys.executable, "scikit-learn"),
        "scikit-learn (MLflow env)": c.package_version(args.mlflow_python, "scikit-learn")
        if args.mlflow_python
        else None,
        "uvicorn": c.package_version(sys.executable, "uvicorn"),
        "python": platform.python_version(),
        "client": args.client + (f" ({_load.wrk_version()})" if args.client == "wrk" else ""),
    }
    models = list(args.models)
    if "d" in args.sections and "pipe" not in models:
        models.append("pipe")
    if ("b" in args.sections or "f" in args.sections) and "lr" not in models:
        models.append("lr")
    if "c" in args.sections and "pipe" not in models:
        models.append("pipe")
    fields: dict[str, Any] = {
        "versions": versions,
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "out")},
    }
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        ws = Workspace(Path(tmp), models, Path(args.mlflow_python) if args.mlflow_python else None)
        b = Bench(ws, args)
        print(
            f"mloop {versions['mloop']} vs MLflow {versions['mlflow']} vs a minimal Starlette "
            f"endpoint; scikit-learn {versions['scikit-learn']}; Python {versions['python']}; "
            f"load: {versions['client']}, {args.duration:g} s per load after {args.warmup:g} s "
            f"of warm-up; median of {args.repeat}; {os.cpu_count()} CPUs shared by client and server"
        )
        if "a" in args.sections:
            fields["matrix"] = section_matrix(b, args)
        if "b" in args.sections:
            fields["batching"] = section_batching(b, args)
        if "c" in args.sections:
            fields["logging"] = section_logging(b, args)
        if "d" in args.sections:
            fields["hot_swap"] = section_swap(b, args)
        if "f" in args.sections:
            fields["two_workers"] = section_workers(b, args)
        if "e" in args.sections:
            fields["batch_scoring"] = section_batch(ws, args)
        fields["raw"] = b.results
    c.write_results("serving-quick.json" if args.quick else "serving.json", "serving", fields)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="a short smoke run (not the issue's numbers)"
    )
    p.add_argument("--sections", default="abcdef", help="which sections to run (letters a-f)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of load per measurement")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each")
    p.add_argument("--repeat", type=int, default=1, help="repetitions (median reported)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: pipe,lr,rf")
    p.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated: mloop,mlflow,minimal"
    )
    p.add_argument("--concurrency", default="1,8,32", help="connections, comma-separated")
    p.add_argument("--rows", default="1,100", help="rows per request, comma-separated (1, 100)")
    p.add_argument("--client", choices=["wrk", "asyncio"], default="wrk")
    p.add_argument("--max-batch-size", type=int, default=64, help="section b")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="section b")
    p.add_argument("--swap-moves", type=int, default=20, help="section d")
    p.add_argument("--swap-duration", type=float, default=60.0, help="section d (seconds)")
    p.add_argument("--batch-rows", type=int, default=1_000_000, help="section e")
    p.add_argument("--batch-size", type=int, default=100_000, help="section e: predict_file's")
    p.add_argument("--batch-repeat", type=int, default=5, help="section e: timed runs of each")
    p.add_argument(
        "--worker", choices=["mlflow-save", "batch-time", "batch-mem"], help=argparse.SUPPRESS
    )
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--which", choices=["bare", "mloop"], help=argparse.SUPPRESS)
    p.add_argument("--one-model", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        fn = {
            "mlflow-save": worker_mlflow_save,
            "batch-time": worker_batch_time,
            "batch-mem": worker_batch_mem,
        }[args.worker]
        Path(args.out).write_text(json.dumps({"results": {}, "info": {}, **fn(args)}))
        return 0
    if args.quick:
        args.duration, args.warmup = min(args.duration, 3.0), min(args.warmup, 1.0)
        args.swap_moves, args.swap_duration = min(args.swap_moves, 4), min(args.swap_duration, 10.0)
        args.batch_rows, args.batch_repeat = (
            min(args.batch_rows, 200_000),
            min(args.batch_repeat, 2),
        )
    args.models = [m for m in args.models.split(",") if m]
    args.servers = [s for s in args.servers.split(",") if s]
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    args.rows = [int(x) for x in args.rows.split(",")]
    bad = (
        [m for m in args.models if m not in MODELS]
        + [s for s in args.servers if s not in SERVERS]
        + [str(r) for r in args.rows if r not in ROWS]
        + [x for x in args.sections if x not in "abcdef"]
    )
    if bad or args.repeat < 1 or args.duration <= 0:
        p.error(f"unknown or bad values: {bad or [args.repeat, args.duration]}")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
